"""Export the scoring service's logged feedback and impressions for the batch bandit update.

Pages through ``GET /v1/events/export?since=S&limit=N&format=parquet&table=events|impressions``
and writes ``DIR/events(event_id, score_id, item, reward, ts, seq)`` and
``DIR/impressions(score_id, user, cluster, weight, item, version, ts)`` — the inputs of
``jobs/bandit_update.py`` — plus ``_meta.json`` with the cursor ``last_seq``, atomically.

The cursor ``S`` starts after ``last_seq`` of ``--since-from``: the day's bandit seed
(``bandit/ds=<ds>/SEED.json``, the log position its statistics contain) or a previous export's
folder; absent → 0. Re-running the same day therefore exports the same range again (plus events
logged since), and the update job deduplicates by ``event_id``.

    python -m jobs.export_events --url http://127.0.0.1:8000 --output runs/events/ds=2026-01-05 \
        [--since-from runs/bandit/ds=2026-01-05/SEED.json]     # token: $GRAPHREC_SERVE_TOKEN

>>> ExportConfig(url="http://127.0.0.1:1", output="x", page=0)
Traceback (most recent call last):
...
ValueError: --page must be in [1, 1000000], got 0
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import io
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from graphs.atomic import atomic_dir, write_meta

log = logging.getLogger("graphrec.export_events")
TOKEN_ENV = "GRAPHREC_SERVE_TOKEN"


@dataclass(frozen=True)
class ExportConfig:
    url: str
    output: str
    since_from: str | None = None
    page: int = 50_000
    timeout_s: float = 60.0

    def __post_init__(self):
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"--url must be http(s)://HOST:PORT, got {self.url!r}")
        if not 1 <= self.page <= 1_000_000:
            raise ValueError(f"--page must be in [1, 1000000], got {self.page}")


def previous_cursor(since_from: str | None) -> int:
    """``last_seq`` of a JSON file, or of a folder's ``_meta.json`` (a previous export); 0 when absent."""
    if not since_from:
        return 0
    meta = Path(since_from)
    meta = meta / "_meta.json" if meta.is_dir() or not meta.suffix else meta
    if not meta.exists():
        return 0
    try:
        return int(json.loads(meta.read_text())["last_seq"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{meta}: no integer 'last_seq' ({e})") from None


def fetch(cfg: ExportConfig, token: str | None):
    """All events after the cursor and their impressions, as two Arrow tables."""
    import httpx
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    since = first = previous_cursor(cfg.since_from)
    events, imps = [], []
    with httpx.Client(base_url=cfg.url, headers=headers, timeout=cfg.timeout_s) as client:
        while True:
            got = {}
            for table in ("events", "impressions"):
                r = client.get("/v1/events/export", params={"since": since, "limit": cfg.page, "format": "parquet",
                                                            "table": table})
                if r.status_code != 200:
                    raise RuntimeError(f"{cfg.url}/v1/events/export ({table}, since={since}): HTTP {r.status_code} {r.text[:300]}")
                got[table] = pq.read_table(io.BytesIO(r.content))
            if got["events"].num_rows == 0:
                break
            events.append(got["events"])
            imps.append(got["impressions"])
            since = int(pc.max(got["events"].column("seq")).as_py())
            if got["events"].num_rows < cfg.page:
                break
    from recsys.serving.log_records import EXPORT_EVENT_SCHEMA, IMPRESSION_SCHEMA

    if not events:
        return EXPORT_EVENT_SCHEMA.empty_table(), IMPRESSION_SCHEMA.empty_table(), first, since
    # A score id's impression rows come with every page holding one of its events: keep the first copy.
    seen = pa.array([], pa.string())
    kept = []
    for t in imps:
        t = t.filter(pc.invert(pc.is_in(t.column("score_id"), value_set=seen)))
        kept.append(t)
        seen = pa.concat_arrays([seen, pc.unique(t.column("score_id"))])
    return pa.concat_tables(events), pa.concat_tables(kept), first, since


def run(cfg: ExportConfig, token: str | None) -> dict:
    import pyarrow.parquet as pq

    ev, im, first, last = fetch(cfg, token)
    rows = {"events": ev.num_rows, "impressions": im.num_rows}
    with atomic_dir(cfg.output) as tmp:
        for name, t in (("events", ev), ("impressions", im)):
            (tmp / name).mkdir()
            pq.write_table(t, tmp / name / "part-00000.parquet")
        meta = write_meta(tmp, "export_events", {k: v for k, v in asdict(cfg).items() if k != "timeout_s"},
                          rows=rows, first_seq=first, last_seq=last)
    log.info("exported %d events, %d impression rows (seq %d..%d) to %s", rows["events"], rows["impressions"],
             first, last, cfg.output)
    return meta


def parse_args(argv=None) -> ExportConfig:
    p = argparse.ArgumentParser(prog="export_events", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="scoring service base URL")
    p.add_argument("--output", required=True, help="output DIR (replaced atomically)")
    p.add_argument("--since-from", help="JSON file (or DIR with _meta.json) whose last_seq is the cursor")
    p.add_argument("--page", type=int, default=50_000, help="events per request")
    a = p.parse_args(argv)
    return ExportConfig(url=a.url.rstrip("/"), output=a.output, since_from=a.since_from, page=a.page)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    run(cfg, os.environ.get(TOKEN_ENV) or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
