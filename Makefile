# Causeway — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export CAUSEWAY_PORT := $(PORT)

.PHONY: run test lint format install migrate demo worker check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## make run: install, migrate, load demo data, start web + worker + beat on embedded defaults.
run: export CAUSEWAY_ENV ?= dev
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo ""
	@echo "  Causeway is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Demo logins (password: causeway-demo): scientist engineer approver approver2 ops owner admin"
	@echo "  API docs: http://127.0.0.1:$(PORT)/api/docs/   Stop with Ctrl-C."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f platform/Procfile.dev -d . start

## make test: the full test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: export CAUSEWAY_ENV = test
test: install
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	CAUSEWAY_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-deploy: install
	CAUSEWAY_ENV=production SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=causeway.example.com \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) staticfiles var/*.sqlite3* var/celerybeat-schedule*
