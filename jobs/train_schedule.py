"""When the daily recommender tunes its settings, and which settings it trains with on the other days.

``graphrec_daily.train_recommender`` tunes on a schedule and trains daily with the last chosen
settings: on day ``ds`` it tunes (``recsys.train --tune TRIALS``) when no earlier day tuned within
the last ``--every`` days, and otherwise reuses the settings of the latest earlier day that tuned
(``--settings <recommender>/ds=<d>/metrics.json``; a tuned day's ``metrics.json`` has a non-null
``tuning`` block). Only days *before* ``ds`` are read, so a re-run of a day makes the same choice
and trains the same model; the first day of a work directory tunes. ``--every 0`` never tunes
(the defaults of ``recsys.train``).

Prints the flags for ``recsys.train`` on one line (nothing for the defaults), for the DAG's shell:

    FLAGS=$(python -m jobs.train_schedule --history runs/pipeline/recommender --ds 2026-01-12 --every 7 --trials 8)
    python -m recsys.train ... $FLAGS

>>> import tempfile, pathlib, json
>>> h = pathlib.Path(tempfile.mkdtemp())
>>> train_flags(h, "2026-01-05", every=7, trials=8)
['--tune', '8']
>>> (h / "ds=2026-01-05").mkdir(); _ = (h / "ds=2026-01-05" / "metrics.json").write_text(json.dumps({"tuning": {}}))
>>> (h / "ds=2026-01-04").mkdir(); _ = (h / "ds=2026-01-04" / "metrics.json").write_text(json.dumps({"tuning": None}))
>>> train_flags(h, "2026-01-11", every=7, trials=8)[0], train_flags(h, "2026-01-12", every=7, trials=8)
('--settings', ['--tune', '8'])
>>> train_flags(h, "2026-01-05", every=7, trials=8)  # a re-run of the tuning day tunes again
['--tune', '8']
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import datetime as dt
import json
import logging
from pathlib import Path

from jobs.runtime import layout

log = logging.getLogger("graphrec.train_schedule")


def last_tuned(history: str | Path, ds: str) -> str | None:
    """The latest day before ``ds`` whose recommender tuned (``metrics.json`` with a ``tuning`` block)."""
    prefix = f"{layout.PARTITION}="
    days = sorted(p.name[len(prefix):] for p in Path(history).glob(prefix + "*") if p.is_dir())
    for day in reversed([d for d in days if d < ds]):
        metrics = Path(history) / f"{prefix}{day}" / "metrics.json"
        if metrics.is_file() and json.loads(metrics.read_text()).get("tuning") is not None:
            return day
    return None


def train_flags(history: str | Path, ds: str, every: int, trials: int) -> list[str]:
    """``['--tune', N]``, ``['--settings', metrics.json]`` or ``[]`` (see the module doc)."""
    if every < 0 or trials < 1:
        raise ValueError(f"need --every >= 0 and --trials >= 1, got {every}, {trials}")
    day = dt.date.fromisoformat(ds)
    if every == 0:
        return []
    tuned = last_tuned(history, ds)
    if tuned is None or (day - dt.date.fromisoformat(tuned)).days >= every:
        log.info("ds=%s: tuning (%d trials); last tuned day: %s", ds, trials, tuned)
        return ["--tune", str(trials)]
    path = Path(history) / f"{layout.PARTITION}={tuned}" / "metrics.json"
    log.info("ds=%s: the settings tuned on %s", ds, tuned)
    return ["--settings", str(path)]


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="train_schedule", description=__doc__.splitlines()[0])
    p.add_argument("--history", required=True, help="the recommender table's folder (every day): <work>/recommender")
    p.add_argument("--ds", required=True, help="the day being trained, YYYY-MM-DD")
    p.add_argument("--every", type=int, default=7, help="tune when no earlier day tuned within N days (0: never)")
    p.add_argument("--trials", type=int, default=8, help="recsys.train --tune N")
    a = p.parse_args(argv)
    print(" ".join(train_flags(a.history, a.ds, a.every, a.trials)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
