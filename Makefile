# Exitpool — two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q
# compat: the checkout itself goes on sys.path, so new modules need no reinstall.
EDITABLE := --config-settings editable_mode=compat
ARGS   ?=
# Debian packages the browser tests drive, nginx for the deploy test, ss (iproute2) for the fault suite.
# desktop-file-utils checks the .deb's menu and autostart entries.
DEB_PACKAGES := chromium chromium-driver xvfb nginx iproute2 desktop-file-utils
# What the tray app needs to draw on Xvfb (tests run offscreen and need none of it).
SCREENSHOT_PACKAGES := xvfb trayer fonts-dejavu-core libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The installers are built from a venv of their own holding only what the agent needs, so
# nothing of the server or the test tools ends up in the bundle.
INSTALLER_VENV := .venv-installer

.PHONY: run test lint typecheck unit integration deb-packages screenshots screenshot-packages screenshots-dashboard clean bench installer

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

$(INSTALLER_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(INSTALLER_VENV)
	$(INSTALLER_VENV)/bin/pip install --disable-pip-version-check -q -e '.[desktop,installer]' $(EDITABLE)
	touch $@

## Set up and run everything CI runs: lint, type checks, unit, integration and installer tests.
test: deb-packages lint typecheck $(INSTALLER_VENV)/.installed
	EXITPOOL_INSTALLER_PYTHON=$(CURDIR)/$(INSTALLER_VENV)/bin/python $(BIN)/pytest

## Build the agent's installers this OS can build into dist/ (Linux: the bundle and a .deb).
installer: $(INSTALLER_VENV)/.installed
	$(INSTALLER_VENV)/bin/python -m installer build $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy's Django plugin loads the settings: give it a throwaway data dir.
typecheck: $(VENV)/.dev
	EXITPOOL_DATA_DIR=$(VENV)/typecheck-data $(BIN)/mypy exitpool wire tunnel server desktop_agent installer resources/build_icons.py

## Install headless Chromium, its driver, Xvfb and nginx (for the deploy test) with apt-get, unless there.
deb-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v xvfb-run >/dev/null && [ -x /usr/sbin/nginx ] && command -v ss >/dev/null && command -v desktop-file-validate >/dev/null \
	|| { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(DEB_PACKAGES); }

## Retake docs/screenshots/tray-*.png: the real tray app under Xvfb, with trayer as its tray.
screenshots: $(VENV)/.dev screenshot-packages
	xvfb-run -a -s "-screen 0 1280x800x24" $(BIN)/python docs/screenshots/capture_tray.py

## Install Xvfb, a tray (trayer), fonts and the X libraries Qt's xcb platform needs, unless there.
screenshot-packages:
	@command -v xvfb-run >/dev/null && command -v trayer >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0 ] \
	|| { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(SCREENSHOT_PACKAGES); }

## Retake docs/screenshots/dashboard-*.png (real server and agents; not part of `make test`).
screenshots-dashboard: $(VENV)/.dev deb-packages
	$(BIN)/python docs/screenshots/capture_dashboard.py

## Side-by-side benchmarks (not part of `make test`), e.g. ARGS="--quick --only a,b"; see benchmarks/README.md.
# pproxy lives in its own venv without uvloop (pproxy imports uvloop if present and crashes with 0.23).
# matplotlib draws the chart; py-spy is for `benchmarks.cpu_cost --profile`.
BENCH_VENV := benchmarks/.venv-pproxy
bench: $(VENV)/.dev
	@command -v tinyproxy >/dev/null && command -v wrk >/dev/null && [ -x /usr/sbin/nginx ] \
	|| { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends tinyproxy nginx wrk; }
	@[ -x $(BENCH_VENV)/bin/pproxy ] || { $(PYTHON) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install --disable-pip-version-check -q 'pproxy==2.7.9'; }
	@$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(PIP) matplotlib
	@[ -x $(BIN)/py-spy ] || $(PIP) py-spy
	$(BIN)/python -m benchmarks.run $(ARGS)

unit: $(VENV)/.dev
	$(BIN)/pytest tests/unit

integration: $(VENV)/.dev
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) $(INSTALLER_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
