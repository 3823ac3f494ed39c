# Two commands for a fresh clone:  make run  (start the app)   make test  (run every test)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run serve test lint bench kernel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# each set-up also builds the prebuilt backtest kernel (analytics/_kernel_aot.py: a fresh process
# then runs a backtest without importing numba); "-": without a C compiler the app uses numba's JIT
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	-$(BIN)/python -m analytics._kernel_aot
	-$(BIN)/python -m analytics._execution_aot
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	-$(BIN)/python -m analytics._kernel_aot
	-$(BIN)/python -m analytics._execution_aot
	touch $(VENV)/.installed $@

run: $(VENV)/.installed  ## set up, migrate, load the bundled data on first start, serve on :8050
	$(BIN)/python app.py

# production (README, "Production"): DATABASE_URL (PostgreSQL), REDIS_URL, WEB_CONCURRENCY
# workers (2), HOST, PORT from the environment; the runner and gunicorn under one supervisor
serve: $(VENV)/.installed  ## migrate once, run `app.py runner` and gunicorn's uvicorn workers
	$(BIN)/python app.py serve-prod

test: $(VENV)/.installed-dev  ## set up and run the whole suite (PostgreSQL/Redis/browser tests skip when absent, unless REQUIRE_*=1)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/live_tick.py

kernel: $(VENV)/.installed  ## (re)build the prebuilt backtest kernel now; prints why when it cannot
	$(BIN)/python -m analytics._kernel_aot

clean:
	rm -rf $(VENV) .venv-runtime .pytest_cache .ruff_cache
