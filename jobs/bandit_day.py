"""A day's bandit parameter store, so that re-running a day reproduces it exactly.

The daily DAG computes on a dated store ``<work>/bandit/ds=<ds>/`` (a ``PARAMS_DIR``: ``v=<n>/``
and ``CURRENT``) and promotes its results to the live store ``<work>/bandit/params/`` that the
scoring service serves:

* ``seed`` — (re)create the day's store holding a copy of the latest earlier day's ``CURRENT``
  version (the newest ``ds=<d>`` with ``d < ds``; empty when there is none). The candidate rebuild
  and the batch update of the day then start from the same state on every run of that day, so a
  re-run republishes the same statistics (the live store is never a day's starting point: it
  already contains that day's results). ``SEED.json`` records the seed and its event watermark
  ``last_seq``, where the day's event export starts.
* ``promote`` — publish the day store's ``CURRENT`` version as the next version of the live store
  (statistics, contexts, centroids, merged event ids and watermark unchanged), so the service's
  version numbers only grow while a re-run can recompute the day.

    python -m jobs.bandit_day seed --history runs/pipeline/bandit --ds 2026-01-05
    python -m jobs.bandit_day promote --day runs/pipeline/bandit/ds=2026-01-05 --live runs/pipeline/bandit/params

>>> previous_day(Path("/nonexistent"), "2026-01-05") is None
True
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import datetime as dt
import json
import logging
import re
import shutil
from pathlib import Path

from graphs.atomic import atomic_dir

log = logging.getLogger("graphrec.bandit_day")
_DAY = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})$")


def previous_day(history: Path, ds: str) -> Path | None:
    """The newest ``history/ds=<d>`` with ``d < ds`` that has a published version."""
    dt.date.fromisoformat(ds)
    if not history.is_dir():
        return None
    days = sorted(m.group(1) for p in history.iterdir() if (m := _DAY.match(p.name)) and (p / "CURRENT").is_file())
    earlier = [d for d in days if d < ds]
    return history / f"ds={earlier[-1]}" if earlier else None


def seed(history: str | Path, ds: str) -> dict:
    """Recreate ``history/ds=<ds>`` from the previous day's ``CURRENT`` version (atomically)."""
    from recsys.bandits.params import current_version, read_manifest

    history = Path(history)
    prev = previous_day(history, ds)
    version = current_version(prev) if prev is not None else None
    last_seq = 0
    with atomic_dir(history / f"ds={ds}") as tmp:
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


def promote(day: str | Path, live: str | Path) -> int:
    """Publish the day store's current version as the live store's next version; return its number."""
    from recsys.bandits.params import current_version, load_merged_event_ids, load_params, publish_params

    v = current_version(day)
    if v is None:
        raise FileNotFoundError(f"{day}: no CURRENT version to promote")
    params = load_params(day, v)
    out = publish_params(live, params, merged_events=load_merged_event_ids(day, v), producer="jobs.bandit_day",
                         meta={"promoted_from": f"{Path(day).absolute()}/v={v}"})
    log.info("promoted %s v=%d to %s v=%d", day, v, live, out.version)
    return out.version


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bandit_day", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed", help="recreate <history>/ds=<ds> from the latest earlier day")
    s.add_argument("--history", required=True, help="folder holding the ds=<d> stores")
    s.add_argument("--ds", required=True)
    q = sub.add_parser("promote", help="publish the day's CURRENT version into the live store")
    q.add_argument("--day", required=True)
    q.add_argument("--live", required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.cmd == "seed":
        seed(a.history, a.ds)
    else:
        promote(a.day, a.live)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
