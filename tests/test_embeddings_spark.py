"""The whole embed_graph + knn jobs on a small real graph (email-Eu-core, directed) on local Spark."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import data_file

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def graph_dir(shared_data, tmp_path_factory):
    """An ingest_graph-shaped GRAPH_DIR (edges, vertices, stats.json) of the directed email-Eu-core."""
    import pandas as pd

    f = data_file(shared_data, "email-eu-core", "email-Eu-core.txt.gz")
    df = pd.read_csv(f, sep=r"\s+", comment="#", header=None, names=["src", "dst"], dtype=np.int64)
    out = tmp_path_factory.mktemp("graph")
    n = int(max(df.src.max(), df.dst.max()) + 1)
    (out / "edges").mkdir()
    (out / "vertices").mkdir()
    pq.write_table(pa.table({"src": df.src.to_numpy(), "dst": df.dst.to_numpy(),
                             "weight": np.ones(len(df), np.float32)}), out / "edges" / "part-0.parquet")
    pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64), "orig_id": np.arange(n, dtype=np.int64)}),
                   out / "vertices" / "part-0.parquet")
    (out / "stats.json").write_text(json.dumps({"directed": True, "nodes": n, "edges": len(df)}))
    return out, df, n


@pytest.fixture(scope="module")
def embedded(spark, graph_dir, tmp_path_factory):
    from jobs import embed_graph

    gdir, _, _ = graph_dir
    out = tmp_path_factory.mktemp("emb") / "embedding"
    cfg = embed_graph.parse_args(["--edges", str(gdir), "--output", str(out), "--dim", "16",
                                  "--max-part-nodes", "600", "--seed", "1"])
    meta = embed_graph.run(spark, cfg)
    return out, meta


def test_embed_job_writes_vectors_and_invariants(graph_dir, embedded):
    from embeddings.evaluate import dense_vectors

    _, df, n = graph_dir
    out, meta = embedded
    assert (out / "_meta.json").exists() and json.loads((out / "_meta.json").read_text())["parts"] == meta["parts"]
    t = pq.read_table(out / "vectors")
    assert t.num_rows == n and sorted(t.column("id").to_pylist()) == list(range(n))
    x = dense_vectors(out, n)
    assert x.shape == (n, 16) and np.isfinite(x).all()
    assert meta["parts"] >= 2 and meta["levels"] >= 2
    assert meta["largest_subgraph_nodes"] <= 600
    assert 1.0 <= meta["embedded_edges_multiple"] <= 6.0
    assert meta["symmetrised"] and meta["directed_input"]
    for phase in ("read_s", "top_s", "parts_s", "fusion_s"):
        assert meta["timings"][phase] >= 0
    assert meta["coarsening"] == "top task" and "coarsen_s" not in meta["timings"]  # 16k edges: one task
    assert meta["top_threads"] == 2  # the one-task stages use the cores of local[2]'s executor


def test_spark_run_equals_single_process_reference(graph_dir, embedded):
    """Same partition and (up to float summation order) the same vectors as embeddings.distne.DistNE."""
    _assert_equals_reference(graph_dir, *embedded, config_kw={})


@pytest.mark.parametrize("flag, kw, smaller_largest", [
    ("--coarse-edges-per-cluster", {"coarse_edges_per_cluster": 3}, True),
    ("--top-edges-per-cluster", {"top_edges_per_cluster": 3}, False),
    ("--max-subgraph-edges", {"max_subgraph_edges": 6000}, True)])
def test_spark_run_with_pruned_coarse_edges_equals_reference(spark, graph_dir, tmp_path, flag, kw, smaller_largest):
    """``--coarse-edges-per-cluster`` / ``--top-edges-per-cluster`` / ``--max-subgraph-edges``: the same pruning in
    the Spark run and the reference, fewer embedded edges (6,000 binds on the parts, not on the 4,638-edge top level;
    pruning the top level changes the frame Z and with it the parts, so their largest may grow or shrink)."""
    from jobs import embed_graph

    gdir, _, _ = graph_dir
    cfg = embed_graph.parse_args(["--edges", str(gdir), "--output", str(tmp_path / "e"), "--dim", "16",
                                  "--max-part-nodes", "600", "--seed", "1", flag, str(next(iter(kw.values())))])
    meta = embed_graph.run(spark, cfg)
    ref = _assert_equals_reference(graph_dir, tmp_path / "e", meta, config_kw=kw)
    full = _reference(graph_dir, {})
    assert ref.stats_["embedded_edges_multiple"] < full.stats_["embedded_edges_multiple"]
    assert meta["largest_subgraph_edges"] == ref.stats_["largest_subgraph_edges"]
    if smaller_largest:  # the bound is on the parts' coarse edges
        assert meta["largest_subgraph_edges"] < full.stats_["largest_subgraph_edges"]


def test_spark_coarsening_equals_reference(spark, graph_dir, tmp_path, monkeypatch):
    """``--local-coarsen-edges 0``: the label-propagation levels run as Spark message rounds, with the same
    clusters, parts and vectors as the one-task coarsening of the fixture and the reference; the quotient's
    edges reach the part tasks in pieces of 100 edges (``CHUNK_EDGES``; 4,638 quotient edges)."""
    from embeddings.spark import codec as spark_embed
    from jobs import embed_graph

    monkeypatch.setattr(spark_embed, "CHUNK_EDGES", 100)

    gdir, _, _ = graph_dir
    cfg = embed_graph.parse_args(["--edges", str(gdir), "--output", str(tmp_path / "e"), "--dim", "16",
                                  "--max-part-nodes", "600", "--seed", "1", "--local-coarsen-edges", "0"])
    meta = embed_graph.run(spark, cfg)
    assert meta["coarsening"] == "spark" and meta["timings"]["coarsen_s"] >= 0
    _assert_equals_reference(graph_dir, tmp_path / "e", meta, config_kw={})


def _reference(graph_dir, kw):
    from embeddings.datasets import symmetric_adjacency
    from embeddings.distne import DistNE, DistNEConfig

    _, df, n = graph_dir
    return DistNE(DistNEConfig(dim=16, max_subgraph_nodes=600, seed=1, **kw)).fit(
        symmetric_adjacency(df.src.to_numpy(), df.dst.to_numpy(), n))


def _assert_equals_reference(graph_dir, out, meta, config_kw):
    from embeddings.evaluate import dense_vectors

    _, _, n = graph_dir
    ref = _reference(graph_dir, config_kw)
    assert meta["parts"] == ref.stats_["parts"]
    assert meta["coarsening_clusters"] == ref.stats_["coarsening_clusters"]
    assert meta["largest_subgraph_nodes"] == ref.stats_["largest_subgraph_nodes"]
    assert meta["edge_cut_fraction"] == pytest.approx(ref.stats_["edge_cut_fraction"])
    assert meta["embedded_edges_multiple"] == pytest.approx(ref.stats_["embedded_edges_multiple"])
    x, y = dense_vectors(out, n), ref.transform()
    live = np.linalg.norm(y, axis=1) > 0
    cos = (x[live] * y[live]).sum(1) / np.linalg.norm(x[live], axis=1) / np.linalg.norm(y[live], axis=1)
    assert np.median(np.abs(cos)) > 0.99
    return ref


def test_knn_job_excludes_friends_and_reports_recall(spark, graph_dir, embedded, tmp_path):
    from jobs import knn

    gdir, df, n = graph_dir
    out, _ = embedded
    cfg = knn.parse_args(["--vectors", str(out), "--output", str(tmp_path / "knn"), "--k", "5",
                          "--exclude-edges", str(gdir), "--index", "hnsw", "--recall-sample", "200"])
    meta = knn.run(spark, cfg)
    t = pq.read_table(tmp_path / "knn" / "neighbors").to_pandas()
    assert set(t.columns) == {"id", "neighbor", "score", "rank"}
    assert (t.id != t.neighbor).all()
    friends = set(zip(df.src, df.dst)) | set(zip(df.dst, df.src))
    assert not any((a, b) in friends for a, b in zip(t.id, t.neighbor))
    assert t.groupby("id")["rank"].max().max() == 5 and t["rank"].min() == 1
    assert meta["index"] == "hnsw" and meta["recall_at_k"] >= 0.9


def test_embed_job_rejects_missing_input(spark, tmp_path):
    from jobs import embed_graph

    cfg = embed_graph.parse_args(["--edges", str(tmp_path / "nope"), "--output", str(tmp_path / "out")])
    with pytest.raises(FileNotFoundError, match="edges"):
        embed_graph.run(spark, cfg)
    assert not (tmp_path / "out").exists()


def test_partition_keys_follow_spark_hash_partitioning(spark):
    """Bucket/part keys land in shuffle partition i of n, as Spark's Murmur3 hash partitioning places them."""
    from pyspark.sql import functions as F

    from embeddings.spark import partition_keys

    for n in (2, 3, 4, 8):
        keys = partition_keys(n)
        df = spark.createDataFrame([(k,) for k in keys], "k int")
        assert [r[0] for r in df.select(F.pmod(F.hash("k"), F.lit(n))).collect()] == list(range(n))
        placed = df.repartition(n, "k").select("k", F.spark_partition_id().alias("p")).collect()
        assert {r.k: r.p for r in placed} == {k: i for i, k in enumerate(keys)}


