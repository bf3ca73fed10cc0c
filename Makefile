# Two entry points for a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint demo audit bench-ingest screenshots

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/doisoat run

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -m "not browser" -n auto --maxprocesses 4
	$(BIN)/pytest -m browser

demo: $(BIN)/.installed
	$(BIN)/doisoat demo

# Audits the pinned versions. Where the vulnerability service cannot be reached, pip-audit
# lists the packages it skipped (and exits 0); AUDIT_FLAGS=--strict makes that a failure.
AUDIT_FLAGS ?=
audit: $(BIN)/.installed
	$(BIN)/pip-audit -r constraints.txt --no-deps --disable-pip --progress-spinner off $(AUDIT_FLAGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-ingest: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

# The README's screenshots of each page, taken by the browser tests (Debian's chromium).
screenshots: $(BIN)/.installed
	DOISOAT_SCREENSHOTS=1 $(BIN)/pytest -q tests/browser
