"""Fixed cost of the Spark jobs on small inputs: each job by ``spark-submit --master local[2]``.

For every input size (default 10⁴ and 10⁵ edges) the benchmark writes the day's raw inputs the way
``make run`` does (:mod:`jobs.demo.inputs`: a planted-community digraph of ``size / 10`` nodes, one
item report per user of a ``size``-node demo, and a bandit world of about ``size`` feedback events),
then runs, each in its own ``spark-submit`` child process (:func:`jobs.submit.command`: the project
zip, the driver's CDS options — what ``graphrec-submit`` and ``make run`` use; only
``spark.ui.enabled=false`` on the command line, as the Makefile passes it):

    ingest_graph → sample_graph (rescaled, r = 0.1) → embed_graph (dim 64) → knn (k 20, friends
    excluded) ; heavy_hitters (TAPS, ε = 4) ; bandit_update

Each run writes a Spark event log (uncompressed, into the work dir), from which :func:`read_event_log`
takes the phases and the counts that do not depend on the machine's load:

* ``launch_s``   process start → the SparkContext starts (spark-submit's launcher and JVM, the Python driver);
* ``start_s``    SparkContext start → the first Spark job (the context, the job's imports and planning);
* ``jobs_s``     time with at least one Spark job running;
* ``gaps_s``     time between the first and the last Spark job with none running (driver-side work, planning);
* ``tail_s``     the last Spark job's end → the application's end (driver-side work, local writes);
* ``exit_s``     the application's end → the process has exited;
* ``task_s``     executor run time of all tasks divided by the task slots (2): the cluster's busy time;
* ``cpu_s``      user + system CPU seconds of the whole process tree (JVM, driver, Python workers);
* ``spark_jobs``, ``stages`` (run, not skipped), ``tasks``, ``max_stage_tasks``;
* ``outside_share`` = 1 − ``task_s`` / wall: the share of the wall time spent outside the tasks' own work.

Wall times depend on the machine's load (reported beside them); the counts and, less so, ``cpu_s`` do not.

Results go to ``benchmarks/results/fixed_cost.json`` with the machine's load average before and after.
Run it on an idle machine (``nice`` when it is shared):

    nice python -m benchmarks.fixed_cost [--sizes 1e4 1e5] [--jobs knn ...] [--conf K=V ...] [--output F]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fixed_cost.json"
JOBS = ("ingest_graph", "sample_graph", "embed_graph", "knn", "heavy_hitters", "bandit_update")
SLOTS = 2

log = logging.getLogger("benchmarks.fixed_cost")


@dataclass(frozen=True)
class JobRun:
    """One job's measured run (seconds; counts from its event log)."""

    job: str
    edges: int
    wall_s: float
    launch_s: float
    start_s: float
    jobs_s: float
    gaps_s: float
    tail_s: float
    exit_s: float
    task_s: float
    cpu_s: float
    outside_share: float
    spark_jobs: int
    stages: int
    tasks: int
    max_stage_tasks: int
    returncode: int


# --- inputs ---------------------------------------------------------------------------------------

