"""``make run``'s driver (``jobs.demo.run_daily``) for real, as ``make run`` calls it: both DAGs through
``airflow dags test --use-executor`` (LocalExecutor, Execution API server, SQLite), independent tasks side by side."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.support import PROJECT_PY, ROOT

DS = "2026-02-02"
SMALL = {"rec_dim": 16, "clusters": 8, "bandit_w": 20, "knn_k": 5, "ratio": 0.5, "shuffle_partitions": 2,
         "driver_memory": "1g", "tune_trials": 2}


def _t(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def test_make_run_runs_independent_tasks_side_by_side(tmp_path):
    if not PROJECT_PY.exists():
        pytest.skip(f"project environment not found at {PROJECT_PY}")
    from jobs.demo.dag_progress import task_states

    home, work = tmp_path / "home", tmp_path / "work"
    cmd = [str(PROJECT_PY), "-m", "jobs.demo.run_daily", "--work", str(work), "--ds", DS, "--nodes", "600",
           "--items", "150", "--requests", "200", "--epochs", "2", "--dim", "16", "--conf", json.dumps(SMALL),
           "--airflow-venv", str(Path(sys.executable).parents[1]), "--airflow-home", str(home)]
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "1 day(s) from 2026-02-02: all tasks succeeded" in r.stdout
    daily, hh = task_states(home, DS), task_states(home, DS, "graphrec_heavy_hitters")
    assert len(daily) == 16 and len(hh) == 4
    assert all(t["state"] == "success" for t in daily + hh), daily + hh
    spans = sorted((_t(t["start"]), _t(t["end"]), t["task_id"]) for t in daily)
    overlapping = [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]
    assert overlapping, spans  # the executor ran at least two tasks at the same time
    assert (work / "report" / f"ds={DS}" / "report.md").is_file()
    assert (work / "logs" / f"ds={DS}" / "execution_api.log").is_file()
