"""Offline replay simulator for bandit policies on LightGCN-split data, plus an Open Bandit smoke replay.

**Replay on Gowalla/Yelp2018 test splits.** Users' contexts come from user vectors — the
recommender's ``user_vectors``/``item_vectors`` when given, otherwise a quick truncated SVD of the
train matrix (``X ≈ U S Vᵀ``; users ``U·√S``, items ``V·√S``), see :func:`svd_vectors`. The
candidate graph is built by :func:`recsys.candidates.build_params` (C clusters, top-K context,
top-W items). Each step ``batch`` users arrive (sampled uniformly from users with test items, the
same sequence for every policy); a user's candidates are its clusters' items minus its train items;
each policy shows a slate of ``slate`` items; an item scores reward 1 iff it is one of the user's
held-out test items, else 0; after the step every policy is updated with its own shown items
and rewards (a batched bandit, like the daily/online loop). The output is the cumulative reward
of each policy per step (the learning curve) and the memory of its statistics.

**Open Bandit sample** (:func:`open_bandit_replay`): the Li et al. (WSDM 2011) rejection-sampling
replay on the uniformly-random log: a logged round counts only when the policy's top item equals
the logged item; contexts are k-means clusters of the user-item affinity features. With ~38 clicks
per log this is a real-format smoke test only; it cannot rank policies.

>>> import numpy as np, scipy.sparse as sp
>>> rng = np.random.default_rng(0)
>>> train = sp.random(60, 40, density=0.2, random_state=0, format="csr")
>>> u, v = svd_vectors(train, dim=4)
>>> u.shape, v.shape
((60, 4), (40, 4))
"""
from __future__ import annotations

import gzip
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.bandits.base import BanditPolicy
from recsys.bandits.diag_linucb import DiagLinUCB
from recsys.bandits.egreedy import EpsilonGreedy
from recsys.bandits.linucb import LinUCB
from recsys.bandits.params import BanditParams
from recsys.bandits.random_policy import RandomPolicy

log = logging.getLogger(__name__)

__all__ = ["Split", "SimConfig", "SimResult", "load_lightgcn_split", "svd_vectors", "make_policies", "replay",
           "plot_curves", "open_bandit_replay"]


@dataclass(frozen=True, eq=False)
class Split:
    """A LightGCN split: ``train`` (users × items CSR of 1s) and the test pairs as sorted keys."""

    train: sp.csr_matrix
    test_keys: np.ndarray  # user * n_items + item, sorted
    test_users: np.ndarray  # users with at least one test item

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])


def _read_lists(path: Path) -> tuple[np.ndarray, np.ndarray]:
    users, items = [], []
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1:
                ids = np.array(parts, dtype=np.int64)
                users.append(np.full(ids.size - 1, ids[0]))
                items.append(ids[1:])
    if not users:
        raise ValueError(f"{path}: no 'user item item ...' lines")
    return np.concatenate(users), np.concatenate(items)


def load_lightgcn_split(directory: str | Path) -> Split:
    """Read ``train.txt[.gz]`` and ``test.txt[.gz]`` (one ``user item item ...`` line per user)."""
    d = Path(directory)
    pick = (lambda name: d / f"{name}.txt.gz" if (d / f"{name}.txt.gz").exists() else d / f"{name}.txt")
    tu, ti = _read_lists(pick("train"))
    su, si = _read_lists(pick("test"))
    n_users = int(max(tu.max(), su.max())) + 1
    n_items = int(max(ti.max(), si.max())) + 1
    train = sp.csr_matrix((np.ones(tu.size, np.float32), (tu, ti)), shape=(n_users, n_items))
    train.sum_duplicates()
    train.data[:] = 1.0
    return Split(train, np.unique(su * n_items + si), np.unique(su))