def prepare_inputs(work: Path, edges: int, seed: int = 0, reuse: bool = False) -> dict[str, Path]:
    """Raw graph (``edges / 10`` nodes, about ``edges`` edges), ``edges`` item reports and a bandit world.

    ``reuse``: keep the demo inputs already in ``work`` (to compare two versions of the code on the same data;
    :mod:`jobs.demo.inputs` may change between them); the bandit world (seeded) and the jobs' outputs are always
    written anew."""
    import shutil

    from jobs.demo.inputs import DemoConfig, run as demo

    shutil.rmtree(work / "out", ignore_errors=True)
    day = "raw/ds=2026-01-05"
    if not (reuse and (work / "g" / day).is_dir() and (work / "r" / day).is_dir()):
        demo(DemoConfig(work=str(work / "g"), ds="2026-01-05", nodes=max(edges // 10, 50), seed=seed))
        demo(DemoConfig(work=str(work / "r"), ds="2026-01-05", nodes=edges, seed=seed))
    shutil.rmtree(work / "bandit", ignore_errors=True)  # seeded: the same world every time
    write_bandit_world(work / "bandit", edges, seed)
    bandit = {k: work / "bandit" / k for k in ("params", "impressions", "events")}
    graph_day, report_day = work / "g" / day, work / "r" / day
    return {"raw_graph": graph_day / "graph" / "edges", "reports": report_day / "reports" / "reports",
            "graph": work / "out" / "graph", "sample": work / "out" / "sample", "embedding": work / "out" / "embedding",
            "friends": work / "out" / "friends", "heavy_hitters": work / "out" / "heavy_hitters",
            "params_next": work / "out" / "params", **bandit}


def write_bandit_world(root: Path, n_events: int, seed: int = 0, clusters: int = 64, items: int = 5000,
                       k: int = 3, w: int = 100) -> dict[str, Path]:
    """A published parameter version and about ``n_events`` feedback events on ``n_events / 2`` impressions."""
    import pyarrow.parquet as pq

    from recsys.bandits.params import BanditParams, load_params, publish_params
    from recsys.bandits.records import FeedbackEvent, ImpressionRecord, events_table, impressions_table

    rng = np.random.default_rng(seed)
    ec = np.repeat(np.arange(clusters), w)
    ei = np.concatenate([rng.choice(items, w, replace=False) for _ in range(clusters)])
    users = np.arange(max(n_events // 4, 10))
    uc = np.concatenate([rng.choice(clusters, k, replace=False) for _ in users])
    uw = rng.random(users.size * k).astype(np.float32) + 0.1
    p = BanditParams.build(lam=1.0, alpha=1.0, k=k, w=w, edge_cluster=ec, edge_item=ei, user=np.repeat(users, k),
                           user_cluster=uc, user_weight=uw, centroids=rng.normal(size=(clusters, 4)).astype(np.float32),
                           off_graph="prior")
    publish_params(root / "params", p)
    p = load_params(root / "params")
    imps, events = [], []
    for s in range(max(n_events // 2, 1)):
        u = int(rng.integers(0, users.size))
        cl, wt = p.context([u])
        shown = rng.choice(p.candidates(cl[0]), 3, replace=False)
        sid = f"s{s}"
        imps.append(ImpressionRecord(sid, u, tuple(cl[0]), tuple(wt[0]), tuple(int(i) for i in shown), 1, 1.7e9 + s))
        for j in shown[:2]:
            events.append(FeedbackEvent(f"e{len(events)}", sid, int(j), float(rng.random() < 0.3), 1.7e9 + s + 0.5))
    for name, table in (("impressions", impressions_table(imps)), ("events", events_table(events))):
        (root / name).mkdir(parents=True)
        pq.write_table(table, root / name / "part-00000.parquet")
    return {"params": root / "params", "impressions": root / "impressions", "events": root / "events"}


def job_args(job: str, p: dict[str, Path]) -> list[str]:
    """The job's arguments, as the daily DAGs pass them (seeded where a job draws randomness)."""
    s = {k: str(v) for k, v in p.items()}
    if job == "ingest_graph":
        return ["--input", s["raw_graph"], "--format", "parquet", "--drop-self-loops", "--output", s["graph"]]
    if job == "sample_graph":
        return ["--edges", s["graph"], "--ratio", "0.1", "--method", "rescaled", "--seed", "0", "--output", s["sample"]]
    if job == "embed_graph":
        return ["--edges", s["graph"], "--dim", "64", "--seed", "0", "--output", s["embedding"]]
    if job == "knn":
        return ["--vectors", s["embedding"], "--k", "20", "--exclude-edges", s["graph"], "--output", s["friends"]]
    if job == "heavy_hitters":
        return ["--input", s["reports"], "--bits", "48", "--epsilon", "4", "--k", "32", "--method", "taps",
                "--seed", "0", "--output", s["heavy_hitters"]]
    if job == "bandit_update":
        return ["--events", s["events"], "--impressions", s["impressions"], "--params", s["params"],
                "--output", s["params_next"]]  # the input version stays as it is: the inputs can be reused
    raise ValueError(f"unknown job {job!r}")


# --- one run --------------------------------------------------------------------------------------

def read_event_log(path: Path) -> dict:
    """Phase times (ms timestamps) and counts of one application's event log."""
    app_start = app_end = None
    jobs: dict[int, list[float]] = {}
    stages, tasks, max_tasks, run_ms = 0, 0, 0, 0
    with open(path) as fh:
        for line in fh:
            e = json.loads(line)
            kind = e.get("Event")
            if kind == "SparkListenerApplicationStart":
                app_start = e["Timestamp"]
            elif kind == "SparkListenerApplicationEnd":
                app_end = e["Timestamp"]
            elif kind == "SparkListenerJobStart":
                jobs[e["Job ID"]] = [e["Submission Time"], e["Submission Time"]]
            elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
                jobs[e["Job ID"]][1] = e["Completion Time"]
            elif kind == "SparkListenerStageCompleted":
                stages += 1
                max_tasks = max(max_tasks, e["Stage Info"]["Number of Tasks"])
            elif kind == "SparkListenerTaskEnd":
                tasks += 1
                run_ms += (e.get("Task Metrics") or {}).get("Executor Run Time", 0)
    busy, end = 0.0, -1.0
    for a, b in sorted(jobs.values()):  # union of the jobs' intervals
        if b > end:
            busy += b - max(a, end)
            end = b
    first = min((a for a, _ in jobs.values()), default=None)
    return {"app_start": app_start, "app_end": app_end, "first_job": first, "last_job_end": end if jobs else None,
            "jobs_ms": busy, "spark_jobs": len(jobs), "stages": stages, "tasks": tasks, "max_stage_tasks": max_tasks,
            "run_ms": run_ms}


def submit(job: str, args: list[str], logs: Path, master: str = f"local[{SLOTS}]", conf: tuple[str, ...] = (),
           timeout: float = 1800) -> JobRun:
    """Run ``job`` by spark-submit in a child process (its process tree measured); phases and counts from its
    event log."""
    from benchmarks.proctree import run_tree
    from jobs.submit import command

    logs.mkdir(parents=True, exist_ok=True)
    before = set(logs.iterdir())
    opts = ["--master", master, "--conf", "spark.ui.enabled=false", "--conf", "spark.eventLog.enabled=true",
            "--conf", f"spark.eventLog.dir=file:{logs}", "--conf", "spark.eventLog.compress=false",
            "--conf", "spark.eventLog.rolling.enabled=false"]
    for c in conf:
        opts += ["--conf", c]
    cmd, env = command([*opts, job, *args], dict(os.environ))
    t0 = time.time()
    tree = run_tree(cmd, env=env, cwd=ROOT, timeout=timeout, interval=0.5)
    t1 = t0 + tree.seconds
    if tree.returncode != 0:
        log.error("%s failed (%d):\n%s", job, tree.returncode, tree.output)
    new = [p for p in logs.iterdir() if p not in before and p.is_file()]
    ev = read_event_log(new[0]) if new else {}
    nan = float("nan")
    if not ev or ev["app_start"] is None or ev["first_job"] is None:
        return JobRun(job, 0, round(tree.seconds, 2), *([nan] * 7), round(tree.cpu_s, 1), nan, 0, 0, 0, 0,
                      tree.returncode)
    sec = {k: ev[k] / 1e3 for k in ("app_start", "first_job", "last_job_end")}
    app_end = ev["app_end"] / 1e3 if ev["app_end"] else t1
    jobs_s = ev["jobs_ms"] / 1e3
    task = ev["run_ms"] / 1e3 / SLOTS
    return JobRun(job, 0, round(tree.seconds, 2), round(sec["app_start"] - t0, 2),
                  round(sec["first_job"] - sec["app_start"], 2), round(jobs_s, 2),
                  round(sec["last_job_end"] - sec["first_job"] - jobs_s, 2), round(app_end - sec["last_job_end"], 2),
                  round(t1 - app_end, 2), round(task, 2), round(tree.cpu_s, 1), round(1 - task / tree.seconds, 3),
                  ev["spark_jobs"], ev["stages"], ev["tasks"], ev["max_stage_tasks"], tree.returncode)


def run_size(edges: int, work: Path, jobs: tuple[str, ...], conf: tuple[str, ...], reuse: bool = False
             ) -> list[JobRun]:
    """Prepare one size's inputs and run the jobs in pipeline order."""
    paths = prepare_inputs(work, edges, reuse=reuse)
    out = []
    for job in JOBS:
        if job not in jobs:
            continue
        r = submit(job, job_args(job, paths), work / "eventlogs", conf=conf)
        r = JobRun(**{**asdict(r), "edges": edges})
        log.info("%-14s %7d edges: %6.1f s wall (launch %.1f, start %.1f, jobs %.1f, gaps %.1f, tail %.1f, exit %.1f; "
                 "tasks %.1f), %.0f CPU s; %d jobs, %d stages, %d tasks (max %d/stage), outside %.0f%% (load %.1f)",
                 job, edges, r.wall_s, r.launch_s, r.start_s, r.jobs_s, r.gaps_s, r.tail_s, r.exit_s, r.task_s, r.cpu_s,
                 r.spark_jobs, r.stages, r.tasks, r.max_stage_tasks, 100 * r.outside_share, os.getloadavg()[0])
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fixed_cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5], help="input edges per size")
    ap.add_argument("--jobs", nargs="+", choices=JOBS, default=list(JOBS))
    ap.add_argument("--conf", action="append", default=[], help="extra spark-submit --conf KEY=VALUE")
    ap.add_argument("--workdir", default=None, help="inputs, outputs and event logs (default: a temporary folder)")
    ap.add_argument("--output", default=str(RESULTS))
    ap.add_argument("--label", default="", help="stored with the results (e.g. before/after)")
    ap.add_argument("--reuse-inputs", action="store_true",
                    help="keep the inputs already in --workdir (compare versions of the code on the same data)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load0 = os.getloadavg()
    runs: list[JobRun] = []
    with tempfile.TemporaryDirectory(prefix="graphrec-fixed-cost-") as tmp:
        for size in map(int, a.sizes):
            work = Path(a.workdir or tmp) / f"e{size}"
            runs += run_size(size, work, tuple(a.jobs), tuple(a.conf), a.reuse_inputs)
    result = {"label": a.label, "master": f"local[{SLOTS}]", "cores": os.cpu_count(), "conf": a.conf,
              "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
              "runs": [asdict(r) for r in runs]}
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(json.dumps(result, indent=2) + "\n")
    log.info("load average before %s, after %s; wrote %s", result["load_before"], result["load_after"], a.output)
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
