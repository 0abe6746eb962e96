"""A day's bandit parameter store, so that re-running a day reproduces it exactly.

The daily DAG computes on a dated store ``<work>/bandit/ds=<ds>/`` (a ``PARAMS_DIR``: ``v=<n>/``
and ``CURRENT``) and promotes its results to the live store ``<work>/bandit/params/`` that the
scoring service serves. The heavy-hitters DAG never writes the day store directly: it stages the
day's trending items as their own table ``<work>/fresh_items/ds=<ds>/`` which promotion merges.

* ``seed`` — (re)create the day's store holding a copy of the latest earlier day's ``CURRENT``
  version (the newest ``ds=<d>`` with ``d < ds``; empty when there is none). The candidate rebuild
  and the batch update of the day then start from the same state on every run of that day, so a
  re-run republishes the same statistics (the live store is never a day's starting point: it
  already contains that day's results). ``SEED.json`` records the seed and its event watermark
  ``last_seq``, where the day's event export starts.
* ``fresh`` — stage the heavy hitters' item ids (``item`` column) as ``fresh_items/ds=<ds>/items``
  (unique, ascending; written atomically).
* ``promote`` — publish the day store's ``CURRENT`` version as the next version of the live store
  (statistics, contexts, centroids, merged event ids and watermark unchanged), so the service's
  version numbers only grow while a re-run can recompute the day. With ``--fresh DIR`` (missing:
  skipped) the staged items are merged first (:func:`recsys.candidates.add_fresh_items`: new
  edges d = λ, b = 0, existing edges untouched — merging twice is merging once): into the day
  store as a new version when the day is *finished* (``--finish``, the daily DAG's last step,
  marks it with ``FINISHED.json``; ``seed`` removes the mark), else into the promoted copy only.
  So the day's final store is ``merge(update(seed), fresh)`` whichever DAG runs last, and the
  batch update never sees a fresh edge it would not see in the other order.

``seed`` and ``promote`` of one day hold an exclusive ``flock`` on ``<work>/bandit/.ds=<ds>.lock``
(beside the day's folder, which ``seed`` replaces), so they serialise; the live store's versions are
published under its own lock (:mod:`recsys.bandits.publish`). A process killed mid-step leaves only
hidden ``.*.tmp-*`` folders that no reader opens; its retry writes the same store.

    python -m jobs.bandit_day seed --history runs/pipeline/bandit --ds 2026-01-05
    python -m jobs.bandit_day fresh --heavy-hitters runs/pipeline/heavy_hitters/ds=2026-01-05/heavy_hitters \\
        --output runs/pipeline/fresh_items/ds=2026-01-05
    python -m jobs.bandit_day promote --day runs/pipeline/bandit/ds=2026-01-05 --live runs/pipeline/bandit/params \\
        [--fresh runs/pipeline/fresh_items/ds=2026-01-05] [--finish]

>>> previous_day(Path("/nonexistent"), "2026-01-05") is None
True
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import datetime as dt
import fcntl
import json
import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from graphs.atomic import atomic_dir, write_json
from jobs.runtime.layout import lock_beside

log = logging.getLogger("graphrec.bandit_day")
_DAY = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")
FINISHED = "FINISHED.json"  # in a day store: the daily DAG's last step promoted it (fresh items merge into it)
FRESH_TABLE = "items"       # in fresh_items/ds=<ds>/: item int64, unique, ascending


@contextmanager
def day_lock(day: str | Path) -> Iterator[None]:
    """Exclusive ``flock`` on the lock file beside ``day`` (held until the block ends, released if killed)."""
    path = Path(lock_beside(str(day)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def previous_day(history: Path, ds: str) -> Path | None:
    """The newest ``history/ds=<d>`` with ``d < ds`` that has a published version."""
    dt.date.fromisoformat(ds)
    if not history.is_dir():
        return None
    days = sorted(m.group(1) for p in history.iterdir() if (m := _DAY.match(p.name)) and (p / "CURRENT").is_file())
    earlier = [d for d in days if d < ds]
    return history / f"ds={earlier[-1]}" if earlier else None


def seed(history: str | Path, ds: str) -> dict:
    """Recreate ``history/ds=<ds>`` from the previous day's ``CURRENT`` version (atomically, under the day lock)."""
    from recsys.bandits.params import current_version, read_manifest

    history = Path(history)
    prev = previous_day(history, ds)
    version = current_version(prev) if prev is not None else None
    last_seq = 0
    with day_lock(history / f"ds={ds}"), atomic_dir(history / f"ds={ds}") as tmp:
        if version is not None:
            shutil.copytree(prev / f"v={version}", tmp / f"v={version}")
            (tmp / "CURRENT").write_text(f"v={version}\n")
            last_seq = int(read_manifest(tmp, version).watermark.seq or 0)
        # not _meta.json: the folder is a PARAMS_DIR, whose versions carry their own metadata.
        # last_seq: the service-log position the seed contains — the day's event export starts after it.
        (tmp / "SEED.json").write_text(json.dumps({"ds": ds, "from": str(prev) if prev else None, "version": version,
                                                   "last_seq": last_seq}))
    log.info("bandit store for ds=%s seeded from %s", ds, f"{prev} v={version}" if prev else "nothing (first day)")
    return {"from": str(prev) if prev else None, "version": version, "last_seq": last_seq}


