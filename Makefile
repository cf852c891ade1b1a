# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo test bench lint setup clean browser

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[$*]'
	touch $@

setup: $(VENV)/.installed-test

## demo: compare every chat provider against the built-in simulator (no keys needed)
demo: $(VENV)/.installed-test
	$(BIN)/accel-nb demo

## test: the whole test suite, as CI runs it (browser tests drive Debian's Chromium)
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest

# Debian's Chromium for the browser tests; Playwright drives it, it never downloads one.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## bench: the speed benchmarks, side by side, printing ratios
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/import_time.py
	$(BIN)/python benchmarks/ovms.py
	$(BIN)/python benchmarks/s3.py
	$(BIN)/python benchmarks/dashboard.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check accel_nb tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
