# asgi_kit developer commands. Only Python >= 3.10 and the package registries are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test bench docs clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "asgi_kit needs Python >= 3.10 (set PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[demo]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev,redis,django]'
	@touch $@

## make demo: serve examples/full_stack.py on http://127.0.0.1:8000
demo: $(VENV)/.demo-installed
	$(BIN)/python examples/full_stack.py

## make test: ruff, mypy --strict and pytest (starts its own redis-server)
test: $(VENV)/.dev-installed
	bash scripts/ensure-redis.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict asgi_kit
	$(BIN)/pytest

## make bench: install the anchors and compare per-request overhead; without
## BENCH=..., also measure throughput over loopback with wrk (installed when root)
bench: $(VENV)/.dev-installed
	$(PIP) install --quiet -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks $(BENCH)
ifeq ($(BENCH),)
	@command -v wrk >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python -m benchmarks.throughput
endif

## make docs: build the documentation site (offline, --strict) into site/
docs: $(BIN)/python
	$(PIP) install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build site
