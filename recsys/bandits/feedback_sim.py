"""Simulated traffic for the closed loop: score users with the current version, log impressions and feedback.

Offline stand-in for the scoring service (same records, same schemas) used by ``make run`` and the
batch-update demo: ``requests`` users are drawn from the version's users; each gets the top-``slate``
items of its clusters' candidates by the Diag-LinUCB score of the current version
(:class:`recsys.bandits.diag_linucb.DiagLinUCB`); a click is drawn for each shown item with
probability ``sigmoid(β·(z − 2))``, ``z`` the standardised inner product ⟨u, v_j⟩ of the user and
item vectors (or a hidden per-item click rate when no vectors are given). A fraction of the
events is written twice, as an at-least-once log would, to exercise deduplication.

Output: ``OUT/impressions`` (``IMPRESSION_SCHEMA``), ``OUT/events`` (``EVENT_SCHEMA``), ``OUT/_meta.json``,
written atomically.

    python -m recsys.bandits.feedback_sim --params PARAMS_DIR --out DIR [--user-vectors DIR --item-vectors DIR]

>>> import tempfile, pathlib
>>> from recsys.bandits.params import BanditParams
>>> p = BanditParams.build(lam=1.0, alpha=0.1, k=2, w=2, edge_cluster=[0, 0, 1, 1], edge_item=[1, 2, 2, 3],
...     user=[7, 7], user_cluster=[0, 1], user_weight=[0.7, 0.3], centroids=np.zeros((2, 2)))
>>> imps, evs = simulate_feedback(p, requests=5, slate=2, seed=0)
>>> imps.num_rows, evs.num_rows
(20, 10)
"""
from __future__ import annotations

import argparse
import logging
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.bandits.diag_linucb import DiagLinUCB
from recsys.bandits.params import BanditParams, load_params
from recsys.bandits.records import EVENT_SCHEMA, IMPRESSION_SCHEMA, TS_TYPE

log = logging.getLogger(__name__)

__all__ = ["simulate_feedback", "main"]


def _click_prob(users: np.ndarray, shown: np.ndarray, user_vecs: tuple[np.ndarray, np.ndarray] | None,
                item_vecs: tuple[np.ndarray, np.ndarray] | None, rng: np.random.Generator, beta: float) -> np.ndarray:
    if user_vecs is None or item_vecs is None:
        ids = np.unique(shown[shown >= 0])
        rate = 0.02 + 0.3 * rng.beta(0.5, 3.0, ids.size)  # hidden per-item click rates
        return np.where(shown >= 0, rate[np.searchsorted(ids, np.maximum(shown, 0)).clip(0, max(ids.size - 1, 0))], 0.0)
    (uid, U), (iid, V) = user_vecs, item_vecs
    uo, io = np.argsort(uid), np.argsort(iid)
    up = uo[np.searchsorted(uid, users, sorter=uo).clip(0, uid.size - 1)]
    ip = io[np.searchsorted(iid, np.maximum(shown, 0), sorter=io).clip(0, iid.size - 1)]
    ip_known = (iid[ip] == shown) & (shown >= 0)
    z = np.einsum("nd,nmd->nm", U[up], V[ip])
    z = (z - z.mean()) / (z.std() + 1e-12)
    return np.where(ip_known & (uid[up] == users)[:, None], 1.0 / (1.0 + np.exp(-beta * (z - 2.0))), 0.0)


