"""What the graphrec DAG files share: run-time configuration as Jinja, resolved when a task runs.

Nothing is resolved while a DAG file is parsed. Which project checkout, Python and ``spark-submit``
a task uses are Airflow Variables (or ``AIRFLOW_VAR_<NAME>`` environment variables):
``graphrec_root`` (default: the folder above ``dags/``), ``graphrec_python`` (default
``<root>/.venv/bin/python``), ``graphrec_spark_submit`` (default ``<root>/.venv/bin/spark-submit``;
the Spark provider runs ``spark-submit`` from ``PATH``, so its folder is put first on ``PATH``),
``graphrec_py_files`` (default ``<root>/dist/graphrec.zip``), ``graphrec_serving_url``,
``graphrec_serving_token``. Paths and knobs of one run are DAG Params (``--conf``/``-c`` JSON).

Every task reads and writes dated folders ``<work_dir>/<table>/ds=<ds>/`` (:func:`dated`; the day before:
:func:`dated_before`, through Airflow's ``macros.ds_add``). The layout
has one definition, the project's ``jobs/runtime/layout.py`` (standard library only): this module loads that
file by path from the checkout the DAG folder belongs to (``<dags>/../jobs/runtime/layout.py``) — the Airflow
environment does not have the project installed — and passes it Jinja placeholders instead of paths,
so the templates spell exactly what ``jobs.demo.run_daily`` and the run report read.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

from airflow.sdk import Param


def _load_layout():
    """``jobs/runtime/layout.py`` of this checkout as module ``graphrec_layout`` (a module import, no other I/O)."""
    name = "graphrec_layout"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "jobs" / "runtime" / "layout.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


layout = _load_layout()

ROOT = "var.value.get('graphrec_root', dag.fileloc.rsplit('/', 2)[0])"
PYTHON = "{{ var.value.get('graphrec_python', " + ROOT + " ~ '/.venv/bin/python') }}"
SUBMIT = "var.value.get('graphrec_spark_submit', " + ROOT + " ~ '/.venv/bin/spark-submit')"
WORK = "(params.work_dir or " + ROOT + " ~ '/" + layout.DEFAULT_WORK + "')"
SERVING_URL = "{{ var.value.get('graphrec_serving_url', 'http://127.0.0.1:8000') }}"
WORK_DIR = "{{ " + WORK + " }}"
DS = "{{ ds }}"
PREVIOUS_DS = "{{ macros.ds_add(ds, -1) }}"  # the logical day before the run's
LIVE_PARAMS = layout.live_params(WORK_DIR)  # the versioned store the scoring service serves

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ARGS = {
    "owner": "graphrec",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
}


def dated(table: str) -> str:
    """``<work_dir>/<table>/ds=<ds>`` as a template (:func:`graphrec_layout.dated`)."""
    return layout.dated(WORK_DIR, table, DS)


def dated_before(table: str) -> str:
    """``<work_dir>/<table>/ds=<ds - 1 day>`` as a template: the previous day's output of ``table``."""
    return layout.dated(WORK_DIR, table, PREVIOUS_DS)


def history(table: str) -> str:
    """``<work_dir>/<table>``, every day of ``table``, as a template."""
    return layout.history(WORK_DIR, table)


def raw_input(param: str, name: str) -> str:
    """The Param ``param`` if set, else the day's landing zone ``<work_dir>/raw/ds=<ds>/<name>``."""
    return ("{% if params." + param + " %}{{ params." + param + " }}{% else %}" + layout.raw(WORK_DIR, DS, name)
            + "{% endif %}")


def job(name: str) -> str:
    """The application path of ``jobs/<name>.py`` in the project checkout."""
    return "{{ " + ROOT + " ~ '/jobs/" + name + ".py' }}"


def dag_params(**specific: Param) -> dict:
    """A DAG's Params: ``work_dir``, the DAG's own, then the Spark knobs every Spark task takes."""
    return {
        "work_dir": Param("", type="string", description="root of all dated outputs; empty: <root>/runs/pipeline"),
        **specific,
        "shuffle_partitions": Param(0, type="integer", minimum=0,
                                    description="spark.sql.shuffle.partitions; 0: each job sizes them from its input"),
        "driver_memory": Param("2g", type="string"),
    }


# keyword arguments of every SparkSubmitOperator
SPARK = {
    "conn_id": "spark_default",
    "py_files": "{{ var.value.get('graphrec_py_files', " + ROOT + " ~ '/dist/graphrec.zip') }}",
    "env_vars": {
        "PATH": "{{ (" + SUBMIT + ").rsplit('/', 1)[0] }}:{{ var.value.get('graphrec_path', '/usr/local/bin:/usr/bin:/bin') }}",
        "PYSPARK_PYTHON": PYTHON,
        "PYSPARK_DRIVER_PYTHON": PYTHON,
        "SPARK_LOCAL_IP": "{{ var.value.get('graphrec_spark_local_ip', '127.0.0.1') }}",
    },
    "conf": {
        "spark.ui.enabled": "false",
        "spark.log.level": "WARN",
        "spark.driver.memory": "{{ params.driver_memory }}",
        "spark.sql.shuffle.partitions": "{{ params.shuffle_partitions }}",
        # the local driver's JVM options (jobs.runtime.cds: the collector, the quick JIT, the class-data-sharing
        # archive); empty unless set: `graphrec_driver_java_options` = `python -m jobs.runtime.cds --driver-options`
        "spark.driver.extraJavaOptions": "{{ var.value.get('graphrec_driver_java_options', '') }}",
    },
}
# keyword arguments of every BashOperator running the project's Python
PY = {
    "cwd": "{{ " + ROOT + " }}",
    "env": {
        "PYTHONPATH": "{{ " + ROOT + " }}",
        "GRAPHREC_SERVE_TOKEN": "{{ var.value.get('graphrec_serving_token', '') }}",
    },
    "append_env": True,
}


def publish_command(out: str, finish: bool = False) -> str:
    """Promote the day's bandit version, with the day's staged fresh items merged (``jobs.bandit_day promote
    --fresh``; ``finish``: the daily DAG's last step, which merges them into the day store and marks it finished),
    to the live store, then ask the scoring service to serve it (waiting while it starts); its answer is kept in
    ``out/reload.json``."""
    return (
        PYTHON + " -m jobs.bandit_day promote --day " + dated("bandit") + " --live " + LIVE_PARAMS +
        " --fresh " + dated("fresh_items") + (" --finish" if finish else "") +
        " && mkdir -p " + out + " && curl -fsS --retry 90 --retry-delay 2 --retry-connrefused -X POST"
        " -H \"Authorization: Bearer $GRAPHREC_SERVE_TOKEN\" -H 'Content-Type: application/json' -d '{}' "
        + SERVING_URL + "/v1/params/reload -o " + out + "/.reload.json && mv " + out + "/.reload.json "
        + out + "/reload.json && cat " + out + "/reload.json"
    )
