# The two commands of README.md. Both create .venv themselves; nothing else needs installing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test lint typecheck unit venv clean

demo: EXTRAS = sklearn
demo: venv
	$(BIN)/python examples/demo.py

test: EXTRAS = test
test: venv lint typecheck unit

venv: $(VENV)/.installed-$(EXTRAS)

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
