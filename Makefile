# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Development defaults; set DEBUG=0 (with SECRET_KEY, ALLOWED_HOSTS) for production-style runs.
export DEBUG ?= 1

.PHONY: run test test-pg lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## run: install, migrate, and serve web + worker on http://127.0.0.1:8000 until Ctrl-C
run: $(VENV)/.runtime
	$(BIN)/python manage.py serve

## lint: ruff (style, imports, annotations) and mypy (types, with django-stubs); config in pyproject.toml;
## no model change without its migration; new migrations safe for a rolling upgrade (alsatrade/migration_lint.py)
lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m alsatrade.migration_lint

## test: install test tools, lint, and run the whole suite (SQLite; PostgreSQL when DATABASE_URL says so)
test: $(VENV)/.dev lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmarks under bench/ (see docs/BENCHMARKS.md)
bench: $(VENV)/.dev
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/execution.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/replay.py

## chaos: the chaos proof on PostgreSQL + Redis: 1000 webhooks, workers SIGKILLed, the exchange failing (docs/BENCHMARKS.md)
.PHONY: chaos
chaos: $(VENV)/.dev
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .hypothesis
