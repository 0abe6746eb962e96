"""The dated output layout of a pipeline work directory — its one definition.

Every DAG task reads and writes ``<work>/<table>/ds=<ds>/`` (one folder per table and day, written
atomically); the day's inputs land in ``<work>/raw/ds=<ds>/<name>``; the scoring service serves the
live parameter store ``<work>/bandit/params/``, which is not dated. :data:`TABLES` names every table
and who writes it; a name outside it is a typo and raises.

Used by the DAG templates (``dags/graphrec_common.py`` loads this file by path in the Airflow
environment, where the project is not installed — so it imports the standard library only, and
its functions join strings: given Jinja placeholders they return templates), by ``jobs.demo.run_daily``,
``jobs.demo.inputs`` and the run report.

>>> dated("runs/pipeline", "graph", "2026-01-05")
'runs/pipeline/graph/ds=2026-01-05'
>>> raw("{{ work }}", "{{ ds }}", "graph/edges")
'{{ work }}/raw/ds={{ ds }}/graph/edges'
>>> dated("w", "grpah", "2026-01-05")
Traceback (most recent call last):
...
ValueError: unknown table 'grpah' (the layout has: bandit, embedding, embedding_tuning, events, fresh_items, friends, \
graph, heavy_hitters, interactions, logs, profile, published, raw, recommender, report, sample, sample_profile, serving, \
traffic)
>>> lock_beside("runs/pipeline/bandit/ds=2026-01-05")
'runs/pipeline/bandit/.ds=2026-01-05.lock'
"""
from __future__ import annotations

import re
from pathlib import Path

PARTITION = "ds"
DEFAULT_WORK = "runs/pipeline"  # the work directory, relative to the project root, when none is given

# table -> what writes it (docs/contracts.md describes each table's contents)
TABLES: dict[str, str] = {
    "raw": "the day's landing zone (upstream systems; the demo: jobs.demo.inputs): graph/, interactions/, reports/ "
           "(and the demo's simulated world, population/)",
    "graph": "graphrec_daily.ingest_graph: edges, vertices, stats.json",
    "interactions": "graphrec_daily.ingest_interactions: interactions (with the previous day's acknowledged feedback), "
                    "users, items, stats.json",
    "sample": "graphrec_daily.sample_graph: the rescaled sample's edges, report.json",
    "profile": "graphrec_daily.profile_graph: profile.json, profile.png (what-if analytics of the full graph)",
    "sample_profile": "graphrec_daily.profile_sample: the sample's profile.json and its comparison with the full "
                      "graph's (comparison.json/.md/.png: per property the estimate by its scaling law, the error)",
    "embedding_tuning": "graphrec_daily.tune_embedding: chosen.json, scores.json (settings tuned on the sample)",
    "embedding": "graphrec_daily.embed_graph: vectors",
    "friends": "graphrec_daily.friend_knn: neighbors",
    "recommender": "graphrec_daily.train_recommender: user_vectors, item_vectors, sparse tables, metrics.json",
    "bandit": "graphrec_daily.seed_bandit/build_candidates/bandit_update/publish (and graphrec_heavy_hitters."
              "publish_fresh_items once the day is finished, jobs.bandit_day): the day's versioned parameter store "
              "(v=<n>/, CURRENT, SEED.json, FINISHED.json), its lock .ds=<ds>.lock beside it",
    "fresh_items": "graphrec_heavy_hitters.add_fresh_items: items (the day's trending item ids, merged into the "
                   "bandit store when it is promoted)",
    "published": "serve_candidates/publish/publish_fresh_items: the service's answer to each reload",
    "traffic": "graphrec_daily.simulate_traffic (demo): curve, summary.json",
    "events": "graphrec_daily.export_events: events, impressions",
    "heavy_hitters": "graphrec_heavy_hitters.heavy_hitters: heavy_hitters, ledger.json",
    "serving": "jobs.demo.run_daily: the scoring service's /metrics after the day (metrics.prom)",
    "report": "jobs.demo.report: report.md, PNG figures, summary.json",
    "logs": "jobs.demo.run_daily: Airflow and scoring-service logs",
}
LIVE_PARAMS = "bandit/params"    # the store the scoring service serves (versions promoted from the days)
SERVICE_STORE = "serving/events.db"  # the demo service's SQLite event log (jobs.demo.run_daily)
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _known(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r} (the layout has: {', '.join(sorted(TABLES))})")
    return table


def history(work: str, table: str) -> str:
    """``<work>/<table>``: the folder that holds every day of ``table``."""
    return f"{work}/{_known(table)}"


def dated(work: str, table: str, ds: str) -> str:
    """``<work>/<table>/ds=<ds>``: one day of ``table``."""
    return f"{history(work, table)}/{PARTITION}={ds}"


def dated_path(work: str | Path, table: str, ds: str) -> Path:
    """:func:`dated` as a :class:`~pathlib.Path` (for the project's Python side)."""
    return Path(dated(str(work), table, ds))


def raw(work: str, ds: str, name: str) -> str:
    """``<work>/raw/ds=<ds>/<name>``: one input of the day's landing zone (e.g. ``graph/edges``)."""
    return f"{dated(work, 'raw', ds)}/{name}"


def lock_beside(path: str) -> str:
    """``<parent>/.<name>.lock``: the lock file of a dated folder, beside it (so replacing the folder keeps it)."""
    parent, _, name = str(path).rstrip("/").rpartition("/")
    return f"{parent}/.{name}.lock" if parent else f".{name}.lock"


def live_params(work: str) -> str:
    """``<work>/bandit/params``: the live parameter store the scoring service serves."""
    return f"{work}/{LIVE_PARAMS}"


def service_store(work: str) -> str:
    """``<work>/serving/events.db``: the demo scoring service's event log."""
    return f"{work}/{SERVICE_STORE}"


def days(work: str | Path, table: str) -> list[str]:
    """The dates of ``table`` present under ``work``, ascending (reads the folder; never called by a DAG file)."""
    folder = Path(history(str(work), table))
    if not folder.is_dir():
        return []
    out = [p.name.split("=", 1)[1] for p in folder.glob(f"{PARTITION}=*") if p.is_dir()]
    return sorted(d for d in out if _DS.match(d))
