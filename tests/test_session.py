"""Session settings: job defaults for what the user did not set, never over what they set; Spark helpers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.runtime import session

ROOT = Path(__file__).resolve().parents[1]


class _Builder:
    """Records ``builder.config`` calls."""

    def __init__(self):
        self.conf: dict[str, str] = {}

    def config(self, k, v):
        self.conf[k] = v
        return self


def test_defaults_fill_only_keys_the_user_did_not_set():
    b = session._with_defaults(_Builder(), {"spark.sql.session.timeZone": "Europe/Paris"},
                               {"spark.sql.adaptive.enabled", "spark.master"})
    assert b.conf["spark.sql.session.timeZone"] == "Europe/Paris"  # the caller's conf
    assert "spark.sql.adaptive.enabled" not in b.conf  # spark-submit's --conf: left to spark-submit
    assert b.conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    chosen = set(b.conf[session.DEFAULTED].split(","))
    assert chosen == set(session.JOB_DEFAULTS) - {"spark.sql.session.timeZone", "spark.sql.adaptive.enabled"} | {
        session.SHUFFLE_PARTITIONS}
    b = session._with_defaults(_Builder(), {}, {session.SHUFFLE_PARTITIONS})
    assert session.SHUFFLE_PARTITIONS not in b.conf[session.DEFAULTED].split(",")


PROBE = """
import json
from jobs.runtime.session import get_session, fit_shuffle_partitions, defaulted_keys
s = get_session("probe")
keys = ["spark.sql.shuffle.partitions", "spark.sql.execution.arrow.pyspark.enabled", "spark.sql.adaptive.enabled",
        "spark.sql.session.timeZone"]
out = {k: s.conf.get(k) for k in keys}
out["defaulted"] = sorted(defaulted_keys(s))
out["fit_small"] = fit_shuffle_partitions(s, 10_000)
out["aqe_small"] = s.conf.get("spark.sql.adaptive.enabled")
out["fit_big"] = fit_shuffle_partitions(s, 40_000_000)
out["aqe_big"] = s.conf.get("spark.sql.adaptive.enabled")
out["jvm"] = list(s.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
print("PROBE " + json.dumps(out))
"""


@pytest.mark.spark
def test_spark_submit_run_gets_the_defaults_but_keeps_its_conf(tmp_path):
    """Under spark-submit: 2 shuffle partitions on local[2] (not Spark's 200), raised for a large input; a
    --conf value stays as given and is never resized."""
    from jobs.submit import command

    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    cmd, env = command(["--master", "local[2]", "--conf", "spark.ui.enabled=false",
                        "--conf", "spark.sql.execution.arrow.pyspark.enabled=false", str(script)], dict(os.environ))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert got["spark.sql.shuffle.partitions"] == "2" and got["fit_small"] == 2 and got["fit_big"] == 10
    assert (got["aqe_small"], got["aqe_big"]) == ("false", "true")  # nothing to coalesce in one partition per slot
    assert "-XX:TieredStopAtLevel=1" in got["jvm"]  # graphrec-submit's driver: the quick JIT
    assert got["spark.sql.execution.arrow.pyspark.enabled"] == "false"  # the user's --conf
    assert got["spark.sql.adaptive.enabled"] == "true" and got["spark.sql.session.timeZone"] == "UTC"
    assert "spark.sql.execution.arrow.pyspark.enabled" not in got["defaulted"]
    cmd, env = command(["--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=7", str(script)],
                       dict(os.environ))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert got["spark.sql.shuffle.partitions"] == "7" and got["fit_small"] == 7 and got["fit_big"] == 7
    assert got["aqe_small"] == "true"  # not resized: left adaptive
    assert session.SHUFFLE_PARTITIONS not in got["defaulted"]
    # the DAGs' defaults: shuffle partitions 0 (= sized by the job) and empty driver JVM options
    cmd, env = command(["--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=0",
                        "--conf", "spark.driver.extraJavaOptions=", str(script)], dict(os.environ))
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert got["spark.sql.shuffle.partitions"] == "2" and (got["fit_small"], got["fit_big"]) == (2, 10)
    assert session.SHUFFLE_PARTITIONS in got["defaulted"]


@pytest.mark.spark
def test_running_session_is_returned_as_it_is(spark):
    """A job's get_session inside a test keeps the test session's settings (its 4 shuffle partitions)."""
    assert session.get_session("a-job") is spark
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    assert session.fit_shuffle_partitions(spark, 10**9) == 4  # set by the caller: never resized


@pytest.mark.spark
def test_temporary_conf_restores_set_and_unset_keys(spark):
    from graphs.spark_helpers import temporary_conf

    key, unset = "spark.sql.shuffle.partitions", "spark.sql.adaptive.localShuffleReader.enabled"
    assert spark.conf.get(unset, None) is None
    with temporary_conf(spark, {key: "3", unset: "false"}):
        assert spark.conf.get(key) == "3" and spark.conf.get(unset) == "false"
    assert spark.conf.get(key) == "4" and spark.conf.get(unset, None) is None
    with pytest.raises(RuntimeError):
        with temporary_conf(spark, {key: "5"}):
            raise RuntimeError("boom")
    assert spark.conf.get(key) == "4"


@pytest.mark.spark
def test_input_rows_reads_the_parquet_footers(spark, tmp_path):
    from graphs.spark_helpers import input_rows

    for i, n in enumerate((5, 7)):
        (tmp_path / "t").mkdir(exist_ok=True)
        pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64)}), tmp_path / "t" / f"part-{i}.parquet")
    df = spark.read.parquet(str(tmp_path / "t"))
    assert input_rows(df) == 12 == df.count()


def test_job_modules_import_without_a_session():
    """The jobs stay importable (their --help) with the new session module: no session at import."""
    code = "import jobs.runtime.session, jobs.knn, jobs.sample_graph, jobs.embed_graph"
    proc = subprocess.run([sys.executable, "-c", code],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
