"""The driver JVM's class-data-sharing archive: named per runtime, used when present, never fatal."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.runtime import cds

ROOT = Path(__file__).resolve().parents[1]


def test_java_options_name_the_archive_only_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(cds, "CACHE_DIR", tmp_path)
    monkeypatch.delenv("GRAPHREC_SPARK_CDS", raising=False)
    path = cds.archive_path()
    if path is None:
        pytest.skip("no java on PATH")
    assert path.parent == tmp_path and path.suffix == ".jsa"
    assert cds.java_options() == ""
    path.write_bytes(b"x")
    assert cds.java_options() == f"-XX:SharedArchiveFile={path}"
    monkeypatch.setenv("GRAPHREC_SPARK_CDS", "0")
    assert cds.java_options() == ""


def test_archive_name_changes_with_the_java_runtime(tmp_path, monkeypatch):
    monkeypatch.setattr(cds, "CACHE_DIR", tmp_path)
    first = cds.archive_path()
    if first is None:
        pytest.skip("no java on PATH")
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(fake.parent))
    assert cds.archive_path() != first


def test_a_truncated_archive_does_not_stop_a_job(tmp_path):
    """A truncated archive makes the JVM refuse to start; get_session must log it and start without."""
    real = cds.archive_path()
    if real is None or not real.is_file():
        pytest.skip("no CDS archive built (make cds)")
    env = {**os.environ, "GRAPHREC_CDS_DIR": str(tmp_path), "GRAPHREC_SPARK_CDS": "1", "SPARK_LOCAL_IP": "127.0.0.1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    code = ("import logging; logging.basicConfig(level=logging.WARNING)\n"
            f"from jobs.runtime import cds; p = cds.archive_path(); src = open({str(real)!r}, 'rb').read(1 << 20)\n"
            "p.write_bytes(src); assert cds.java_options()\n"
            "from jobs.runtime.session import get_session\n"
            "s = get_session('cds-test', master='local[1]'); print('count', s.range(7).count()); s.stop()\n")
    # cwd: the refused JVM leaves its crash report (hs_err_pid*.log) there
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "count 7" in proc.stdout
    assert "did not start with the CDS archive" in proc.stderr


def test_local_driver_runs_the_throughput_collector_from_the_archive(spark):
    """The embedded session's JVM is on ParallelGC ('PS' collectors) and, when built, maps the archive."""
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = {beans.get(i).getName() for i in range(beans.size())}
    assert names == {"PS Scavenge", "PS MarkSweep"}, names
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    if cds.java_options():
        assert cds.java_options() in args, args


def test_cli_prints_the_local_drivers_java_options(tmp_path, monkeypatch, capsys):
    """`python -m jobs.runtime.cds --java-options` (for spark-submit) gives what embedded sessions use."""
    monkeypatch.setattr(cds, "CACHE_DIR", tmp_path)
    monkeypatch.delenv("GRAPHREC_SPARK_CDS", raising=False)
    assert cds.main(["--java-options"]) == 0
    assert capsys.readouterr().out.split() == ["-XX:+UseParallelGC"]
    path = cds.archive_path()
    if path is None:
        pytest.skip("no java on PATH")
    path.write_bytes(b"x")
    assert cds.main(["--java-options"]) == 0
    assert capsys.readouterr().out.split() == ["-XX:+UseParallelGC", f"-XX:SharedArchiveFile={path}"]


def test_local_conf_takes_the_driver_heap_from_the_environment(monkeypatch):
    """Embedded sessions: 2g by default, ``GRAPHREC_DRIVER_MEMORY`` to raise it, explicit conf above both."""
    from jobs.runtime.session import local_conf

    monkeypatch.delenv("GRAPHREC_DRIVER_MEMORY", raising=False)
    assert local_conf()["spark.driver.memory"] == "2g"
    monkeypatch.setenv("GRAPHREC_DRIVER_MEMORY", "6g")
    conf = local_conf({"spark.sql.shuffle.partitions": "4"})
    assert conf["spark.driver.memory"] == "6g" and conf["spark.sql.shuffle.partitions"] == "4"
    assert local_conf({"spark.driver.memory": "1g"})["spark.driver.memory"] == "1g"


def test_driver_options_add_the_quick_jit_unless_turned_off(tmp_path, monkeypatch, capsys):
    """A local driver runs C1 only (``-XX:TieredStopAtLevel=1``) unless ``GRAPHREC_SPARK_JIT=full``; the
    collector and the archive come with it (``--driver-options``, what graphrec-submit passes)."""
    monkeypatch.setattr(cds, "CACHE_DIR", tmp_path)
    monkeypatch.delenv("GRAPHREC_SPARK_CDS", raising=False)
    monkeypatch.delenv("GRAPHREC_SPARK_JIT", raising=False)
    assert cds.driver_java_options().split() == ["-XX:+UseParallelGC", "-XX:TieredStopAtLevel=1"]
    monkeypatch.setenv("GRAPHREC_SPARK_JIT", "full")
    assert cds.driver_java_options().split() == ["-XX:+UseParallelGC"]
    path = cds.archive_path()
    if path is None:
        pytest.skip("no java on PATH")
    path.write_bytes(b"x")
    monkeypatch.delenv("GRAPHREC_SPARK_JIT")
    assert cds.main(["--driver-options"]) == 0
    assert capsys.readouterr().out.split() == ["-XX:+UseParallelGC", "-XX:TieredStopAtLevel=1",
                                               f"-XX:SharedArchiveFile={path}"]
