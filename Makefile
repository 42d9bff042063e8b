# The two commands of README.md. Both create .venv themselves; nothing else needs installing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit clean

demo: $(VENV)/.installed-sklearn,batch
	$(BIN)/python examples/demo.py

test: $(VENV)/.installed-test
	$(MAKE) lint typecheck unit

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
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .seaway .pytest_cache .mypy_cache .ruff_cache
