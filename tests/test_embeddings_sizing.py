"""DistNE's job sizing (embeddings/sizing.py): task budget, checkpoint storage, early failure naming the flag."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from embeddings.distne import DistNEConfig
from embeddings.sizing import (DoesNotFit, Plan, Resources, checkpoint_bytes, parse_memory_mb, plan,
                               python_memory_mb)

RMAT20 = (646_412, 15_703_162)  # live nodes and undirected edges of benchmarks.embedding's rmat20


@pytest.mark.parametrize("value, mb", [("2g", 2048), ("512m", 512), ("1024", 1024), ("1.5g", 1536),
                                       ("2048k", 2), ("4GB", 4096), (None, 1024), ("", 1024)])
def test_parse_memory_mb(value, mb):
    assert parse_memory_mb(value, 1024) == mb


def test_parse_memory_rejects_garbage():
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory_mb("lots", 1024)


def test_rmat20_on_local2_with_the_default_heap_fits_and_checkpoints_on_disk():
    """The 1.6e7-edge R-MAT on local[2] with spark-submit's 1g heap and this kind of 24 GB machine: the task budget
    comes from the free memory, the 1 GB of packed arcs cannot share a 1g heap, so checkpoints go to disk."""
    py = python_memory_mb(available_mb=22_000, total_mb=24_000, heap_mb=1024, local=True)
    assert py == int(0.75 * 24_000) - 1024  # at most 3/4 of the machine, less the heap
    p = plan(*RMAT20, 128, Resources(heap_mb=1024, slots=2, python_mb=py, local=True))
    assert p.memory_mb == py // 2 and p.storage == "DISK_ONLY"
    assert any("checkpoints on disk" in n for n in p.notes)
    # with that budget DistNE coarsens in one task (as the measured --memory-mb 8192 run did)
    assert DistNEConfig(memory_mb=p.memory_mb).coarsens_locally(RMAT20[1])
    assert not DistNEConfig().coarsens_locally(RMAT20[1])  # the old fixed 2048 MB did not


def test_small_graph_keeps_memory_checkpoints_and_a_given_budget():
    res = Resources(heap_mb=2048, slots=2, python_mb=8000, local=True)
    p = plan(1005, 16_064, 128, res)  # email-Eu-core
    assert p == Plan(4000, "MEMORY_AND_DISK", p.notes) and p.memory_mb == 4000
    given = plan(1005, 16_064, 128, res, memory_mb=1500)
    assert given.memory_mb == 1500 and given.storage == "MEMORY_AND_DISK"
    over = plan(1005, 16_064, 128, res, memory_mb=6000)
    assert over.memory_mb == 6000 and any("exceeds" in n for n in over.notes)


def test_storage_switches_where_the_largest_table_crowds_the_heap():
    """DISK_ONLY exactly when the largest checkpointed table exceeds a quarter of 0.6·(heap − 300 MB)."""
    res = Resources(heap_mb=2048, slots=2, python_mb=64_000, local=True)
    limit = 0.25 * 0.6 * (2048 - 300) * 2**20
    edges = int(limit / (2 * 32))  # arcs dominate at 64 B per undirected edge when nodes are few
    assert checkpoint_bytes(1000, edges, 16) == 2 * edges * 32
    assert plan(1000, edges, 16, res).storage == "MEMORY_AND_DISK"
    assert plan(1000, edges + 2**16, 16, res).storage == "DISK_ONLY"
    bigger = dataclasses.replace(res, heap_mb=8192)
    assert plan(1000, edges + 2**16, 16, bigger).storage == "MEMORY_AND_DISK"


def test_heap_too_small_for_the_slots_fails_naming_the_heap_flag():
    with pytest.raises(DoesNotFit, match=r"--driver-memory"):
        plan(1000, 5000, 16, Resources(heap_mb=400, slots=2, python_mb=8000, local=True))
    with pytest.raises(DoesNotFit, match=r"--executor-memory"):
        plan(1000, 5000, 16, Resources(heap_mb=400, slots=4, python_mb=8000, local=False))
    plan(1000, 5000, 16, Resources(heap_mb=600, slots=2, python_mb=8000, local=True))  # 300 + 2·16·8 MB fits


def test_graph_too_large_for_its_budget_fails_early_naming_the_flag():
    """One slot's share of the fusion rounds (2 copies of 1/slots of the arcs or messages) must fit one task."""
    res = Resources(heap_mb=1024, slots=2, python_mb=20_000, local=True)
    with pytest.raises(DoesNotFit, match=r"raise --memory-mb"):
        plan(*RMAT20, 128, res, memory_mb=1024)  # a given budget below need and below the free memory
    huge = (10**9, 16 * 10**9)
    with pytest.raises(DoesNotFit, match=r"local\[N\]"):
        plan(*huge, 128, res)  # nothing on this machine holds it: fewer slots or more memory
    cluster = Resources(heap_mb=8192, slots=4, python_mb=8192, local=False)
    with pytest.raises(DoesNotFit, match=r"spark.executor.pyspark.memory"):
        plan(*huge, 128, cluster)
    with pytest.raises(DoesNotFit, match=r"--memory-mb"):
        plan(1000, 5000, 16, res, memory_mb=100)  # below a Python worker's floor


