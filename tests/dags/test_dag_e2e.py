"""End to end, two days of the loop on tiny generated data: ``graphrec_daily`` via ``dag.test()`` for
day 1, ``graphrec_heavy_hitters`` for day 1 (its trending items must reach the version the scoring
service serves), ``graphrec_daily`` for day 2 — whose interactions must hold day 1's exported
positive, acknowledged events, each exactly once — and a re-run of day 2 (no new traffic) that must
leave every output equal."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.dags.support import DAGS, PROJECT_PY, ROOT

DS = "2026-01-05"
DS2 = "2026-01-06"  # the second day: day 1's feedback joins its interactions

# (folder under <work>, table) → must exist with rows; tables of jobs absent from the DAG are skipped.
TABLES = {
    "ingest_graph": [("graph", "edges"), ("graph", "vertices")],
    "ingest_interactions": [("interactions", "interactions")],
    "sample_graph": [("sample", "edges")],
    "embed_graph": [("embedding", "vectors")],
    "friend_knn": [("friends", "neighbors")],
    "train_recommender": [("recommender", "user_vectors"), ("recommender", "item_vectors")],
    "simulate_traffic": [("traffic", "curve")],
    "export_events": [("events", "events"), ("events", "impressions")],
}
FILES = {
    "ingest_graph": [("graph", "stats.json")],
    "ingest_interactions": [("interactions", "stats.json")],
    "sample_graph": [("sample", "report.json")],
    "tune_embedding": [("embedding_tuning", "chosen.json")],
    "profile_graph": [("profile", "profile.json")],
    "profile_sample": [("sample_profile", "comparison.json")],
    "train_recommender": [("recommender", "metrics.json")],
    "serve_candidates": [("published", "candidates/reload.json")],
    "publish": [("published", "bandit/reload.json")],
}


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_table(path).num_rows


def _digest(path: Path) -> str:
    """Order-independent content hash of a Parquet table (rows sorted by every column)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    t = t.sort_by([(c, "ascending") for c in t.column_names if not str(t.schema.field(c).type).startswith("list")])
    return hashlib.sha256(repr(t.to_pydict()).encode()).hexdigest()


def _bandit_state(params: Path) -> str:
    """Served statistics of the CURRENT version: edges (cluster, item, d, b) and user contexts."""
    cur = (params / "CURRENT").read_text().strip()
    v = params / (cur if cur.startswith("v=") else f"v={cur}")
    return _digest(v / "edges") + _digest(v / "user_clusters")


@pytest.fixture(scope="module")
def daily(airflow_db, tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    from jobs.demo.run_daily import Service, free_port, task_states

    if not PROJECT_PY.exists():
        pytest.skip(f"project environment not found at {PROJECT_PY}")
    work = tmp_path_factory.mktemp("pipeline")
    for ds in (DS, DS2):
        subprocess.run([str(PROJECT_PY), "-m", "jobs.demo.inputs", "--work", str(work), "--ds", ds, "--nodes", "600",
                        "--communities", "4", "--items", "150", "--items-per-user", "8"], cwd=ROOT, check=True,
                       timeout=300)
    subprocess.run([str(PROJECT_PY), "-c", "from jobs.runtime.session import build_zip; build_zip()"], cwd=ROOT,
                   check=True)
    port, token = free_port(), secrets.token_urlsafe(16)
    os.environ.update({
        "AIRFLOW_VAR_GRAPHREC_ROOT": str(ROOT),
        "AIRFLOW_VAR_GRAPHREC_PYTHON": str(PROJECT_PY),
        "AIRFLOW_VAR_GRAPHREC_SPARK_SUBMIT": str(PROJECT_PY.with_name("spark-submit")),
        "AIRFLOW_VAR_GRAPHREC_SERVING_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW_VAR_GRAPHREC_SERVING_TOKEN": token,
    })
    dag = DagBag(dag_folder=str(DAGS)).dags["graphrec_daily"]
    conf = {"work_dir": str(work), "epochs": 2, "rec_dim": 16, "dim": 16, "clusters": 8, "bandit_w": 20,
            "knn_k": 5, "ratio": 0.5, "shuffle_partitions": 2, "driver_memory": "1g",
            "simulate_traffic": True, "traffic_requests": 200, "tune_every_days": 7, "tune_trials": 2}
    service = Service(work / "bandit" / "params", work / "serving" / "events.db", port, token,
                      work / "service.log", python=str(PROJECT_PY))
    service.start_when_ready()
    try:
        logical = dt.datetime.fromisoformat(DS).replace(tzinfo=dt.timezone.utc)
        dag.test(logical_date=logical, run_conf=conf)
        first = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS)}
        live = work / "bandit" / "params"
        before = (live / "CURRENT").read_text().strip() if (live / "CURRENT").exists() else None
        hh_dag = DagBag(dag_folder=str(DAGS)).dags["graphrec_heavy_hitters"]
        hh_dag.test(logical_date=logical, run_conf={"work_dir": str(work), "k": 8, "bits": 16,
                                                    "shuffle_partitions": 2, "driver_memory": "1g"})
        hh = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS, "graphrec_heavy_hitters")}
        after_hh = (live / "CURRENT").read_text().strip()  # day 2 publishes later versions
        logical2 = dt.datetime.fromisoformat(DS2).replace(tzinfo=dt.timezone.utc)
        dag.test(logical_date=logical2, run_conf=conf)
        day2 = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS2)}
        snap = snapshot(work, dag, DS2)
        dag.test(logical_date=logical2, run_conf={**conf, "simulate_traffic": False})
        second = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS2)}
        again = snapshot(work, dag, DS2)
    finally:
        service.stop()
    return {"work": work, "dag": dag, "first": first, "day2": day2, "second": second, "snap": snap, "again": again,
            "hh_dag": hh_dag, "hh": hh, "live_before": before,
            "live_after_hh": after_hh}