def svd_vectors(train: sp.spmatrix, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD of the train matrix: ``(U·√S, V·√S)`` as float32."""
    from scipy.sparse.linalg import svds

    k = min(dim, min(train.shape) - 1)
    v0 = np.random.default_rng(seed).random(min(train.shape))
    u, s, vt = svds(train.astype(np.float64), k=k, v0=v0)
    r = np.sqrt(s)
    return (u * r).astype(np.float32), (vt.T * r).astype(np.float32)


@dataclass(frozen=True)
class SimConfig:
    """Replay settings: ``steps × batch`` user arrivals, slates of ``slate`` items."""

    steps: int = 200
    batch: int = 100
    slate: int = 10
    lam: float = 1.0
    alpha: float = 0.3
    epsilon: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch, self.slate) < 1:
            raise ValueError("SimConfig: steps, batch and slate must be >= 1")
        if not (self.lam > 0 and self.alpha >= 0 and 0 <= self.epsilon <= 1):
            raise ValueError("SimConfig: need lam > 0, alpha >= 0, 0 <= epsilon <= 1")


@dataclass
class SimResult:
    """Cumulative reward per step (``curves[name]``), totals, statistics memory and seconds per policy."""

    curves: dict[str, np.ndarray] = field(default_factory=dict)
    memory_bytes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    impressions: int = 0

    @property
    def totals(self) -> dict[str, float]:
        return {k: float(v[-1]) if v.size else 0.0 for k, v in self.curves.items()}


def make_policies(params: BanditParams, cfg: SimConfig, linucb: bool = True) -> dict[str, BanditPolicy]:
    """The compared policies on the candidate graph of ``params``.

    ``diag_linucb`` is Diag-LinUCB as served by default (on the candidate graph: ``off_graph="skip"``),
    ``diag_linucb_prior`` the variant where pairs off the graph score with the prior and an event on
    one creates the edge (``off_graph="prior"``), ``linucb`` full LinUCB over the C-dimensional
    context (C ≤ 64), ``egreedy`` ε-greedy on the same statistics, ``random`` the floor.
    """
    def diag(mode: str) -> DiagLinUCB:
        return DiagLinUCB(params.keys, np.full(params.num_edges, cfg.lam), np.zeros(params.num_edges), cfg.lam,
                          cfg.alpha, off_graph=mode)

    pols: dict[str, BanditPolicy] = {"diag_linucb": diag("skip"), "diag_linucb_prior": diag("prior")}
    if linucb:
        n_cl = int(params.centroid_ids.max()) + 1
        pols["linucb"] = LinUCB(np.unique(params.edge_item), n_cl, lam=cfg.lam, alpha=cfg.alpha)
    pols["egreedy"] = EpsilonGreedy(params.keys, lam=cfg.lam, epsilon=cfg.epsilon, seed=cfg.seed + 1)
    pols["random"] = RandomPolicy(seed=cfg.seed + 2)
    return pols


def _member(keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return keys[pos] == q


def _candidates(params: BanditParams, split: Split, users: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """(n, M) candidates per user (its clusters' items minus its train items), -1 padded."""
    out = params.candidate_matrix(clusters)
    n_items = split.n_items
    seen = split.train[users]
    tr = np.sort(np.repeat(users, np.diff(seen.indptr)) * n_items + seen.indices)
    in_train = _member(tr, users[:, None] * n_items + np.maximum(out, 0)) if tr.size else np.zeros(out.shape, bool)
    return np.where(in_train | (out < 0), -1, out)


def replay(params: BanditParams, split: Split, policies: dict[str, BanditPolicy], cfg: SimConfig) -> SimResult:
    """Run the batched replay; every policy sees the same users in the same order."""
    rng = np.random.default_rng(cfg.seed)
    res = SimResult(curves={k: np.zeros(cfg.steps) for k in policies}, seconds={k: 0.0 for k in policies})
    known = split.test_users[np.isin(split.test_users, params._users)]
    totals = {k: 0.0 for k in policies}
    for step in range(cfg.steps):
        users = rng.choice(known, cfg.batch)
        cl, w = params.context(users)
        cand = _candidates(params, split, users, cl)
        for name, pol in policies.items():
            t0 = time.perf_counter()
            sel = pol.select(cl, w, cand, cfg.slate, rng=np.random.default_rng((cfg.seed, step, len(name))))
            shown = np.take_along_axis(cand, sel, axis=1)
            real = shown >= 0
            reward = (_member(split.test_keys, users[:, None] * split.n_items + np.maximum(shown, 0)) & real).astype(np.float64)
            r_idx, c_idx = np.nonzero(real)
            pol.update(cl[r_idx], w[r_idx], shown[r_idx, c_idx], reward[r_idx, c_idx])
            res.seconds[name] += time.perf_counter() - t0
            totals[name] += reward.sum()
            res.curves[name][step] = totals[name]
        res.impressions += int((cand[:, :1] >= 0).sum()) * cfg.slate
    res.memory_bytes = {k: p.memory_bytes() for k, p in policies.items()}
    return res


def plot_curves(result: SimResult, path: str | Path, title: str = "") -> Path:
    """Learning curves (cumulative reward vs users served) as a PNG."""
    from graphs.figures import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, curve in result.curves.items():
        ax.plot(np.arange(1, curve.size + 1), curve, label=f"{name} ({curve[-1]:.0f})")
    ax.set_xlabel("step (batch of users)")
    ax.set_ylabel("cumulative reward (test hits)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def open_bandit_replay(log_csv: str | Path, n_clusters: int = 8, k: int = 3, alpha: float = 0.3,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Rejection-sampling replay on an Open Bandit random log; returns matched rounds and clicks per policy."""
    import pandas as pd

    from recsys.candidates import kmeans, user_context

    df = pd.read_csv(log_csv)
    aff_cols = [c for c in df.columns if c.startswith("user-item_affinity_")]
    if not aff_cols or not {"item_id", "click"} <= set(df.columns):
        raise ValueError(f"{log_csv}: not an Open Bandit log (need item_id, click, user-item_affinity_*)")
    x = df[aff_cols].to_numpy(np.float32)
    feats = pd.get_dummies(df[[c for c in df.columns if c.startswith("user_feature_")]]).to_numpy(np.float32)
    x = np.hstack([x, feats])
    cen = kmeans(x, n_clusters, seed=seed)
    rows, w = user_context(x, cen, k)
    n_items = len(aff_cols)
    items = np.arange(n_items)
    ec, ei = np.repeat(np.arange(n_clusters), n_items), np.tile(items, n_clusters)
    pols = {"diag_linucb": DiagLinUCB.from_edges(ec, ei, alpha=alpha),
            "linucb": LinUCB(items, n_clusters, alpha=alpha),
            "egreedy": EpsilonGreedy.from_edges(ec, ei, epsilon=0.1, seed=seed),
            "random": RandomPolicy(seed=seed)}
    logged, click = df["item_id"].to_numpy(np.int64), df["click"].to_numpy(np.float64)
    out = {}
    chunk = 100
    for name, pol in pols.items():
        matched = clicks = 0.0
        for s in range(0, len(df), chunk):
            sl = slice(s, s + chunk)
            top = items[pol.select(rows[sl], w[sl], items, 1, rng=np.random.default_rng((seed, s)))[:, 0]]
            hit = top == logged[sl]
            if hit.any():
                pol.update(rows[sl][hit], w[sl][hit], top[hit], click[sl][hit])
            matched += hit.sum()
            clicks += click[sl][hit].sum()
        out[name] = {"matched": matched, "clicks": clicks, "ctr": clicks / matched if matched else 0.0}
    return out