def test_output_map_reads_binary_rows_and_zero_fills_missing():
    """The output ``mapInArrow`` body: ``normalize(cur @ map)`` per row, a vertex without ``cur`` → zeros."""
    from embeddings.spark.output import apply_map as _apply_map

    rng = np.random.default_rng(0)
    cur = rng.standard_normal((5, 4)).astype(np.float32)
    mp = rng.standard_normal((4, 4)).astype(np.float32)
    vals = [cur[0].tobytes(), None, cur[2].tobytes(), cur[3].tobytes(), None]
    rb = pa.RecordBatch.from_arrays([pa.array(np.arange(5, dtype=np.int64)), pa.array(vals, pa.binary())], ["id", "cur"])
    out = list(_apply_map(mp, 4)([rb.slice(1, 4), rb.slice(0, 1)]))
    got = {i: v for b in out for i, v in zip(b.column(0).to_pylist(), b.column(1).to_pylist())}
    want = cur @ mp
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    for i in (0, 2, 3):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-5, atol=1e-6)
    assert got[1] == [0.0] * 4 and got[4] == [0.0] * 4
    assert list(_apply_map(None, 4)([rb]))[0].column(1).to_pylist()[3] == cur[3].tolist()


def test_embed_job_output_files_sorted_by_id(embedded):
    """Vectors come out in the job's shuffle partitions (the task slots), each file sorted by id."""
    out, meta = embedded
    files = sorted((out / "vectors").glob("*.parquet"))
    assert 1 <= len(files) <= meta["shuffle_partitions"]
    for f in files:
        ids = pq.read_table(f).column("id").to_numpy()
        assert (np.diff(ids) > 0).all()


