# Two commands on a fresh machine: `make grade` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: grade test lint samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

grade: $(STAMP)
	$(BIN)/grader grade submissions --rubric rubrics/ex06.toml --out reports --jobs $(JOBS)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check grader tests

samples: $(STAMP)
	$(BIN)/python tests/make_samples.py

clean:
	rm -rf reports .pytest_cache
