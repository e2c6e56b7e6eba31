# The two commands a fresh clone needs: `make demo` and `make test`.
# Everything installs into .venv from the pinned uv.lock; nothing else is installed by hand.

PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

demo: $(STAMP)
	$(VENV)/bin/sijill demo

# One worker per core (at most four): each worker has its own databases (tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/pytest -n auto --maxprocesses 4

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

$(STAMP): $(UV) uv.lock pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf $(VENV) sijill.db sijill.db-wal sijill.db-shm demo-data
