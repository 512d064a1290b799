# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv on first use and install everything into it (torch's CPU wheel pinned first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench-check lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) cli.py compare --config experiments/demo.yaml --workers 2 --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q

bench-check: $(STAMP)
	$(PY) -m pytest -q -m bench

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
