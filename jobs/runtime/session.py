"""SparkSession factory and shipping of the project's packages to executors.

Every job gets the same settings whether ``spark-submit`` launched it or it runs embedded
(plain ``python``/pytest); a setting the user gave is never overridden:

* :data:`JOB_DEFAULTS` — Arrow for pandas conversions, UTC session time, adaptive query execution with
  coalesced shuffle partitions, WARN logging, no console progress bar — applied to every key the user did not set
  (``--conf``, ``spark-defaults.conf``, or ``conf=`` of :func:`get_session`);
* ``spark.sql.shuffle.partitions``, when not set, starts at the cluster's task slots (``N`` of
  ``local[N]``) instead of Spark's 200 — on a small input 200 partitions are 200 tasks per shuffle, each
  a Python round-trip under a pandas UDF — and a job sizes it to its input with
  :func:`fit_shuffle_partitions` (a small input also runs non-adaptive). The keys the session chose are
  listed in ``spark.graphrec.defaulted``.
* The driver JVM of a local session (embedded, or by ``graphrec-submit``) runs
  :func:`jobs.runtime.cds.driver_java_options`: ParallelGC, the quick (C1-only) JIT and the class-data-sharing archive.
* Launched by ``spark-submit``: the master and every ``--conf`` come from there. The project is shipped
  with ``--py-files dist/graphrec.zip`` (built by ``make``); if that was forgotten, :func:`get_session`
  adds the zip itself.
* Embedded: ``local[*]`` (or ``GRAPHREC_SPARK_MASTER``) with :data:`LOCAL_CONF` — UI off, a 2 GiB heap,
  ``SPARK_LOCAL_IP=127.0.0.1`` — the project root on the workers' path, and the driver JVM on
  ParallelGC, started from the class-data-sharing archive of :mod:`jobs.runtime.cds` when there is one.

No session exists at import time; call :func:`get_session` in ``main``.
"""
from __future__ import annotations

import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import Mapping

from jobs.runtime.cds import LOCAL_JAVA_OPTIONS, java_options, jit_options

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graphs", "embeddings", "ldp", "recsys", "jobs")
ZIP_PATH = PROJECT_ROOT / "dist" / "graphrec.zip"

SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
AQE = "spark.sql.adaptive.enabled"
DEFAULTED = "spark.graphrec.defaulted"  # comma-separated keys the session chose because the user did not
ROWS_PER_PARTITION = 4_000_000  # input rows per shuffle partition above which a job raises the partitions

