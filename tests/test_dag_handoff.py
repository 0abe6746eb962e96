"""The two DAGs' hand-off of a day's bandit store (issue 31 item 3).

``graphrec_heavy_hitters`` stages fresh items as ``fresh_items/ds=<ds>/``; the daily ``publish``
(``--finish``) or the heavy-hitters ``publish_fresh_items`` merges them under the day's lock. These
tests drive the commands the DAG templates render (``jobs.bandit_day seed|fresh|promote``,
``recsys.candidates``) in every order and re-run, and kill -9 the bandit-store steps mid-write.
The Spark batch update is stood in for by the same core (:class:`recsys.bandits.state.EdgeStats`)
published with the same compare-and-swap (``expect_current``), so the tests stay fast.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import bandit_day
from jobs.runtime import layout
from recsys import candidates
from recsys.bandits.params import current_version, load_params, publish_params
from recsys.bandits.state import EdgeDelta, EdgeStats

ROOT = Path(__file__).resolve().parents[1]
DS, BEFORE = "2026-01-05", "2026-01-04"
FRESH = [7, 500, 501]  # 7: an item the graph may already link; 500, 501: new catalogue ids


def _vectors(path: Path, ids, rng, dim=4) -> None:
    path.mkdir(parents=True)
    vec = rng.normal(size=(len(ids), dim)).astype(np.float32)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "vector": pa.array(list(vec), pa.list_(pa.float32()))}),
                   path / "part-0.parquet")


@pytest.fixture()
def work(tmp_path):
    """A work dir with the previous day's store, the day's recommender vectors and heavy hitters."""
    rng = np.random.default_rng(0)
    rec = layout.dated_path(tmp_path, "recommender", DS)
    _vectors(rec / "user_vectors", np.arange(40), rng)
    _vectors(rec / "item_vectors", np.arange(30), rng)
    candidates.main(["--user-vectors", str(rec / "user_vectors"), "--item-vectors", str(rec / "item_vectors"),
                     "--params", str(layout.dated_path(tmp_path, "bandit", BEFORE)), "--clusters", "4", "--k", "2",
                     "--w", "6", "--popular", "0"])
    hh = layout.dated_path(tmp_path, "heavy_hitters", DS) / "heavy_hitters"
    hh.mkdir(parents=True)
    pq.write_table(pa.table({"item": pa.array(FRESH + [500], pa.int64()), "estimate": [3.0, 2.0, 1.0, 1.0]}),
                   hh / "p.parquet")
    return tmp_path


def paths(w: Path) -> dict:
    return {"day": layout.dated_path(w, "bandit", DS), "live": Path(layout.live_params(str(w))),
            "fresh": layout.dated_path(w, "fresh_items", DS), "hist": Path(layout.history(str(w), "bandit")),
            "rec": layout.dated_path(w, "recommender", DS),
            "hh": layout.dated_path(w, "heavy_hitters", DS) / "heavy_hitters"}


def update(day: Path) -> None:
    """Stand-in for ``bandit_update``: the day's feedback on every cluster × {0..9, FRESH} pair (off-graph pairs
    skipped), published from CURRENT with compare-and-swap."""
    v = current_version(day)
    p = load_params(day, v)
    cl = np.repeat(np.sort(p.centroid_ids), 10 + len(FRESH)).astype(np.int64)
    it = np.tile(np.r_[np.arange(10), FRESH], p.centroid_ids.size).astype(np.int64)
    state = EdgeStats.from_params(p)
    state.apply(EdgeDelta.from_pairs(cl, it, np.full(cl.size, 0.5), (it % 3) * 0.25))
    e = state.edges()
    publish_params(day, p.with_edges(e["cluster"], e["item"], e["d"], e["b"]), expect_current=v, previous_version=v)


def daily(w: Path) -> None:
    """graphrec_daily's bandit steps, as its templates render them (seed → build → serve → update → publish)."""
    P = paths(w)
    assert bandit_day.main(["seed", "--history", str(P["hist"]), "--ds", DS]) == 0
    assert candidates.main(["--user-vectors", str(P["rec"] / "user_vectors"), "--item-vectors",
                            str(P["rec"] / "item_vectors"), "--params", str(P["day"]), "--clusters", "4", "--k", "2",
                            "--w", "6", "--popular", "0"]) == 0
    promote = ["promote", "--day", str(P["day"]), "--live", str(P["live"]), "--fresh", str(P["fresh"])]
    assert bandit_day.main(promote) == 0                       # serve_candidates
    update(P["day"])                                           # bandit_update
    assert bandit_day.main(promote + ["--finish"]) == 0        # publish


