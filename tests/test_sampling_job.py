"""jobs/sample_graph.py end to end on a local SparkSession (issue 4)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from graphs.degree import degree_matrices
from tests.test_sampling_core import assert_same, assert_simple, small_rmat

pytestmark = pytest.mark.spark


def write_graph_dir(root, src, dst, n, directed=True):
    """An ingest output in the contract: edges (src, dst, weight), vertices (id, orig_id), stats.json."""
    root.mkdir(parents=True)
    pd.DataFrame({"src": src.astype(np.int64), "dst": dst.astype(np.int64),
                  "weight": np.ones(len(src), dtype=np.float32)}).to_parquet(root / "edges.parquet")
    (root / "edges").mkdir()
    (root / "edges.parquet").rename(root / "edges" / "part-0.parquet")
    (root / "vertices").mkdir()
    pd.DataFrame({"id": np.arange(n, dtype=np.int64), "orig_id": np.arange(n, dtype=np.int64)}).to_parquet(
        root / "vertices" / "part-0.parquet")
    (root / "stats.json").write_text(json.dumps({"directed": directed, "nodes": int(n), "edges": int(len(src))}))
    return root


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    src, dst, n = small_rmat(10, 5000, 42, recip=0.3)
    # a few self-loops and duplicates in the input: the job must drop and count them
    src_in = np.concatenate([src, [0, 1, 2], src[:5]])
    dst_in = np.concatenate([dst, [0, 1, 2], dst[:5]])
    root = write_graph_dir(tmp_path_factory.mktemp("g") / "graph", src_in, dst_in, n)
    return root, src, dst, n


def read_out(out):
    e = pd.read_parquet(out / "edges")
    v = pd.read_parquet(out / "vertices")
    return e, v, json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("ratio", [1.0, 0.3])
def test_rescaled_job_realises_the_matrices(spark, graph, tmp_path, ratio):
    from jobs.sample_graph import run, SampleConfig

    root, src, dst, n = graph
    out = tmp_path / "out"
    run(spark, SampleConfig(edges=str(root), ratio=ratio, output=str(out), seed=3, chunks=3))
    e, v, rep = read_out(out)
    assert {p.name for p in out.iterdir()} >= {"edges", "vertices", "matrices", "report.json",
                                                "degree_distributions.png", "_meta.json"}
    assert rep["self_loops_removed"] == 3 and rep["duplicates_removed"] == 5
    assert rep["exact_realisation"] is True
    s, d = e["src"].to_numpy(), e["dst"].to_numpy()
    assert_simple(s, d, len(v))
    assert sorted(v["id"]) == list(range(len(v))) and abs(len(v) - ratio * n) <= 1
    got = degree_matrices(s, d, len(v))
    tgt = pd.read_parquet(out / "matrices" / "target_jdm.parquet")
    assert int(tgt["count"].sum()) == len(e)
    if ratio == 1.0:
        m = degree_matrices(src, dst, n)
        assert_same(got.jdm, m.jdm)
        assert_same(got.dcm, m.dcm)
        assert rep["in_l1"] == rep["out_l1"] == rep["jdm_l1"] == 0.0
    else:
        assert rep["in_l1"] <= 1.5 * rep["floor_in"] + 0.002
        assert rep["out_l1"] <= 1.5 * rep["floor_out"] + 0.002


@pytest.mark.parametrize("method", ["random-node", "random-edge", "forest-fire"])  # random-walk: its own test below
def test_baseline_methods(spark, graph, tmp_path, method):
    from jobs.sample_graph import main

    root, src, dst, n = graph
    out = tmp_path / method
    main(["--edges", str(root), "--ratio", "0.25", "--method", method, "--output", str(out), "--seed", "1"])
    e, v, rep = read_out(out)
    assert rep["method"] == method
    k = round(0.25 * n)
    assert k <= len(v) <= k + 1
    orig = set(zip(src.tolist(), dst.tolist()))
    o = dict(zip(v["id"], v["orig_id"]))
    assert {(o[a], o[b]) for a, b in zip(e["src"], e["dst"])} <= orig


@pytest.mark.parametrize("offset", [0, 1000])
def test_distributed_forest_fire_equals_the_numpy_version(spark, tmp_path, offset):
    """The Spark sampler draws the same hashed numbers as graphs.baselines: identical node sets,
    also when the input ids are not 0..n-1 (they are ranked densely first)."""
    from graphs.baselines import forest_fire
    from jobs.sample_graph import SampleConfig, run

    src, dst, n = small_rmat(9, 3000, 11, recip=0.3)
    ids = np.arange(n) * 3 + offset if offset else np.arange(n)  # sparse original ids when offset > 0
    root = write_graph_dir(tmp_path / "g", ids[src], ids[dst], n)
    pd.DataFrame({"id": ids, "orig_id": ids}).to_parquet(root / "vertices" / "part-0.parquet")
    out = tmp_path / "out"
    run(spark, SampleConfig(edges=str(root), ratio=0.3, output=str(out), method="forest-fire", seed=5))
    e, v, rep = read_out(out)
    ref = forest_fire(src, dst, n, round(0.3 * n), np.random.default_rng(5))
    assert sorted(v["orig_id"].tolist()) == sorted(ids[ref.nodes].tolist())
    assert len(e) == ref.src.size and rep["nodes"] == ref.n_nodes


def test_distributed_random_walk_equals_the_numpy_version(spark):
    """Walkers advanced by joins visit exactly the nodes of the numpy walk (same hashed draws);
    short lives and many walkers keep the number of Spark steps small here."""
    from graphs import spark_walks as ss
    from graphs.baselines import hash_seed, random_walk

    src, dst, n = small_rmat(9, 3000, 12, recip=0.3)
    edges = spark.createDataFrame(pd.DataFrame({"src": src, "dst": dst}))
    k = round(0.3 * n)
    seed = hash_seed(np.random.default_rng(3))  # what the numpy version draws from its generator
    got = ss.random_walk(spark, edges, n, k, seed, life=10, per_walker=8, batch=4).toPandas()["id"]
    ref = random_walk(src, dst, n, k, np.random.default_rng(3), life=10, per_walker=8)
    assert sorted(got.tolist()) == ref.nodes.tolist()


def test_job_rejects_bad_input(spark, graph, tmp_path):
    from jobs.sample_graph import SampleConfig, parse_args, run

    root, src, dst, n = graph
    for r in ("0", "1.5", "-0.2"):
        with pytest.raises(ValueError, match="ratio"):
            parse_args(["--edges", str(root), "--ratio", r, "--output", str(tmp_path / "x")])
    und = write_graph_dir(tmp_path / "und", src, dst, n, directed=False)
    with pytest.raises(ValueError, match="undirected"):
        run(spark, SampleConfig(edges=str(und), ratio=0.5, output=str(tmp_path / "o1")))
    empty = write_graph_dir(tmp_path / "empty", np.array([], dtype=np.int64), np.array([], dtype=np.int64), 4)
    with pytest.raises(ValueError, match="no edges"):
        run(spark, SampleConfig(edges=str(empty), ratio=0.5, output=str(tmp_path / "o2")))
    loops_only = write_graph_dir(tmp_path / "loops", np.array([0, 1]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="no edges"):
        run(spark, SampleConfig(edges=str(loops_only), ratio=0.5, output=str(tmp_path / "o3")))
    assert not any(p.name.startswith(("o1", "o2", "o3")) for p in tmp_path.iterdir())


def test_help_works(capsys):
    from jobs.sample_graph import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--help"])
    assert exc.value.code == 0 and "--ratio" in capsys.readouterr().out
