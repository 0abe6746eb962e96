"""graphrec-submit: the project's ``spark-submit``, usable from a fresh shell (no activated venv).

The ``spark-submit`` of a pip-installed PySpark finds Spark through ``PYSPARK_DRIVER_PYTHON`` or
``PYSPARK_PYTHON``, else the system ``python3`` (which lacks pyspark): run by its path from a shell
without the venv activated it fails with ``/bin/spark-class: No such file or directory``. This
wrapper runs the ``spark-submit`` beside its own interpreter (``.venv/bin``) with

* ``PYSPARK_PYTHON`` / ``PYSPARK_DRIVER_PYTHON`` = that interpreter (unless set; on a cluster pass
  ``--conf spark.pyspark.python=...`` for the workers' path),
* ``--py-files <project>/dist/graphrec.zip`` (rebuilt when a source is newer; added to a given
  ``--py-files`` list),
* ``--driver-java-options`` of :mod:`jobs.runtime.cds` (ParallelGC, the quick JIT, the class-data-sharing
  archive when built) unless given or ``--deploy-mode cluster``,
* ``SPARK_LOCAL_IP=127.0.0.1`` for a local master (unless set),

and the application given as a job name (``ingest_graph``) or a path relative to the project root
(``jobs/ingest_graph.py``) when it is not a file relative to the working directory. Every other
argument is spark-submit's.

    graphrec-submit --master 'local[2]' jobs/ingest_graph.py --input edges.txt --format snap --output out/graph
    graphrec-submit --master spark://host:7077 knn --vectors /data/embedding --k 20 --output /data/friends
    graphrec-submit --spark-help      # spark-submit's own options

>>> cmd, env = command(["--master", "local[2]", "--conf", "a=b", "app.py", "--k", "5"], {}, build=False)
>>> cmd[1:4], cmd[-3:], env["SPARK_LOCAL_IP"]
(['--master', 'local[2]', '--conf'], ['app.py', '--k', '5'], '127.0.0.1')
>>> "--py-files" in cmd and cmd[cmd.index("--py-files") + 1].endswith("dist/graphrec.zip")
True
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT / "dist" / "graphrec.zip"
# spark-submit options that take no value; every other option takes one (``--opt value`` or ``--opt=value``)
FLAGS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version", "--usage-error"}


def split(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """``(spark-submit options, application, application arguments)``.

    >>> split(["--master", "yarn", "--verbose", "--conf=a=b", "app.py", "--x", "1"])
    (['--master', 'yarn', '--verbose', '--conf=a=b'], 'app.py', ['--x', '1'])
    """
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            return argv[:i], a, argv[i + 1:]
        i += 1 if a in FLAGS or (a.startswith("--") and "=" in a) else 2
    return argv, None, []


def _option(opts: list[str], name: str) -> tuple[int, str] | None:
    """Index and value of the last ``name value`` / ``name=value`` in ``opts``."""
    found = None
    for i, a in enumerate(opts):
        if a == name and i + 1 < len(opts):
            found = (i, opts[i + 1])
        elif a.startswith(name + "="):
            found = (i, a.split("=", 1)[1])
    return found


def _application(app: str) -> str:
    if Path(app).exists():
        return app
    for cand in (ROOT / app, ROOT / "jobs" / f"{app}.py"):
        if cand.is_file():
            return str(cand)
    return app


def command(argv: list[str], environ: dict[str, str], build: bool = True) -> tuple[list[str], dict[str, str]]:
    """The ``spark-submit`` command line and environment for ``graphrec-submit argv``."""
    python = sys.executable
    env = dict(environ)
    env.setdefault("PYSPARK_PYTHON", python)
    env.setdefault("PYSPARK_DRIVER_PYTHON", python)
    opts, app, args = split(argv)
    opts = list(opts)
    if app is not None:
        if build:
            from jobs.runtime.session import build_zip

            build_zip(ZIP)
        given = _option(opts, "--py-files")
        if given is None:
            opts += ["--py-files", str(ZIP)]
        else:
            i, value = given
            merged = f"{value},{ZIP}" if str(ZIP) not in value.split(",") else value
            opts[i:i + 2 if opts[i] == "--py-files" else i + 1] = ["--py-files", merged]
        deploy = _option(opts, "--deploy-mode")
        if _option(opts, "--driver-java-options") is None and (deploy is None or deploy[1] != "cluster"):
            from jobs.runtime.cds import driver_java_options

            opts += ["--driver-java-options", driver_java_options()]
        master = _option(opts, "--master")
        if master is None or master[1].startswith("local"):
            env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        app = _application(app)
    spark_submit = str(Path(python).with_name("spark-submit"))
    return [spark_submit, *opts, *([app] if app is not None else []), *args], env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.split("\n>>>")[0].rstrip())
        return 0
    if argv[0] == "--spark-help":
        argv = ["--help"]
    cmd, env = command(argv, dict(os.environ))
    if not Path(cmd[0]).exists():
        print(f"graphrec-submit: {cmd[0]} not found (install PySpark into this environment: make setup)", file=sys.stderr)
        return 127
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
