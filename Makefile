# Two commands set everything up: `make run` (web + nurture worker) and `make test` (all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := app:create_app
# Demo speed: 1440 plays a day of the sequence in a minute. Production leaves it at 1.
RUN_TIME_SCALE ?= 1440
# Every marketing email shows the clinic's postal address (the worker refuses to start without one). The demo
# uses this made-up one unless CLINIC_POSTAL_ADDRESS is set; production never uses `make run` and sets the real one.
DEMO_POSTAL_ADDRESS := DEMO ONLY, not a real address: NexGenEsis Healthcare, 1 Example Street, Springfield, ZZ 00000

.PHONY: run run-env test node-tools lint install dev-install bench bench-welcome bench-nurture bench-dispatch bench-admin bench-instructions migrations-reset clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

# What `make run` adds to the environment (`make -s run-env` prints it; a test starts the app with exactly this).
run run-env: export NURTURE_TIME_SCALE = $(RUN_TIME_SCALE)
run run-env: export CLINIC_POSTAL_ADDRESS ?= $(DEMO_POSTAL_ADDRESS)

# Campaign files are checked first: a broken one stops here with one line per problem. The shipped posts, then the
# campaigns (whose emails link to posts), are imported and published on the first start only (--if-new): what the
# marketing team changed in the admin stays.
run: install
	@$(BIN)/flask campaigns validate
	@LOG_LEVEL=WARNING $(BIN)/flask db upgrade
	@LOG_LEVEL=WARNING $(BIN)/flask blog import --publish --if-new
	@LOG_LEVEL=WARNING $(BIN)/flask campaigns import --publish --if-new
	@$(BIN)/flask demo setup
	$(BIN)/honcho start -f Procfile

run-env:
	@printf '%s\n' "NURTURE_TIME_SCALE=$$NURTURE_TIME_SCALE" "CLINIC_POSTAL_ADDRESS=$$CLINIC_POSTAL_ADDRESS"

# The whole suite: the npm tools of the browser checks are installed when npm exists, and the PostgreSQL pass
# runs when TEST_DATABASE_URL is set or the README's server answers. The last line says what was skipped and why.
# lint-imports checks the layering written in pyproject.toml ([tool.importlinter]): a new cycle fails here.
test: dev-install node-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@url="$${TEST_DATABASE_URL:-$$($(BIN)/python -m tests.support.postgres)}"; \
	if [ -n "$$url" ]; then echo "PostgreSQL pass: $$url"; fi; \
	TEST_DATABASE_URL="$$url" $(BIN)/pytest --durations=15

# axe-core and the Nu HTML Checker for the accessibility and HTML tests (tests/node).
node-tools:
	@if [ -d tests/node/node_modules/axe-core ] && [ -d tests/node/node_modules/vnu-jar ]; then :; \
	elif ! command -v npm >/dev/null; then echo "npm not found: the accessibility and HTML-checker tests will skip"; \
	else echo "installing the npm test tools in tests/node"; \
	  (cd tests/node && { npm ci --no-audit --no-fund --loglevel=error \
	    || npm install --no-save --no-audit --no-fund --loglevel=error; }) \
	  || echo "npm could not install the test tools: the accessibility and HTML-checker tests will skip"; fi

lint: dev-install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

bench: dev-install
	$(BIN)/python -m bench.run

bench-welcome: dev-install
	$(BIN)/python -m bench.welcome

bench-nurture: dev-install
	$(BIN)/python -m bench.nurture

bench-dispatch: dev-install
	$(BIN)/python -m bench.nurture dispatch

bench-admin: dev-install
	$(BIN)/python -m bench.admin

bench-instructions: dev-install
	$(BIN)/python -m bench.instructions

# Rewrites the single initial migration from the models. Only while nothing has been deployed.
migrations-reset: dev-install
	rm -f migrations/versions/*.py
	tmp=$$(mktemp -d) && DATABASE_URL=sqlite:///$$tmp/m.db $(BIN)/flask db revision -m "initial schema" && rm -rf $$tmp
	cd migrations/versions && mv *_initial_schema.py 0001_initial_schema.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache
