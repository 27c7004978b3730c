# SNW developer commands. `make run` and `make test` work on a fresh machine (Python 3.11).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run manage test lint install clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml nmt-wizard/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e . -e nmt-wizard
	touch $(STAMP)

install: $(STAMP)

## run: the launcher, a worker and the demo pool, with SQLite and an embedded Redis by default
run: $(STAMP)
	$(BIN)/python -m snw_site.embedded_run

## manage: a management command on the `make run` database and Redis, e.g. ARGS="abilities DMTRN"
manage: $(STAMP)
	$(BIN)/python -m snw_site.embedded_run manage $(ARGS)

## test: the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL say so)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var
