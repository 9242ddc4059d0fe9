# lisearch: `make run` and `make test` set everything up themselves on a fresh machine
# (Python 3.11, Java 17, Maven); afterwards nothing downloads.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lisearch-installed
JARS   := var/jars/.fetched
PYTEST_ARGS ?=

.PHONY: setup run test bench lint typecheck wheel doctor clean standalone-up standalone-down

setup: $(STAMP) $(JARS)

# Reinstalls when pyproject.toml changes. The package is installed editable with its dev extra.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Delta Lake jars from Maven Central, once, into var/jars (ignored by git); sessions then use the files.
$(JARS): $(STAMP)
	$(BIN)/lisearch fetch-jars
	@touch $@

run: setup
	$(BIN)/lisearch run

test: setup
	$(BIN)/ruff check lisearch jobs tests
	$(BIN)/ruff format --check lisearch jobs tests
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check lisearch jobs tests
	$(BIN)/ruff format --check lisearch jobs tests
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m lisearch.bench

doctor: setup
	$(BIN)/lisearch doctor

wheel: setup
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf var/warehouse var/tmp var/artifacts dist build *.egg-info
