# Driftline developer commands. `make help` lists them.
# Everything runs from a project virtualenv (.venv) that `make` creates and keeps in sync
# with pyproject.toml; nothing needs installing by hand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.driftline-installed
PYTEST := $(BIN)/pytest
SOURCES := schemas serving stream retrain driftline tests bench examples

.DEFAULT_GOAL := help
.PHONY: help install up test test-unit test-integration test-regression lint typecheck format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Driftline needs Python 3.11+; $(PYTHON) is $$($(PYTHON) -V 2>&1). Run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) \
		|| { rm -rf $(VENV); echo "could not create $(VENV): on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) ## Create the virtualenv and install Driftline with its dev tools

# `bash -m` gives the launcher its own process group in the terminal's foreground, so
# Ctrl-C reaches the launcher (which stops the stack and exits 0) and not make itself
# (which would report "Interrupt" and exit 130 whatever its child did).
up: $(STAMP) ## Start the local stack (broker, Redis) until Ctrl-C
	@bash -mc '$(BIN)/driftline up'

test: $(STAMP) lint typecheck ## Lint, type-check, then run unit, integration, regression and demo tests
	$(PYTEST) -m "(unit or integration or regression or demo) and not reliability"

test-unit: $(STAMP) ## Unit tests only (no servers)
	$(PYTEST) -m unit

test-integration: $(STAMP) ## Integration tests on real components started by fixtures
	$(PYTEST) -m "integration and not reliability"

test-regression: $(STAMP) ## Drift report of the fixture data, then regression tests (contracts, model metrics, broker quirks)
	$(BIN)/driftline report --reference data/sample/drift_reference.csv \
		--current data/sample/drift_current.csv --out data/reports/fixture-drift.html
	$(PYTEST) -m regression

lint: $(STAMP) ## ruff check and ruff format --check (changes nothing)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP) ## mypy --strict on every package and the examples
	$(BIN)/mypy
	$(BIN)/mypy examples

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

bench: $(STAMP) ## Run the benchmarks in bench/ and print their tables
	$(BIN)/python -m bench

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data/logs data/redis

.PHONY: train mlflow-ui

train: $(STAMP) ## Train the baseline model, register it as champion, write the drift fixtures
	$(BIN)/driftline train

# The full `mlflow` package (UI and server, ~850 MB) is the optional extra `ui`, installed
# only here: serving and training need nothing beyond mlflow-skinny.
mlflow-ui: $(STAMP) ## Install the MLflow UI (extra `ui`) and browse the local tracking store
	$(BIN)/python -m pip install --quiet -e '.[ui]'
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$$(realpath $${DRIFTLINE_DATA_DIR:-data})/mlflow.db}" --host 127.0.0.1

.PHONY: setup

# Debian packages the stack uses when present (all optional: tests needing one are skipped
# with its name, `make up` says what it skips). Needs root or sudo.
setup: ## apt-get install redis-server, prometheus and prometheus-alertmanager (Debian)
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y --no-install-recommends \
		redis-server prometheus prometheus-alertmanager

.PHONY: demo test-demo serve compose-up compose-down

# Like `up`: `bash -m` puts the demo in the terminal's foreground group, so Ctrl-C reaches
# it (it stops the stack and exits 0) and not make.
demo: $(STAMP) ## The whole loop live: traffic, drift, alert, retrain, MLflow run, canary, promotion
	@bash -mc '$(BIN)/driftline demo'

# Also part of `make test` (the README's run command must not rot): it starts the whole
# stack twice and runs the loop (about 2 minutes on a 2-core machine; docs/demo.md).
test-demo: $(STAMP) ## The make-demo tests: the loop completes non-interactively; Ctrl-C stops it cleanly
	$(PYTEST) -m demo


serve: $(STAMP) ## Only the prediction API (trains the baseline first if no champion exists)
	$(BIN)/driftline train --if-missing
	$(BIN)/python -m serving

# The production-like stack in Docker (docker-compose.yml; docs/deployment.md). Needs a
# Docker engine with the compose plugin; `make up` is the same stack without Docker.
# Without one, both targets say so and what to run instead.
DOCKER_CHECK = command -v docker >/dev/null 2>&1 \
	|| { echo "$@: docker is not installed; without Docker, 'make up' runs the embedded stack"; exit 1; }; \
	docker info >/dev/null 2>&1 \
	|| { echo "$@: docker is installed but no Docker engine answers (start the daemon); without Docker, 'make up' runs the embedded stack"; exit 1; }

compose-up: ## Build the image and start the Docker Compose stack (waits until healthy)
	@$(DOCKER_CHECK)
	docker compose up --build --detach --wait

compose-down: ## Stop the Docker Compose stack (volumes kept; add `-v` by hand to drop them)
	@$(DOCKER_CHECK)
	docker compose down

.PHONY: test-reliability

# Fault tests that take minutes (processors SIGKILLed during a replay, a 30 s broker outage
# under load): docs/reliability.md.
test-reliability: $(STAMP) ## Long fault tests (marker `reliability`), not part of `make test`
	$(PYTEST) -m reliability
