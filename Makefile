# graphrec — two commands: `make run` (the main job on an embedded default) and `make test`; `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
AFVENV := .venv-airflow
PY := $(abspath $(VENV))/bin/python
OUT ?= runs/pipeline
DAYS ?= 1
MASTER ?= local[2]
# graphrec-submit (jobs/submit.py): the venv's spark-submit with its Python, the project zip and the driver's CDS options
SUBMIT = $(abspath $(VENV))/bin/graphrec-submit --master $(MASTER) --conf spark.ui.enabled=false

.PHONY: help run test setup install zip cds demo-ingest test-project test-dags bench-envs clean

help: ## list the targets
	@echo "graphrec: make <target> [OUT=runs/pipeline] [DAYS=1] [MASTER=local[2]]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z_-]+):.*## (.*)/  \1\t\2/' | expand -t 16

setup: $(VENV)/.stamp $(VENV)/.installed $(AFVENV)/.stamp zip cds ## both environments, the project installed into .venv (editable), dist/graphrec.zip, the CDS archive

$(VENV)/.stamp: requirements.txt requirements-test.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -r requirements-test.txt
	touch $@

# The project itself, editable, so the console entry points of pyproject.toml exist in .venv/bin
# (graphrec-serve, graphrec-submit, ...); dependencies come from requirements.txt above, not re-resolved.
$(VENV)/.installed: $(VENV)/.stamp pyproject.toml
	$(VENV)/bin/pip install -q "setuptools>=68" wheel
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed ## only the editable install of the project into .venv

$(AFVENV)/.stamp: requirements-airflow.txt
	test -x $(AFVENV)/bin/python || $(PYTHON) -m venv $(AFVENV)
	$(AFVENV)/bin/pip install -q --upgrade pip
	$(AFVENV)/bin/pip install -q -r requirements-airflow.txt
	touch $@

zip: $(VENV)/.stamp ## dist/graphrec.zip, the packages shipped to executors with --py-files
	$(PY) -c "from jobs.runtime.session import build_zip; print(build_zip())"

# The local Spark driver's class-data-sharing archive (jobs/runtime/cds.py): ~4 s off every job's start-up.
cds: $(VENV)/.stamp ## the Spark driver's class-data-sharing archive (build/cds/)
	$(PY) -m jobs.runtime.cds

# The main job: the graphrec_daily and graphrec_heavy_hitters DAGs (airflow dags test, SQLite, local Spark) on
# generated data for DAYS consecutive days, the scoring service running across them, then the run reports.
run: setup ## the main job: both DAGs on generated data for DAYS days (default 1), then the run report
	SPARK_LOCAL_IP=127.0.0.1 $(PY) -m jobs.demo.run_daily --work $(abspath $(OUT)) --days $(DAYS)

# Only the platform step (no Airflow): generate a planted-community graph and interactions, ingest both.
demo-ingest: setup ## only the platform step (generate + ingest with spark-submit, no Airflow)
	$(SUBMIT) jobs/generate.py graph --nodes 20000 --communities 10 --seed 7 --output $(OUT)/raw/graph
	$(SUBMIT) jobs/generate.py interactions --nodes 20000 --communities 10 --items 5000 --seed 7 --output $(OUT)/raw/interactions
	$(SUBMIT) jobs/ingest_graph.py --input $(OUT)/raw/graph/edges --format parquet --labels $(OUT)/raw/graph/labels \
		--drop-self-loops --output $(OUT)/graph
	$(SUBMIT) jobs/ingest_interactions.py --input $(OUT)/raw/interactions/interactions --format parquet --output $(OUT)/interactions
	@echo "graph stats ($(OUT)/graph/stats.json):"; cat $(OUT)/graph/stats.json
	@echo "interaction stats ($(OUT)/interactions/stats.json):"; cat $(OUT)/interactions/stats.json
	@echo "outputs: $(abspath $(OUT))/graph  $(abspath $(OUT))/interactions"

# The two suites run side by side: both mostly wait on JVM and process start-up, so on 2 cores the pair takes
# about as long as the project suite alone. The DAG suite's output is printed after the project suite's.
# The DAG suite runs in its own session, so Ctrl-C (or a TERM) stops both.
test: setup ## set up, then the whole test suite (project and DAG tests, side by side)
	@mkdir -p build; echo "DAG tests run beside the project suite; their output follows it (build/test-dags.log)"
	@setsid $(MAKE) --no-print-directory test-dags > build/test-dags.log 2>&1 & dags=$$!; \
	trap 'kill -TERM -$$dags 2>/dev/null; exit 130' INT TERM; \
	$(MAKE) --no-print-directory test-project; project=$$?; \
	wait $$dags; dags_rc=$$?; echo "── DAG tests (build/test-dags.log) ──"; cat build/test-dags.log; \
	echo "project suite: rc $$project; DAG suite: rc $$dags_rc"; [ $$project -eq 0 ] && [ $$dags_rc -eq 0 ]

test-project: ## the project suite in .venv (no set-up)
	SPARK_LOCAL_IP=127.0.0.1 $(PY) -m pytest -q

test-dags: ## the DAG tests in .venv-airflow (no set-up)
	@if [ -d tests/dags ]; then $(AFVENV)/bin/python -m pytest -q -p no:cacheprovider -o addopts="" tests/dags; \
	else echo "no DAG tests yet"; fi

# Benchmark-only baselines, each in its own environment (the project never imports them).
BENCH := .bench-venvs
bench-envs: ## benchmark-only baselines, each in its own environment under .bench-venvs/
bench-envs: $(BENCH)/embed/.stamp $(BENCH)/pureldp/.stamp $(BENCH)/implicit/.stamp

$(BENCH)/embed/.stamp:
	test -x $(BENCH)/embed/bin/python || $(PYTHON) -m venv $(BENCH)/embed
	$(BENCH)/embed/bin/pip install -q nodevectors==0.1.23 pecanpy==2.0.9 "numpy==1.26.4" "pandas<2.3" psutil
	touch $@

$(BENCH)/pureldp/.stamp:
	test -x $(BENCH)/pureldp/bin/python || $(PYTHON) -m venv $(BENCH)/pureldp
	$(BENCH)/pureldp/bin/pip install -q pure-ldp==1.2.0
	touch $@

$(BENCH)/implicit/.stamp:
	test -x $(BENCH)/implicit/bin/python || $(PYTHON) -m venv $(BENCH)/implicit
	$(BENCH)/implicit/bin/pip install -q implicit==0.7.3
	touch $@

clean: ## remove dist/, runs/ and build/
	rm -rf dist runs build
