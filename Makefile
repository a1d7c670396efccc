# The two commands of the README: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint browser-deps clean

demo: $(STAMP)
	$(BIN)/cityops demo

test: $(STAMP) browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m tools.house
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m tools.house

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Headless Chromium for the browser tests: installed from Debian when we may (root), else the
# browser tests are skipped with a reason (CI sets CITYOPS_REQUIRE_BROWSER=1 to make that fail).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null) || echo "warning: could not install chromium"; \
	  else \
	    echo "note: chromium/chromedriver not installed; browser tests will be skipped"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
