# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo test bench lint setup clean browser notebooks-clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[$*]'
	touch $@

setup: $(VENV)/.installed-test

## demo: run the provider comparison notebook against the built-in simulator (no keys needed);
##       writes demo/report.html and the executed notebook, prints a summary table
demo: $(VENV)/.installed-notebooks
	$(BIN)/accel-nb demo --notebook notebooks/02_compare_providers.ipynb --out demo

## test: the whole test suite, as CI runs it (browser tests drive Debian's Chromium)
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest

# Debian's Chromium for the browser tests; Playwright drives it, it never downloads one.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## bench: every benchmark in one session, one table of ratios and bars; writes BENCHMARKS.md
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

## notebooks-clean: strip outputs and execution counts, as the notebooks are committed
notebooks-clean: $(VENV)/.installed-notebooks
	$(BIN)/python -m accel_nb.headless strip notebooks/*.ipynb

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check accel_nb tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
