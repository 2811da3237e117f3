# shoplens: two commands do everything on a fresh machine.
#   make demo   builds .venv if needed, then generates, loads, streams, builds and reports
#   make test   builds .venv if needed, then runs every test
#   make test-fast   the tests that need no warehouse build, broker or browser (under a minute)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
export DBT_PROFILES_DIR := $(CURDIR)
export SHOPLENS_DB ?= $(CURDIR)/warehouse.duckdb
DEMO_SESSIONS ?= 50000

.PHONY: demo test test-fast test-spark lint bench notebook sysdeps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The `spark` extra (dbt-spark, pyspark: about 500 MB) for the Spark parity test, which `make
# test` and `make test-spark` run; `make demo` does not need it.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[spark]'
	@touch $(SPARK_STAMP)

# System packages the tests drive for real: headless chromium for the report pages,
# docker-compose (1.29) to validate docker-compose.yml offline and Java 17 for the local Spark
# session. Installed only when missing.
sysdeps:
	@if ! command -v chromium >/dev/null || ! command -v docker-compose >/dev/null || ! command -v java >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium, docker-compose and Java 17 from Debian"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium docker-compose openjdk-17-jre-headless >/dev/null; \
		else \
			echo "chromium, docker-compose or java missing and cannot apt-get install: those tests will fail" >&2; \
		fi; \
	fi

demo: $(STAMP)
	rm -f $(SHOPLENS_DB) $(SHOPLENS_DB).wal
	# History up to a week ago: the streamed bursts continue it on a simulated clock, at its own
	# pace and time-of-day curve (--timestamps simulated), up to the present.
	$(BIN)/shoplens generate --sessions $(DEMO_SESSIONS) --seed 42 --days 365 \
		--end $$($(BIN)/python -c 'import datetime as d; print(d.date.today() - d.timedelta(days=7))')
	$(BIN)/dbt seed --quiet
	# A burst through the embedded Kafka broker into raw.* (exactly once), before the build...
	$(BIN)/shoplens stream --embedded --rate 500 --duration 10 --sink --timestamps simulated
	$(BIN)/dbt build
	# Source freshness for the Data quality page (the on-run-end hook stores it in ops.dbt_source_freshness).
	$(BIN)/dbt source freshness
	# ...and one after it, scored live by the model the build trained (live.session_scores); it
	# stops early once its simulated clock reaches the present.
	$(BIN)/shoplens stream --embedded --rate 500 --duration 30 --sink --score --timestamps simulated
	# The refresh after a burst: incremental models and their tests (selectors.yml).
	$(BIN)/dbt build --selector after_burst
	# The pages, and the analysts' notebook executed on the warehouse as the Notebook page.
	$(BIN)/shoplens report --out reports --with-notebook

# JupyterLab on the analysts' notebook, reading $(SHOPLENS_DB) (read-only); on loopback only,
# and it fetches nothing: no update check, no news feed, no extension catalogue. It has a venv
# of its own: JupyterLab's jupyter-events pulls in rfc3987-syntax, which jsonschema, and so
# every dbt command run from a venv that has it, imports (about 1.3 s of CPU per command).
NOTEBOOK_VENV := .venv-notebook
NOTEBOOK_PORT ?= 8888
notebook:
	@test -x $(NOTEBOOK_VENV)/bin/jupyter-lab || { $(PYTHON) -m venv $(NOTEBOOK_VENV) && \
		$(NOTEBOOK_VENV)/bin/pip install --quiet --upgrade pip && \
		$(NOTEBOOK_VENV)/bin/pip install --quiet -e '.[notebook]'; }
	$(NOTEBOOK_VENV)/bin/jupyter lab notebooks/eda.ipynb --ServerApp.ip=127.0.0.1 \
		--ServerApp.port=$(NOTEBOOK_PORT) \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		--LabApp.news_url=None --LabApp.extension_manager=readonly \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Two workers, each test file on one of them (its module fixtures are made once); the session
# warehouses of tests/conftest.py are made once and shared. One worker fills the other's waits
# (dbt and broker start-up, subprocesses). The Spark parity test (tests/test_spark_parity.py:
# the `spark` extra, Java 17) is handed out first (tests/conftest.py, FIRST_FILES), so its
# minutes of Spark builds run beside the other worker's files, not alone at the end. The spark
# extra's download (network-bound) runs while lint checks (CPU-bound).
test: $(STAMP) sysdeps
	$(MAKE) --no-print-directory -j2 $(SPARK_STAMP) lint
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

# Only the Spark parity test: DuckDB and a local Spark session build the same data and must
# agree (tests/test_spark_parity.py). Needs Java 17+.
test-spark: $(SPARK_STAMP)
	$(BIN)/pytest -m spark

# The inner loop (under a minute): every test needing no dbt-built warehouse, Kafka broker,
# browser or Spark (markers set from fixtures in tests/conftest.py), on every core (most of
# its time is `shoplens` subprocesses). No lint: run `make lint`.
test-fast: $(STAMP) sysdeps
	$(BIN)/pytest -n auto -m "not warehouse and not kafka and not browser and not spark"

lint: $(STAMP)
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench
	$(BIN)/mypy
	$(BIN)/sqlfluff lint models macros tests/dbt --processes 0

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(NOTEBOOK_VENV) target logs reports artifacts warehouse.duckdb warehouse.duckdb.wal
