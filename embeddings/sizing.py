"""Sizing of a DistNE job from the graph and the memory it is given (pure: no Spark, no I/O).

:func:`plan` turns the graph's size (``nodes``, undirected ``edges``: the ingest's ``stats.json``) and the
:class:`Resources` of the session (the JVM heap that holds the executors' blocks, the task slots sharing it, the
memory the Python workers may use) into a :class:`Plan`:

* **task budget** ``memory_mb`` — the Python memory of one embedding task, ``python_mb / slots`` unless the user
  gave ``--memory-mb``; it fixes M, the subgraph edge bound and whether the graph is coarsened in one task
  (:class:`embeddings.distne.DistNEConfig`);
* **checkpoint storage** — ``DISK_ONLY`` when the largest checkpointed table would take more than a quarter of the
  heap's unified memory ``0.6·(heap − 300 MB)`` (Spark's defaults): in local mode one JVM holds every executor's
  blocks, and the 16M-edge R-MAT's 1 GB of packed edges ran a 2g heap out of memory in a ``localCheckpoint``;
  otherwise ``MEMORY_AND_DISK`` (Spark's default for a local checkpoint); on a cluster either level replicated on
  two executors (``_2``: a local checkpoint has no lineage to recompute a block lost with its executor);
* **fails early** (:class:`DoesNotFit`, naming the flag to change) when the heap cannot stream the binary rows of
  its task slots, or one task's budget cannot hold its share of the fusion rounds (every slot holds the packed
  edges and vectors of ``1/slots`` of the graph, whatever M is).

Byte constants are the measured ones of :class:`embeddings.distne.DistNEConfig` and :mod:`embeddings.spark.codec`.

>>> p = plan(1_048_576, 15_703_162, 128, Resources(heap_mb=1024, slots=2, python_mb=20_000, local=True))
>>> p.memory_mb, p.storage
(10000, 'DISK_ONLY')
>>> plan(1000, 5000, 128, Resources(heap_mb=1024, slots=2, python_mb=8000, local=True)).storage
'MEMORY_AND_DISK'
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

RESERVED_HEAP_MB = 300  # Spark's reserved system memory
MEMORY_FRACTION = 0.6  # spark.memory.fraction
STORAGE_SHARE = 0.25  # share of the unified memory checkpointed blocks may take before they go to disk
ROW_MB = 8  # one binary row (codec.CHUNK_EDGES ARC records)
ROWS_IN_FLIGHT = 16  # rows a task may hold between two memory checks (spark.storage.unrollMemoryCheckPeriod)
ARC_BYTES = 32  # codec.ARC record, per directed edge
MIN_TASK_MB = 512  # a Python worker with numpy/pandas/pyarrow and a few subgraph blocks
ARROW_COPIES = 2  # a task's pandas frame plus the Arrow buffers it came from
PYTHON_RESERVE_MB = 1024  # left to the OS, the driver's Python and page cache in local mode


class DoesNotFit(ValueError):
    """The graph cannot be embedded with the memory given; the message names the flag to change."""


@dataclass(frozen=True)
class Resources:
    """What a session gives the job: ``heap_mb`` of the JVM that holds the executors' blocks (local mode:
    ``spark.driver.memory``; a cluster: ``spark.executor.memory``), the ``slots`` (tasks at once) sharing it,
    ``python_mb`` for those tasks' Python workers, and whether the master is local."""

    heap_mb: int
    slots: int
    python_mb: int
    local: bool = True


@dataclass(frozen=True)
class Plan:
    """The job's sizes: one task's budget, the storage level of the checkpoints, and why."""

    memory_mb: int
    storage: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def parse_memory_mb(value: str | int | None, default_mb: int) -> int:
    """A JVM memory string (``"2g"``, ``"512m"``, ``"1024k"``, bytes without a unit as Spark reads
    ``spark.*.memory``: MiB) in MiB; ``None`` or empty: ``default_mb``."""
    if value is None or str(value).strip() == "":
        return default_mb
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", str(value).lower())
    if not m:
        raise ValueError(f"not a memory size: {value!r}")
    scale = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 ** 2}[m.group(2)]
    return int(float(m.group(1)) * scale)


def heap_flag(local: bool) -> str:
    """The spark-submit flag that sets the heap holding the executors' blocks."""
    return "--driver-memory (spark.driver.memory; local mode runs the executors in the driver JVM)" if local \
        else "--executor-memory (spark.executor.memory)"


