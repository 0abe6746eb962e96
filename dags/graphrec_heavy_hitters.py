"""graphrec_heavy_hitters — federated LDP heavy hitters feeding fresh items to the bandit (configuration only).

    heavy_hitters ── add_fresh_items ── wait_for_daily_params ── publish_fresh_items

``heavy_hitters`` (Spark) reads the day's item reports ``(party, user, item)`` — each party perturbs
its users' items on its own side; the job sees only ε-LDP reports — and writes the trending items
with a privacy ledger to ``<work_dir>/heavy_hitters/ds=<ds>/``; ``add_fresh_items`` stages their ids as
the day's own table ``<work_dir>/fresh_items/ds=<ds>/`` (``jobs.bandit_day fresh``). This DAG never
writes the daily DAG's store directly: once ``graphrec_daily`` has finished the day (its ``publish``),
``publish_fresh_items`` promotes the day's store with the fresh items merged (``jobs.bandit_day
promote --fresh``: new edges start at d = λ, b = 0, existing edges untouched; into the day store
``<work_dir>/bandit/ds=<ds>/`` as a new version, so the next day starts from it) under the day's lock,
and the scoring service is told to reload. A daily run that comes later (or re-runs the day) merges
the same table in its own ``publish``, so either order gives the same store.

Item ids in the reports are the catalogue's ids and must be the ids the candidate graph serves.

Run-time configuration comes from the same Airflow Variables as ``graphrec_daily`` (see
``graphrec_common``); nothing is resolved while this file is parsed.
"""
from __future__ import annotations

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, Param

from graphrec_common import (DEFAULT_ARGS, PY, PYTHON, SPARK, START_DATE, dag_params, dated, job, publish_command,
                             raw_input)

with DAG(
    dag_id="graphrec_heavy_hitters",
    description="federated ε-LDP heavy hitters (TAPS) → fresh items in the candidate graph",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["graphrec", "privacy"],
    default_args=DEFAULT_ARGS,
    params=dag_params(
        reports_input=Param("", type="string",
                            description="item reports (party, user, item); empty: <work_dir>/raw/ds=<ds>/reports/reports"),
        epsilon=Param(4.0, type="number", exclusiveMinimum=0, description="ε per user (each user reports once)"),
        k=Param(32, type="integer", minimum=1, description="heavy hitters to find"),
        bits=Param(48, type="integer", minimum=1, maximum=62, description="item id width"),
        method=Param("taps", enum=["taps", "tap", "fedpem", "pem"]),
    ),
) as dag:
    heavy_hitters = SparkSubmitOperator(
        task_id="heavy_hitters",
        name="graphrec-heavy-hitters",
        application=job("heavy_hitters"),
        application_args=[
            "--input", raw_input("reports_input", "reports/reports"),
            "--party-col", "party", "--user-col", "user", "--item-col", "item",
            "--bits", "{{ params.bits }}", "--epsilon", "{{ params.epsilon }}", "--k", "{{ params.k }}",
            "--method", "{{ params.method }}", "--output", dated("heavy_hitters"),
        ],
        **SPARK,
    )
    wait_for_daily_params = ExternalTaskSensor(
        task_id="wait_for_daily_params",
        external_dag_id="graphrec_daily",
        external_task_id="publish",
        mode="reschedule",
        poke_interval=300,
        timeout=6 * 3600,
    )
    add_fresh_items = BashOperator(
        task_id="add_fresh_items",
        bash_command=PYTHON + " -m jobs.bandit_day fresh --heavy-hitters " + dated("heavy_hitters") + "/heavy_hitters"
        " --output " + dated("fresh_items"),
        **PY,
    )
    publish_fresh_items = BashOperator(
        task_id="publish_fresh_items",
        bash_command=publish_command(dated("published") + "/fresh_items"),
        **PY,
    )

    heavy_hitters >> add_fresh_items >> wait_for_daily_params >> publish_fresh_items
