# The two commands of README.md. Both create .venv themselves; nothing else needs installing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Test processes (pytest-xdist); a file's tests stay together on one (its module fixtures are shared).
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck unit clean chromium

demo: $(VENV)/.installed-sklearn,batch,monitor
	$(BIN)/python examples/demo.py

test: $(VENV)/.installed-test chromium
	$(MAKE) lint typecheck unit

# The monitoring report's browser test drives Debian's Chromium (no browser download). Installed
# when missing and we may (root with apt-get); elsewhere that test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed (apt-get install -y chromium): the report's browser test will skip"; fi; }

# One stamp per extras set; reinstalls when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	@touch $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .seaway .pytest_cache .mypy_cache .ruff_cache