def test_python_memory_local_and_cluster():
    assert python_memory_mb(10_000, 24_000, 2048, True) == 10_000 - 2048 - 1024
    assert python_memory_mb(23_000, 24_000, 2048, True) == int(0.75 * 24_000 - 2048)  # at most 3/4 of the machine
    assert python_memory_mb(500, 24_000, 2048, True) == 0
    assert python_memory_mb(0, 0, 4096, False, pyspark_mb=2048) == 2048
    assert python_memory_mb(0, 0, 4096, False, executor_mb=4096) == 4096


def test_budget_monotone_in_memory_and_slots():
    budgets = [plan(*RMAT20, 128, Resources(1024, s, py, True)).memory_mb
               for py in (8000, 16_000) for s in (1, 2, 4)]
    assert budgets == [8000, 4000, 2000, 16_000, 8000, 4000]
    assert np.all(np.diff([checkpoint_bytes(10**5, e, 128) for e in (10**6, 10**7, 10**8)]) > 0)


def test_size_job_sizes_a_default_budget_and_keeps_a_given_one(spark, monkeypatch):
    """The session side reads local[2]'s heap and slots; a budget equal to the flag's default is sized, another kept."""
    import collections

    import psutil

    from embeddings.spark.sizing import resources, size_job
    from jobs.embed_graph import EmbedGraphConfig

    vm = collections.namedtuple("vm", "available total")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: vm(12_000 * 2**20, 24_000 * 2**20))
    res = resources(spark)
    heap = parse_memory_mb(spark.conf.get("spark.driver.memory"), 0)
    assert res == Resources(heap_mb=heap, slots=2, python_mb=12_000 - heap - 1024, local=True)
    stats = {"nodes": 1005, "edges": 16_064}
    cfg = EmbedGraphConfig(edges="g", output="o", dim=16)
    sized, p = size_job(spark, cfg, stats, default_memory_mb=EmbedGraphConfig.memory_mb)
    assert sized.memory_mb == p.memory_mb == res.python_mb // 2
    kept, _ = size_job(spark, dataclasses.replace(cfg, memory_mb=1500), stats,
                       default_memory_mb=EmbedGraphConfig.memory_mb)
    assert kept.memory_mb == 1500
    same, p0 = size_job(spark, cfg, {}, default_memory_mb=EmbedGraphConfig.memory_mb)
    assert same == cfg and p0.storage == "MEMORY_AND_DISK"


