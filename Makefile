# Exitpool — two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q
# compat: the checkout itself goes on sys.path, so new modules need no reinstall.
EDITABLE := --config-settings editable_mode=compat
ARGS   ?=
# Debian packages the browser tests drive (and Xvfb for the tray app's tests).
DEB_PACKAGES := chromium chromium-driver xvfb nginx
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck unit integration deb-packages screenshots-dashboard clean

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
test: deb-packages lint typecheck
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy's Django plugin loads the settings: give it a throwaway data dir.
typecheck: $(VENV)/.dev
	EXITPOOL_DATA_DIR=$(VENV)/typecheck-data $(BIN)/mypy wire tunnel server desktop_agent/engine

## Install headless Chromium, its driver, Xvfb and nginx (for the deploy test) with apt-get, unless there.
deb-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v xvfb-run >/dev/null && [ -x /usr/sbin/nginx ] \
	|| { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(DEB_PACKAGES); }

## Retake docs/screenshots/dashboard-*.png (real server and agents; not part of `make test`).
screenshots-dashboard: $(VENV)/.dev deb-packages
	$(BIN)/python docs/screenshots/capture_dashboard.py

unit: $(VENV)/.dev
	$(BIN)/pytest tests/unit

integration: $(VENV)/.dev
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
