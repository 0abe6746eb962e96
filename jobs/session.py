"""SparkSession factory and shipping of the project's packages to executors.

* Launched by ``spark-submit``: the master and every ``--conf`` come from there; nothing is
  overridden. The project is shipped with ``--py-files dist/graphrec.zip`` (built by ``make``);
  if that was forgotten, :func:`get_session` adds the zip itself.
* Embedded (plain ``python``/pytest): ``local[*]`` with local settings — Arrow on, few shuffle
  partitions, UI off, ``SPARK_LOCAL_IP=127.0.0.1`` — the project root on the workers' path, and
  the driver JVM on ParallelGC, started from the class-data-sharing archive of :mod:`jobs.cds` when
  there is one.

No session exists at import time; call :func:`get_session` in ``main``.
"""
from __future__ import annotations

import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import Mapping

from jobs.cds import LOCAL_JAVA_OPTIONS, java_options

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphs", "embeddings", "ldp", "recsys", "jobs")
ZIP_PATH = PROJECT_ROOT / "dist" / "graphrec.zip"

LOCAL_CONF: dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    "spark.python.worker.reuse": "true",
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
    """Return a SparkSession: spark-submit's settings if launched by it, else local defaults."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if launched_by_spark_submit() and master is None:
        for k, v in (conf or {}).items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()
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
    for k, v in conf.items():
        builder = builder.config(k, v)
    java = f"{LOCAL_JAVA_OPTIONS} {conf.get('spark.driver.extraJavaOptions', '')}".strip()
    cds = java_options()  # the class-data-sharing archive of `make setup`: ~4 s less start-up
    try:
        spark = builder.config("spark.driver.extraJavaOptions", f"{cds} {java}".strip()).getOrCreate()
    except Exception as e:  # an unusable archive must never stop a job: start without it
        if not cds:
            raise
        log.warning("Spark driver did not start with the CDS archive (%s; its JVM may have left an hs_err_pid*.log "
                    "here); starting without it — rebuild it with `python -m jobs.cds --force`", e)
        spark = builder.config("spark.driver.extraJavaOptions", java).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


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
