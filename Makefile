# Two commands: `make run` brings the whole system up on embedded defaults,
# `make test` runs the whole suite. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
export FLASK_APP := wsgi
# Browser tests need Debian's chromium; without it `make test` runs the rest and says so.
# CI installs it (.ci/run), so there a missing browser fails the run instead.
ifneq ($(CI),true)
NO_BROWSER := $(shell command -v chromium >/dev/null 2>&1 || test -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" || echo --ignore=tests/e2e)
endif

.PHONY: run test test-fast coverage lint format bench clean lock messages

# The app refuses to start without APP_ENV; `make run` is development unless told otherwise.
run: export APP_ENV := $(or $(APP_ENV),development)

# pip's own byte-compiling runs file by file; compileall compiles what the install added on every
# core (7 s for the whole environment). Without it, a machine that sets PYTHONDONTWRITEBYTECODE
# compiles every library again in each process it starts: 3.2 s instead of 1.2 s for each web
# worker, Celery worker and CLI call.
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r requirements.txt
	$(COMPILE)
	touch $@

# Development-only servers (embedded Redis, SMTP sink, honcho): never part of a production install.
$(VENV)/.devrun: $(VENV)/.runtime requirements-dev-run.txt
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r requirements-dev-run.txt
	$(COMPILE)
	touch $@

$(VENV)/.dev: $(VENV)/.devrun requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r requirements-dev.txt
	$(COMPILE)
	touch $@

# The compiled catalogs (.mo) are made from the committed .po files, never committed themselves.
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -i $< -o $@

# Extract every marked message into translations/messages.pot and merge it into each catalog;
# the English catalog takes each source text as its translation. See TRANSLATING.md.
messages: $(VENV)/.dev
	PYTHONPATH=. $(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --add-location=file --sort-by-file \
		--project="Danish Treatment Quotes" --msgid-bugs-address=translations@example.org \
		-o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python -m translations.english

run: $(VENV)/.devrun $(COMPILED)
	mkdir -p var/mail var/redis
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	@$(BIN)/python -m leads.dev.ports
	$(BIN)/honcho -f Procfile.dev start

test: $(VENV)/.dev $(COMPILED)
	@test -z "$(NO_BROWSER)" || echo "Chromium not found: the browser tests (tests/e2e) are skipped; install Debian's chromium package to run them."
	@# The PostgreSQL pass runs beside the SQLite one (its tests mostly wait on the database);
	@# its report follows the SQLite pass's, and either failing fails the run.
	@mkdir -p var; pg=skipped; \
	if $(BIN)/python -m tests.pg_cluster --check; then \
		$(BIN)/python -m pytest -m pg --db=postgresql -p no:cacheprovider $(NO_BROWSER) $(PYTEST_ARGS) > var/pg-pass.log 2>&1 & pg=$$!; \
	fi; \
	$(BIN)/python -m pytest $(NO_BROWSER) $(PYTEST_ARGS); sqlite=$$?; \
	if [ "$$pg" = skipped ]; then \
		echo "PostgreSQL server binaries (pg_ctl, initdb) not found: the PostgreSQL run is skipped."; pgrc=0; \
	else \
		wait $$pg; pgrc=$$?; echo "---- PostgreSQL pass (-m pg) ----"; cat var/pg-pass.log; \
	fi; \
	test $$sqlite -eq 0 -a $$pgrc -eq 0

# The inner loop: the pure unit tests, no app, no database, no servers.
test-fast: $(VENV)/.dev $(COMPILED)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Line coverage of leads/ and workers/ over the SQLite run.
coverage: $(VENV)/.dev $(COMPILED)
	$(BIN)/python -m pytest $(NO_BROWSER) --cov=leads --cov=workers --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev
	$(BIN)/python bench/run_all.py

# Regenerate the hashed locks from the .in files after changing a pin (needs the network).
lock: $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet pip-tools==7.6.2
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev-run.txt requirements-dev-run.in
	$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf var/ .pytest_cache .coverage
