"""Write one day's raw landing zone for the demo pipeline from the platform's generator cores.

The daily DAG reads ``<work>/raw/ds=<ds>/`` (what upstream systems would drop there):

* ``graph/edges(src, dst)`` and ``graph/labels(id, label)`` — the planted-community digraph
  (:func:`graphs.generators.planted_block`, the same blocks ``jobs/generate.py graph`` writes);
* ``interactions/interactions(user, item)`` — community-following interactions
  (:func:`graphs.generators.interactions_block`), observed for the users who have them;
* ``reports/reports(party int32, user int64, item int64)`` — each user's one item report for the federated
  heavy-hitter job: one of the user's items drawn uniformly (seeded), users split over
  ``--parties`` parties by a seeded Dirichlet over communities (non-IID, uneven sizes);
* ``population/users(user int64, kind string)`` and ``population/interactions(user, item)`` — the
  simulated world, for the demo's traffic only (``jobs.demo.simulate_traffic --population``): every user
  and all of their generated interactions (their true preferences), observed or not.

Every node is a user with generated interactions, but not everyone is observed alike
(:mod:`jobs.demo.users`, a seeded split by id): a ``--social-only`` share of users has friends and
no observed interactions, an ``--isolated`` share has neither (their edges are dropped, so the
user graph does not know them), the rest have both. So all three serving paths of the scoring
service (personal, social, fallback) get traffic.

Runs in one process without Spark (seconds at demo size); for cluster-scale data use
``spark-submit jobs/generate.py``. Output folders are replaced atomically.

    python -m jobs.demo.inputs --work runs/pipeline --ds 2026-01-05 --nodes 20000 --items 5000

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> m = main(["--work", str(d), "--ds", "2026-01-05", "--nodes", "300", "--items", "100"])
>>> sorted(m["rows"]) == ["edges", "interactions", "labels", "population", "reports"] and m["rows"]["edges"] > 0
True
>>> m["users"]["social"] > 0 and m["users"]["isolated"] > 0 and m["rows"]["population"] > m["rows"]["interactions"]
True
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import datetime as dt
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from graphs.atomic import atomic_dir, write_meta
from graphs.generators import InteractionConfig, PlantedConfig, interactions_block, planted_block
from jobs.demo.users import BOTH, ISOLATED, KIND_NAMES, check_shares, user_kind
from jobs.runtime import layout

log = logging.getLogger("graphrec.demo_inputs")


@dataclass(frozen=True)
class DemoConfig:
    work: str
    ds: str
    nodes: int = 20_000
    communities: int = 10
    avg_degree: float = 10.0
    items: int = 5_000
    items_per_user: float = 20.0
    parties: int = 5
    dirichlet: float = 0.5
    block: int = 100_000
    social_only: float = 0.1   # share of users with friends and no observed interactions
    isolated: float = 0.05     # share of users with neither (unknown to the system)
    seed: int = 0

    def __post_init__(self):
        dt.date.fromisoformat(self.ds)  # raises ValueError naming the bad date
        if self.nodes < 2 or self.items < 1 or self.parties < 1 or self.block < 1 or self.dirichlet <= 0:
            raise ValueError("need --nodes >= 2, --items >= 1, --parties >= 1, --block >= 1, --dirichlet > 0")
        check_shares(self.social_only, self.isolated)

    @property
    def day(self) -> Path:
        return layout.dated_path(self.work, "raw", self.ds)


def _blocks(n: int, block: int):
    for k, lo in enumerate(range(0, n, block)):
        yield k, lo, min(n, lo + block)


def _write(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.mkdir(parents=True)
    pq.write_table(table, path / "part-00000.parquet")


def reports_from(user: np.ndarray, item: np.ndarray, labels: np.ndarray, cfg: DemoConfig) -> dict[str, np.ndarray]:
    """One report per user (a uniformly drawn item of theirs) and a non-IID party per user."""
    rng = np.random.default_rng(cfg.seed + 17)
    order = np.lexsort((rng.random(len(user)), user))          # shuffle items within each user
    u_sorted = user[order]
    first = np.r_[True, u_sorted[1:] != u_sorted[:-1]]
    users, items = u_sorted[first], item[order][first]
    # Dirichlet(α) over parties per community: parties see different communities' users (non-IID).
    share = rng.dirichlet(np.full(cfg.parties, cfg.dirichlet), size=int(labels.max()) + 1)
    cum = np.cumsum(share, axis=1)
    party = (rng.random(len(users))[:, None] > cum[labels[users]]).sum(axis=1)
    return {"party": np.minimum(party, cfg.parties - 1).astype(np.int32), "user": users, "item": items}


def run(cfg: DemoConfig) -> dict:
    import pyarrow as pa

    g = PlantedConfig(nodes=cfg.nodes, communities=cfg.communities, avg_degree=cfg.avg_degree, seed=cfg.seed)
    ic = InteractionConfig(items=cfg.items, avg_items_per_user=cfg.items_per_user, seed=cfg.seed)
    edges = [planted_block(g, lo, hi, k) for k, lo, hi in _blocks(cfg.nodes, cfg.block)]
    inter = [interactions_block(g, ic, lo, hi, k) for k, lo, hi in _blocks(cfg.nodes, cfg.block)]
    src, dst = (np.concatenate(x) for x in zip(*edges))
    true_user, true_item = (np.concatenate(x) for x in zip(*inter))
    ids = np.arange(cfg.nodes, dtype=np.int64)
    labels = g.labels(ids)
    kind = user_kind(ids, cfg.social_only, cfg.isolated, cfg.seed)
    befriended = (kind[src] != ISOLATED) & (kind[dst] != ISOLATED)
    src, dst = src[befriended], dst[befriended]
    observed = kind[true_user] == BOTH
    user, item = true_user[observed], true_item[observed]
    rep = reports_from(user, item, labels, cfg)
    tables = {
        "graph": {"edges": pa.table({"src": src, "dst": dst}), "labels": pa.table({"id": ids, "label": labels})},
        "interactions": {"interactions": pa.table({"user": user, "item": item})},
        "reports": {"reports": pa.table(rep)},
        "population": {"users": pa.table({"user": ids, "kind": [KIND_NAMES[int(k)] for k in kind]}),
                       "interactions": pa.table({"user": true_user, "item": true_item})},
    }
    rows = {}
    for folder, parts in tables.items():
        with atomic_dir(cfg.day / folder) as tmp:
            for name, t in parts.items():
                _write(t, tmp / name)
            write_meta(tmp, "demo_inputs", asdict(cfg), rows={name: t.num_rows for name, t in parts.items()})
        if folder == "population":  # the world's interactions, observed or not
            rows["population"] = parts["interactions"].num_rows
        else:
            rows.update({name: t.num_rows for name, t in parts.items()})
    users = {name: int((kind == k).sum()) for k, name in KIND_NAMES.items()}
    log.info("raw inputs for ds=%s in %s: %s; users %s", cfg.ds, cfg.day, rows, users)
    return {"day": str(cfg.day), "rows": rows, "users": users}


def parse_args(argv=None) -> DemoConfig:
    p = argparse.ArgumentParser(prog="demo_inputs", description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="pipeline work dir; writes <work>/raw/ds=<ds>/")
    p.add_argument("--ds", required=True, help="the run's date, YYYY-MM-DD")
    for name, typ in (("nodes", int), ("communities", int), ("avg-degree", float), ("items", int),
                      ("items-per-user", float), ("parties", int), ("dirichlet", float), ("block", int),
                      ("social-only", float), ("isolated", float), ("seed", int)):
        p.add_argument(f"--{name}", type=typ, default=DemoConfig.__dataclass_fields__[name.replace("-", "_")].default)
    a = vars(p.parse_args(argv))
    return DemoConfig(**a)


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
