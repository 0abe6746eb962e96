"""Simulated users for the demo pipeline: score requests and feedback against the live service.

Stands in for the outside world between the candidate-graph publish and the batch update: each
request asks ``POST /v1/score`` for ``k`` items for a user drawn (seeded, uniformly; ``--ds`` mixes
the day into the seed, so each day draws other users and a re-run of a day the same) from the
world's users; an item earns reward 1 when the user interacted with it, else 0; after each batch of
requests all shown items' rewards go to ``POST /v1/feedback`` (``event_id = <score_id>:<item>``), so
the service learns online between batches. The world is ``--population DIR`` when given
(``users(user)`` and ``interactions(user, item)``: every user and their true preferences, observed
or not — the demo's ``raw/ds=<ds>/population``, so users with friends only and users unknown to
the system are scored too), else the ingested ``--interactions`` (their users, their items).
``summary.json`` counts the requests per serving path (``paths``: personal | social | fallback).

Writes ``OUTPUT/curve(batch, requests, reward_rate, random_rate, cumulative_reward)`` — the bandit's
learning curve next to uniformly random items of the catalogue — and ``OUTPUT/summary.json``.

    python -m jobs.demo.simulate_traffic --url http://127.0.0.1:8000 --interactions runs/interactions/ds=2026-01-05 \
        --output runs/traffic/ds=2026-01-05 --requests 2000 \
        [--population runs/raw/ds=2026-01-05/population]     # token: $GRAPHREC_SERVE_TOKEN

>>> SimulationConfig(url="http://x:1", interactions="i", output="o", requests=10, batch=20)
Traceback (most recent call last):
...
ValueError: need 1 <= --batch <= --requests and --batch * --k <= 1000, got batch=20, requests=10, k=10
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from graphs.atomic import atomic_dir, write_json, write_meta
from jobs.export_events import TOKEN_ENV  # the service's bearer token, one name for its clients

log = logging.getLogger("graphrec.simulate_traffic")


@dataclass(frozen=True)
class SimulationConfig:
    url: str
    interactions: str
    output: str
    requests: int = 2_000
    batch: int = 50
    k: int = 10
    seed: int = 0
    population: str | None = None
    ds: str | None = None

    def __post_init__(self):
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"--url must be http(s)://HOST:PORT, got {self.url!r}")
        if not (1 <= self.batch <= self.requests and self.batch * self.k <= 1000 and self.k >= 1):
            raise ValueError(f"need 1 <= --batch <= --requests and --batch * --k <= 1000, got batch={self.batch}, "
                             f"requests={self.requests}, k={self.k}")


class Preferences:
    """Which (user, item) pairs earn reward 1: membership in the interaction table (vectorised).

    Ids are catalogue ids of any size; pairs are keyed by their ranks among the known users/items.
    """

    def __init__(self, user: np.ndarray, item: np.ndarray, population: np.ndarray | None = None):
        self.users, self.items = np.unique(user), np.unique(item)
        self.keys = np.unique(self._key(np.asarray(user), np.asarray(item)))
        # who gets scored: every user of the world (with or without interactions), default those with some
        self.population = self.users if population is None else np.unique(np.asarray(population, np.int64))

    def _key(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        u = np.minimum(np.searchsorted(self.users, user), self.users.size - 1)
        i = np.minimum(np.searchsorted(self.items, item), self.items.size - 1)
        known = (self.users[u] == user) & (self.items[i] == item)
        return np.where(known, u.astype(np.int64) * self.items.size + i, -1)

    def reward(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        q = self._key(np.asarray(user), np.asarray(item))
        pos = np.minimum(np.searchsorted(self.keys, q), self.keys.size - 1)
        return ((q >= 0) & (self.keys[pos] == q)).astype(np.float32)


def load_preferences(path: str) -> Preferences:
    """The ingested interactions, in the catalogue ids the recommender exports and the service serves."""
    import pyarrow.parquet as pq

    from recsys.data import to_catalogue

    p = Path(path)
    table = p / "interactions" if (p / "interactions").exists() else p
    t = pq.read_table(table, columns=["user", "item"])
    if t.num_rows == 0:
        raise ValueError(f"{table}: no interactions")
    user = t.column("user").to_numpy().astype(np.int64)
    item = t.column("item").to_numpy().astype(np.int64)
    return Preferences(to_catalogue(table.parent, "users", user), to_catalogue(table.parent, "items", item))


def load_population(path: str) -> Preferences:
    """The simulated world: ``DIR/users(user)`` scored, ``DIR/interactions(user, item)`` true preferences."""
    import pyarrow.parquet as pq

    p = Path(path)
    t = pq.read_table(p / "interactions", columns=["user", "item"])
    users = pq.read_table(p / "users", columns=["user"]).column("user").to_numpy().astype(np.int64)
    if t.num_rows == 0 or users.size == 0:
        raise ValueError(f"{p}: no users or no interactions")
    return Preferences(t.column("user").to_numpy().astype(np.int64), t.column("item").to_numpy().astype(np.int64),
                       population=users)


def load_world(cfg: SimulationConfig) -> Preferences:
    """``--population`` when given and present, else the ingested interactions (logged)."""
    if cfg.population is not None:
        if Path(cfg.population).exists():
            return load_population(cfg.population)
        log.warning("--population %s does not exist: scoring the users of %s", cfg.population, cfg.interactions)
    return load_preferences(cfg.interactions)


def traffic_seed(seed: int, ds: str | None) -> np.random.SeedSequence:
    """``seed``, with the day's ordinal when ``ds`` is given.

    >>> draw = lambda seed: int(np.random.default_rng(seed).integers(1 << 30))
    >>> draw(traffic_seed(0, "2026-01-05")) != draw(traffic_seed(0, "2026-01-06"))
    True
    >>> draw(traffic_seed(0, None)) == draw(0)  # without a day: the plain seed, as before
    True
    """
    import datetime as dt

    if ds is None:
        return np.random.SeedSequence(seed)
    return np.random.SeedSequence([seed % (1 << 32), dt.date.fromisoformat(ds).toordinal()])


def simulate(cfg: SimulationConfig, prefs: Preferences, token: str | None) -> tuple[dict, dict]:
    import httpx

    rng = np.random.default_rng(traffic_seed(cfg.seed, cfg.ds))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cols = {c: [] for c in ("batch", "requests", "reward_rate", "random_rate", "cumulative_reward")}
    total, unknown, n_events, lat = 0.0, 0, 0, []
    paths: dict[str, int] = {}
    with httpx.Client(base_url=cfg.url, headers=headers, timeout=30.0) as client:
        for b in range(cfg.requests // cfg.batch):
            users = rng.choice(prefs.population, cfg.batch)
            events, shown_u, shown_i = [], [], []
            for u in users.tolist():
                t0 = time.perf_counter()
                r = client.post("/v1/score", json={"user": u, "k": cfg.k})
                lat.append(time.perf_counter() - t0)
                if r.status_code == 404:
                    unknown += 1
                    continue
                r.raise_for_status()
                body = r.json()
                paths[body["path"]] = paths.get(body["path"], 0) + 1
                items = np.array([x["item"] for x in body["items"]], np.int64)
                rew = prefs.reward(np.full(items.size, u), items)
                shown_u.append(np.full(items.size, u))
                shown_i.append(items)
                events += [{"event_id": f"{body['score_id']}:{i}", "score_id": body["score_id"], "item": i,
                            "reward": float(x)} for i, x in zip(items.tolist(), rew.tolist())]
            if not events:
                continue
            fb = client.post("/v1/feedback", json={"events": events})
            if fb.status_code != 200:
                raise RuntimeError(f"{cfg.url}/v1/feedback: HTTP {fb.status_code} {fb.text[:300]}")
            u_all = np.concatenate(shown_u)
            rewards = np.array([e["reward"] for e in events], np.float32)
            rand = prefs.reward(u_all, prefs.items[rng.integers(0, prefs.items.size, u_all.size)])
            total += float(rewards.sum())
            n_events += len(events)
            for c, v in zip(cols, (b, (b + 1) * cfg.batch, float(rewards.mean()), float(rand.mean()), total)):
                cols[c].append(v)
    if not cols["batch"]:
        raise RuntimeError(f"no request was served: {unknown} users unknown to the served parameter version")
    rate = np.array(cols["reward_rate"])
    q = max(1, rate.size // 4)
    summary = {"requests": cfg.requests, "unknown_users": unknown, "events": n_events, "paths": paths,
               "reward_rate_first_quarter": float(rate[:q].mean()), "reward_rate_last_quarter": float(rate[-q:].mean()),
               "random_rate": float(np.mean(cols["random_rate"])), "cumulative_reward": total,
               "score_p50_ms": float(np.percentile(lat, 50) * 1e3), "score_p99_ms": float(np.percentile(lat, 99) * 1e3)}
    return cols, summary


def run(cfg: SimulationConfig, token: str | None) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    prefs = load_world(cfg)
    cols, summary = simulate(cfg, prefs, token)
    with atomic_dir(cfg.output) as tmp:
        (tmp / "curve").mkdir()
        pq.write_table(pa.table(cols), tmp / "curve" / "part-00000.parquet")
        write_json(tmp / "summary.json", summary)
        write_meta(tmp, "simulate_traffic", asdict(cfg), rows={"curve": len(cols["batch"])})
    log.info("simulated %d requests: reward rate %.3f -> %.3f (random items %.3f)", cfg.requests,
             summary["reward_rate_first_quarter"], summary["reward_rate_last_quarter"], summary["random_rate"])
    return summary


def parse_args(argv=None) -> SimulationConfig:
    p = argparse.ArgumentParser(prog="simulate_traffic", description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--interactions", required=True, help="ingested interactions DIR (the users' true preferences)")
    p.add_argument("--output", required=True)
    p.add_argument("--requests", type=int, default=2_000)
    p.add_argument("--batch", type=int, default=50, help="requests between feedback posts")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--population", default=None,
                   help="DIR with users(user) and interactions(user, item): who is scored and what they like "
                        "(default: the --interactions users)")
    p.add_argument("--ds", default=None, help="the day (YYYY-MM-DD), mixed into the seed: each day draws other users")
    a = p.parse_args(argv)
    return SimulationConfig(url=a.url.rstrip("/"), interactions=a.interactions, output=a.output, requests=a.requests,
                            batch=a.batch, k=a.k, seed=a.seed, population=a.population, ds=a.ds)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv), os.environ.get(TOKEN_ENV) or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
