# One-command set-up: `make run` and `make test` each create .venv from Python 3.12 and install.
# `make run` installs the runtime only; `make test` adds the dev tools and the local model server
# (the `localmodel` extra compiles llama.cpp once; pip's wheel cache makes later installs fast).
PYTHON ?= python3.12
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: install install-test run test check bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.12 (pyenv install 3.12.1) or run 'make PYTHON=/path/to/python3.12 ...'"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install -q -e '.[dev,localmodel]'
	touch $(TSTAMP)

install: $(STAMP)

install-test: $(TSTAMP)

run: $(STAMP)
	$(BIN)/dlpproxy run

test: $(TSTAMP)
	$(BIN)/python -m pytest -q

check: $(TSTAMP)
	$(BIN)/ruff check dlpproxy tests bench
	$(BIN)/ruff format --check dlpproxy tests bench
	$(BIN)/mypy

bench: $(TSTAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
