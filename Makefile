# graphrec — two commands: `make run` (the main job on an embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
AFVENV := .venv-airflow
PY := $(abspath $(VENV))/bin/python
SPARK_SUBMIT := $(abspath $(VENV))/bin/spark-submit
OUT ?= runs/pipeline
MASTER ?= local[2]
SUBMIT = SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$(PY) PYSPARK_DRIVER_PYTHON=$(PY) \
	$(SPARK_SUBMIT) --master $(MASTER) --conf spark.ui.enabled=false --py-files dist/graphrec.zip \
	--driver-java-options "$$($(PY) -m jobs.cds --java-options)"

.PHONY: run test setup zip cds demo-ingest test-project test-dags bench-envs clean

setup: $(VENV)/.stamp $(AFVENV)/.stamp zip cds

$(VENV)/.stamp: requirements.txt requirements-test.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -r requirements-test.txt
	touch $@

$(AFVENV)/.stamp: requirements-airflow.txt
	test -x $(AFVENV)/bin/python || $(PYTHON) -m venv $(AFVENV)
	$(AFVENV)/bin/pip install -q --upgrade pip
	$(AFVENV)/bin/pip install -q -r requirements-airflow.txt
	touch $@

zip: $(VENV)/.stamp
	$(PY) -c "from jobs.session import build_zip; print(build_zip())"

# The local Spark driver's class-data-sharing archive (jobs/cds.py): ~4 s off every job's start-up.
cds: $(VENV)/.stamp
	$(PY) -m jobs.cds

# The main job: the whole graphrec_daily DAG (airflow dags test, SQLite, local Spark) on generated
# data, the scoring service started/stopped around its publish step, then the run report.
run: setup
	SPARK_LOCAL_IP=127.0.0.1 $(PY) -m jobs.run_daily --work $(abspath $(OUT))

# Only the platform step (no Airflow): generate a planted-community graph and interactions, ingest both.
demo-ingest: setup
	$(SUBMIT) jobs/generate.py graph --nodes 20000 --communities 10 --seed 7 --output $(OUT)/raw/graph
	$(SUBMIT) jobs/generate.py interactions --nodes 20000 --communities 10 --items 5000 --seed 7 --output $(OUT)/raw/interactions
	$(SUBMIT) jobs/ingest_graph.py --input $(OUT)/raw/graph/edges --format parquet --labels $(OUT)/raw/graph/labels \
		--drop-self-loops --output $(OUT)/graph
	$(SUBMIT) jobs/ingest_interactions.py --input $(OUT)/raw/interactions/interactions --format parquet --output $(OUT)/interactions
	@echo "graph stats ($(OUT)/graph/stats.json):"; cat $(OUT)/graph/stats.json
	@echo "interaction stats ($(OUT)/interactions/stats.json):"; cat $(OUT)/interactions/stats.json
	@echo "outputs: $(abspath $(OUT))/graph  $(abspath $(OUT))/interactions"

test: setup test-project test-dags

test-project:
	SPARK_LOCAL_IP=127.0.0.1 $(PY) -m pytest -q

test-dags:
	@if [ -d tests/dags ]; then $(AFVENV)/bin/python -m pytest -q -p no:cacheprovider -o addopts="" tests/dags; \
	else echo "no DAG tests yet"; fi

# Benchmark-only baselines, each in its own environment (the project never imports them).
BENCH := .bench-venvs
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

clean:
	rm -rf dist runs build
