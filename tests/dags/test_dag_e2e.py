"""End to end: ``graphrec_daily`` via ``dag.test()`` on a tiny generated day, then a re-run of the
same date (no new traffic) that must leave every output equal, then ``graphrec_heavy_hitters`` for
that day, whose trending items must reach the version the scoring service serves."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.dags.support import DAGS, ROOT

DS = "2026-01-05"
PROJECT_PY = Path(os.environ.get("GRAPHREC_PYTHON", ROOT / ".venv" / "bin" / "python"))

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
    "sample_graph": [("sample", "report.json")],
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

    from jobs.run_daily import Service, free_port, task_states

    if not PROJECT_PY.exists():
        pytest.skip(f"project environment not found at {PROJECT_PY}")
    work = tmp_path_factory.mktemp("pipeline")
    subprocess.run([str(PROJECT_PY), "-m", "jobs.demo_inputs", "--work", str(work), "--ds", DS, "--nodes", "600",
                    "--communities", "4", "--items", "150", "--items-per-user", "8"], cwd=ROOT, check=True, timeout=300)
    subprocess.run([str(PROJECT_PY), "-c", "from jobs.session import build_zip; build_zip()"], cwd=ROOT, check=True)
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
            "simulate_traffic": True, "traffic_requests": 200}
    service = Service(work / "bandit" / "params", work / "serving" / "events.db", port, token,
                      work / "service.log", python=str(PROJECT_PY))
    service.start_when_ready()
    try:
        logical = dt.datetime.fromisoformat(DS).replace(tzinfo=dt.timezone.utc)
        dag.test(logical_date=logical, run_conf=conf)
        first = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS)}
        snap = snapshot(work, dag)
        dag.test(logical_date=logical, run_conf={**conf, "simulate_traffic": False})
        second = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS)}
        again = snapshot(work, dag)
        live = work / "bandit" / "params"
        before = (live / "CURRENT").read_text().strip() if (live / "CURRENT").exists() else None
        hh_dag = DagBag(dag_folder=str(DAGS)).dags["graphrec_heavy_hitters"]
        hh_dag.test(logical_date=logical, run_conf={"work_dir": str(work), "k": 8, "bits": 16,
                                                    "shuffle_partitions": 2, "driver_memory": "1g"})
        hh = {t["task_id"]: t["state"] for t in task_states(airflow_db, DS, "graphrec_heavy_hitters")}
    finally:
        service.stop()
    return {"work": work, "dag": dag, "first": first, "second": second, "snap": snap, "again": again,
            "hh_dag": hh_dag, "hh": hh, "live_before": before}


def snapshot(work: Path, dag) -> dict:
    out = {}
    for task, tables in TABLES.items():
        if task not in dag.task_ids:
            continue
        for folder, table in tables:
            p = work / folder / f"ds={DS}" / table
            if p.exists():
                out[f"{folder}/{table}"] = _digest(p)
    for store in ("params", f"ds={DS}"):  # the live store the service serves, and the day's store
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
    cur = (live / "CURRENT").read_text().strip()
    assert cur != daily["live_before"], "no new live version published"
    v = live / (cur if cur.startswith("v=") else f"v={cur}")
    served_items = set(pq.read_table(v / "edges").column("item").to_pylist())
    assert set(hh["item"]) <= served_items
    reload = json.loads((work / "published" / f"ds={DS}" / "fresh_items" / "reload.json").read_text())
    assert str(reload.get("version", "")).lstrip("v=") == cur.lstrip("v="), reload
