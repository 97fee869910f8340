# Mailsite's two everyday commands, each doing its own set-up on a fresh machine:
#   make run    the product on the embedded defaults (PostgreSQL from a wheel, files under var/)
#   make test   the whole test suite, with the linters and the migration check
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint migrations-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	# No Celery beat in the embedded mode: runoutbound releases and sends due mail beside the server.
	$(BIN)/python manage.py runoutbound & trap 'kill $$!' EXIT INT TERM; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Tests need a secret only because a set DATABASE_URL (as in CI) makes one mandatory.
test: export SECRET_KEY ?= insecure-key-for-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz
test: $(VENV)/.dev lint migrations-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

migrations-check: export SECRET_KEY ?= insecure-key-for-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz
migrations-check: $(VENV)/.dev
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
