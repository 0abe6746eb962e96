"""The main job: one day of ``graphrec_daily`` and ``graphrec_heavy_hitters`` on generated data, then the report.

What ``make run`` calls (in the project environment ``.venv``):

1. builds ``dist/graphrec.zip`` (the packages shipped with ``--py-files``);
2. writes the day's raw landing zone with the platform's generators (:mod:`jobs.demo_inputs`);
3. creates a private ``AIRFLOW_HOME`` (SQLite) and ``airflow db migrate`` with ``.venv-airflow``;
4. runs ``airflow dags test graphrec_daily <ds>`` (every task in order, Spark on ``local[2]``) with
   the project's Python/spark-submit passed as Airflow Variables (``AIRFLOW_VAR_GRAPHREC_*``);
5. starts the bandit scoring service as soon as the DAG has published the first parameter version
   (``<work>/bandit/params/CURRENT``) — the DAG's ``serve_candidates`` step waits for it;
6. runs ``airflow dags test graphrec_heavy_hitters <ds>`` (federated LDP heavy hitters → fresh items
   in the served candidate graph → reload; ``--no-heavy-hitters`` leaves it out), then stops the
   service (its process group);
7. writes the Markdown run report (:mod:`jobs.report`) and prints its path.

    python -m jobs.run_daily [--work runs/pipeline] [--ds 2026-01-05] [--nodes 10000] [--items 2000]

Exit status: 0 when every task succeeded, else 1 (the report is still written).

>>> RunConfig(work="w", ds="2026-13-01")
Traceback (most recent call last):
...
ValueError: month must be in 1..12
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("graphrec.run_daily")
ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "graphrec_daily"
HH_DAG_ID = "graphrec_heavy_hitters"


@dataclass(frozen=True)
class RunConfig:
    work: str
    ds: str
    nodes: int = 10_000
    items: int = 2_000
    requests: int = 2_000
    epochs: int = 6
    dim: int = 64
    airflow_venv: str = str(ROOT / ".venv-airflow")
    airflow_home: str | None = None
    extra_conf: str = "{}"
    mark_success: str | None = None
    heavy_hitters: bool = True

    def __post_init__(self):
        dt.date.fromisoformat(self.ds)
        if self.nodes < 100 or self.items < 10 or self.requests < 50:
            raise ValueError("need --nodes >= 100, --items >= 10, --requests >= 50")
        json.loads(self.extra_conf)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(cfg: RunConfig, home: Path, serving_url: str, token: str) -> dict[str, str]:
    """Environment of the Airflow process: private home, this repo's DAGs, the project's binaries."""
    py = Path(sys.executable)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_VAR_GRAPHREC_ROOT": str(ROOT),
        "AIRFLOW_VAR_GRAPHREC_PYTHON": str(py),
        "AIRFLOW_VAR_GRAPHREC_SPARK_SUBMIT": str(py.with_name("spark-submit")),
        "AIRFLOW_VAR_GRAPHREC_SERVING_URL": serving_url,
        "AIRFLOW_VAR_GRAPHREC_SERVING_TOKEN": token,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


class Service:
    """The scoring service, started once ``params/CURRENT`` exists, stopped by process group."""

    def __init__(self, params: Path, store: Path, port: int, token: str, log_path: Path, python: str | None = None):
        self.params, self.store, self.port, self.token, self.log_path = params, store, port, token, log_path
        self.python = python or sys.executable  # the project's interpreter (.venv)
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._start_when_ready, daemon=True)

    def start_when_ready(self) -> None:
        self._thread.start()

    def _start_when_ready(self) -> None:
        while not self._stop.is_set():
            if (self.params / "CURRENT").exists():
                self.store.parent.mkdir(parents=True, exist_ok=True)
                cmd = [self.python, "-m", "recsys.serving.cli", "--params", str(self.params),
                       "--store", f"sqlite:///{self.store}", "--host", "127.0.0.1", "--port", str(self.port),
                       "--log-level", "warning"]
                env = {**os.environ, "GRAPHREC_SERVE_TOKEN": self.token, "PYTHONPATH": str(ROOT)}
                self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log_path.open("ab"),
                                             stderr=subprocess.STDOUT, start_new_session=True)
                log.info("scoring service started (pid %d) on 127.0.0.1:%d", self.proc.pid, self.port)
                return
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        log.info("scoring service stopped")


def task_states(home: Path, ds: str, dag_id: str = DAG_ID) -> list[dict]:
    """Task instances of ``dag_id``'s latest run for ``ds``: id, state, duration (from the metadata DB)."""
    db = home / "airflow.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        run = con.execute("SELECT run_id FROM dag_run WHERE dag_id=? AND logical_date LIKE ? ORDER BY id DESC LIMIT 1",
                          (dag_id, f"{ds}%")).fetchone()
        if run is None:
            return []
        rows = con.execute("SELECT task_id, state, try_number, start_date, end_date, duration FROM task_instance "
                           "WHERE dag_id=? AND run_id=? ORDER BY start_date", (dag_id, run[0])).fetchall()
    return [{"task_id": r[0], "state": r[1], "tries": r[2], "start": r[3], "end": r[4], "seconds": r[5]} for r in rows]


