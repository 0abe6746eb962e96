"""The main job: ``graphrec_daily`` and ``graphrec_heavy_hitters`` on generated data for one or more
consecutive days, then the run report of each day.

What ``make run`` calls (in the project environment ``.venv``; ``make run DAYS=N`` passes ``--days N``):

1. builds ``dist/graphrec.zip`` (the packages shipped with ``--py-files``);
2. creates a private ``AIRFLOW_HOME`` (SQLite) and ``airflow db migrate`` with ``.venv-airflow``;
3. for each day ``ds``, ``ds + 1``, …: writes the day's raw landing zone with the platform's
   generators (:mod:`jobs.demo.inputs`: users with friends and interactions, ``--social-only`` users
   with friends only, ``--isolated`` users with neither, and the simulated world that scores all of
   them), runs ``airflow dags test graphrec_daily <day>`` (every task
   in order, Spark on ``local[2]``) with the project's Python/spark-submit passed as Airflow Variables
   (``AIRFLOW_VAR_GRAPHREC_*``), then ``airflow dags test graphrec_heavy_hitters <day>`` (federated
   LDP heavy hitters → fresh items in the served candidate graph → reload; ``--no-heavy-hitters``
   leaves it out), printing a line per task as it starts and ends (:mod:`jobs.demo.dag_progress`), and
   saves the scoring service's ``/metrics`` for the day; each day's bandit store starts from the
   day before (``seed_bandit``) and each day's interactions take the day before's acknowledged
   positive feedback (``ingest_interactions --previous --feedback``, each ``event_id`` once);
4. starts the bandit scoring service as soon as the first day has published a parameter version
   (``<work>/bandit/params/CURRENT``: the DAG's ``serve_candidates`` step waits for it) and keeps it
   running across the days; stops it (its process group) at the end (:mod:`jobs.demo.service`);
   with ``--parallelism N`` > 1 (default 2) the DAGs run with ``--use-executor``: the LocalExecutor runs up to
   N independent tasks at once, reporting to an Execution API server (:mod:`jobs.demo.execution_api`);
   ``--parallelism 1`` runs them one after another in the ``dags test`` process;
5. writes the Markdown run report of every day (:mod:`jobs.demo.report`; with several days, the last
   day's report plots the per-day figures) and prints the last one's path.

Every path comes from :mod:`jobs.runtime.layout`.

    python -m jobs.demo.run_daily [--work runs/pipeline] [--ds 2026-01-05] [--days 1] [--nodes 10000] [--items 2000] \
        [--social-only 0.1] [--isolated 0.05] [--parallelism 2]

Exit status: 0 when every task of every day succeeded, else 1 (the reports are still written); the
first failing day ends the run.

>>> RunConfig(work="w", ds="2026-12-31", days=2).dates
['2026-12-31', '2027-01-01']
>>> RunConfig(work="w", ds="2026-13-01")
Traceback (most recent call last):
...
ValueError: month must be in 1..12
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.demo.dag_progress import Progress, task_states
from jobs.demo.execution_api import ExecutionApi, executor_env
from jobs.demo.service import Service, free_port
from jobs.demo.users import check_shares
from jobs.runtime import layout
from jobs.runtime.cds import driver_java_options

log = logging.getLogger("graphrec.run_daily")
ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "graphrec_daily"
HH_DAG_ID = "graphrec_heavy_hitters"
__all__ = ["RunConfig", "Service", "free_port", "task_states", "run", "main"]


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
    days: int = 1
    social_only: float = 0.1
    isolated: float = 0.05
    parallelism: int = 2

    def __post_init__(self):
        dt.date.fromisoformat(self.ds)
        if self.nodes < 100 or self.items < 10 or self.requests < 50:
            raise ValueError("need --nodes >= 100, --items >= 10, --requests >= 50")
        if self.days < 1:
            raise ValueError("need --days >= 1")
        if self.parallelism < 1:
            raise ValueError("need --parallelism >= 1")
        check_shares(self.social_only, self.isolated)
        json.loads(self.extra_conf)

    @property
    def use_executor(self) -> bool:
        """Tasks side by side through the LocalExecutor; not with ``--mark-success``, which only the
        executor-less ``dags test`` honours."""
        return self.parallelism > 1 and not self.mark_success

    @property
    def dates(self) -> list[str]:
        """The logical dates of the run: ``ds`` and the ``days - 1`` days after it."""
        first = dt.date.fromisoformat(self.ds)
        return [(first + dt.timedelta(days=i)).isoformat() for i in range(self.days)]


def airflow_env(cfg: RunConfig, home: Path, serving_url: str, token: str) -> dict[str, str]:
    """Environment of the Airflow process: private home, this repo's DAGs, the project's binaries."""
    py = Path(sys.executable)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_VAR_GRAPHREC_ROOT": str(ROOT),
        "AIRFLOW_VAR_GRAPHREC_PYTHON": str(py),
        "AIRFLOW_VAR_GRAPHREC_SPARK_SUBMIT": str(py.with_name("spark-submit")),
        "AIRFLOW_VAR_GRAPHREC_SERVING_URL": serving_url,
        "AIRFLOW_VAR_GRAPHREC_SERVING_TOKEN": token,
        "AIRFLOW_VAR_GRAPHREC_DRIVER_JAVA_OPTIONS": driver_java_options(),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def dag_confs(cfg: RunConfig, work: Path) -> list[tuple[str, dict]]:
    """The DAGs of one day, in order, with their ``-c`` Params."""
    conf = {"work_dir": str(work), "simulate_traffic": True, "traffic_requests": cfg.requests, "epochs": cfg.epochs,
            "dim": cfg.dim, **json.loads(cfg.extra_conf)}
    dags = [(DAG_ID, conf)]
    if cfg.heavy_hitters:  # trending items of the day's LDP reports join the candidate graph the service serves
        bits = max(1, (cfg.items - 1).bit_length())  # the demo catalogue's item ids are 0..items-1
        dags.append((HH_DAG_ID, {"work_dir": str(work), "bits": bits, "driver_memory": "1g"}))
    return dags


def run_day(cfg: RunConfig, ds: str, work: Path, airflow: str, env: dict, home: Path) -> int:
    """Write the day's inputs and run its DAGs one after the other; the first failing DAG's exit status, else 0."""
    from jobs.demo import inputs

    logs = Path(layout.dated(str(work), "logs", ds))
    logs.mkdir(parents=True, exist_ok=True)
    inputs.run(inputs.DemoConfig(work=str(work), ds=ds, nodes=cfg.nodes, items=cfg.items,
                                 social_only=cfg.social_only, isolated=cfg.isolated))
    for dag_id, dag_conf in dag_confs(cfg, work):
        print(f"{time.strftime('%H:%M:%S')} {dag_id} {ds}: starting (log: {logs / f'{dag_id}.log'})", flush=True)
        cmd = [airflow, "dags", "test", dag_id, ds, "-c", json.dumps(dag_conf)]
        if cfg.use_executor:
            cmd.append("--use-executor")
        if cfg.mark_success:
            cmd += ["--mark-success-pattern", cfg.mark_success]
        with (logs / f"{dag_id}.log").open("wb") as out, Progress(home, dag_id, ds):
            rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        if rc != 0:
            return rc
    return 0


def run(cfg: RunConfig) -> int:
    from jobs.demo import report
    from jobs.runtime.session import build_zip

    t0 = time.perf_counter()
    work = Path(cfg.work).absolute()
    build_zip()
    home = Path(cfg.airflow_home or tempfile.mkdtemp(prefix="graphrec-airflow-"))
    home.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_urlsafe(24)
    env = airflow_env(cfg, home, f"http://127.0.0.1:{port}", token)
    api_port = free_port()
    if cfg.use_executor:
        env.update(executor_env(api_port, cfg.parallelism))
    airflow = str(Path(cfg.airflow_venv) / "bin" / "airflow")
    t_setup = time.perf_counter()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    t_migrated = time.perf_counter()
    service = Service(Path(layout.live_params(str(work))), Path(layout.service_store(str(work))), port, token,
                      Path(layout.dated(str(work), "logs", cfg.ds)) / "service.log")
    service.start_when_ready()
    results: list[tuple[str, int, dict]] = []  # (ds, exit status, timings) of every day that ran
    try:
        with contextlib.ExitStack() as stack:
            if cfg.use_executor:
                api_log = Path(layout.dated(str(work), "logs", cfg.ds)) / "execution_api.log"
                stack.enter_context(ExecutionApi(airflow, env, api_port, api_log))
            for ds in cfg.dates:
                t_day = time.perf_counter()
                rc = run_day(cfg, ds, work, airflow, env, home)
                service.save_metrics(Path(layout.dated(str(work), "serving", ds)))
                results.append((ds, rc, {"day_s": round(time.perf_counter() - t_day, 1)}))
                if rc != 0:
                    break
    finally:
        service.stop()
    t_end = time.perf_counter()
    dags = [d for d, _ in dag_confs(cfg, work)]
    setup = {"setup_s": round(t_migrated - t0, 1), "db_migrate_s": round(t_migrated - t_setup, 1),
             "total_s": round(t_end - t0, 1)}
    ok, path = True, None
    for ds, rc, day_timings in results:
        tasks = [{**t, "dag": dag_id} for dag_id in dags for t in task_states(home, ds, dag_id)]
        timings = {**(setup if ds == cfg.ds else {}), "dag_s": day_timings["day_s"]}
        path = report.write_report(work, ds, tasks=tasks, timings=timings, dag_rc=rc,
                                   days=[d for d, _, _ in results])
        day_ok = rc == 0 and bool(tasks) and all(t["state"] == "success" for t in tasks)
        ok = ok and day_ok
        print(f"{' + '.join(dags)} ds={ds}: {'all tasks succeeded' if day_ok else 'FAILED'} "
              f"in {day_timings['day_s']:.0f} s — report: {path}")
    if cfg.airflow_home is None:  # a private, temporary metadata DB: the task states are in the reports
        shutil.rmtree(home, ignore_errors=True)
    ok = ok and len(results) == cfg.days
    print(f"{len(results)} day(s) from {cfg.ds}: {'all tasks succeeded' if ok else 'FAILED'} in {setup['total_s']:.0f} s")
    print(f"report: {path}")
    return 0 if ok else 1


def parse_args(argv=None) -> RunConfig:
    p = argparse.ArgumentParser(prog="run_daily", description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(ROOT / layout.DEFAULT_WORK), help="root of all outputs")
    p.add_argument("--ds", default="2026-01-05", help="the (first) day's logical date")
    p.add_argument("--days", type=int, default=1, help="consecutive days to run, from --ds")
    p.add_argument("--nodes", type=int, default=10_000, help="generated users / graph nodes")
    p.add_argument("--items", type=int, default=2_000)
    p.add_argument("--requests", type=int, default=2_000, help="simulated score requests per day")
    p.add_argument("--social-only", type=float, default=0.1, help="share of users with friends and no interactions")
    p.add_argument("--isolated", type=float, default=0.05, help="share of users with neither friends nor interactions")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--airflow-venv", default=str(ROOT / ".venv-airflow"))
    p.add_argument("--airflow-home", help="default: a new temporary folder")
    p.add_argument("--conf", default="{}", help="extra DAG Params as JSON")
    p.add_argument("--mark-success", help="debugging: regex of task ids to mark successful instead of running (tasks then run "
                   "one after another: the executor mode ignores the pattern)")
    p.add_argument("--parallelism", type=int, default=2,
                   help="tasks run at once (LocalExecutor + Execution API); 1: one after another, no executor")
    p.add_argument("--no-heavy-hitters", dest="heavy_hitters", action="store_false",
                   help="run graphrec_daily only, not graphrec_heavy_hitters after it")
    a = p.parse_args(argv)
    return RunConfig(work=a.work, ds=a.ds, nodes=a.nodes, items=a.items, requests=a.requests, epochs=a.epochs,
                     dim=a.dim, airflow_venv=a.airflow_venv, airflow_home=a.airflow_home, extra_conf=a.conf,
                     mark_success=a.mark_success, heavy_hitters=a.heavy_hitters, days=a.days,
                     social_only=a.social_only, isolated=a.isolated, parallelism=a.parallelism)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
