# Exitpool — two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q
# compat: the checkout itself goes on sys.path, so new modules need no reinstall.
EDITABLE := --config-settings editable_mode=compat
ARGS   ?=

.PHONY: run test lint typecheck unit integration clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.server: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[server]' $(EDITABLE)
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]' $(EDITABLE)
	touch $@ $(VENV)/.server

## Start the server: web and agents on :8000, proxy on :8899, data in ./var (ARGS="--http ...").
run: $(VENV)/.server
	$(BIN)/exitpool-server run $(ARGS)

## Set up and run everything CI runs: lint, type checks, unit and integration tests.
test: lint typecheck
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy's Django plugin loads the settings: give it a throwaway data dir.
typecheck: $(VENV)/.dev
	EXITPOOL_DATA_DIR=$(VENV)/typecheck-data $(BIN)/mypy wire tunnel server desktop_agent/engine

unit: $(VENV)/.dev
	$(BIN)/pytest tests/unit

integration: $(VENV)/.dev
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
