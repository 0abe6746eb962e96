"""The pipeline's driver pieces that run in the project environment: demo inputs, the traffic
simulator's reward oracle, the event-export cursor and the run report (no Spark, no Airflow)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import export_events
from jobs.demo import inputs as demo_inputs, report, simulate_traffic


def _read(path):
    return pq.read_table(path).to_pydict()


def test_demo_inputs_are_deterministic_and_shaped(tmp_path):
    args = ["--ds", "2026-01-05", "--nodes", "400", "--items", "80", "--parties", "3", "--communities", "4"]
    a = demo_inputs.main(["--work", str(tmp_path / "a"), *args])
    b = demo_inputs.main(["--work", str(tmp_path / "b"), *args])
    assert a["rows"] == b["rows"]
    day_a, day_b = tmp_path / "a/raw/ds=2026-01-05", tmp_path / "b/raw/ds=2026-01-05"
    for table in ("graph/edges", "graph/labels", "interactions/interactions", "reports/reports"):
        assert _read(day_a / table) == _read(day_b / table), table
    inter, rep = _read(day_a / "interactions/interactions"), _read(day_a / "reports/reports")
    # one report per user who has interactions, naming one of that user's own items
    assert len(rep["user"]) == len(set(rep["user"])) == len(set(inter["user"]))
    pairs = set(zip(inter["user"], inter["item"]))
    assert all((u, i) in pairs for u, i in zip(rep["user"], rep["item"]))
    assert set(rep["party"]) <= {0, 1, 2}
    for folder in ("graph", "interactions", "reports"):
        assert json.loads((day_a / folder / "_meta.json").read_text())["job"] == "demo_inputs"


def test_demo_inputs_rejects_bad_dates(tmp_path):
    with pytest.raises(ValueError):
        demo_inputs.main(["--work", str(tmp_path), "--ds", "2026-02-30"])
    assert not (tmp_path / "raw").exists()


def test_reward_oracle_matches_set_membership():
    rng = np.random.default_rng(3)
    user, item = rng.integers(0, 50, 400), rng.integers(0, 30, 400)
    prefs = simulate_traffic.Preferences(user, item)
    qu, qi = rng.integers(0, 60, 2000), rng.integers(0, 40, 2000)
    truth = {(int(u), int(i)) for u, i in zip(user, item)}
    expected = np.array([(int(u), int(i)) in truth for u, i in zip(qu, qi)], np.float32)
    np.testing.assert_array_equal(prefs.reward(qu, qi), expected)


def test_reward_oracle_takes_48_bit_catalogue_ids():
    rng = np.random.default_rng(4)
    base = np.int64(1) << 47
    user, item = base + rng.integers(0, 50, 400), base + rng.integers(0, 30, 400) * 1_000_003
    prefs = simulate_traffic.Preferences(user, item)
    truth = {(int(u), int(i)) for u, i in zip(user, item)}
    qu, qi = np.r_[user[:100], user[:100] + 1000], np.r_[item[:100], item[:100]]
    expected = np.array([(int(u), int(i)) in truth for u, i in zip(qu, qi)], np.float32)
    assert expected[:100].all() and not expected[100:].any()
    np.testing.assert_array_equal(prefs.reward(qu, qi), expected)


def test_interactions_are_read_in_catalogue_ids(tmp_path):
    """Training, the reward oracle and so the served ids use ``users``/``items`` orig_id, not dense ids."""
    from recsys.data import load_interactions_dir

    _parquet(tmp_path / "interactions", user=np.array([0, 0, 1, 1, 2, 2], np.int64),
             item=np.array([0, 1, 1, 2, 0, 2], np.int64))
    _parquet(tmp_path / "users", id=np.array([0, 1, 2], np.int64), orig_id=np.array([70, 50, 60], np.int64))
    _parquet(tmp_path / "items", id=np.array([0, 1, 2], np.int64), orig_id=np.array([9_000_000_000, 5, 7], np.int64))
    data = load_interactions_dir(tmp_path, test_fraction=0.0)
    assert data.user_ids.tolist() == [50, 60, 70] and data.item_ids.tolist() == [5, 7, 9_000_000_000]
    rows, cols = data.train.nonzero()
    pairs = {(int(data.user_ids[r]), int(data.item_ids[c])) for r, c in zip(rows, cols)}
    assert pairs == {(70, 9_000_000_000), (70, 5), (50, 5), (50, 7), (60, 9_000_000_000), (60, 7)}
    prefs = simulate_traffic.load_preferences(str(tmp_path))
    assert prefs.reward(np.array([70, 70, 50]), np.array([5, 7, 5])).tolist() == [1.0, 0.0, 1.0]
    _parquet(tmp_path / "bad" / "interactions", user=np.array([0, 3], np.int64), item=np.array([0, 1], np.int64))
    _parquet(tmp_path / "bad" / "users", id=np.array([0, 1], np.int64), orig_id=np.array([1, 2], np.int64))
    with pytest.raises(ValueError, match="users.*id 3"):
        load_interactions_dir(tmp_path / "bad")


def test_export_cursor_reads_the_previous_export(tmp_path):
    assert export_events.previous_cursor(None) == 0
    assert export_events.previous_cursor(str(tmp_path / "missing")) == 0
    (tmp_path / "_meta.json").write_text(json.dumps({"last_seq": 4321}))
    assert export_events.previous_cursor(str(tmp_path)) == 4321
    (tmp_path / "SEED.json").write_text(json.dumps({"last_seq": 17}))
    assert export_events.previous_cursor(str(tmp_path / "SEED.json")) == 17
    (tmp_path / "_meta.json").write_text(json.dumps({"rows": 1}))
    with pytest.raises(ValueError, match="last_seq"):
        export_events.previous_cursor(str(tmp_path))


def _parquet(path, **cols):
    path.mkdir(parents=True)
    pq.write_table(pa.table(cols), path / "part-0.parquet")


def test_report_from_job_outputs(tmp_path):
    ds = "2026-01-05"
    rng = np.random.default_rng(0)
    _parquet(tmp_path / f"graph/ds={ds}/edges", src=rng.integers(0, 200, 2000), dst=rng.integers(0, 200, 2000))
    (tmp_path / f"graph/ds={ds}/stats.json").write_text(json.dumps({"nodes": 200, "edges": 2000}))
    _parquet(tmp_path / f"sample/ds={ds}/edges", src=rng.integers(0, 40, 300), dst=rng.integers(0, 40, 300))
    (tmp_path / f"sample/ds={ds}/report.json").write_text(json.dumps({"ratio": 0.2, "in_l1": 0.05, "out_l1": 0.07}))
    (tmp_path / f"recommender/ds={ds}").mkdir(parents=True)
    (tmp_path / f"recommender/ds={ds}/metrics.json").write_text(json.dumps({"recall@20": 0.1, "ndcg@20": 0.05}))
    rate = np.linspace(0.02, 0.2, 12)
    _parquet(tmp_path / f"traffic/ds={ds}/curve", batch=np.arange(12), requests=(np.arange(12) + 1) * 50,
             reward_rate=rate, random_rate=np.full(12, 0.01), cumulative_reward=np.cumsum(rate * 500))
    (tmp_path / f"traffic/ds={ds}/summary.json").write_text(json.dumps(
        {"requests": 600, "events": 6000, "reward_rate_first_quarter": 0.03, "reward_rate_last_quarter": 0.19,
         "random_rate": 0.01}))
    tasks = [{"task_id": "ingest_graph", "state": "success", "tries": 1, "seconds": 12.5, "dag": "graphrec_daily"},
             {"task_id": "heavy_hitters", "state": "success", "tries": 1, "seconds": 3.0, "dag": "graphrec_heavy_hitters"}]
    path = report.write_report(tmp_path, ds, tasks=tasks, timings={"total_s": 100.0, "setup_s": 10.0, "dag_s": 90.0},
                               dag_rc=0)
    text = path.read_text()
    for png in ("degrees.png", "recommender.png", "bandit.png"):
        assert f"({png})" in text and (path.parent / png).stat().st_size > 1000
    assert "DAGs `graphrec_daily` + `graphrec_heavy_hitters`: **succeeded**, 2/2 tasks succeeded" in text
    assert "| ingest_graph | success |" in text and "| heavy_hitters | success |" in text
    assert "_No embedding" in text  # a missing input is reported, not fatal
    summary = json.loads((path.parent / "summary.json").read_text())
    assert summary["sample_in_l1"] == 0.05 and summary["recommender_recall@20"] == 0.1
    assert summary["bandit_reward_last_quarter"] == 0.19


def test_degrees_count_in_and_out_edges(tmp_path):
    _parquet(tmp_path / "e", src=np.array([0, 0, 3]), dst=np.array([3, 1, 0]))
    out, inn = report.degrees(tmp_path / "e")
    assert out.tolist() == [2, 0, 0, 1] and inn.tolist() == [1, 1, 0, 1]


def _params(seed: int):
    from recsys.bandits.params import BanditParams

    rng = np.random.default_rng(seed)
    return BanditParams.build(lam=1.0, alpha=0.5, k=1, w=2, edge_cluster=[0, 0], edge_item=[10, 11],
                              user=[7], user_cluster=[0], user_weight=[1.0],
                              centroids=rng.normal(size=(1, 4)).astype(np.float32))


def test_bandit_day_seeds_from_the_latest_earlier_day_and_promotes(tmp_path):
    from jobs import bandit_day
    from recsys.bandits.params import current_version, load_params, publish_params

    hist = tmp_path / "bandit"
    publish_params(hist / "ds=2026-01-03", _params(1))
    publish_params(hist / "ds=2026-01-04", _params(2))
    publish_params(hist / "ds=2026-01-04", _params(3))          # that day's CURRENT is v=2
    publish_params(hist / "ds=2026-01-06", _params(4))          # a later day is never a seed
    assert bandit_day.seed(hist, "2026-01-05") == {"from": str(hist / "ds=2026-01-04"), "version": 2, "last_seq": 0}
    assert json.loads((hist / "ds=2026-01-05" / "SEED.json").read_text())["last_seq"] == 0
    day = hist / "ds=2026-01-05"
    assert current_version(day) == 2
    np.testing.assert_array_equal(load_params(day).centroids, load_params(hist / "ds=2026-01-04").centroids)
    publish_params(day, _params(5))                               # the day moves on (v=3) ...
    bandit_day.seed(hist, "2026-01-05")                           # ... and a re-run starts over
    assert current_version(day) == 2
    assert bandit_day.seed(hist, "2026-01-01")["version"] is None and current_version(hist / "ds=2026-01-01") is None

    live = tmp_path / "live"
    assert bandit_day.promote(day, live) == 1 and bandit_day.promote(day, live) == 2
    a, b = load_params(day), load_params(live)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.d, b.d)
    with pytest.raises(FileNotFoundError, match="no CURRENT"):
        bandit_day.promote(hist / "ds=2026-01-01", live)


def test_atomic_dir_replaces_and_removes_what_a_killed_writer_left(tmp_path):
    """A kill -9 mid-write leaves a hidden .out.tmp-* folder; the next successful write removes it (and an .old-*
    left mid-replace), but not a writer's folder that started after it, nor other outputs' folders."""
    import os
    import time

    from graphs.atomic import atomic_dir

    stale, old = tmp_path / ".out.tmp-dead0001", tmp_path / ".out.old-dead0002"
    other = tmp_path / ".other.tmp-dead0003"
    for p in (stale, old, other):
        p.mkdir()
        (p / "part-0").write_text("half")
        os.utime(p, (time.time() - 60, time.time() - 60))
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "x").write_text("1")
        later = tmp_path / ".out.tmp-live0004"   # another writer, started after this one
        later.mkdir()
        os.utime(later, (time.time() + 5, time.time() + 5))
    assert (tmp_path / "out" / "x").read_text() == "1"
    assert not stale.exists() and not old.exists()
    assert other.exists() and later.exists()