def snapshot(work: Path, dag, ds: str = DS) -> dict:
    out = {}
    for task, tables in TABLES.items():
        if task not in dag.task_ids:
            continue
        for folder, table in tables:
            p = work / folder / f"ds={ds}" / table
            if p.exists():
                out[f"{folder}/{table}"] = _digest(p)
    for store in ("params", f"ds={ds}"):  # the live store the service serves, and the day's store
        params = work / "bandit" / store
        if (params / "CURRENT").exists():
            out[f"bandit/{store}"] = _bandit_state(params)
    return out


def test_every_task_succeeded(daily):
    states = daily["first"]
    assert set(states) == set(daily["dag"].task_ids)
    assert all(s == "success" for s in states.values()), states


def test_every_output_exists_and_is_not_empty(daily):
    work, dag = daily["work"], daily["dag"]
    for task, tables in TABLES.items():
        if task not in dag.task_ids:
            continue
        for folder, table in tables:
            p = work / folder / f"ds={DS}" / table
            assert p.is_dir(), f"{task}: {p} missing"
            assert (p.parent / "_meta.json").exists(), f"{task}: {p.parent}/_meta.json missing"
            if (folder, table) != ("events", "impressions") or _rows(work / folder / f"ds={DS}" / "events"):
                assert _rows(p) > 0, f"{task}: {p} is empty"
    for task, files in FILES.items():
        if task in dag.task_ids:
            for folder, name in files:
                f = work / folder / f"ds={DS}" / name
                assert f.is_file() and f.stat().st_size > 0, f"{task}: {f} missing or empty"
    assert (work / "bandit" / "params" / "CURRENT").is_file()
    # the feedback of the simulated traffic went through the batch update into the served version
    assert _rows(work / "events" / f"ds={DS}" / "events") > 0


def test_rerun_of_the_same_date_is_idempotent(daily):
    states = daily["second"]
    assert set(states) == set(daily["dag"].task_ids)
    assert all(s == "success" for s in states.values()), states
    again = daily["again"]
    assert again.keys() == daily["snap"].keys()
    changed = [k for k in again if again[k] != daily["snap"][k]]
    assert not changed, f"outputs changed on re-run: {changed}"


