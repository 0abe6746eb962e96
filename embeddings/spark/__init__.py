"""DistNE and kNN on Spark, one module per stage. Imported only by ``jobs/`` (``embeddings.spark.embed.embed``,
``embeddings.spark.knn.knn_batches``).

* :mod:`.coarsen` — capped label propagation as message rounds, renumbering, quotient graphs;
* :mod:`.top` — the one-task stages: the top level (last levels, ProNE of the quotient, parts), a small graph whole;
* :mod:`.parts` — part subgraphs embedded in the task slot that holds their packed edges;
* :mod:`.fuse` — fusion by propagation (message rounds between parts) and the final map;
* :mod:`.output` — ``vectors(id, vector)`` for every vertex;
* :mod:`.embed` — :func:`embed`, the stages in order, under temporary session settings;
* :mod:`.codec` — binary values for edges and vectors; :mod:`.rows` — row schemas and named row kinds;
  :mod:`.stats` — typed figures of a run; :mod:`.knn` — the kNN job's search.

The driver never collects edges: it only sums ``d × d`` Gram matrices (one per task) and reads a few counts.
The per-task numerics are the pure functions of :mod:`embeddings.distne`, :mod:`embeddings.partition` and
:mod:`embeddings.fusion`, so the Spark run and :class:`embeddings.distne.DistNE` follow the same steps. Generic
Spark helpers (task slots, temporary settings, partition keys) are in :mod:`graphs.spark_helpers`; the ones
callers used from here are re-exported. Nothing else is imported here: a Python worker that unpickles a
stage's function loads only that stage's module.
"""
from graphs.spark_helpers import executor_cores, partition_keys, task_slots

__all__ = ["executor_cores", "partition_keys", "task_slots"]