def stage_fresh(heavy_hitters: str | Path, output: str | Path) -> int:
    """Write the heavy hitters' item ids as the fresh-items table ``output/items``; return how many."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphs.atomic import write_meta
    from recsys.bandits.inputs import read_fresh_items

    ids, _ = read_fresh_items(heavy_hitters)
    items = np.unique(ids)
    with atomic_dir(output) as tmp:
        (tmp / FRESH_TABLE).mkdir()
        pq.write_table(pa.table({"item": pa.array(items, pa.int64())}), tmp / FRESH_TABLE / "part-00000.parquet")
        write_meta(tmp, "jobs.bandit_day.fresh", {"heavy_hitters": str(heavy_hitters)}, rows={"items": int(items.size)})
    log.info("staged %d fresh items in %s", items.size, output)
    return int(items.size)


def _read_staged(fresh: str | Path | None):
    """The staged item ids, or None when there is no fresh-items table (a day without heavy hitters)."""
    if fresh is None or not (Path(fresh) / "_meta.json").is_file():
        return None
    from recsys.bandits.inputs import read_fresh_items

    return read_fresh_items(Path(fresh) / FRESH_TABLE)[0]


def promote(day: str | Path, live: str | Path, fresh: str | Path | None = None, finish: bool = False) -> int:
    """Publish the day store's current version (with the staged fresh items merged) as the live store's next
    version; return its number. See the module docstring for where the fresh items are merged."""
    from recsys.bandits.params import current_version, load_merged_event_ids, load_params, publish_params
    from recsys.candidates import add_fresh_items

    day = Path(day)
    with day_lock(day):
        v = current_version(day)
        if v is None:
            raise FileNotFoundError(f"{day}: no CURRENT version to promote")
        params, merged = load_params(day, v), load_merged_event_ids(day, v)
        items = _read_staged(fresh)
        if items is not None:
            mixed = add_fresh_items(params, items)
            added = mixed.num_edges - params.num_edges
            into_day = finish or (day / FINISHED).is_file()
            if added and into_day:  # a new day version, computed from v under the lock (and checked: CAS)
                params = publish_params(day, mixed, merged_events=merged, producer="jobs.bandit_day.merge_fresh",
                                        meta={"fresh_items": str(fresh), "edges_added": added},
                                        expect_current=v, previous_version=v)
                v = params.version
            else:
                params = mixed
            log.info("fresh items %s: %d new edges (%s)", fresh, added,
                     "into the day store" if into_day else "the day is not finished: into the live copy only")
        out = publish_params(live, params, merged_events=merged, producer="jobs.bandit_day",
                             meta={"promoted_from": f"{day.absolute()}/v={v}", "fresh_items": str(fresh) if fresh else None})
        if finish:
            write_json(day / FINISHED, {"version": v, "live_version": out.version})
    log.info("promoted %s v=%d to %s v=%d", day, v, live, out.version)
    return out.version


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bandit_day", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed", help="recreate <history>/ds=<ds> from the latest earlier day")
    s.add_argument("--history", required=True, help="folder holding the ds=<d> stores")
    s.add_argument("--ds", required=True)
    f = sub.add_parser("fresh", help="stage the heavy hitters' items as the day's fresh_items table")
    f.add_argument("--heavy-hitters", required=True, help="the heavy_hitters table (column item)")
    f.add_argument("--output", required=True, help="fresh_items/ds=<ds> (replaced atomically)")
    q = sub.add_parser("promote", help="publish the day's CURRENT version into the live store")
    q.add_argument("--day", required=True)
    q.add_argument("--live", required=True)
    q.add_argument("--fresh", help="fresh_items/ds=<ds> to merge (absent: nothing to merge)")
    q.add_argument("--finish", action="store_true", help="the day's last step: merge into the day store and mark it")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.cmd == "seed":
        seed(a.history, a.ds)
    elif a.cmd == "fresh":
        stage_fresh(a.heavy_hitters, a.output)
    else:
        promote(a.day, a.live, a.fresh, a.finish)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
