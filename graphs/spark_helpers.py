"""Spark helpers shared by the graph, embedding and LDP Spark code and by ``jobs/``.

Nothing here knows a job or an algorithm: task slots and executor cores of the running cluster,
temporary session settings (:func:`temporary_conf`), the broadcast threshold, a checkpoint that keeps
its hash partitioning, shuffle keys that land in a chosen partition (:func:`partition_keys`), the
row count of a Parquet-backed DataFrame from its file footers (no Spark job), a Parquet reader that names
a bad input (:func:`read_parquet`) and small DataFrames from numpy columns. Imports only pyspark, numpy,
pandas and :mod:`graphs.errors`, so every package can use it without an import cycle.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from graphs.errors import InputFormatError

AQE = "spark.sql.adaptive.enabled"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster runs at once: ``N`` of ``local[N]`` (``local[*]``: the machine's cores), else
    the executors' default parallelism (``spark.default.parallelism`` may be set higher locally)."""
    sc = spark.sparkContext
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", sc.master)
    if m:
        n = m.group(1)
        return 1 if n is None else (os.cpu_count() or 1) if n == "*" else int(n)
    return max(1, sc.defaultParallelism)


def executor_cores(spark: SparkSession) -> int:
    """Cores of one executor: ``spark.executor.cores`` when set, ``N`` of ``local[N]``, else 1."""
    conf = spark.sparkContext.getConf()
    if conf.contains("spark.executor.cores"):
        return max(1, int(conf.get("spark.executor.cores")))
    return task_slots(spark) if spark.sparkContext.master.startswith("local") else 1


@contextmanager
def temporary_conf(spark: SparkSession, settings: Mapping[str, str | None]) -> Iterator[SparkSession]:
    """Set runtime SQL settings for the ``with`` block (``None``: unset), then restore the caller's values.

    A key the caller had not set is unset again on exit, so the session's default comes back.
    """
    saved = {k: spark.conf.get(k, None) for k in settings}
    try:
        for k, v in settings.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, str(v))
        yield spark
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def broadcast_limit(spark: SparkSession) -> int:
    """``spark.sql.autoBroadcastJoinThreshold`` in bytes (default 10 MiB)."""
    v = str(spark.conf.get("spark.sql.autoBroadcastJoinThreshold", "10485760")).strip().lower()
    mult = {"k": 2**10, "m": 2**20, "g": 2**30}
    v = v[:-1] if v.endswith("b") else v
    return int(float(v[:-1]) * mult[v[-1]]) if v and v[-1] in mult else int(v)


def checkpoint_level(master: str, level: str | None) -> str | None:
    """The storage level :func:`local_checkpoint` uses under ``master``: ``level`` in local mode, else ``level``
    (default ``MEMORY_AND_DISK``) replicated twice.

    >>> checkpoint_level("local[2]", None), checkpoint_level("spark://m:7077", "DISK_ONLY")
    (None, 'DISK_ONLY_2')
    """
    if master.startswith("local"):
        return level
    level = level or "MEMORY_AND_DISK"
    return level if level.endswith("_2") else level + "_2"


def local_checkpoint(df: DataFrame, eager: bool = True, level: str | None = None) -> DataFrame:
    """``df.localCheckpoint`` that survives the loss of one executor on a cluster.

    A local checkpoint cuts the lineage, so a block lost with its executor cannot be recomputed and the job fails
    ("Checkpoint block ... not found"). Off ``local`` masters the blocks are therefore stored replicated on two
    executors (``level`` + ``_2``; ``level`` a :class:`pyspark.StorageLevel` name, default ``MEMORY_AND_DISK``,
    Spark's own). Local mode has one block manager: ``level`` as given (``None``: Spark's default)."""
    from pyspark import StorageLevel

    level = checkpoint_level(df.sparkSession.sparkContext.master, level)
    if level is None:
        return df.localCheckpoint(eager)
    return df.localCheckpoint(eager, storageLevel=getattr(StorageLevel, level))