def simulate_feedback(params: BanditParams, requests: int = 1000, slate: int = 10, seed: int = 0, beta: float = 1.5,
                      duplicate_fraction: float = 0.01, user_vecs=None, item_vecs=None,
                      start_ts: float = 1.7e9) -> tuple[pa.Table, pa.Table]:
    """``(impressions, events)`` tables of ``requests`` simulated score calls and their clicks/non-clicks."""
    if params.user.size == 0 or params.num_edges == 0:
        raise ValueError("simulate_feedback: the parameter version has no users or no edges")
    rng = np.random.default_rng(seed)
    users = rng.choice(np.unique(params.user), requests)
    cl, w = params.context(users)
    cand = params.candidate_matrix(cl)
    pol = DiagLinUCB.from_params(params)
    sel = pol.select(cl, w, cand, slate, rng=rng)
    shown = np.take_along_axis(cand, sel, axis=1)
    prob = _click_prob(users, shown, user_vecs, item_vecs, rng, beta)
    clicks = (rng.random(shown.shape) < prob).astype(np.float32)
    run = uuid.uuid4().hex[:8]
    sid = np.array([f"sim-{run}-{i}" for i in range(requests)], dtype=object)
    ts = start_ts + np.arange(requests, dtype=np.float64) * 0.01
    # impressions: one row per (request, context cluster, shown item)
    r, s = np.nonzero(shown >= 0)
    K = cl.shape[1]
    rr = np.repeat(r, K)
    kk = np.tile(np.arange(K), r.size)
    keep = cl[rr, kk] >= 0
    rr, kk, ss = rr[keep], kk[keep], np.repeat(s, K)[keep]
    micros = lambda t: pa.array(np.round(t * 1e6).astype(np.int64)).cast(TS_TYPE)  # noqa: E731
    imps = pa.table({"score_id": pa.array(sid[rr], pa.string()), "user": users[rr].astype(np.int64),
                     "cluster": cl[rr, kk].astype(np.int32), "weight": w[rr, kk].astype(np.float32),
                     "item": shown[rr, ss].astype(np.int64), "version": np.full(rr.size, params.version, np.int64),
                     "ts": micros(ts[rr])}, schema=IMPRESSION_SCHEMA)
    eid = np.array([f"ev-{run}-{i}" for i in range(r.size)], dtype=object)
    dup = np.nonzero(rng.random(r.size) < duplicate_fraction)[0]
    e_idx = np.concatenate([np.arange(r.size), dup])
    evs = pa.table({"event_id": pa.array(eid[e_idx], pa.string()), "score_id": pa.array(sid[r[e_idx]], pa.string()),
                    "item": shown[r[e_idx], s[e_idx]].astype(np.int64), "reward": clicks[r[e_idx], s[e_idx]],
                    "ts": micros(ts[r[e_idx]] + 1.0)}, schema=EVENT_SCHEMA)
    return imps, evs


def main(argv: Sequence[str] | None = None) -> int:
    from graphs.atomic import atomic_dir, write_meta
    from recsys.candidates import read_vectors

    ap = argparse.ArgumentParser(prog="python -m recsys.bandits.feedback_sim", description=__doc__.split("\n")[0])
    ap.add_argument("--params", required=True, help="PARAMS_DIR (its CURRENT version scores)")
    ap.add_argument("--out", required=True, help="output DIR (impressions/, events/, _meta.json)")
    ap.add_argument("--user-vectors", help="(id, vector) Parquet DIR for the click model")
    ap.add_argument("--item-vectors", help="(id, vector) Parquet DIR for the click model")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--slate", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duplicate-fraction", type=float, default=0.01)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.requests < 1 or a.slate < 1 or not 0 <= a.duplicate_fraction <= 1:
        ap.error("--requests and --slate must be >= 1 and --duplicate-fraction in [0, 1]")
    t0 = time.perf_counter()
    params = load_params(a.params)
    uv = read_vectors(a.user_vectors) if a.user_vectors else None
    iv = read_vectors(a.item_vectors) if a.item_vectors else None
    imps, evs = simulate_feedback(params, a.requests, a.slate, a.seed, duplicate_fraction=a.duplicate_fraction,
                                  user_vecs=uv, item_vecs=iv, start_ts=time.time())
    with atomic_dir(a.out) as tmp:
        for name, t in (("impressions", imps), ("events", evs)):
            (tmp / name).mkdir()
            pq.write_table(t, tmp / name / "part-00000.parquet")
        clicks = float(np.asarray(evs.column("reward")).sum())
        write_meta(tmp, "recsys.bandits.feedback_sim", vars(a), version=params.version,
                   rows={"impressions": imps.num_rows, "events": evs.num_rows}, clicks=clicks,
                   seconds=time.perf_counter() - t0)
    log.info("wrote %d impression rows and %d events (%.0f clicks) to %s", imps.num_rows, evs.num_rows, clicks, Path(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