# every job's settings, unless the user set the key
JOB_DEFAULTS: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",  # spark-submit's INFO lines: thousands per small job, all written by the driver
    "spark.python.worker.reuse": "true",
}
# an embedded session's local settings (spark-submit users pass theirs on the command line)
LOCAL_CONF: dict[str, str] = {
    "spark.default.parallelism": "8",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
}


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (the JVM gateway exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_zip(path: Path = ZIP_PATH) -> Path:
    """Zip the project's packages (``*.py`` only) for ``--py-files``; rebuilt if a source is newer."""
    sources = [p for pkg in PACKAGES for p in (PROJECT_ROOT / pkg).rglob("*.py")]
    if path.exists() and all(p.stat().st_mtime <= path.stat().st_mtime for p in sources):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(sources):
            zf.write(p, p.relative_to(PROJECT_ROOT).as_posix())
    os.replace(tmp, path)
    return path


def local_conf(conf: Mapping[str, str] | None = None) -> dict[str, str]:
    """An embedded session's settings: :data:`LOCAL_CONF`, the heap from ``GRAPHREC_DRIVER_MEMORY``, then ``conf``.

    In local mode one JVM is the driver and every executor (their shuffle, spill and checkpoint blocks): 2g
    runs everything up to R-MAT 2^19 (7.7M edges); the 1.6e7-edge embedding needs more (``6g``)."""
    heap = os.environ.get("GRAPHREC_DRIVER_MEMORY")
    return {**LOCAL_CONF, **({"spark.driver.memory": heap} if heap else {}), **(conf or {})}


def get_session(app_name: str, master: str | None = None, conf: Mapping[str, str] | None = None):
    """Return a SparkSession: spark-submit's settings if launched by it, else local ones; plus the job defaults.

    An already running session is returned as it is (only ``conf`` is applied): a job called inside a test
    or a benchmark keeps that process's settings.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if SparkContext._active_spark_context is not None:
        for k, v in (conf or {}).items():
            builder = builder.config(k, v)
        return builder.getOrCreate()
    if launched_by_spark_submit() and master is None:
        given = dict(conf or {})
        builder = _with_defaults(builder, given, _submitted_keys())
        spark = builder.getOrCreate()
        _size_defaults(spark)
        _ensure_shipped(spark)
        return spark
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Local workers inherit the JVM's environment: put the project root on their path.
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    builder = builder.master(master or os.environ.get("GRAPHREC_SPARK_MASTER", "local[*]"))
    conf = local_conf(conf)
    builder = _with_defaults(builder, conf, set())
    java = " ".join(o for o in (LOCAL_JAVA_OPTIONS, jit_options(), conf.get("spark.driver.extraJavaOptions", "")) if o)
    cds = java_options()  # the class-data-sharing archive of `make setup`: ~4 s less start-up
    try:
        spark = builder.config("spark.driver.extraJavaOptions", f"{cds} {java}".strip()).getOrCreate()
    except Exception as e:  # an unusable archive must never stop a job: start without it
        if not cds:
            raise
        log.warning("Spark driver did not start with the CDS archive (%s; its JVM may have left an hs_err_pid*.log "
                    "here); starting without it — rebuild it with `python -m jobs.runtime.cds --force`", e)
        spark = builder.config("spark.driver.extraJavaOptions", java).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    _size_defaults(spark)
    return spark


def _submitted_keys() -> set[str]:
    """Keys spark-submit set (``--conf``, ``--driver-memory`` …, ``spark-defaults.conf``): the JVM's ``spark.*``
    system properties, read before the SparkContext exists (``spark.sql.shuffle.partitions=0`` counts as unset)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    # shuffle partitions of 0 (the DAGs' default Param) mean "not set": the job sizes them from its input
    return {k for k, v in SparkConf().getAll() if not (k == SHUFFLE_PARTITIONS and v.strip() == "0")}


def _with_defaults(builder, conf: Mapping[str, str], submitted: set[str]):
    """``builder`` with ``conf``, then :data:`JOB_DEFAULTS` for every key neither in ``conf`` nor ``submitted``,
    and the list of the keys the session chose (``spark.graphrec.defaulted``)."""
    given = set(conf) | submitted
    chosen = {k: v for k, v in JOB_DEFAULTS.items() if k not in given}
    for k, v in {**conf, **chosen}.items():
        builder = builder.config(k, v)
    defaulted = sorted(chosen) + ([SHUFFLE_PARTITIONS] if SHUFFLE_PARTITIONS not in given else [])
    if SHUFFLE_PARTITIONS not in given:  # Spark's own default until :func:`_size_defaults` (replaces a submitted 0)
        builder = builder.config(SHUFFLE_PARTITIONS, "200")
    return builder.config(DEFAULTED, ",".join(defaulted))


def defaulted_keys(spark) -> set[str]:
    """The keys :func:`get_session` chose for this session (the user did not set them)."""
    return {k for k in (spark.conf.get(DEFAULTED, "") or "").split(",") if k}


def _size_defaults(spark) -> None:
    """Shuffle partitions not set by the user: the task slots (a job raises them with :func:`fit_shuffle_partitions`)."""
    from graphs.spark_helpers import task_slots

    if SHUFFLE_PARTITIONS in defaulted_keys(spark):
        spark.conf.set(SHUFFLE_PARTITIONS, str(task_slots(spark)))


def fit_shuffle_partitions(spark, rows: int | None, rows_per_partition: int = ROWS_PER_PARTITION) -> int:
    """Size the shuffle partitions to a job's input of ``rows`` rows — ``⌈rows / rows_per_partition⌉``, at least the
    task slots — unless the user set them (then, or with ``rows=None``, nothing changes); returns the partitions.

    A small input (one partition per task slot) also runs non-adaptive unless the user set
    ``spark.sql.adaptive.enabled``: there is nothing to coalesce, and adaptive execution plans and submits every
    shuffle stage as a Spark job of its own (sample_graph, 10⁴ edges: 43 jobs adaptive, 12 not; 20 % less CPU).
    """
    from graphs.spark_helpers import task_slots

    chosen = defaulted_keys(spark)
    if rows is not None and SHUFFLE_PARTITIONS in chosen:
        slots = task_slots(spark)
        n = max(slots, -(-int(rows) // rows_per_partition))
        spark.conf.set(SHUFFLE_PARTITIONS, str(n))
        if AQE in chosen:
            spark.conf.set(AQE, "true" if n > slots else "false")
        log.info("shuffle partitions: %d for %d input rows (adaptive: %s)", n, rows, spark.conf.get(AQE))
    return int(spark.conf.get(SHUFFLE_PARTITIONS))


def _ensure_shipped(spark) -> None:
    """Add the project zip to the executors unless spark-submit already shipped it."""
    shipped = spark.sparkContext.getConf().get("spark.submit.pyFiles", "") or ""
    if "graphrec" in shipped:
        return
    if not (PROJECT_ROOT / "graphs").is_dir():  # running from the zip itself: nothing to build
        log.warning("project zip not passed with --py-files and sources not found; executors may fail to import")
        return
    zp = build_zip()
    log.info("shipping %s to executors", zp)
    spark.sparkContext.addPyFile(str(zp))
