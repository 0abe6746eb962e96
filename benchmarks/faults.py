"""Fault schedules per Spark job on the namespace cluster (:mod:`benchmarks.netns_cluster`): are outputs right or absent?

Faults (issue 31 item 2), each injected into one run of a job submitted to the master from the root namespace:

* ``executor`` — kill -9 worker w1's executor JVM ``DELAY_S`` after w1 has started a task and ``--at`` of the
  fault-free wall time has passed (the test: ``at`` 0, the benchmark: half-way);
* ``worker`` — kill -9 worker w1's whole process group (worker, executor, Python workers) at the same moment;
  w1 is restarted after the run;
* ``driver`` — kill -9 the driver (spark-submit JVM and its Python) as soon as the job's hidden temporary output
  folder appears (``.NAME.tmp-*`` of :func:`graphs.atomic.atomic_dir`, ``.v=N.tmp-*`` of a bandit version): mid-write;
* ``link`` — ``ip link set eth0 down`` in w1's namespace for ``CUT_S`` seconds, then up;
* ``disk`` — the output on a small tmpfs (a quarter of the fault-free output's size).

Expected: executor/worker/link finish with tables equal (row multisets, floats bit-exact) to the fault-free run's;
driver/disk exit non-zero with nothing published (no ``NAME``, no ``v=N``), disk with "No space left on device" in
the error, and the next run (disk grown back) succeeds with equal output.

    python -m benchmarks.faults [--runs 3] [--jobs ingest,heavy_hitters] [--faults executor,link] [--cut-s 20]
    python -m benchmarks.faults --cells knn:link:3,sample:driver     # only these job:fault[:runs] cells

Writes ``benchmarks/results/faults.json`` (rewritten after every run, so a cut-short schedule keeps what ran).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.netns_cluster import NetnsCluster, unavailable_reason

log = logging.getLogger("benchmarks.faults")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "faults.json"
FAULTS = ("executor", "worker", "driver", "link", "disk")
JOBS = ("ingest", "heavy_hitters", "sample", "embed", "knn", "bandit_update")
DELAY_S = 2.0  # after w1's first "Running task": mid-job
CUT_S = 20.0
JOB_TIMEOUT_S = 900


# ---- inputs and job command lines ----------------------------------------------------------------------------------
def prepare_inputs(work: Path, nodes: int = 1200, seed: int = 7) -> dict:
    """Raw graph and heavy-hitter reports (:mod:`jobs.demo.inputs`, ~10⁴ edges) and a bandit world (no Spark)."""
    from jobs.demo import inputs as demo_inputs

    ds = "2026-01-05"
    demo_inputs.main(["--work", str(work / "in"), "--ds", ds, "--nodes", str(nodes), "--items", "300",
                      "--seed", str(seed)])
    raw = work / "in" / "raw" / f"ds={ds}"
    _bandit_world(work / "bandit")
    return {"raw": raw, "bandit": work / "bandit"}


def _bandit_world(d: Path, scores: int = 400) -> None:
    """A published parameter version, impressions and feedback events (as tests/test_bandits_update_job.py)."""
    import numpy as np
    import pyarrow.parquet as pq

    from recsys.bandits.params import BanditParams, load_params, publish_params
    from recsys.bandits.records import FeedbackEvent, ImpressionRecord, events_table, impressions_table

    rng = np.random.default_rng(0)
    C, K, U = 8, 3, 200
    ec = np.repeat(np.arange(C), 10)
    ei = np.concatenate([rng.choice(60, 10, replace=False) for _ in range(C)])
    users = np.arange(U)
    uc = np.concatenate([rng.choice(C, K, replace=False) for _ in users])
    uw = rng.random(U * K).astype(np.float32) + 0.1
    p = BanditParams.build(lam=1.0, alpha=0.5, k=K, w=8, edge_cluster=ec, edge_item=ei, user=np.repeat(users, K),
                           user_cluster=uc, user_weight=uw, centroids=rng.normal(size=(C, 4)).astype(np.float32),
                           extra={"off_graph": "prior"})
    publish_params(d / "params", p)
    p = load_params(d / "params")
    imps, events = [], []
    for s in range(scores):
        u = int(rng.integers(0, U))
        cl, wt = p.context([u])
        shown = rng.choice(p.candidates(cl[0]), 3, replace=False)
        imps.append(ImpressionRecord(f"s{s}", u, tuple(cl[0]), tuple(wt[0]), tuple(shown), 1, 1.7e9 + s))
        for j in shown[: rng.integers(1, 4)]:
            events.append(FeedbackEvent(f"e{len(events)}", f"s{s}", int(j), float(rng.random() < 0.4), 1.7e9 + s))
    for name, table in (("imps", impressions_table(imps)), ("events", events_table(events))):
        (d / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, d / name / "part-0.parquet")


def job_args(job: str, out: Path, inputs: dict, base: dict) -> tuple[str, list[str]]:
    """``(application, arguments)`` of ``job`` writing ``out``; ``base`` holds the fault-free outputs it reads."""
    raw = inputs["raw"]
    if job == "ingest":
        return "jobs/ingest_graph.py", ["--input", str(raw / "graph" / "edges"), "--format", "parquet", "--labels",
                                        str(raw / "graph" / "labels"), "--drop-self-loops", "--output", str(out)]
    if job == "heavy_hitters":
        return "jobs/heavy_hitters.py", ["--input", str(raw / "reports" / "reports"), "--bits", "12", "--k", "8",
                                         "--epsilon", "4", "--seed", "5", "--output", str(out)]
    if job == "sample":
        return "jobs/sample_graph.py", ["--edges", str(base["ingest"]), "--ratio", "0.25", "--method", "rescaled",
                                        "--seed", "3", "--output", str(out)]
    if job == "embed":
        return "jobs/embed_graph.py", ["--edges", str(base["ingest"]), "--dim", "16", "--max-part-nodes", "400",
                                       "--seed", "1", "--output", str(out)]
    if job == "knn":
        return "jobs/knn.py", ["--vectors", str(base["embed"]), "--k", "10", "--exclude-edges", str(base["ingest"]),
                               "--seed", "0", "--output", str(out)]
    if job == "bandit_update":  # publishes v=2 into a fresh copy of the v=1 store
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(inputs["bandit"] / "params", out)
        return "jobs/bandit_update.py", ["--events", str(inputs["bandit"] / "events"), "--impressions",
                                         str(inputs["bandit"] / "imps"), "--params", str(out), "--output", str(out)]
    raise ValueError(job)


DEPENDS = {"sample": ("ingest",), "embed": ("ingest",), "knn": ("ingest", "embed")}


# ---- outputs ---------------------------------------------------------------------------------------------------------
def published(job: str, out: Path) -> Path | None:
    """The folder a reader would open: ``out`` (atomic jobs) or ``out/v=2`` (bandit), if it exists."""
    p = out / "v=2" if job == "bandit_update" else out
    return p if p.is_dir() else None


def tmp_pattern(job: str, out: Path) -> tuple[Path, str]:
    """Where the job's hidden temporary output appears, and its glob."""
    return (out, ".v=*.tmp-*") if job == "bandit_update" else (out.parent, f".{out.name}.tmp-*")


