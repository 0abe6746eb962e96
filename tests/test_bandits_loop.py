"""The closed loop offline: candidate graph CLI → simulated feedback → batch update job (twice)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.bandits.feedback_sim import main as feedback_main
from recsys.bandits.params import list_versions, load_merged_event_ids, load_params
from recsys.candidates import main as candidates_main


def _vectors(path, ids, vecs):
    path.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()),
                             "vector": pa.array([v.tolist() for v in vecs.astype(np.float32)], pa.list_(pa.float32()))}),
                   path / "part-0.parquet")


@pytest.mark.spark
@pytest.mark.parametrize("off_graph", ["skip", "prior"])
def test_build_feedback_update_loop(spark, tmp_path, off_graph):
    from jobs.bandit_update import main as update_main

    rng = np.random.default_rng(0)
    _vectors(tmp_path / "rec" / "user_vectors", np.arange(200) + 10_000, rng.normal(size=(200, 8)))
    _vectors(tmp_path / "rec" / "item_vectors", np.arange(300) * 3, rng.normal(size=(300, 8)))
    params = tmp_path / "params"
    vec = ["--user-vectors", str(tmp_path / "rec" / "user_vectors"), "--item-vectors", str(tmp_path / "rec" / "item_vectors")]
    assert candidates_main([*vec, "--params", str(params), "--clusters", "8", "--k", "3", "--w", "20",
                            "--off-graph", off_graph]) == 0
    assert load_params(params).extra["off_graph"] == off_graph
    for day in (1, 2):
        out = tmp_path / f"feedback/day={day}"
        assert feedback_main(["--params", str(params), "--out", str(out), *vec, "--requests", "300", "--slate", "5",
                              "--seed", str(day), "--duplicate-fraction", "0.05"]) == 0
        n_events = len(set(pq.read_table(out / "events").column("event_id").to_pylist()))
        before = load_params(params)
        args = ["--events", str(out / "events"), "--impressions", str(out / "impressions"),
                "--params", str(params), "--output", str(params)]
        assert update_main(args) == 0
        after = load_params(params)
        assert after.version == before.version + 1
        assert after.watermark.events == before.watermark.events + n_events
        # every event adds Σ_c w_c² to d over its (cluster, item) pairs — all of them with "prior" (new
        # pairs become edges), only the edges of the version with "skip" (the graph does not grow)
        assert after.d.sum() - before.d.sum() - (after.num_edges - before.num_edges) * after.lam == pytest.approx(
            _d_increment(out, None if off_graph == "prior" else before), rel=1e-9)
        if off_graph == "skip":  # some logged pairs were off the graph, and they changed nothing
            assert after.num_edges == before.num_edges
            assert _d_increment(out, before) < _d_increment(out)
        assert list_versions(params)[-1] == after.version
    assert load_merged_event_ids(params).num_rows == load_params(params).watermark.events


def _d_increment(out, on_graph_of=None):
    """Σ over unique events of Σ_c w_c² from the logs (the direct computation), optionally only over
    the (cluster, item) pairs that are edges of the version ``on_graph_of``."""
    ev = pq.read_table(out / "events").to_pandas().drop_duplicates("event_id")
    imps = pq.read_table(out / "impressions").to_pandas()
    j = ev.merge(imps, on=["score_id", "item"])
    if on_graph_of is not None:
        j = j[on_graph_of.edge_index(j.cluster.to_numpy(np.int32), j.item.to_numpy(np.int64)) >= 0]
    w = j.weight.to_numpy(np.float64)
    return float((w * w).sum())
