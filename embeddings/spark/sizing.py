"""The session side of :mod:`embeddings.sizing`: read the heap, slots and free memory a Spark session gives, apply
the plan to a job's config, and checkpoint DistNE's tables at the planned storage level."""
from __future__ import annotations

import contextvars
import dataclasses
import logging
from contextlib import contextmanager
from typing import Iterator

from pyspark.sql import DataFrame, SparkSession

from embeddings.sizing import Plan, Resources, parse_memory_mb, plan, python_memory_mb
from graphs.spark_helpers import AQE, local_checkpoint, task_slots, temporary_conf

log = logging.getLogger(__name__)

_STORAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("distne_checkpoint_storage", default=None)
SPARK_DEFAULT_MEMORY_MB = 1024  # spark.driver.memory / spark.executor.memory when unset


def resources(spark: SparkSession) -> Resources:
    """The heap holding the executors' blocks (local: ``spark.driver.memory``, else ``spark.executor.memory``), the
    task slots sharing it, and the Python workers' memory (local: this machine's available memory, psutil)."""
    conf = spark.sparkContext.getConf()
    local = spark.sparkContext.master.startswith("local")
    driver = parse_memory_mb(conf.get("spark.driver.memory", None), SPARK_DEFAULT_MEMORY_MB)
    executor = parse_memory_mb(conf.get("spark.executor.memory", None), SPARK_DEFAULT_MEMORY_MB)
    heap = driver if local else executor
    if local:
        import psutil

        vm = psutil.virtual_memory()
        py = python_memory_mb(vm.available // 2**20, vm.total // 2**20, heap, True)
        slots = task_slots(spark)
    else:
        pyspark_mb = conf.get("spark.executor.pyspark.memory", None)
        py = python_memory_mb(0, 0, heap, False, parse_memory_mb(pyspark_mb, 0) or None, executor)
        slots = max(1, int(conf.get("spark.executor.cores", "1")))
    return Resources(heap_mb=heap, slots=slots, python_mb=py, local=local)


def size_job(spark: SparkSession, cfg, stats: dict, default_memory_mb: int | None = None):
    """``(cfg with its task budget sized, plan)`` for a job config with ``memory_mb`` and ``dim``, from the ingest's
    ``stats`` (``nodes``, ``edges``). A budget equal to ``default_memory_mb`` (the flag's default) counts as not
    given. Raises :class:`embeddings.sizing.DoesNotFit` before any Spark job when the graph cannot fit."""
    given = None if cfg.memory_mb == default_memory_mb else cfg.memory_mb
    nodes, edges = int(stats.get("nodes") or 0), int(stats.get("edges") or 0)
    if not edges:  # no stats.json: keep the flag, default storage
        return cfg, Plan(cfg.memory_mb, "MEMORY_AND_DISK", ("no edge count in stats.json: not sized",))
    res = resources(spark)
    p = plan(nodes, edges, cfg.dim, res, given)
    log.info("sized for %d nodes / %d edges on %s: task budget %d MB, checkpoints %s (%s)", nodes, edges, res,
             p.memory_mb, p.storage, "; ".join(p.notes))
    return dataclasses.replace(cfg, memory_mb=p.memory_mb), p


@contextmanager
def checkpoint_storage(level: str | None) -> Iterator[None]:
    """Checkpoints by :func:`checkpoint` inside the block use ``level`` (a :class:`StorageLevel` name; ``None``:
    Spark's default for a local checkpoint)."""
    token = _STORAGE.set(level)
    try:
        yield
    finally:
        _STORAGE.reset(token)


def checkpoint(df: DataFrame) -> DataFrame:
    """:func:`graphs.spark_helpers.local_checkpoint` at the storage level of the enclosing
    :func:`checkpoint_storage` (replicated on a cluster)."""
    return local_checkpoint(df, level=_STORAGE.get())


def checkpoint_partitioned(spark: SparkSession, df: DataFrame) -> DataFrame:
    """:func:`checkpoint` that keeps ``df``'s hash partitioning (run non-adaptive: an adaptive plan reports an
    unknown partitioning), like :func:`graphs.spark_helpers.checkpoint_partitioned`."""
    with temporary_conf(spark, {AQE: "false"}):
        return checkpoint(df)