def hidden_left(job: str, out: Path) -> int:
    """Temporary folders a killed run left (hidden; no reader opens them)."""
    where, pattern = tmp_pattern(job, out)
    return sum(1 for _ in where.glob(pattern)) if where.is_dir() else 0


def tables(folder: Path) -> dict[str, list]:
    """Every Parquet table under ``folder`` as a sorted list of row tuples (lists as tuples)."""
    import pyarrow.parquet as pq

    def norm(v):
        return tuple(norm(x) for x in v) if isinstance(v, list) else v

    out = {}
    for d in sorted({p.parent for p in folder.rglob("*.parquet")}):
        rows = pq.read_table(d).to_pylist()
        out[str(d.relative_to(folder))] = sorted((tuple(norm(v) for v in r.values()) for r in rows), key=repr)
    return out


def max_abs_diff(a: dict[str, list], b: dict[str, list]) -> float:
    """Largest difference between the float values of two :func:`tables` results whose other values all agree
    (rows matched by their non-float values); ``inf`` when anything else differs."""
    import numpy as np

    def split(row):
        flat = [x for v in row for x in (v if isinstance(v, tuple) else (v,))]
        return tuple(x for x in flat if not isinstance(x, float)), [x for x in flat if isinstance(x, float)]

    if a.keys() != b.keys():
        return math.inf
    worst = 0.0
    for name in a:
        ra, rb = sorted(map(split, a[name]), key=repr), sorted(map(split, b[name]), key=repr)
        if len(ra) != len(rb) or any(x[0] != y[0] or len(x[1]) != len(y[1]) for x, y in zip(ra, rb)):
            return math.inf
        for (_, fa), (_, fb) in zip(ra, rb):
            if fa:
                worst = max(worst, float(np.max(np.abs(np.array(fa) - np.array(fb)))))
    return worst


