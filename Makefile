# Two commands for a fresh clone:  make run  (start the app)   make test  (run every test)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

run: $(VENV)/.installed  ## set up, migrate, load the bundled data on first start, serve on :8050
	$(BIN)/python app.py

test: $(VENV)/.installed-dev  ## set up and run the whole suite (PostgreSQL/Redis/browser tests skip when absent, unless REQUIRE_*=1)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/live_tick.py

clean:
	rm -rf $(VENV) .venv-runtime .pytest_cache .ruff_cache
