"""Class-data-sharing (AppCDS) archive for the local Spark driver JVM: faster job start-up.

A Spark driver loads ~10k classes from ~250 jars before its first job; here that is about half of a
small job's fixed cost (a bare session took ~7 s, its first job ~3 s). A dynamic CDS archive
(JDK 13+, JEP 350) records those classes once, parsed and verified; later JVMs map it and skip the
work (measured here: session 7.0 -> 4.0 s, first job 3.3 -> 2.0 s).

* ``python -m jobs.runtime.cds`` (run by ``make setup``) starts a throw-away local session with
  ``-XX:ArchiveClassesAtExit``, runs a small workload that touches the classes our jobs use
  (Parquet read/write, joins, aggregations, Arrow Python UDFs), and moves the archive into place
  only once the JVM has exited cleanly.
* :func:`archive_path` names the archive after the Java runtime and the Spark jars it was made
  with, so an upgrade or reinstall of either finds no archive (and runs without one until
  ``make setup`` builds the new one).
* :func:`java_options` is what :func:`jobs.runtime.session.get_session` adds to a local driver, next to
  ``LOCAL_JAVA_OPTIONS`` and the quick JIT (:func:`jit_options`); set ``GRAPHREC_SPARK_CDS=0`` to turn it
  off. Under spark-submit the driver JVM is already running, so pass
  ``--driver-java-options "$(python -m jobs.runtime.cds --driver-options)"`` (:func:`driver_java_options`, all of
  them as one string) there to get the same driver; ``graphrec-submit`` does.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The local driver JVM (which also runs the executors): the throughput collector. Batch jobs with a 2 GiB heap
# spend less on ParallelGC than on the default G1 (Slashdot DistNE, 6 alternated pairs: 49.7 vs 54.2 s wall,
# 89.7 vs 100.0 CPU s; benchmarks/README.md). The archive is built under it.
LOCAL_JAVA_OPTIONS = "-XX:+UseParallelGC"
# The quick JIT: C1 only, no C2 compilations competing with the job for the cores. A small job's JVM spends much
# of its CPU compiling Spark's code paths once; measured by spark-submit on local[2] at load 9-14
# (benchmarks.fixed_cost; CPU seconds of the process tree, C1 vs tiered): sample_graph 10⁴ edges 28.9 vs 47.1,
# 10⁶ edges 40.6 vs 60.8; ingest_graph 10⁶ edges 37.6 vs 53.7; embed_graph 10⁶ edges 51.0 vs 66.4 (its work is
# numpy). GRAPHREC_SPARK_JIT=full keeps the tiered JIT (long JVM-bound runs; not measured above 10⁶ edges).
QUICK_JIT = "-XX:TieredStopAtLevel=1"
CACHE_DIR = Path(os.environ.get("GRAPHREC_CDS_DIR", PROJECT_ROOT / "build" / "cds"))


def _java() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    exe = Path(home) / "bin" / "java" if home else shutil.which("java")
    return Path(exe).resolve() if exe and Path(exe).exists() else None


def archive_path() -> Path | None:
    """The archive for this Java runtime and Spark install (whether or not it exists yet)."""
    import pyspark

    java = _java()
    if java is None:
        return None
    jars = Path(pyspark.__file__).parent / "jars"
    # the JVM rejects an archive whose jars changed (a reinstall): their mtimes are part of the name
    names = sorted(f"{p.name}:{p.stat().st_mtime_ns}" for p in jars.glob("*.jar")) if jars.is_dir() else []
    key = "\n".join([str(java), str(java.stat().st_size), str(jars), *names])
    return CACHE_DIR / f"spark-{pyspark.__version__}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.jsa"


def java_options() -> str:
    """``-XX:SharedArchiveFile=...`` when an archive for this runtime exists, else ``""``."""
    if os.environ.get("GRAPHREC_SPARK_CDS", "1") == "0":
        return ""
    path = archive_path()
    return f"-XX:SharedArchiveFile={path}" if path is not None and path.is_file() else ""


def jit_options() -> str:
    """:data:`QUICK_JIT` unless ``GRAPHREC_SPARK_JIT=full``."""
    return "" if os.environ.get("GRAPHREC_SPARK_JIT", "quick") == "full" else QUICK_JIT


def driver_java_options() -> str:
    """Every JVM option of a local driver: the collector, the JIT (:func:`jit_options`) and the archive."""
    return " ".join(o for o in (LOCAL_JAVA_OPTIONS, jit_options(), java_options()) if o)


def build(force: bool = False) -> Path | None:
    """Create the archive for this runtime unless it exists; return its path (``None``: no Java)."""
    path = archive_path()
    if path is None:
        log.warning("no java found: no CDS archive built")
        return None
    if path.is_file() and not force:
        log.info("CDS archive present: %s", path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    env = {**os.environ, "GRAPHREC_SPARK_CDS": "0", "GRAPHREC_CDS_DUMP": f"-XX:ArchiveClassesAtExit={tmp}",
           "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
    proc = subprocess.run([sys.executable, "-c", "from jobs.runtime.cds_workload import workload; workload()"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"CDS archive build failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    os.replace(tmp, path)
    for old in path.parent.glob("spark-*.jsa"):  # archives of a previous runtime are dead weight
        if old != path:
            old.unlink()
    log.info("CDS archive written: %s (%.0f MB)", path, path.stat().st_size / 2**20)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.runtime.cds", description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even if the archive exists")
    ap.add_argument("--java-options", action="store_true",
                    help="print the local driver's JVM options (collector, and the archive when built) and exit")
    ap.add_argument("--driver-options", action="store_true",
                    help="print every JVM option of a local driver (collector, JIT, archive) for "
                         "spark.driver.extraJavaOptions / --driver-java-options, and exit")
    args = ap.parse_args(argv)
    if args.java_options:
        print(f"{LOCAL_JAVA_OPTIONS} {java_options()}".strip())
        return 0
    if args.driver_options:
        print(driver_java_options())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build(force=args.force)
    except RuntimeError as e:  # only a start-up optimisation: jobs run without it, so setup goes on
        log.warning("%s\njobs will start without a CDS archive", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
