# lisearch: `make run` and `make test` set everything up themselves on a fresh machine
# (Python 3.11, Java 17, Maven); afterwards nothing downloads.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lisearch-installed
JARS   := var/jars/.fetched
PYTEST_ARGS ?=
# pytest worker processes in `make test` (tests wait on JVMs and subprocesses much of the time: two workers on two
# cores take 7 min 15 s here against 8 min 49 s for one); TEST_WORKERS=0 runs them in this process
TEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: setup run test bench lint typecheck wheel doctor clean cluster-check

setup: $(STAMP) $(JARS)

# Python under make writes bytecode caches even where PYTHONDONTWRITEBYTECODE is set (an empty value turns it off):
# otherwise every Python process (CLI, Spark workers, notebook kernels) would compile pandas, scikit-learn, pyspark,
# ... from source again. Modules are compiled the first time they are imported, so set-up does not compile the
# whole 2 GB environment (uv's --compile-bytecode: 33 s more at set-up here).
export PYTHONDONTWRITEBYTECODE =

# Reinstalls when pyproject.toml changes. The package is installed editable with its dev extra, by uv (from PyPI;
# parallel downloads: about 30 s on a fresh machine against 80-100 s for pip), or by pip if uv cannot be had.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -m pip install --quiet 'uv>=0.5,<1'; then \
		$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install --quiet -e '.[dev]'; \
	fi
	@touch $@

# Delta Lake jars from Maven Central, once, into var/jars (ignored by git); sessions then use the files.
$(JARS): $(STAMP)
	$(BIN)/lisearch fetch-jars
	@touch $@

run: setup
	$(BIN)/lisearch run

test: setup
	$(BIN)/ruff check lisearch jobs tests tools
	$(BIN)/ruff format --check lisearch jobs tests tools
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=12 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check lisearch jobs tests tools
	$(BIN)/ruff format --check lisearch jobs tests tools
	$(BIN)/mypy

# BENCH_ARGS: which benchmarks and how, e.g. make bench BENCH_ARGS="quinary --full" (the Z <= 36 quinary job)
bench: setup
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

# Two-worker standalone cluster on 127.0.0.1: screen + narrow via spark-submit, then a run with a worker killed;
# funnel counts compared with one local process (needs the models of `make run`; about 6 minutes).
cluster-check: setup
	$(BIN)/python -m tools.cluster_check --output var/reports/cluster_check.json

doctor: setup
	$(BIN)/lisearch doctor

wheel: setup
	$(BIN)/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf var/warehouse var/tmp var/artifacts dist build *.egg-info
