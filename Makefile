# The two commands the README promises: `make demo` and `make test`. Both set up everything.
.PHONY: setup demo demo-full test bench screenshots
VENV := .venv/bin

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/python app.py demo --serve

demo-full: setup
	$(VENV)/python app.py demo --full --serve

test: setup
	$(VENV)/python -m pytest

bench: setup
	$(VENV)/pip install -q -r bench/requirements.txt
	$(VENV)/python bench/run_all.py

# The README's screenshots (docs/screenshot-*.png) from the demo's real images; never the tests.
screenshots: setup
	$(VENV)/python scripts/screenshots.py