def complete(job: str, folder: Path) -> bool:
    return (folder / ("manifest.json" if job == "bandit_update" else "_meta.json")).exists()


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tmpfs_bytes(path: Path, page: int = 4096) -> int:
    """What a copy of ``path`` takes on a tmpfs: each file in whole pages, a page per folder."""
    items = list(path.rglob("*"))
    return page * (1 + sum(-(-p.stat().st_size // page) if p.is_file() else 1 for p in items))


# ---- one run -------------------------------------------------------------------------------------------------------
def _new_executor_log(cluster: NetnsCluster, host: str, before: set) -> Path | None:
    for d in (cluster.work / host / "work").glob("app-*"):
        if d.name not in before:
            for err in d.glob("*/stderr"):
                try:
                    if "Running task" in err.read_text(errors="replace"):
                        return err
                except OSError:
                    pass
    return None


def _inject(cluster, fault, drv, watch, hidden_before, apps_before, t0, at_s, cut_s, threads, pattern,
            after_log=None, logf=None):
    """Inject ``fault`` if its moment has come: ``(seconds into the run, hit)``, or ``(None, False)`` to wait.
    With ``after_log`` an executor/worker/link fault hits as soon as the driver's log ``logf`` shows that text
    (e.g. ``DistNE phase parts_s done``: a kill during the fusion rounds), instead of ``at_s`` + ``DELAY_S``."""
    if fault == "driver":
        if any(p.name not in hidden_before for p in watch.glob(pattern)):  # publishing has begun
            os.killpg(drv.pid, signal.SIGKILL)
            return time.time() - t0, True
        return None, False
    if fault not in ("executor", "worker", "link"):  # disk: the small tmpfs is the fault
        return time.time() - t0, True
    if after_log is not None:
        if after_log not in logf.read_text(errors="replace") or not _new_executor_log(cluster, "w1", apps_before):
            return None, False
    elif time.time() - t0 < at_s or not _new_executor_log(cluster, "w1", apps_before):
        return None, False
    else:
        time.sleep(DELAY_S)
    if drv.poll() is not None:  # finished before the fault could hit: recorded as not injected
        return time.time() - t0, False
    at = time.time() - t0
    if fault == "executor":
        return at, bool(cluster.kill_executor("w1"))
    if fault == "worker":
        cluster.kill_worker("w1")
        return at, True
    cluster.link("w1", up=False)
    th = threading.Timer(cut_s, cluster.link, args=("w1", True))
    th.start()
    threads.append(th)
    return at, True


def run_once(cluster: NetnsCluster, job: str, out: Path, inputs: dict, base: dict, fault: str | None = None,
             cut_s: float = CUT_S, logs: Path | None = None, at_s: float = 0.0, after_log: str | None = None) -> dict:
    """Submit ``job`` writing ``out``, inject ``fault`` (executor/worker/link: once w1 ran a task, ``DELAY_S`` later,
    and not before ``at_s`` seconds, or as soon as the log shows ``after_log``); returns rc, wall time and
    when/whether the fault hit."""
    app, args = job_args(job, out, inputs, base)
    watch, pattern = tmp_pattern(job, out)
    watch.mkdir(parents=True, exist_ok=True)
    hidden_before = set(p.name for p in watch.glob(".*"))
    apps_before = {d.name for d in (cluster.work / "w1" / "work").glob("app-*")}
    logf = (logs or cluster.work) / f"{job}-{fault or 'none'}-{time.time_ns()}.log"
    with open(logf, "w") as lf:
        t0 = time.time()
        drv = subprocess.Popen(cluster.submit_cmd(app, *args), env=cluster.driver_env(), stdout=lf,
                               stderr=subprocess.STDOUT, start_new_session=True, cwd=cluster.work)
        fault_at, injected, threads = None, False, []
        try:
            while drv.poll() is None and time.time() - t0 < JOB_TIMEOUT_S:
                if fault and not injected and fault_at is None:
                    fault_at, injected = _inject(cluster, fault, drv, watch, hidden_before, apps_before, t0, at_s,
                                                 cut_s, threads, pattern, after_log, logf)
                time.sleep(0.01 if fault == "driver" else 0.2)  # a small output is published in well under 1 s
        finally:  # a timeout or an interrupted benchmark leaves no driver behind
            if drv.poll() is None:
                os.killpg(drv.pid, signal.SIGKILL)
        rc = drv.wait()
        wall = time.time() - t0
        for th in threads:
            th.join()
    text = logf.read_text(errors="replace")
    return {"rc": rc, "wall_s": round(wall, 1), "injected": injected if fault else None,
            "fault_at_s": None if fault_at is None else round(fault_at, 1), "log": f"{logf.parent.name}/{logf.name}",  # relative to --work
            "no_space_error": "No space left on device" in text}


def fault_run(cluster: NetnsCluster, job: str, fault: str, work: Path, inputs: dict, base: dict, base_tables: dict,
              cut_s: float, at_s: float = 0.0, after_log: str | None = None) -> dict:
    """One faulted run of ``job`` and its checks; for driver/disk also the next (fault-free) run."""
    small = fault == "disk"
    out = (cluster.disk_full if small else work / "runs" / fault) / job
    for p in (out, *tmp_pattern(job, out)[0].glob(tmp_pattern(job, out)[1])):
        shutil.rmtree(p, ignore_errors=True)
    if small:
        size_kb = max(4, du(base[job]) // 4 // 1024)
        if job == "bandit_update":  # the run first copies the v=1 store there
            size_kb += tmpfs_bytes(inputs["bandit"] / "params") // 1024 + 8
        cluster.resize_disk_full(f"{size_kb}k")
    r = run_once(cluster, job, out, inputs, base, fault, cut_s, work / "logs", at_s, after_log)
    pub = published(job, out)
    r.update(output_published=pub is not None, complete=bool(pub and complete(job, pub)),
             hidden_tmp_left=hidden_left(job, out))
    if fault in ("executor", "worker", "link"):
        got = tables(pub) if r["rc"] == 0 and pub else None
        r["equal"] = got == base_tables
        r["max_abs_diff"] = None if got is None or r["equal"] else max_abs_diff(base_tables, got)
        r["ok"] = r["equal"]
        r["partial_left"] = int(pub is not None and not r["complete"])
    else:
        # a killed run must publish nothing (one the fault missed may publish a complete output)
        r["partial_left"] = int(pub is not None and (r["injected"] or not r["complete"]))
        if small:
            cluster.resize_disk_full("64m")
        nxt = run_once(cluster, job, out, inputs, base, None, cut_s, work / "logs")
        npub = published(job, out)
        r["rerun_rc"], r["rerun_wall_s"] = nxt["rc"], nxt["wall_s"]
        got = tables(npub) if nxt["rc"] == 0 and npub else None
        r["rerun_equal"] = got == base_tables
        r["rerun_max_abs_diff"] = None if got is None or r["rerun_equal"] else max_abs_diff(base_tables, got)
        r["ok"] = bool(r["rc"] != 0 and r["partial_left"] == 0 and r["rerun_equal"] and
                       (r["no_space_error"] if small else True))
        if small:
            shutil.rmtree(out, ignore_errors=True)
            cluster.resize_disk_full(cluster.disk_full_size)
    if fault == "worker":
        cluster.restart_worker("w1")
    cluster.wait_workers(2)
    return r


def baseline(cluster: NetnsCluster, job: str, work: Path, inputs: dict, base: dict) -> dict:
    """The fault-free run: its output is what every faulted run must equal."""
    out = work / "base" / job
    shutil.rmtree(out, ignore_errors=True)
    r = run_once(cluster, job, out, inputs, base, None, logs=work / "logs")
    if r["rc"] != 0:
        raise RuntimeError(f"fault-free {job} failed (rc {r['rc']}); log {r['log']}")
    base[job] = published(job, out)
    return r


def summarize(job_runs: list[dict], base_wall: float) -> dict:
    ok = [r for r in job_runs if r["ok"]]
    return {"runs": len(job_runs), "injected": sum(1 for r in job_runs if r.get("injected") in (True, None)),
            "successes": len(ok),
            "outputs_equal": sum(1 for r in job_runs if r.get("equal", r.get("rerun_equal"))),
            "partial_outputs_left": sum(r["partial_left"] for r in job_runs),
            "max_abs_diff": max((r.get("max_abs_diff", r.get("rerun_max_abs_diff")) or 0.0 for r in job_runs),
                                default=None),
            "hidden_tmp_left": sum(r["hidden_tmp_left"] for r in job_runs),
            # time to a good output: the faulted run, plus the next run after a fatal fault
            "extra_wall_s_median": (round(sorted(r["wall_s"] + r.get("rerun_wall_s", 0) for r in job_runs)
                                          [len(job_runs) // 2] - base_wall, 1) if job_runs else None)}


def parse_cells(spec: str, runs: int) -> dict[str, dict[str, int]]:
    """``"knn:link:3,sample:driver"`` -> ``{"knn": {"link": 3}, "sample": {"driver": runs}}`` (jobs in order given).

    >>> parse_cells("knn:link:3,sample:driver,knn:disk", 1)
    {'knn': {'link': 3, 'disk': 1}, 'sample': {'driver': 1}}
    """
    plan: dict[str, dict[str, int]] = {}
    for cell in filter(None, spec.split(",")):
        job, fault, *n = cell.split(":")
        if job not in JOBS or fault not in FAULTS or len(n) > 1:
            raise SystemExit(f"--cells: {cell!r} is not JOB:FAULT[:RUNS] with JOB in {JOBS}, FAULT in {FAULTS}")
        plan.setdefault(job, {})[fault] = int(n[0]) if n else runs
    return plan


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--cut-s", type=float, default=CUT_S)
    ap.add_argument("--at", type=float, default=0.5, help="executor/worker/link faults not before this fraction of "
                    "the fault-free wall time (then DELAY_S later, once w1 has run a task)")
    ap.add_argument("--after-log", default=None, help="executor/worker/link faults as soon as the job's log shows this "
                    "text instead of --at (e.g. 'DistNE phase parts_s done': a kill during embed's fusion)")
    ap.add_argument("--work", default="runs/faults")
    ap.add_argument("--nodes", type=int, default=1200)
    ap.add_argument("--cells", default=None, help="only these JOB:FAULT[:RUNS] cells, comma-separated (instead of "
                    "--jobs x --faults; RUNS defaults to --runs)")
    ap.add_argument("--output", default=str(RESULTS))
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop: the cluster's `with` removes namespaces
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"cannot run the fault schedule: {reason}")
    plan = parse_cells(a.cells, a.runs) if a.cells else {j: {f: a.runs for f in a.faults.split(",")}
                                                           for j in a.jobs.split(",")}
    work = Path(a.work).absolute()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    inputs = prepare_inputs(work, a.nodes)
    result = {"settings": {"runs": a.runs, "cut_s": a.cut_s, "delay_s": DELAY_S, "at": a.at, "after_log": a.after_log, "nodes": a.nodes,
                           "cluster": "master + 2 workers (1 core, 1g; executors 512m) in network namespaces",
                           "commit": os.environ.get("GRAPHREC_COMMIT")},
              "jobs": {j: {"fault_free_wall_s": None, "faults": {f: {"runs": 0, "status": "not run"} for f in fs}}
                       for j, fs in plan.items()}}
    base: dict = {}
    with NetnsCluster(work / "cluster") as cluster:
        for job, job_faults in plan.items():
            for dep in (*DEPENDS.get(job, ()), job):
                if dep not in base:
                    b = baseline(cluster, dep, work, inputs, base)
                    result["jobs"].setdefault(dep, {"faults": {}})["fault_free_wall_s"] = b["wall_s"]
                    Path(a.output).write_text(json.dumps(result, indent=1))
            base_tables = tables(base[job])
            entry = result["jobs"][job]
            for fault, n_runs in job_faults.items():
                runs = []
                for i in range(n_runs):
                    r = fault_run(cluster, job, fault, work, inputs, base, base_tables, a.cut_s,
                                  a.at * entry["fault_free_wall_s"], a.after_log)
                    log.info("%s / %s run %d: %s", job, fault, i, {k: v for k, v in r.items() if k != "log"})
                    runs.append(r)
                    entry["faults"][fault] = {**summarize(runs, entry["fault_free_wall_s"]), "detail": runs}
                    Path(a.output).write_text(json.dumps(result, indent=1))
    print(table(result))
    return result


def table(result: dict) -> str:
    lines = ["| job | fault | runs | ok | equal | partial left | extra wall s (median) |", "|---|---|---|---|---|---|---|"]
    for job, e in result["jobs"].items():
        for fault, s in e["faults"].items():
            if not s["runs"]:
                lines.append(f"| {job} | {fault} | not run | | | | |")
                continue
            lines.append(f"| {job} | {fault} | {s['runs']} | {s['successes']} | {s['outputs_equal']} | "
                         f"{s['partial_outputs_left']} | {s['extra_wall_s_median']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