def stage(w: Path) -> None:
    """graphrec_heavy_hitters.add_fresh_items."""
    P = paths(w)
    assert bandit_day.main(["fresh", "--heavy-hitters", str(P["hh"]), "--output", str(P["fresh"])]) == 0


def publish_fresh(w: Path) -> None:
    """graphrec_heavy_hitters.publish_fresh_items (after its sensor on graphrec_daily.publish)."""
    P = paths(w)
    assert bandit_day.main(["promote", "--day", str(P["day"]), "--live", str(P["live"]), "--fresh", str(P["fresh"])]) == 0


def heavy_hitters(w: Path) -> None:
    stage(w)
    publish_fresh(w)


def edges(store: Path) -> dict:
    p = load_params(store)
    order = np.lexsort((p.edge_item, p.edge_cluster))
    return {"cluster": p.edge_cluster[order], "item": p.edge_item[order], "d": p.d[order], "b": p.b[order],
            "clusters": np.sort(p.centroid_ids)}


def assert_same(a: dict, b: dict) -> None:
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_fresh_once(e: dict) -> None:
    """Every fresh item is linked to every cluster exactly once; new ones at the prior d = λ = 1, b = 0."""
    pairs = set(zip(e["cluster"].tolist(), e["item"].tolist()))
    assert len(pairs) == e["item"].size                          # no duplicate edge
    for item in FRESH:
        m = e["item"] == item
        assert sorted(e["cluster"][m].tolist()) == e["clusters"].tolist(), item
    for item in (500, 501):
        m = e["item"] == item
        assert (e["d"][m] == 1.0).all() and (e["b"][m] == 0.0).all()


@pytest.fixture()
def reference(work):
    """The final day store and live store of the plain order: daily, then heavy hitters."""
    daily(work)
    heavy_hitters(work)
    P = paths(work)
    return {"day": edges(P["day"]), "live": edges(P["live"])}


@pytest.mark.parametrize("order", [
    "hh_first",                        # staged before the daily run; the daily publish merges
    "daily_rerun",                     # daily, heavy hitters, daily again (re-seeds the day)
    "hh_rerun",                        # daily, heavy hitters, heavy hitters again
    "hh_during_daily",                 # publish_fresh_items runs while the daily re-run is mid-way
    "everything_twice",
])
def test_either_dag_in_either_order_gives_the_same_store(work, reference, order):
    P = paths(work)
    for d in (P["day"], P["live"], P["fresh"]):   # start again from the reference run's inputs only
        shutil.rmtree(d, ignore_errors=True)
    if order == "hh_first":
        stage(work); daily(work); publish_fresh(work)
    elif order == "daily_rerun":
        daily(work); heavy_hitters(work); daily(work)
    elif order == "hh_rerun":
        daily(work); heavy_hitters(work); heavy_hitters(work)
    elif order == "hh_during_daily":
        stage(work); daily(work)
        bandit_day.main(["seed", "--history", str(P["hist"]), "--ds", DS])   # a re-run has begun ...
        publish_fresh(work)                                                  # ... and the day is not finished
        assert not (P["day"] / bandit_day.FINISHED).exists()
        seeded = json.loads((P["day"] / "SEED.json").read_text())["version"]
        assert current_version(P["day"]) == seeded                          # day store: still the seed
        assert set(FRESH) <= set(edges(P["live"])["item"].tolist())         # served from the live copy
        daily(work)
    else:
        daily(work); heavy_hitters(work); daily(work); heavy_hitters(work); stage(work); daily(work)
    final = {"day": edges(P["day"]), "live": edges(P["live"])}
    assert_same(final["day"], reference["day"])
    assert_same(final["live"], reference["live"])
    assert_fresh_once(final["day"])


def test_reference_run_merges_once_and_keeps_learned_edges(work, reference):
    assert_fresh_once(reference["day"])
    assert_same(reference["day"], reference["live"])
    e = reference["day"]
    assert (e["b"] > 0).any()                           # the update's statistics survive the merge
    m = np.isin(e["item"], [500, 501])
    assert m.sum() == 2 * e["clusters"].size             # each new item once per cluster