def checkpoint_bytes(nodes: int, edges: int, dim: int) -> int:
    """The largest table DistNE checkpoints: the packed arcs (``2|E|`` ARC records) or the fusion messages
    (each node's state and current vector, ``≈ 3·4d`` bytes, plus a halo copy at most as large)."""
    return max(2 * edges * ARC_BYTES, 2 * nodes * (3 * 4 * dim + 48))


def fusion_task_mb(nodes: int, edges: int, dim: int, slots: int) -> float:
    """Python memory of one fusion-round task: the packed edges and messages of ``1/slots`` of the graph, held
    as Arrow buffers and a pandas frame."""
    return ARROW_COPIES * checkpoint_bytes(nodes, edges, dim) / max(slots, 1) / 2**20


def plan(nodes: int, edges: int, dim: int, res: Resources, memory_mb: int | None = None) -> Plan:
    """Size a DistNE job for a graph of ``nodes`` and ``edges`` (undirected) embedded in ``dim`` dimensions.

    ``memory_mb``: the task budget the user gave (kept; a note if it exceeds the memory per slot), ``None`` to
    derive it as ``python_mb / slots``. Raises :class:`DoesNotFit` when the heap cannot stream the slots' rows
    (``300 MB + slots·ROWS_IN_FLIGHT·8 MB``) or the budget cannot hold one slot's share of the fusion rounds.
    """
    if res.slots < 1 or res.heap_mb < 1:
        raise ValueError(f"need slots >= 1 and heap_mb >= 1, got {res}")
    notes = []
    min_heap = RESERVED_HEAP_MB + res.slots * ROWS_IN_FLIGHT * ROW_MB
    if res.heap_mb < min_heap:
        raise DoesNotFit(f"a {res.heap_mb} MB heap cannot stream the binary rows of {res.slots} task slots "
                         f"(needs >= {min_heap} MB): raise {heap_flag(res.local)} or run fewer slots")
    per_slot = res.python_mb // res.slots
    if memory_mb is None:
        memory_mb = per_slot
        notes.append(f"task budget {memory_mb} MB = {res.python_mb} MB of Python memory / {res.slots} slots")
    elif memory_mb > per_slot:
        notes.append(f"--memory-mb {memory_mb} exceeds the {per_slot} MB per slot of {res.python_mb} MB / "
                     f"{res.slots} slots: tasks may swap or be killed")
    need = max(MIN_TASK_MB, fusion_task_mb(nodes, edges, dim, res.slots))
    if memory_mb < need:
        more = "--memory-mb" if memory_mb < per_slot else (
            "the machine's free memory or local[N] with fewer N" if res.local
            else "spark.executor.pyspark.memory (or more executors)")
        raise DoesNotFit(f"{nodes} nodes / {edges} edges at d = {dim} need about {need:.0f} MB per task "
                         f"({res.slots} slots share the fusion rounds), {memory_mb} MB given: raise {more}")
    unified = MEMORY_FRACTION * (res.heap_mb - RESERVED_HEAP_MB)
    big = checkpoint_bytes(nodes, edges, dim) / 2**20
    if big > STORAGE_SHARE * unified:
        storage = "DISK_ONLY"
        notes.append(f"checkpoints on disk: the largest ({big:.0f} MB) exceeds {STORAGE_SHARE:.0%} of the heap's "
                     f"{unified:.0f} MB unified memory")
    else:
        storage = "MEMORY_AND_DISK"
    if not res.local:
        storage += "_2"
        notes.append("checkpoints replicated on two executors: a local checkpoint has no lineage, so one lost "
                     "executor must not hold its only copy")
    return Plan(int(memory_mb), storage, tuple(notes))


def python_memory_mb(available_mb: int, total_mb: int, heap_mb: int, local: bool,
                     pyspark_mb: int | None = None, executor_mb: int | None = None) -> int:
    """Memory for the Python workers of one JVM's tasks. Local mode: the machine's available memory less the heap
    (not yet committed by the JVM) and a reserve, at most 3/4 of the total less the heap. A cluster:
    ``spark.executor.pyspark.memory`` when set, else assume as much as the executor's heap."""
    if not local:
        return int(pyspark_mb or executor_mb or heap_mb)
    return int(max(0, min(available_mb - heap_mb - PYTHON_RESERVE_MB, 0.75 * total_mb - heap_mb)))