def test_packed_edges_round_trip_and_membership():
    """The coarse edges travel as binary values (pieces of ``CHUNK_EDGES``): exact round trip (int64 ids above 2^31, float32
    weights, empty list), and ``_member`` — the part task's outside-cluster filter — agrees with ``np.isin``."""
    from embeddings.spark.codec import member as _member, pack_chunks, pack_edges, unpack_edges

    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 2**40, 500), rng.integers(0, 2**40, 500)
    w = rng.random(500).astype(np.float32)
    ra, rb, rw = unpack_edges(pack_edges(a, b, w))
    assert np.array_equal(ra, a) and np.array_equal(rb, b) and np.array_equal(rw, w)
    assert all(len(x) == 0 for x in unpack_edges(pack_edges(a[:0], b[:0], w[:0])))
    chunks = pack_chunks(a, b, w, chunk_edges=64)  # pieces of <= 64 edges, in order
    assert len(chunks) == 8 and all(len(c) <= 64 * 20 for c in chunks)
    ra, rb, rw = unpack_edges(b"".join(chunks))
    assert np.array_equal(ra, a) and np.array_equal(rb, b) and np.array_equal(rw, w)
    assert pack_chunks(a[:0], b[:0], w[:0]) == [b""] and len(pack_chunks(a, b, w)) == 1
    keys = np.unique(rng.integers(0, 50, 20))
    v = rng.integers(-5, 60, 300)
    assert np.array_equal(_member(keys, v), np.isin(v, keys))
    assert not _member(keys[:0], v).any()


def test_arc_chunks_pack_both_directions_per_part():
    """The annotated edges become, per part of ``src``, both directions of every edge with the part and cluster of
    ``dst`` — each exactly once over all pieces, pieces near ``chunk_edges`` records, batches merged."""
    import pandas as pd

    from embeddings.spark.codec import ARC, arc_chunks as _arc_chunks, arcs_of as _arcs_of

    rng = np.random.default_rng(5)
    n, m = 40, 300
    part, cluster = rng.integers(0, 3, n), rng.integers(0, 9, n)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    w = rng.random(m).astype(np.float32)
    ann = pd.DataFrame({"a": a, "b": b, "w": w, "pa": part[a], "pb": part[b], "ca": cluster[a], "cb": cluster[b]})
    out = pd.concat(list(_arc_chunks(chunk_edges=50)(iter([ann[:120], ann[120:]]))), ignore_index=True)
    sizes = out["z"].map(len) // ARC.itemsize
    assert sizes.sum() == 2 * m and sizes.max() < 50 + 2 * 120  # flushed once a part holds >= 50 records
    got = _arcs_of(out)
    assert sorted(got) == sorted(set(part[a]) | set(part[b]))
    for p, rec in got.items():
        assert (part[rec["src"]] == p).all() and (rec["pd"] == part[rec["dst"]]).all()
        assert (rec["cd"] == cluster[rec["dst"]]).all()
        want = sorted(zip(np.r_[a, b], np.r_[b, a], np.r_[w, w]))
        want = [t for t in want if part[t[0]] == p]
        assert sorted(zip(rec["src"], rec["dst"], rec["w"])) == want
    assert _arcs_of(out[:0]) == {}


