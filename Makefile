# Two commands, on a fresh machine: `make certify` and `make test`.
# Each creates .venv and installs the project (with its dev extras) on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: certify test test-fast lint routes browser

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Certify the embedded reference SUT against every route and write the report (exit 0 when it conforms).
certify: $(STAMP)
	$(BIN)/juki-harness certify --sut reference --report-dir juki-results

# The report test opens report.html in headless Chromium (Debian's package); install it when absent.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# Two pytest workers (pytest-xdist), a test file each at a time (module fixtures are built once): the
# suite's end-to-end runs are mostly one busy process, so two of them fill a 2-core machine.
XDIST := -n 2 --dist loadfile

# Everything (what CI runs): the fast set and the slow end-to-end runs.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q $(XDIST)

# The inner loop: everything but the tests marked slow (under 90 s on a 2-core machine).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