def test_a_day_without_heavy_hitters_promotes_unchanged(work):
    daily(work)
    P = paths(work)
    assert not P["fresh"].exists()
    assert not np.isin(edges(P["day"])["item"], [500, 501]).any()
    assert (P["day"] / bandit_day.FINISHED).exists()


# ------------------------------------------------------------------ kill -9 mid-write, then retry

KILLER = textwrap.dedent("""
    import os, shutil, signal, sys
    import pyarrow.parquet as pq
    what, n = os.environ["KILL_AT"].split(":")
    calls = [0]
    def wrapped(real):
        def f(*a, **k):
            calls[0] += 1
            if calls[0] == int(n):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)
        return f
    mod = {"write_table": pq, "copyfile": shutil}.get(what, os)   # copytree's copy2 calls shutil.copyfile
    setattr(mod, what, wrapped(getattr(mod, what)))
    from jobs.bandit_day import main
    sys.exit(main(sys.argv[1:]))
""")



def run_killed(argv: list[str], kill_at: str) -> tuple[int, str]:
    env = {**os.environ, "KILL_AT": kill_at, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", KILLER, *argv], env=env, cwd=ROOT, capture_output=True, text=True)
    return r.returncode, r.stderr[-2000:]


def readable(store: Path):
    """What a downstream task reads: the store's CURRENT version (None when nothing is published)."""
    return None if current_version(store) is None else edges(store)


@pytest.mark.parametrize("step,kill_at", [
    ("seed", "copyfile:2"), ("fresh", "write_table:1"), ("fresh", "rename:1"),
    ("publish", "write_table:2"), ("publish", "rename:1"), ("publish", "replace:1"),
    ("publish", "write_table:7"), ("publish", "replace:3"), ("publish", "replace:7"),
])
def test_a_bandit_store_step_killed_mid_write_leaves_nothing_half_and_its_retry_matches(work, reference, step,
                                                                                         kill_at):
    """kill -9 at a chosen write (the Nth Parquet table, rename or replace), then the plain retry: the reader
    sees the old state or the complete new one, never a part, and the retried run ends where the clean one did."""
    P = paths(work)
    for d in (P["day"], P["live"], P["fresh"]):
        shutil.rmtree(d, ignore_errors=True)
    stage(work)
    daily(work)
    if step == "seed":
        argv = ["seed", "--history", str(P["hist"]), "--ds", DS]
    elif step == "fresh":
        shutil.rmtree(P["fresh"])
        argv = ["fresh", "--heavy-hitters", str(P["hh"]), "--output", str(P["fresh"])]
    else:  # the daily publish of a re-run: seed → build → update, then promote --finish (merges, then promotes)
        bandit_day.main(["seed", "--history", str(P["hist"]), "--ds", DS])
        candidates.main(["--user-vectors", str(P["rec"] / "user_vectors"), "--item-vectors",
                         str(P["rec"] / "item_vectors"), "--params", str(P["day"]), "--clusters", "4", "--k", "2",
                         "--w", "6", "--popular", "0"])
        update(P["day"])
        argv = ["promote", "--day", str(P["day"]), "--live", str(P["live"]), "--fresh", str(P["fresh"]), "--finish"]
    before = {k: readable(P[k]) for k in ("day", "live")}
    rc, err = run_killed(argv, kill_at)
    assert rc == -signal.SIGKILL, f"the step was not killed at {kill_at} (rc {rc}): {err}"
    for k in ("day", "live"):                           # old state or complete new state, never a part
        visible = [q for q in P[k].iterdir() if not q.name.startswith(".")]
        assert all((q / "manifest.json").is_file() and (q / "_meta.json").is_file() for q in visible
                   if q.is_dir()), visible                # every version folder a reader can list is complete
        now = readable(P[k])
        assert now is not None and now["item"].size > 0
        if before[k] is not None and now["item"].size != before[k]["item"].size:
            assert_fresh_once(now)
    if step == "fresh":
        assert not P["fresh"].exists()                  # not published: a reader sees no table
    r = subprocess.run([sys.executable, "-m", "jobs.bandit_day", *argv], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    if step != "publish":
        daily(work)
    publish_fresh(work)
    assert_same(edges(P["day"]), reference["day"])
    assert_same(edges(P["live"]), reference["live"])
