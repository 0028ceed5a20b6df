# Two entry points for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/riskops serve

# Tests in as many processes as there are cores (each with its own databases); PYTEST_ARGS="-n 0" runs them in one.
test: lint
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests bench

# The issue-12 target table on SQLite and on the local PostgreSQL (about 40 minutes on 2 cores).
BENCH_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

bench: $(VENV)/.installed
	$(BIN)/python bench/targets.py --postgres $(BENCH_POSTGRES)

clean:
	rm -rf $(VENV) riskops.db riskops.db-wal riskops.db-shm