def checkpoint_partitioned(spark: SparkSession, df: DataFrame) -> DataFrame:
    """:func:`local_checkpoint` that keeps ``df``'s hash partitioning, so later groupings on the key shuffle
    nothing on this side (an adaptive plan reports an unknown partitioning: run this one non-adaptive)."""
    with temporary_conf(spark, {AQE: "false"}):
        return local_checkpoint(df)


def murmur3_int(x: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of an ``int`` column (Murmur3 x86 32-bit, seed 42): what ``HashPartitioning`` uses."""
    m = 0xFFFFFFFF

    def rotl(v: int, r: int) -> int:
        return ((v << r) | (v >> (32 - r))) & m

    k = rotl((x & m) * 0xCC9E2D51 & m, 15) * 0x1B873593 & m
    h = (rotl(seed ^ k, 13) * 5 + 0xE6546B64) & m
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & m
    h ^= h >> 13
    h = h * 0xC2B2AE35 & m
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_keys(n: int) -> list[int]:
    """``keys[i]``: the smallest non-negative int that hash partitioning into ``n`` partitions sends to
    partition ``i`` (``pmod(hash(k), n) = i``). Small ints as partition keys collide: with 2 partitions,
    0 and 1 both land in partition 1 and one core does all the work; keyed by ``keys[i]`` they do not."""
    keys: list[int | None] = [None] * n
    k, left = 0, n
    while left:
        i = murmur3_int(k) % n
        if keys[i] is None:
            keys[i], left = k, left - 1
        k += 1
    return keys


def key_col(index, keys: list[int]):
    """Column ``keys[index]`` (``index`` an int column in ``0..len(keys)−1``)."""
    return F.element_at(F.array(*[F.lit(k) for k in keys]), (index + 1).cast("int")).cast("int")


def one_group(df: DataFrame):
    """``df`` as a single group (``groupBy`` a constant): the rows of one ``applyInPandas`` task."""
    return df.withColumn("g", F.lit(0)).groupBy("g")


def _local_file(uri: str) -> Path | None:
    u = urlparse(uri)
    if u.scheme in ("", "file"):
        return Path(unquote(u.path))
    return None


def input_rows(df: DataFrame, bytes_per_row: int = 16) -> int | None:
    """Rows of the files ``df`` reads, without a Spark job: the Parquet footers' counts, or the size of a
    text file divided by ``bytes_per_row``. ``None`` when a file is not on the local file system."""
    import pyarrow.parquet as pq

    total = 0
    for uri in df.inputFiles():
        path = _local_file(uri)
        if path is None or not path.is_file():
            return None
        if path.suffix == ".parquet":
            total += pq.read_metadata(path).num_rows
        else:
            total += path.stat().st_size // bytes_per_row
    return total


def read_parquet(spark: SparkSession, path: str, columns: tuple[str, ...] = ()) -> DataFrame:
    """``spark.read.parquet(path)``, bad input refused up front with :class:`InputFormatError` naming it: a path
    Spark cannot read as Parquet, a local file whose footer is not Parquet's (checked with pyarrow, footers only),
    or a table without ``columns``. A corrupt data page behind a valid footer still fails in the job itself."""
    import pyarrow.parquet as pq

    try:
        df = spark.read.parquet(path)
    except Exception as e:  # AnalysisException / SparkException from the JVM: keep its first line
        raise InputFormatError(path, f"not readable as Parquet: {str(e).strip().splitlines()[0][:300]}") from e
    for uri in df.inputFiles():
        local = _local_file(uri)
        if local is not None and local.is_file():
            try:
                pq.read_metadata(local)
            except Exception as e:
                raise InputFormatError(str(local), f"not a valid Parquet file: {e}") from e
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputFormatError(path, f"Parquet input lacks column(s) {missing} (has {df.columns})")
    return df


def small_frame(spark: SparkSession, columns: Mapping[str, np.ndarray]) -> DataFrame:
    """A DataFrame of a few numpy columns built on the driver (Arrow when the session enables it)."""
    return spark.createDataFrame(pd.DataFrame({k: np.asarray(v) for k, v in columns.items()}))


def union_all(frames: list[DataFrame]) -> DataFrame:
    """The rows of every frame (``unionByName``, in order)."""
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out
