"""Acknowledged bandit feedback as next-day training interactions: the rules, as a pure core.

The scoring service exports feedback events ``(event_id, score_id, item, reward, ts[, seq])`` and
impressions ``(score_id, user, cluster, weight, item, version, ts)`` (``jobs/export_events.py``);
``user`` and ``item`` there are catalogue ids, i.e. the *original* ids of ``ingest_interactions``'
``users``/``items`` maps. An event becomes one interaction row ``(user, item, ts, weight=reward,
event_id)`` under four rules:

1. **positive only** — ``reward > 0`` (the implicit-feedback reading); other events are counted
   (``non_positive``) and ignored;
2. **one row per event** — copies of an ``event_id`` in the export (a re-exported range) keep the
   one with the smallest ``(seq, ts, score_id, item)`` (``duplicate_events``);
3. **its impression gives the user** — joined on ``(score_id, item)`` (the item must have been
   shown); an event without one is counted (``no_impression``) and dropped, never a crash;
4. **exactly once across days** — an ``event_id`` already in the interactions table is counted
   (``already_present``) and not added again, so re-running a day changes nothing.

This module states the rules on Arrow tables (single machine, tests, small exports);
:mod:`graphs.spark_interactions` runs the same rules on DataFrames for the daily job, and a test
holds the two to the same output.

>>> import pyarrow as pa
>>> ev = pa.table({"event_id": ["e1", "e2", "e1", "e3"], "score_id": ["s1", "s1", "s1", "s9"],
...                "item": [7, 8, 7, 7], "reward": pa.array([1.0, 0.0, 1.0, 1.0], pa.float32())})
>>> imp = pa.table({"score_id": ["s1", "s1"], "user": [42, 42], "item": [7, 8]})
>>> rows, n = feedback_rows(ev, imp)
>>> rows.select(["user", "item", "event_id"]).to_pylist()
[{'user': 42, 'item': 7, 'event_id': 'e1'}]
>>> (n.non_positive, n.duplicate_events, n.no_impression, n.added)
(1, 1, 1, 1)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphs.errors import InputFormatError

TS_TYPE = pa.timestamp("us", tz="UTC")
ROW_SCHEMA = pa.schema([("user", pa.int64()), ("item", pa.int64()), ("ts", TS_TYPE), ("weight", pa.float32()),
                        ("event_id", pa.string())])


@dataclass(frozen=True)
class FeedbackCounts:
    """What happened to one export's events (each event lands in exactly one of the last five)."""

    events: int = 0            # rows in the export
    non_positive: int = 0      # reward <= 0 or null: not training data
    duplicate_events: int = 0  # further copies of an event_id within the export
    no_impression: int = 0     # positive, but no impression row for (score_id, item)
    already_present: int = 0   # event_id already in the interactions (an earlier day or a re-run)
    added: int = 0             # new interaction rows

    def __post_init__(self):
        parts = self.non_positive + self.duplicate_events + self.no_impression + self.already_present + self.added
        if min(asdict(self).values()) < 0 or parts != self.events:
            raise ValueError(f"FeedbackCounts do not add up: {asdict(self)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _require(t: pa.Table, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in t.column_names]
    if missing:
        raise InputFormatError(what, f"missing column(s) {missing}; have {t.column_names}")


def _col(t: pa.Table, name: str, typ: pa.DataType, what: str, ids: bool = False) -> pa.ChunkedArray:
    """Column ``name`` cast to ``typ``; a value that does not fit, a null or negative id, or a non-finite
    number raises :class:`InputFormatError` naming the table (``what``) and the column."""
    try:
        c = t.column(name).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise InputFormatError(what, f"column {name!r} ({t.column(name).type}) is not {typ}: {e}") from None
    if ids and c.null_count:
        raise InputFormatError(what, f"column {name!r} has {c.null_count} null id(s)")
    if ids and len(c) and pc.min(c).as_py() < 0:
        raise InputFormatError(what, f"column {name!r} has a negative id {pc.min(c).as_py()}")
    if pa.types.is_floating(typ) and len(c) and not pc.all(pc.fill_null(pc.is_finite(c), True)).as_py():
        raise InputFormatError(what, f"column {name!r} has a NaN or infinite value")
    return c


def read_export_table(path) -> pa.Table:
    """One table of a feedback export (``events/`` or ``impressions/``, Parquet file or folder); an
    unreadable or empty one raises :class:`InputFormatError` naming it."""
    import pyarrow.parquet as pq
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise InputFormatError(str(p), "not found")
    if p.is_dir() and not any(f.is_file() and not f.name.startswith(("_", ".")) for f in p.rglob("*")):
        raise InputFormatError(str(p), "empty directory: no Parquet files")
    try:
        return pq.read_table(p)
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(str(p), f"not readable as Parquet ({type(e).__name__}: {e})") from None


def _first_per_event(ev: pa.Table) -> pa.Table:
    """One row per ``event_id``: the smallest ``(seq, ts, score_id, item)``."""
    keys = [k for k in ("event_id", "seq", "ts", "score_id", "item") if k in ev.column_names]
    ev = ev.sort_by([(k, "ascending") for k in keys])
    ids = ev.column("event_id").combine_chunks()
    first = np.ones(len(ids), bool)
    if len(ids) > 1:
        first[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return ev.filter(pa.array(first))


def feedback_rows(events: pa.Table, impressions: pa.Table,
                  known_event_ids: pa.Array | pa.ChunkedArray | None = None,
                  sources: tuple[str, str] = ("events", "impressions")) -> tuple[pa.Table, FeedbackCounts]:
    """New interaction rows (:data:`ROW_SCHEMA`, original ids) from one export, and the counts.

    Args:
        events: ``event_id, score_id, item, reward`` (+ optional ``ts``, ``seq``).
        impressions: ``score_id, user, item`` (other columns ignored; one row per cluster × item).
        known_event_ids: event ids already in the interactions table.
        sources: how errors name the two tables (their paths, when read from files).

    Raises:
        InputFormatError: a column is missing or mistyped, an event id or item is null, an id is
            negative, a reward is not finite, or one ``(score_id, item)`` names two users.
    """
    ev_at, imp_at = sources
    _require(events, ("event_id", "score_id", "item", "reward"), ev_at)
    _require(impressions, ("score_id", "user", "item"), imp_at)
    if events.column("event_id").null_count:
        raise InputFormatError(ev_at, "null event_id")
    n_events = events.num_rows
    cols = {"event_id": _col(events, "event_id", pa.string(), ev_at), "score_id": _col(events, "score_id", pa.string(), ev_at),
            "item": _col(events, "item", pa.int64(), ev_at, ids=True), "reward": _col(events, "reward", pa.float32(), ev_at)}
    cols["ts"] = _col(events, "ts", TS_TYPE, ev_at) if "ts" in events.column_names else pa.nulls(n_events, TS_TYPE)
    if "seq" in events.column_names:
        cols["seq"] = _col(events, "seq", pa.int64(), ev_at)
    ev = pa.table(cols)
    ev = ev.filter(pc.fill_null(pc.greater(ev.column("reward"), 0), False))
    n_pos = ev.num_rows
    ev = _first_per_event(ev)
    n_unique = ev.num_rows
    imp = pa.table({"score_id": _col(impressions, "score_id", pa.string(), imp_at),
                    "item": _col(impressions, "item", pa.int64(), imp_at, ids=True),
                    "user": _col(impressions, "user", pa.int64(), imp_at, ids=True)}
                   ).group_by(["score_id", "item", "user"]).aggregate([])
    per_key = imp.group_by(["score_id", "item"]).aggregate([("user", "count")])
    if per_key.num_rows and pc.max(per_key.column("user_count")).as_py() > 1:
        bad = per_key.filter(pc.greater(per_key.column("user_count"), 1)).slice(0, 1).to_pylist()[0]
        raise InputFormatError(imp_at, f"(score_id, item) = ({bad['score_id']!r}, {bad['item']}) names several users")
    j = ev.join(imp, keys=["score_id", "item"], join_type="left outer")
    j = j.filter(pc.is_valid(j.column("user")))
    n_matched = j.num_rows
    if known_event_ids is not None and len(known_event_ids):
        j = j.filter(pc.invert(pc.is_in(j.column("event_id"), value_set=pa.chunked_array(known_event_ids).combine_chunks())))
    rows = pa.table({"user": j.column("user"), "item": j.column("item"), "ts": j.column("ts"),
                     "weight": j.column("reward"), "event_id": j.column("event_id")}, schema=ROW_SCHEMA)
    rows = rows.sort_by([("user", "ascending"), ("item", "ascending"), ("event_id", "ascending")])
    counts = FeedbackCounts(n_events, n_events - n_pos, n_pos - n_unique, n_unique - n_matched,
                            n_matched - rows.num_rows, rows.num_rows)
    return rows, counts


def merge_feedback(interactions: pa.Table, events: pa.Table, impressions: pa.Table,
                   sources: tuple[str, str] = ("events", "impressions")) -> tuple[pa.Table, FeedbackCounts]:
    """``interactions`` (original ids; ``event_id`` optional) ∪ the export's new rows, sorted.

    The result has ``user, item, ts, weight, event_id`` (``event_id`` null for non-feedback rows);
    merging the same export again returns the same table (idempotent).

    >>> import pyarrow as pa
    >>> base = pa.table({"user": [42, 5], "item": [1, 1]})
    >>> ev = pa.table({"event_id": ["e1"], "score_id": ["s1"], "item": [7], "reward": [1.0]})
    >>> imp = pa.table({"score_id": ["s1"], "user": [42], "item": [7]})
    >>> once, n1 = merge_feedback(base, ev, imp)
    >>> twice, n2 = merge_feedback(once, ev, imp)
    >>> (once.num_rows, n1.added, twice.equals(once), n2.already_present)
    (3, 1, True, 1)
    """
    _require(interactions, ("user", "item"), "interactions")
    n = interactions.num_rows
    have = {c: interactions.column(c) for c in interactions.column_names}
    base = pa.table({
        "user": have["user"].cast(pa.int64()), "item": have["item"].cast(pa.int64()),
        "ts": have["ts"].cast(TS_TYPE) if "ts" in have else pa.nulls(n, TS_TYPE),
        "weight": have["weight"].cast(pa.float32()) if "weight" in have else pa.nulls(n, pa.float32()),
        "event_id": have["event_id"].cast(pa.string()) if "event_id" in have else pa.nulls(n, pa.string()),
    }, schema=ROW_SCHEMA)
    known = pc.drop_null(base.column("event_id"))
    rows, counts = feedback_rows(events, impressions, known, sources)
    merged = pa.concat_tables([base, rows]).sort_by([("user", "ascending"), ("item", "ascending"),
                                                     ("event_id", "ascending")])
    return merged.combine_chunks(), counts
