"""The DAGs' hand-off of the day's bandit store (issue 31 item 3), from the rendered templates: the
heavy-hitters DAG stages its items as the ``fresh_items`` table and never writes the daily store
directly; it promotes only after the daily DAG's last step; every promotion merges the staged table,
and only the daily ``publish`` finishes the day. The commands themselves are tested in the project
venv (``tests/test_dag_handoff.py``)."""
from __future__ import annotations

import pytest

from tests.dags.support import DAGS
from tests.dags.test_dag_integrity import _rendered


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def texts(dagbag):
    return _rendered(dagbag)


@pytest.fixture(scope="module")
def spelled():
    import graphrec_common

    layout = graphrec_common.layout
    work, ds = f"{DAGS.parent}/{layout.DEFAULT_WORK}", "2026-01-05"
    return {t: layout.dated(work, t, ds) for t in ("bandit", "fresh_items", "heavy_hitters")} | {
        "live": layout.live_params(work)}


def test_heavy_hitters_stage_their_own_table(texts, spelled):
    add = texts["graphrec_heavy_hitters.add_fresh_items"]
    assert (f"-m jobs.bandit_day fresh --heavy-hitters {spelled['heavy_hitters']}/heavy_hitters "
            f"--output {spelled['fresh_items']}") in add
    for task, text in texts.items():
        if task.startswith("graphrec_heavy_hitters."):  # no task of this DAG writes the daily store itself
            assert "recsys.candidates" not in text and f"--params {spelled['bandit']}" not in text, task
            assert "bandit_day seed" not in text, task


def test_every_promotion_merges_the_staged_items_and_only_daily_publish_finishes(texts, spelled):
    promote = f"-m jobs.bandit_day promote --day {spelled['bandit']} --live {spelled['live']} --fresh {spelled['fresh_items']}"
    finishing = {t for t, text in texts.items() if "--finish" in text}
    assert finishing == {"graphrec_daily.publish"}
    for task in ("graphrec_daily.serve_candidates", "graphrec_daily.publish", "graphrec_heavy_hitters.publish_fresh_items"):
        assert promote in texts[task], task


def test_heavy_hitters_promote_after_the_daily_day_is_finished(dagbag):
    hh = dagbag.dags["graphrec_heavy_hitters"]
    sensor = hh.get_task("wait_for_daily_params")
    assert (sensor.external_dag_id, sensor.external_task_id) == ("graphrec_daily", "publish")
    assert hh.get_task("add_fresh_items").downstream_task_ids == {"wait_for_daily_params"}
    assert sensor.downstream_task_ids == {"publish_fresh_items"}
    daily = dagbag.dags["graphrec_daily"]
    assert daily.get_task("publish").downstream_task_ids == set()            # publish is the daily DAG's last step
    assert "publish" in daily.get_task("bandit_update").downstream_task_ids