def run(cfg: RunConfig) -> int:
    from jobs import demo_inputs, report
    from jobs.session import build_zip

    t0 = time.perf_counter()
    work = Path(cfg.work).absolute()
    logs = work / "logs" / f"ds={cfg.ds}"
    logs.mkdir(parents=True, exist_ok=True)
    build_zip()
    demo_inputs.run(demo_inputs.DemoConfig(work=str(work), ds=cfg.ds, nodes=cfg.nodes, items=cfg.items))
    home = Path(cfg.airflow_home or tempfile.mkdtemp(prefix="graphrec-airflow-"))
    home.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_urlsafe(24)
    env = airflow_env(cfg, home, f"http://127.0.0.1:{port}", token)
    airflow = str(Path(cfg.airflow_venv) / "bin" / "airflow")
    t_setup = time.perf_counter()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    conf = {"work_dir": str(work), "simulate_traffic": True, "traffic_requests": cfg.requests, "epochs": cfg.epochs,
            "dim": cfg.dim, **json.loads(cfg.extra_conf)}
    service = Service(work / "bandit" / "params", work / "serving" / "events.db", port, token, logs / "service.log")
    service.start_when_ready()
    t_dag = time.perf_counter()
    dags = [(DAG_ID, conf)]
    if cfg.heavy_hitters:  # trending items of the day's LDP reports join the candidate graph the service serves
        bits = max(1, (cfg.items - 1).bit_length())  # the demo catalogue's item ids are 0..items-1
        dags.append((HH_DAG_ID, {"work_dir": str(work), "bits": bits, "shuffle_partitions": 4, "driver_memory": "1g"}))
    rc = 0
    try:
        for dag_id, dag_conf in dags:
            log.info("airflow dags test %s %s (log: %s)", dag_id, cfg.ds, logs / f"{dag_id}.log")
            with (logs / f"{dag_id}.log").open("wb") as out:
                cmd = [airflow, "dags", "test", dag_id, cfg.ds, "-c", json.dumps(dag_conf)]
                if cfg.mark_success:
                    cmd += ["--mark-success-pattern", cfg.mark_success]
                rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
            if rc != 0:
                break
    finally:
        service.stop()
    t_end = time.perf_counter()
    tasks = [{**t, "dag": dag_id} for dag_id, _ in dags for t in task_states(home, cfg.ds, dag_id)]
    timings = {"setup_s": round(t_dag - t0, 1), "db_migrate_s": round(t_dag - t_setup, 1),
               "dag_s": round(t_end - t_dag, 1), "total_s": round(t_end - t0, 1)}
    if cfg.airflow_home is None:  # a private, temporary metadata DB: the task states are in the report
        shutil.rmtree(home, ignore_errors=True)
    path = report.write_report(work, cfg.ds, tasks=tasks, timings=timings, dag_rc=rc)
    ok = rc == 0 and tasks and all(t["state"] == "success" for t in tasks)
    names = " + ".join(d for d, _ in dags)
    print(f"{names} ds={cfg.ds}: {'all tasks succeeded' if ok else 'FAILED'} in {timings['total_s']:.0f} s")
    print(f"report: {path}")
    return 0 if ok else 1


def parse_args(argv=None) -> RunConfig:
    p = argparse.ArgumentParser(prog="run_daily", description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / "runs" / "pipeline"), help="root of all outputs")
    p.add_argument("--ds", default="2026-01-05", help="the run's logical date")
    p.add_argument("--nodes", type=int, default=10_000, help="generated users / graph nodes")
    p.add_argument("--items", type=int, default=2_000)
    p.add_argument("--requests", type=int, default=2_000, help="simulated score requests")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--airflow-venv", default=str(ROOT / ".venv-airflow"))
    p.add_argument("--airflow-home", help="default: a new temporary folder")
    p.add_argument("--conf", default="{}", help="extra DAG Params as JSON")
    p.add_argument("--mark-success", help="debugging: regex of task ids to mark successful instead of running")
    p.add_argument("--no-heavy-hitters", dest="heavy_hitters", action="store_false",
                   help="run graphrec_daily only, not graphrec_heavy_hitters after it")
    a = p.parse_args(argv)
    return RunConfig(work=a.work, ds=a.ds, nodes=a.nodes, items=a.items, requests=a.requests, epochs=a.epochs,
                     dim=a.dim, airflow_venv=a.airflow_venv, airflow_home=a.airflow_home, extra_conf=a.conf,
                     mark_success=a.mark_success, heavy_hitters=a.heavy_hitters)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
