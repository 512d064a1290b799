# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv on first use and install everything into it (torch's CPU wheel pinned first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench-check lint docs docs-frames

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray,docs,wandb]"
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

# the documentation site, from docs/ and the docstrings: site/index.html (CI builds it with --strict too)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# a frame of each environment at its default task, for the environments page (docs/img/envs/, committed)
docs-frames: $(STAMP)
	for env in $$($(PY) -c "from environments.registry import ENVIRONMENTS as E; print(' '.join(n for n, e in E.items() if e.trainable))"); do \
		$(PY) cli.py render --env $$env --out docs/img/envs/$$env.png || exit 1; done
