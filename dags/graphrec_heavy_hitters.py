"""graphrec_heavy_hitters — federated LDP heavy hitters feeding fresh items to the bandit (configuration only).

    heavy_hitters ── wait_for_daily_params ── add_fresh_items ── publish_fresh_items

``heavy_hitters`` (Spark) reads the day's item reports ``(party, user, item)`` — each party perturbs
its users' items on its own side; the job sees only ε-LDP reports — and writes the trending items
with a privacy ledger to ``<work_dir>/heavy_hitters/ds=<ds>/``. Once ``graphrec_daily`` has
published the day's parameters, the trending items join the clusters' candidate lists
(``recsys.candidates --fresh-items``: new edges start at d = λ, b = 0, existing edges untouched)
as a new version of the day's parameter store ``<work_dir>/bandit/ds=<ds>/`` (so the next day
starts from it), which is promoted to the live store, and the scoring service is told to reload.

Item ids in the reports are the catalogue's ids and must be the ids the candidate graph serves.

Run-time configuration comes from the same Airflow Variables as ``graphrec_daily`` (see there);
nothing is resolved while this file is parsed.
"""
from __future__ import annotations

import datetime as dt

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, Param

ROOT = "var.value.get('graphrec_root', dag.fileloc.rsplit('/', 2)[0])"
PYTHON = "{{ var.value.get('graphrec_python', " + ROOT + " ~ '/.venv/bin/python') }}"
SUBMIT = "var.value.get('graphrec_spark_submit', " + ROOT + " ~ '/.venv/bin/spark-submit')"
WORK = "(params.work_dir or " + ROOT + " ~ '/runs/pipeline')"
SERVING_URL = "{{ var.value.get('graphrec_serving_url', 'http://127.0.0.1:8000') }}"


def dated(table: str) -> str:
    """``<work_dir>/<table>/ds=<ds>`` as a template."""
    return "{{ " + WORK + " }}/" + table + "/ds={{ ds }}"


LIVE_PARAMS = "{{ " + WORK + " }}/bandit/params"  # the versioned store the scoring service serves

with DAG(
    dag_id="graphrec_heavy_hitters",
    description="federated ε-LDP heavy hitters (TAPS) → fresh items in the candidate graph",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["graphrec", "privacy"],
    default_args={
        "owner": "graphrec",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=2),
    },
    params={
        "work_dir": Param("", type="string", description="root of all dated outputs; empty: <root>/runs/pipeline"),
        "reports_input": Param("", type="string",
                               description="item reports (party, user, item); empty: <work_dir>/raw/ds=<ds>/reports/reports"),
        "epsilon": Param(4.0, type="number", exclusiveMinimum=0, description="ε per user (each user reports once)"),
        "k": Param(32, type="integer", minimum=1, description="heavy hitters to find"),
        "bits": Param(48, type="integer", minimum=1, maximum=62, description="item id width"),
        "method": Param("taps", enum=["taps", "tap", "fedpem", "pem"]),
        "shuffle_partitions": Param(8, type="integer", minimum=1),
        "driver_memory": Param("2g", type="string"),
    },
) as dag:
    heavy_hitters = SparkSubmitOperator(
        task_id="heavy_hitters",
        name="graphrec-heavy-hitters",
        conn_id="spark_default",
        application="{{ " + ROOT + " ~ '/jobs/heavy_hitters.py' }}",
        py_files="{{ var.value.get('graphrec_py_files', " + ROOT + " ~ '/dist/graphrec.zip') }}",
        env_vars={
            "PATH": "{{ (" + SUBMIT + ").rsplit('/', 1)[0] }}:{{ var.value.get('graphrec_path', '/usr/local/bin:/usr/bin:/bin') }}",
            "PYSPARK_PYTHON": PYTHON,
            "PYSPARK_DRIVER_PYTHON": PYTHON,
            "SPARK_LOCAL_IP": "{{ var.value.get('graphrec_spark_local_ip', '127.0.0.1') }}",
        },
        conf={
            "spark.ui.enabled": "false",
            "spark.log.level": "WARN",
            "spark.driver.memory": "{{ params.driver_memory }}",
            "spark.sql.shuffle.partitions": "{{ params.shuffle_partitions }}",
        },
        application_args=[
            "--input", "{{ params.reports_input or (" + WORK + " ~ '/raw/ds=' ~ ds ~ '/reports/reports') }}",
            "--party-col", "party", "--user-col", "user", "--item-col", "item",
            "--bits", "{{ params.bits }}", "--epsilon", "{{ params.epsilon }}", "--k", "{{ params.k }}",
            "--method", "{{ params.method }}", "--output", dated("heavy_hitters"),
        ],
    )
    wait_for_daily_params = ExternalTaskSensor(
        task_id="wait_for_daily_params",
        external_dag_id="graphrec_daily",
        external_task_id="bandit_update",
        mode="reschedule",
        poke_interval=300,
        timeout=6 * 3600,
    )
    add_fresh_items = BashOperator(
        task_id="add_fresh_items",
        bash_command=PYTHON + " -m recsys.candidates --fresh-items " + dated("heavy_hitters") + "/heavy_hitters"
        " --params " + dated("bandit"),
        cwd="{{ " + ROOT + " }}",
        env={"PYTHONPATH": "{{ " + ROOT + " }}"},
        append_env=True,
    )
    publish_fresh_items = BashOperator(
        task_id="publish_fresh_items",
        bash_command=PYTHON + " -m jobs.bandit_day promote --day " + dated("bandit") + " --live " + LIVE_PARAMS +
        " && mkdir -p " + dated("published") + "/fresh_items && curl -fsS --retry 30 --retry-delay 2"
        " --retry-connrefused -X POST -H \"Authorization: Bearer $GRAPHREC_SERVE_TOKEN\""
        " -H 'Content-Type: application/json' -d '{}' " + SERVING_URL + "/v1/params/reload"
        " -o " + dated("published") + "/fresh_items/reload.json",
        cwd="{{ " + ROOT + " }}",
        env={"PYTHONPATH": "{{ " + ROOT + " }}", "GRAPHREC_SERVE_TOKEN": "{{ var.value.get('graphrec_serving_token', '') }}"},
        append_env=True,
    )

    heavy_hitters >> wait_for_daily_params >> add_fresh_items >> publish_fresh_items