def test_disk_only_checkpoint_keeps_rows_and_partitioning(spark):
    from pyspark.sql import functions as F

    from embeddings.spark.sizing import checkpoint, checkpoint_partitioned, checkpoint_storage

    df = spark.range(1000).withColumn("k", F.col("id") % 7)
    with checkpoint_storage("DISK_ONLY"):
        disk = checkpoint_partitioned(spark, df.repartition(3, "k"))
        plain = checkpoint(df)
    assert disk.rdd.getNumPartitions() == 3 and sorted(r.id for r in disk.collect()) == list(range(1000))
    assert plain.count() == 1000
    assert _level(disk) == _level(plain) == "Disk Serialized 1x Replicated"
    assert _level(checkpoint(df)) == "Disk Memory Deserialized 1x Replicated"  # outside: Spark's default


def _level(df) -> str:
    """The storage level of the RDD under a checkpointed DataFrame (its ``LogicalRDD``)."""
    return df._jdf.queryExecution().analyzed().rdd().getStorageLevel().description()


def test_job_fails_early_on_a_graph_that_cannot_fit(spark, tmp_path):
    """embed_graph reads the edge count from stats.json and stops before any embedding work, naming the flag."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs import embed_graph

    gdir = tmp_path / "g"
    for part, table in (("edges", {"src": [0, 1], "dst": [1, 2], "weight": [1.0, 1.0]}),
                        ("vertices", {"id": [0, 1, 2], "orig_id": [0, 1, 2]})):
        (gdir / part).mkdir(parents=True)
        pq.write_table(pa.table(table), gdir / part / "part-0.parquet")
    (gdir / "stats.json").write_text(json.dumps({"directed": False, "nodes": 10**9, "edges": 16 * 10**9}))
    cfg = embed_graph.parse_args(["--edges", str(gdir), "--output", str(tmp_path / "out"), "--memory-mb", "1024"])
    with pytest.raises(DoesNotFit, match="raise --memory-mb"):
        embed_graph.run(spark, cfg)
    assert not (tmp_path / "out").exists()


def test_cluster_checkpoints_are_replicated():
    """A local checkpoint has no lineage: on a cluster each checkpoint level is replicated on two executors
    (the loss of one executor keeps a copy); local mode (one block manager) keeps one copy."""
    small, big = (1000, 5000), RMAT20
    for local, want in ((True, ("MEMORY_AND_DISK", "DISK_ONLY")), (False, ("MEMORY_AND_DISK_2", "DISK_ONLY_2"))):
        res = Resources(heap_mb=1024, slots=2, python_mb=20_000, local=local)
        assert (plan(*small, 16, res).storage, plan(*big, 128, res).storage) == want


def test_checkpoint_level_replicates_off_local_masters():
    from graphs.spark_helpers import checkpoint_level

    assert checkpoint_level("local[2]", None) is None and checkpoint_level("local[*]", "DISK_ONLY") == "DISK_ONLY"
    for master in ("spark://10.0.0.1:7077", "yarn", "k8s://https://api:6443"):
        assert checkpoint_level(master, None) == "MEMORY_AND_DISK_2"
        assert checkpoint_level(master, "DISK_ONLY") == checkpoint_level(master, "DISK_ONLY_2") == "DISK_ONLY_2"


def test_local_checkpoint_levels(spark):
    """Local mode: the level as given (None: Spark's default); the rows are unchanged and the lineage is cut."""
    from graphs.spark_helpers import local_checkpoint

    def levels():
        return {i.id(): i.storageLevel().description() for i in spark.sparkContext._jsc.sc().getRDDStorageInfo()}

    df = spark.range(100).selectExpr("id", "id * 2 AS x")
    before = levels()
    a = local_checkpoint(df, level="DISK_ONLY")
    new = {k: v for k, v in levels().items() if k not in before}
    assert list(new.values()) == ["Disk Serialized 1x Replicated"]
    assert sorted(r.x for r in a.collect()) == list(range(0, 200, 2))
    assert "LogicalRDD" in a._jdf.queryExecution().optimizedPlan().toString()
    b = local_checkpoint(df)
    assert [v for k, v in levels().items() if k not in before and k not in new] == ["Disk Memory Deserialized 1x Replicated"]
    assert b.count() == 100
