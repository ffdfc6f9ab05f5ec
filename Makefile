# Two commands do all set-up on a fresh machine with only python3:
#   make demo   - offline end-to-end run of stage5 on a bundled script
#   make test   - the full test suite (what CI runs through .ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs only the core dependencies.
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Tests need every extra (diffusers, pdf, ray, serve) and the dev tools.
$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[diffusers,pdf,ray,serve,dev]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/stage5 demo

test: $(VENV)/.all
	$(BIN)/python -m pytest -q -n auto

lint: $(VENV)/.all
	$(BIN)/ruff check stage5cli tests benchmarks

bench: $(VENV)/.all
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-project
