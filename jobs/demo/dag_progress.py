"""Task states of a DAG run from Airflow's SQLite metadata DB, and a console line per task as it starts and ends.

``airflow dags test`` prints nothing useful while a DAG runs (its log goes to a file); :class:`Progress`
polls the task instances of the run every few seconds and prints what changed, so ``make run`` shows
each task as it starts and finishes. Standard library only: the DAG tests import it from the Airflow
environment.

>>> p = Progress(Path("/nonexistent"), "graphrec_daily", "2026-01-05")
>>> p.lines([{"task_id": "ingest_graph", "state": "running", "tries": 1, "seconds": None}])
['graphrec_daily 2026-01-05  ingest_graph  started']
>>> p.lines([{"task_id": "ingest_graph", "state": "success", "tries": 1, "seconds": 31.26}])
['graphrec_daily 2026-01-05  ingest_graph  success in 31 s  [1/1 done]']
>>> p.lines([{"task_id": "ingest_graph", "state": "success", "tries": 1, "seconds": 31.26}])
[]
"""
from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

log = logging.getLogger("graphrec.dag_progress")
STARTED = {"running"}
RETRYING = {"up_for_retry", "up_for_reschedule", "deferred"}
DONE = {"success", "failed", "skipped", "upstream_failed", "removed"}


def task_states(home: Path, ds: str, dag_id: str = "graphrec_daily") -> list[dict]:
    """Task instances of ``dag_id``'s latest run for ``ds``: id, state, tries, start, end, duration (seconds)."""
    db = Path(home) / "airflow.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        run = con.execute("SELECT run_id FROM dag_run WHERE dag_id=? AND logical_date LIKE ? ORDER BY id DESC LIMIT 1",
                          (dag_id, f"{ds}%")).fetchone()
        if run is None:
            return []
        rows = con.execute("SELECT task_id, state, try_number, start_date, end_date, duration FROM task_instance "
                           "WHERE dag_id=? AND run_id=? ORDER BY start_date", (dag_id, run[0])).fetchall()
    return [{"task_id": r[0], "state": r[1], "tries": r[2], "start": r[3], "end": r[4], "seconds": r[5]} for r in rows]


class Progress:
    """Prints a line per task of ``dag_id``'s run for ``ds`` when it starts, retries and ends.

    Use as a context manager around the ``airflow dags test`` call: a thread polls every
    ``interval`` seconds; leaving the block polls once more, so the last transitions are printed too.
    """

    def __init__(self, home: Path, dag_id: str, ds: str, interval: float = 2.0, out: TextIO | None = None):
        self.home, self.dag_id, self.ds, self.interval = Path(home), dag_id, ds, interval
        self.out = out or sys.stdout
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def lines(self, tasks: list[dict]) -> list[str]:
        """The console lines for what changed since the last call (updates what was seen)."""
        out, head = [], f"{self.dag_id} {self.ds}"
        done = sum(t["state"] in DONE for t in tasks)
        for t in tasks:
            state, before = t["state"], self._seen.get(t["task_id"])
            if state == before or state not in STARTED | RETRYING | DONE:
                continue
            self._seen[t["task_id"]] = state
            if state in STARTED:
                out.append(f"{head}  {t['task_id']}  started" + (f" (try {t['tries']})" if (t["tries"] or 1) > 1 else ""))
            elif state in RETRYING:
                out.append(f"{head}  {t['task_id']}  {state.replace('_', ' ')}")
            else:
                took = f" in {t['seconds']:.0f} s" if isinstance(t.get("seconds"), (int, float)) else ""
                out.append(f"{head}  {t['task_id']}  {state}{took}  [{done}/{len(tasks)} done]")
        return out

    def poll(self) -> None:
        try:
            tasks = task_states(self.home, self.ds, self.dag_id)
        except sqlite3.Error as e:  # the DB is busy or not migrated yet: try again at the next poll
            log.debug("task states not readable yet: %s", e)
            return
        for line in self.lines(tasks):
            print(f"{time.strftime('%H:%M:%S')} {line}", file=self.out, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 10)
        self.poll()
