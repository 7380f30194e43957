# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up, migrate, create the admin user, serve web + worker
#   make test   set up with the test extras, lint, and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
BIN    := $(VENV)/bin
# Translations: the .po files are the source; the .mo files are built from them.
PO     := $(wildcard app/translations/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)

.PHONY: run test suite test-servers bench lint clean translations

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Taskdeck needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile -f -i $< -o $@

run: $(VENV)/.installed $(MO)
	$(BIN)/taskdeck init
	PORT=$(PORT) $(BIN)/taskdeck serve

test: lint suite

# In-process tests two at a time (2 cores); process and browser tests, which
# time real servers, one at a time.
suite: $(VENV)/.installed-test $(MO)
	$(BIN)/pytest -n 2 tests/unit
	$(BIN)/pytest --durations=12 tests/integration tests/browser

# The same suite with the data on PostgreSQL and the queue on Redis (a fresh
# database per run, dropped afterwards). .ci/run runs both.
test-servers: $(VENV)/.installed-test $(MO)
	$(BIN)/python -m tests.backends $(MAKE) --no-print-directory suite

# Benchmarks on SQLite and on PostgreSQL + Redis; each prints its figures.
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# After changing user-facing text: refresh the catalogs, translate the new
# entries in each messages.po, then `make test` (a test fails on any left).
translations: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ --no-location --sort-output \
		--omit-header -o app/translations/messages.pot .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations \
		--no-fuzzy-matching --ignore-obsolete --width 100

clean:
	rm -rf $(VENV) .pytest_cache $(MO)
