# `make run` and `make test` are the whole set-up: each creates or refreshes .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast wheel-check lint format docs bench load image image-test clean

# Exits 0 when SLACK_BOT_TOKEN is set in the environment or in .env.
define HAS_SLACK_TOKEN
import os, sys
from dotenv import dotenv_values
token = os.environ.get("SLACK_BOT_TOKEN") or dotenv_values(".env").get("SLACK_BOT_TOKEN") or ""
sys.exit(0 if token.strip() else 1)
endef
export HAS_SLACK_TOKEN

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The bot when Slack credentials are configured (SLACK_BOT_TOKEN in the environment or .env),
# else the local sandbox (`warroom sandbox`: the bot, a local Slack and a web page).
run: $(STAMP)
	@if $(BIN)/python -c "$$HAS_SLACK_TOKEN"; then \
		$(BIN)/warroom serve $(ARGS); \
	else \
		$(BIN)/warroom sandbox $(ARGS); \
	fi

# Style, types, and the import contract (layers point down; no cycles): see pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check app tests bench deploy
	$(BIN)/ruff format --check app tests bench deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format app tests bench deploy
	$(BIN)/ruff check --fix app tests bench deploy

# README.md's command table, rewritten from the registry (app/slack/listeners/commands.py).
docs: $(STAMP)
	$(BIN)/python deploy/readme_commands.py

# The pure tests only (tests/unit): no database, no fake Slack, no processes; a few seconds.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# Lint, then every tier on SQLite with coverage (the `warroom` processes the e2e tests start are
# measured too; below [tool.coverage.report] fail_under the run fails); then the same suite again
# on Postgres, without coverage, when WARROOM_TEST_POSTGRES_URL is set.
# Tests that never open a database need not run twice.
NO_DATABASE := --ignore=tests/e2e/test_wheel.py --ignore=tests/e2e/test_layers.py \
	--ignore=tests/e2e/test_cli.py --ignore=tests/e2e/test_make_run.py \
	--ignore=tests/e2e/test_sandbox_browser.py --ignore=tests/integration/test_fake_slack.py \
	--ignore=tests/integration/test_fake_pagers.py --ignore=tests/integration/test_fake_statuspage.py \
	--ignore=tests/integration/test_atlassian_statuspage.py \
	--ignore=tests/e2e/test_status_page_browser.py --ignore=tests/integration/test_status_site.py \
	--ignore=tests/e2e/test_helm_chart.py --ignore=tests/e2e/test_compose.py

# Tests run in WORKERS processes (pytest-xdist): most of a test's time is spent waiting on
# sockets, child processes and the database, so more workers than cores still pays.
WORKERS ?= 4

test: lint
	$(BIN)/python -m pytest -n $(WORKERS) --cov --cov-report=term --durations=25
	@if [ -n "$$WARROOM_TEST_POSTGRES_URL" ]; then \
		echo "== again on Postgres =="; \
		WARROOM_TEST_DATABASE_URL="$$WARROOM_TEST_POSTGRES_URL" $(BIN)/python -m pytest \
			-n $(WORKERS) tests/integration tests/e2e $(NO_DATABASE); \
	fi

# Build the wheel, install it in a new environment outside the checkout, run it from there
# (`make test` runs this too).
wheel-check: $(STAMP)
	$(BIN)/python -m pytest tests/e2e/test_wheel.py -q

# Benchmarks (bench/): one table, every row measured in this run; see docs/performance.md.
bench: $(STAMP)
	$(BIN)/python -m bench

# 50 declares then 200 updates at once under Slack's rate limits: lost or doubled work = 0.
load: $(STAMP)
	$(BIN)/python -m bench.load

# The container image (IMAGE, default warroom:latest): on BASE_IMAGE when set, else
# python:3.11-slim-bookworm, else (no registry reachable) a base made from Debian packages by
# deploy/docker/debian-base.sh. Needs a Docker daemon. See docs/operations.md#docker.
IMAGE ?= warroom:latest
image:
	IMAGE=$(IMAGE) deploy/docker/build.sh

# Build the image, run it against Postgres and the fake Slack, check /healthz and a signed
# slash command (deploy/docker/image_test.py). Needs a Docker daemon: without one it says so and
# fails. Not part of `make test`.
image-test:
	$(PYTHON) deploy/docker/image_test.py --image warroom:image-test

clean:
	rm -rf $(VENV) build *.egg-info .coverage .coverage.*