def test_heavy_hitters_reach_the_served_candidate_graph(daily):
    """TAPS on the day's ε-LDP reports → fresh items in a new live version → the service reloaded it."""
    import json

    import pyarrow.parquet as pq

    states, work = daily["hh"], daily["work"]
    assert set(states) == set(daily["hh_dag"].task_ids)
    assert all(s == "success" for s in states.values()), states
    out = work / "heavy_hitters" / f"ds={DS}"
    hh = pq.read_table(out / "heavy_hitters").to_pydict()
    assert 0 < len(hh["item"]) <= 8 and sorted(hh["rank"]) == list(range(1, len(hh["item"]) + 1))
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["epsilon_per_user"] == 4.0 and ledger["parties"]  # written with the result
    assert all(p["reports_per_user"] == 1 and p["epsilon_per_user"] == 4.0 for p in ledger["parties"].values())
    # catalogue ids of reported items, up to LDP noise: a run of 600 users found 6 of 8 (random 16-bit ids: ~0)
    reports = pq.read_table(work / "raw" / f"ds={DS}" / "reports" / "reports").column("item").to_numpy()
    assert len(set(hh["item"]) & set(reports.tolist())) >= 2, hh["item"]
    live = work / "bandit" / "params"
    cur = daily["live_after_hh"]  # the live CURRENT right after the heavy-hitter DAG (versions are immutable)
    assert cur != daily["live_before"], "no new live version published"
    v = live / (cur if cur.startswith("v=") else f"v={cur}")
    served_items = set(pq.read_table(v / "edges").column("item").to_pylist())
    assert set(hh["item"]) <= served_items
    reload = json.loads((work / "published" / f"ds={DS}" / "fresh_items" / "reload.json").read_text())
    assert str(reload.get("version", "")).lstrip("v=") == cur.lstrip("v="), reload


def _table(path: Path) -> dict:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


def test_day_two_runs_every_task(daily):
    assert set(daily["day2"]) == set(daily["dag"].task_ids)
    assert all(s == "success" for s in daily["day2"].values()), daily["day2"]


def test_day_one_feedback_joins_day_two_interactions_exactly_once(daily):
    """Day 1's exported events that are positive and acknowledged (their impression shows the item to the user)
    are day 2's feedback rows — every such event_id exactly once, with its impression's user and item — and no
    other event is; the re-run of day 2 (test above) left that table equal."""
    import json
    from collections import Counter

    work = daily["work"]
    ev = _table(work / "events" / f"ds={DS}" / "events")
    imp = _table(work / "events" / f"ds={DS}" / "impressions")
    shown = {(s, i): u for s, i, u in zip(imp["score_id"], imp["item"], imp["user"])}
    positive = {e: (shown[(s, i)], i) for e, s, i, r in zip(ev["event_id"], ev["score_id"], ev["item"], ev["reward"])
                if r is not None and r > 0 and (s, i) in shown}
    negative = {e for e, r in zip(ev["event_id"], ev["reward"]) if r is None or r <= 0}
    assert positive and negative, "day 1's traffic should give both rewarded and unrewarded items"

    day2 = work / "interactions" / f"ds={DS2}"
    rows = _table(day2 / "interactions")
    users, items = ({t["id"][k]: t["orig_id"][k] for k in range(len(t["id"]))}
                     for t in (_table(day2 / "users"), _table(day2 / "items")))
    fed = [(e, users[u], items[i]) for e, u, i in zip(rows["event_id"], rows["user"], rows["item"]) if e is not None]
    counts = Counter(e for e, _, _ in fed)
    assert set(counts) == set(positive), (len(counts), len(positive))
    assert max(counts.values()) == 1
    assert not set(counts) & negative
    assert {e: (u, i) for e, u, i in fed} == positive  # in catalogue ids: the impression's user, the event's item
    stats = json.loads((day2 / "stats.json").read_text())
    assert stats["feedback"]["added"] == len(positive) and stats["feedback"]["events"] == len(ev["event_id"])
    assert stats["previous"]["feedback_rows"] == 0 and not stats["previous"].get("missing")
    first = json.loads((work / "interactions" / f"ds={DS}" / "stats.json").read_text())
    assert first["previous"]["missing"] and first["feedback"]["missing"]  # a first day: nothing before it
    assert all(e is None for e in _table(work / "interactions" / f"ds={DS}" / "interactions")["event_id"])


def test_every_serving_path_gets_traffic_and_training_tunes_on_schedule(daily):
    """The demo's users with friends only and unknown users are scored too (social, fallback paths); day 1 tunes
    the recommender (no earlier day did), day 2 trains with day 1's settings."""
    import json

    work = daily["work"]
    for ds in (DS, DS2):
        paths = json.loads((work / "traffic" / f"ds={ds}" / "summary.json").read_text())["paths"]
        assert {"personal", "social", "fallback"} <= set(paths) and min(paths.values()) > 0, paths
    m1 = json.loads((work / "recommender" / f"ds={DS}" / "metrics.json").read_text())
    m2 = json.loads((work / "recommender" / f"ds={DS2}" / "metrics.json").read_text())
    assert m1["tuning"] is not None and m2["tuning"] is None
    assert m2["settings"] == m1["settings"]
    assert m1["social"]["users_without_interactions"] > 0  # served from their friends
