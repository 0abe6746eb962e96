"""A real Spark standalone cluster on 127.0.0.1: master + worker JVMs from the installed pyspark.

The generate job runs a ``mapInPandas`` on the executors, so they must import ``graphs`` — and the
executors' Python cannot import the project from an install: only the ``--py-files`` zip gives it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.runtime.session import build_zip

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bare_python(tmp: Path) -> str:
    """A Python with the project venv's dependencies but not the project: ``make setup`` installs graphrec
    into the venv (editable, through a ``.pth`` hook), so executors on the venv's own Python could import
    it without ``--py-files``. A path line in a ``.pth`` adds the venv's site-packages to ``sys.path``
    without running the ``.pth`` hooks there, so only the shipped zip can provide the project."""
    venv = tmp / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir() and
                Path(p).resolve().is_relative_to(Path(sys.prefix).resolve()))
    (next((venv / "lib").glob("python3*")) / "site-packages" / "project_deps.pth").write_text(site + "\n")
    return str(venv / "bin" / "python")


def _env(tmp: Path, python: str = sys.executable) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "PYTHON"))}
    env.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(tmp / "logs"), SPARK_WORKER_DIR=str(tmp / "work"),
               PYSPARK_PYTHON=python)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    port, ui, wui = _free_port(), _free_port(), _free_port()
    python = _bare_python(tmp)
    env = _env(tmp, python)
    logs = open(tmp / "jvm.log", "wb")
    master = subprocess.Popen([str(BIN / "spark-class"), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env, cwd=tmp, stdout=logs,
                              stderr=subprocess.STDOUT, start_new_session=True)
    worker = subprocess.Popen([str(BIN / "spark-class"), "org.apache.spark.deploy.worker.Worker",
                               f"spark://127.0.0.1:{port}", "--host", "127.0.0.1", "--cores", "2", "--memory", "2g",
                               "--webui-port", str(wui)], env=env, cwd=tmp, stdout=logs,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2))
                if state.get("aliveworkers", 0) >= 1:
                    break
            except OSError:
                pass
            if time.time() > deadline or master.poll() is not None or worker.poll() is not None:
                raise RuntimeError("standalone cluster did not come up:\n" + (tmp / "jvm.log").read_text()[-3000:])
            time.sleep(1)
        yield {"url": f"spark://127.0.0.1:{port}", "tmp": tmp, "env": env, "python": python}
    finally:
        for p in (worker, master):  # stop both JVMs by PID (their own process groups)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in (worker, master):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        logs.close()


def _submit(cluster, zip_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "spark-submit"), "--master", cluster["url"], "--py-files", str(zip_path),
           "--conf", f"spark.pyspark.python={cluster['python']}", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=1g", *args]
    return subprocess.run(cmd, env=cluster["env"], cwd=cluster["tmp"], capture_output=True, text=True, timeout=400)


def test_jobs_run_on_standalone_cluster_with_py_files_zip(cluster, tmp_path):
    # precondition: outside the project folder, the executors' Python cannot import the project
    probe = subprocess.run([cluster["python"], "-c", "import graphs"], cwd=tmp_path, env=cluster["env"],
                           capture_output=True)
    assert probe.returncode != 0, "the project is installed in the venv; the cluster test would prove nothing"
    zip_path = build_zip(tmp_path / "graphrec.zip")
    raw, out = tmp_path / "raw", tmp_path / "graph"
    r = _submit(cluster, zip_path, str(ROOT / "jobs" / "generate.py"), "graph", "--nodes", "4000", "--communities",
                "4", "--block", "1000", "--seed", "5", "--output", str(raw))
    assert r.returncode == 0, r.stderr[-4000:]
    r = _submit(cluster, zip_path, str(ROOT / "jobs" / "ingest_graph.py"), "--input", str(raw / "edges"),
                "--format", "parquet", "--labels", str(raw / "labels"), "--drop-self-loops", "--output", str(out))
    assert r.returncode == 0, r.stderr[-4000:]
    stats = json.loads((out / "stats.json").read_text())
    edges = pq.read_table(out / "edges")
    assert stats["nodes"] == 4000 and stats["edges"] == edges.num_rows > 30_000
    assert edges.column("src").to_numpy().max() < 4000
    meta = json.loads((raw / "_meta.json").read_text())
    assert meta["job"] == "generate_graph"
    # the executors of the cluster (not a local master) ran the tasks
    app_dirs = list((cluster["tmp"] / "work").glob("app-*"))
    assert app_dirs, "no executor ran on the standalone worker"
