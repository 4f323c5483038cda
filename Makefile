# beets-mcbr: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.mcbr-installed

.PHONY: install demo test test-fast bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned and installed first: an unpinned torch pulls gigabytes of CUDA packages
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash demo/run.sh

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not shipped and not slow"

bench: $(STAMP)
	$(BIN)/python bench/analyze.py ../shared/data

lint: $(STAMP)
	$(BIN)/ruff format --check mcbr_core beetsplug tests bench tools
	$(BIN)/ruff check mcbr_core beetsplug tests bench tools

clean:
	rm -rf $(VENV) .demo .pytest_cache
