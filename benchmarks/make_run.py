"""``make run``'s wall time: the two DAGs with tasks one after another against tasks side by side.

Runs ``python -m jobs.demo.run_daily`` (what ``make run`` calls, its defaults: 10,000 users, one day)
once per ``--parallelism`` value, in the order given (``1 2 2 1`` gives ABBA pairs), each into its own
work folder and Airflow home, and reads back the run's own timings (``summary.json``: set-up, the day's
DAGs, total) and every task's start and end from the metadata database. Prints, per mode, the process
wall time, the DAG time and the task time summed over tasks (the work the executor can overlap), and the
ratio of the modes' median walls; writes ``results/make_run.json`` and a Gantt chart per run
(``results/make_run.png``). Time it on an idle machine (the lock of the other benchmarks is held).

    python -m benchmarks.make_run [--modes 1 2 2 1] [--output F]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphs.figures import pyplot
from jobs.demo.dag_progress import task_states

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DS = "2026-01-05"
DAGS = ("graphrec_daily", "graphrec_heavy_hitters")

log = logging.getLogger("benchmarks.make_run")


def one_run(parallelism: int, scratch: Path) -> dict:
    """``run_daily --parallelism N`` into ``scratch``: wall, the run's own timings, every task's span."""
    work, home = scratch / "work", scratch / "home"
    cmd = [sys.executable, "-m", "jobs.demo.run_daily", "--work", str(work), "--ds", DS, "--parallelism",
           str(parallelism), "--airflow-home", str(home)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"run_daily --parallelism {parallelism} failed ({r.returncode}): {r.stdout[-2000:]}")
    summary = json.loads((work / "report" / f"ds={DS}" / "summary.json").read_text())
    tasks = [{**t, "dag": dag} for dag in DAGS for t in task_states(home, DS, dag)]
    return {"parallelism": parallelism, "wall_s": round(wall, 1), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "total_s": summary["total_s"], "dag_s": summary["dag_s"],
            "setup_s": summary["setup_s"], "task_s_sum": round(sum(t["seconds"] or 0.0 for t in tasks), 1),
            "tasks": [{k: t[k] for k in ("dag", "task_id", "start", "end", "seconds")} for t in tasks]}


def plot(runs: list[dict], path: Path) -> Path:
    """A Gantt chart per run: each task's span from the first task's start."""
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 3.2 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        spans = sorted((dt.datetime.fromisoformat(t["start"]), dt.datetime.fromisoformat(t["end"]), t)
                       for t in run["tasks"])
        t0 = spans[0][0]
        for y, (a, b, t) in enumerate(spans):
            ax.barh(y, (b - a).total_seconds(), left=(a - t0).total_seconds(),
                    color="tab:blue" if t["dag"] == DAGS[0] else "tab:orange")
        ax.set_yticks(range(len(spans)), [t["task_id"] for _, _, t in spans], fontsize=6)
        ax.invert_yaxis()
        ax.set_title(f"parallelism {run['parallelism']}: run {run['wall_s']:.0f} s, DAGs {run['dag_s']:.0f} s "
                     f"(load {run['load_before']:.1f})", fontsize=9)
        ax.set_xlabel("seconds from the first task's start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m benchmarks.make_run", description=__doc__.splitlines()[0])
    ap.add_argument("--modes", type=int, nargs="+", default=[1, 2, 2, 1], help="--parallelism of each run, in order")
    ap.add_argument("--output", default=str(RESULTS / "make_run.json"))
    a = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="graphrec-make-run-") as tmp:
        for i, mode in enumerate(a.modes):
            runs.append(one_run(mode, Path(tmp) / f"run{i}"))
            log.info("parallelism %d: wall %.1f s, DAGs %.1f s, task time %.1f s (load %.2f -> %.2f)", mode,
                     runs[-1]["wall_s"], runs[-1]["dag_s"], runs[-1]["task_s_sum"], runs[-1]["load_before"],
                     runs[-1]["load_after"])
    medians = {m: statistics.median(r["wall_s"] for r in runs if r["parallelism"] == m) for m in sorted(set(a.modes))}
    out = Path(a.output)
    out.write_text(json.dumps({"commit": _commit(), "modes": a.modes, "median_wall_s": medians, "runs": runs},
                              indent=1) + "\n")
    png = plot([next(r for r in runs if r["parallelism"] == m) for m in medians], out.with_suffix(".png"))
    print("| parallelism | runs | median wall s | DAGs s (median) | task time s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for m, w in medians.items():
        mine = [r for r in runs if r["parallelism"] == m]
        print(f"| {m} | {len(mine)} | {w:.1f} | {statistics.median(r['dag_s'] for r in mine):.1f} | "
              f"{statistics.median(r['task_s_sum'] for r in mine):.1f} |")
    if len(medians) > 1:
        lo, hi = min(medians), max(medians)
        print(f"wall ratio parallelism {hi} / {lo}: {medians[hi] / medians[lo]:.2f}")
    print(f"{out}\n{png}")
    return 0


def _commit() -> str | None:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or None


if __name__ == "__main__":
    raise SystemExit(main())
