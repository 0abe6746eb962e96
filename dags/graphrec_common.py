"""What the graphrec DAG files share: run-time configuration as Jinja, resolved when a task runs.

Nothing is resolved while a DAG file is parsed. Which project checkout, Python and ``spark-submit``
a task uses are Airflow Variables (or ``AIRFLOW_VAR_<NAME>`` environment variables):
``graphrec_root`` (default: the folder above ``dags/``), ``graphrec_python`` (default
``<root>/.venv/bin/python``), ``graphrec_spark_submit`` (default ``<root>/.venv/bin/spark-submit``;
the Spark provider runs ``spark-submit`` from ``PATH``, so its folder is put first on ``PATH``),
``graphrec_py_files`` (default ``<root>/dist/graphrec.zip``), ``graphrec_serving_url``,
``graphrec_serving_token``. Paths and knobs of one run are DAG Params (``--conf``/``-c`` JSON).

Every task reads and writes dated folders ``<work_dir>/<table>/ds=<ds>/`` (:func:`dated`).
"""
from __future__ import annotations

import datetime as dt

from airflow.sdk import Param

ROOT = "var.value.get('graphrec_root', dag.fileloc.rsplit('/', 2)[0])"
PYTHON = "{{ var.value.get('graphrec_python', " + ROOT + " ~ '/.venv/bin/python') }}"
SUBMIT = "var.value.get('graphrec_spark_submit', " + ROOT + " ~ '/.venv/bin/spark-submit')"
WORK = "(params.work_dir or " + ROOT + " ~ '/runs/pipeline')"
SERVING_URL = "{{ var.value.get('graphrec_serving_url', 'http://127.0.0.1:8000') }}"
LIVE_PARAMS = "{{ " + WORK + " }}/bandit/params"  # the versioned store the scoring service serves

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ARGS = {
    "owner": "graphrec",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=2),
}


def dated(table: str) -> str:
    """``<work_dir>/<table>/ds=<ds>`` as a template."""
    return "{{ " + WORK + " }}/" + table + "/ds={{ ds }}"


def raw_input(param: str, table: str) -> str:
    """The Param ``param`` if set, else the day's landing zone ``<work_dir>/raw/ds=<ds>/<table>``."""
    return "{{ params." + param + " or (" + WORK + " ~ '/raw/ds=' ~ ds ~ '/" + table + "') }}"


def job(name: str) -> str:
    """The application path of ``jobs/<name>.py`` in the project checkout."""
    return "{{ " + ROOT + " ~ '/jobs/" + name + ".py' }}"


def dag_params(**specific: Param) -> dict:
    """A DAG's Params: ``work_dir``, the DAG's own, then the Spark knobs every Spark task takes."""
    return {
        "work_dir": Param("", type="string", description="root of all dated outputs; empty: <root>/runs/pipeline"),
        **specific,
        "shuffle_partitions": Param(8, type="integer", minimum=1),
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


def publish_command(out: str) -> str:
    """Promote the day's bandit version to the live store, then ask the scoring service to serve it
    (waiting while it starts); its answer is kept in ``out/reload.json``."""
    return (
        PYTHON + " -m jobs.bandit_day promote --day " + dated("bandit") + " --live " + LIVE_PARAMS +
        " && mkdir -p " + out + " && curl -fsS --retry 90 --retry-delay 2 --retry-connrefused -X POST"
        " -H \"Authorization: Bearer $GRAPHREC_SERVE_TOKEN\" -H 'Content-Type: application/json' -d '{}' "
        + SERVING_URL + "/v1/params/reload -o " + out + "/.reload.json && mv " + out + "/.reload.json "
        + out + "/reload.json && cat " + out + "/reload.json"
    )