def test_per_part_cogroup_shuffles_only_the_rows(spark):
    """The part stage groups the packed edges by (pk, part) without moving them again: with
    requireAllClusterKeysForCoPartition off, the plan has one exchange (the rows side); with it on, two."""
    import pandas as pd

    from embeddings.spark.parts import part_key as _part_key, per_part
    from graphs.spark_helpers import checkpoint_partitioned

    slots = 2
    arcs = spark.createDataFrame(pd.DataFrame({"part": np.arange(4, dtype=np.int32), "z": [b"x"] * 4}))
    arcs = checkpoint_partitioned(spark, arcs.withColumn("pk", _part_key(slots)).repartition(slots, "pk"))
    rows = spark.createDataFrame(pd.DataFrame({"part": np.repeat(np.arange(4, dtype=np.int32), 3), "x": np.arange(12)}))

    def count(a: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"part": [int(r["part"].iloc[0])], "n": [len(a) + len(r)]})

    def exchanges(flag: str) -> tuple[int, dict]:
        keys = ("spark.sql.requireAllClusterKeysForCoPartition", "spark.sql.adaptive.enabled")
        saved = {k: spark.conf.get(k) for k in keys}
        spark.conf.set(keys[0], flag)
        spark.conf.set(keys[1], "false")  # as inside embed: the plan is final before it runs
        try:
            df = per_part(arcs, rows, slots).applyInPandas(count, "part int, n long")
            plan = df._jdf.queryExecution().executedPlan().toString()
            return plan.count("Exchange hashpartitioning"), {r["part"]: r["n"] for r in df.collect()}
        finally:
            for k, v in saved.items():
                spark.conf.set(k, v)

    n_off, got = exchanges("false")
    assert n_off == 1 and got == {p: 4 for p in range(4)}  # one edge row and three rows per part
    assert exchanges("true")[0] == 2


def test_embed_stats_meta_has_the_partitioned_fields_only_when_partitioned():
    """``EmbedStats.to_meta``: a one-task run has no coarsening/per-level fields; ``max_subgraph_edges`` is always
    there (``None`` = no bound); timings are copied, not shared."""
    from embeddings.spark.stats import EmbedStats

    common = dict(dim=8, nodes_with_edges=10, edges=20, max_subgraph_nodes=600, max_subgraph_edges=None,
                  shuffle_partitions=2, levels=1, parts=1, edge_cut_fraction=0.0, largest_subgraph_nodes=10,
                  embedded_edges_multiple=1.0, top_threads=2)
    times = {"read_s": 0.5}
    meta = EmbedStats(**common, timings=times).to_meta()
    assert meta["max_subgraph_edges"] is None and meta["timings"] == {"read_s": 0.5}
    assert not {"coarsening", "coarsening_clusters", "per_level", "largest_subgraph_edges"} & set(meta)
    meta["timings"]["x"] = 1.0
    assert times == {"read_s": 0.5}
    parted = EmbedStats(**common, coarsening="spark", coarsening_clusters=[40, 9]).to_meta()
    assert parted["coarsening"] == "spark" and parted["coarsening_clusters"] == [40, 9]


def test_row_kinds_are_named_and_keep_their_values():
    """The mixed-row tables name their kinds (one enum per schema); the integers are the stages' wire format."""
    from embeddings.spark.rows import PART_INPUT_COLS, TOP, PartInput, TopRow

    assert [int(k) for k in TopRow] == [0, 1, 2, 3] and TOP.startswith("kind int")
    assert {k.name: int(k) for k in PartInput} == {"COARSE": 2, "NODE": 3, "ANCHOR": 4}
    assert PART_INPUT_COLS[1] == "role"  # not a second meaning of a "kind" column
