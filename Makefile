# make run  : set up (venv, install, migrate, admin) and serve on 127.0.0.1:$(PORT)
# make test : the whole suite on SQLite and on PostgreSQL, side by side (each run's output shown when it ends)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export FLASK_APP := wsgi
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres install install-dev migrate admin bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/flask db upgrade

admin: migrate
	$(BIN)/flask create-admin --if-missing

run: admin
	@echo "Serving on http://127.0.0.1:$(PORT)  (Swagger UI: http://127.0.0.1:$(PORT)/api/docs)"
	PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The two runs share nothing (temporary folders, free ports, scratch databases named by process id), so they
# run at once: on this two-core machine 5 minutes instead of 8 one after the other.
test: install-dev
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

test-sqlite: install-dev
	$(BIN)/python -m pytest -p no:cacheprovider

test-postgres: install-dev
	@$(BIN)/python -c "import psycopg,sys; psycopg.connect('$(TEST_DATABASE_URL)', connect_timeout=5).close()" \
		|| { echo "PostgreSQL not reachable at $(TEST_DATABASE_URL)"; [ -z "$$CI" ] && [ -z "$$REQUIRE_POSTGRES" ] && echo "skipping the PostgreSQL run (set REQUIRE_POSTGRES=1 to fail)" && exit 0; exit 1; }
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -p no:cacheprovider

bench: install-dev
	$(BIN)/python bench/list_users.py

lint: install-dev
	$(BIN)/python -m ruff check admin_api tests bench

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
