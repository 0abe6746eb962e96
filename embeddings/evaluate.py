"""Quality protocols for node embeddings (fixed in docs/algorithms.md §1) and a CLI that prints a table.

* **Node classification** (DeepWalk/ProNE protocol): one-vs-rest logistic regression on
  L2-normalised vectors; for each test node predict its ``k`` highest-scoring labels, ``k`` = its
  true number of labels; micro/macro-F1 at several training ratios, averaged over seeded splits.
* **Link prediction**: hold out a fraction of edges outside a random spanning forest (so the
  training graph keeps its connected components), sample as many non-edges, embed the training
  graph, score a pair ``(u, v)`` by a logistic regression on the Hadamard product ``x_u ⊙ x_v``
  (trained on training edges and other non-edges), report ROC-AUC on the held-out pairs.

CLI: ``python -m embeddings.evaluate --dataset blogcatalog --method prone`` (or ``--vectors DIR``
for a job's output) prints micro/macro-F1 and AUC.

>>> rng = np.random.default_rng(0)
>>> y = sp.csr_matrix(np.eye(2, dtype=np.int8)[rng.integers(0, 2, 200)])
>>> x = y.toarray().astype(np.float32) + 0.1 * rng.standard_normal((200, 2)).astype(np.float32)
>>> r = node_classification(x, y, ratios=(0.5,), repeats=2)
>>> r["micro_f1"]["0.5"] > 0.9
True
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import minimum_spanning_tree

from embeddings import vectors
from embeddings.vectors import dense_by_id

log = logging.getLogger(__name__)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def node_classification(x: np.ndarray, labels: sp.spmatrix, ratios=(0.1, 0.5, 0.9), repeats: int = 5,
                        seed: int = 0) -> dict:
    """Micro/macro-F1 of top-k one-vs-rest logistic regression at each training ratio.

    Returns ``{"micro_f1": {"0.1": f, ...}, "macro_f1": {...}}`` (keys are ``str(ratio)``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier

    y = sp.csr_matrix(labels)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"vectors have {x.shape[0]} rows but labels {y.shape[0]}")
    keep = np.asarray(y.sum(axis=1)).ravel() > 0
    x, y = _normalize(np.asarray(x, dtype=np.float64)[keep]), y[keep]
    y = y[:, np.asarray(y.sum(axis=0)).ravel() > 0]
    n = x.shape[0]
    out: dict = {"micro_f1": {}, "macro_f1": {}}
    for ratio in ratios:
        mi, ma = [], []
        for r in range(repeats):
            perm = np.random.default_rng(seed + r).permutation(n)
            tr, te = perm[: int(ratio * n)], perm[int(ratio * n):]
            clf = OneVsRestClassifier(LogisticRegression(solver="liblinear"))
            with warnings.catch_warnings():  # a label absent from a small training split is expected
                warnings.filterwarnings("ignore", message="Label not")
                clf.fit(x[tr], y[tr].toarray())
            scores = clf.predict_proba(x[te])  # decision_function of an all-negative label is 0, not -inf
            k = np.asarray(y[te].sum(axis=1)).ravel().astype(int)
            order = np.argsort(-scores, axis=1)
            pred = np.zeros_like(scores, dtype=np.int8)
            rows = np.repeat(np.arange(len(te)), k)
            cols = order[rows, np.concatenate([np.arange(kk) for kk in k])]
            pred[rows, cols] = 1
            truth = y[te].toarray()
            mi.append(f1_score(truth, pred, average="micro", zero_division=0))
            ma.append(f1_score(truth, pred, average="macro", zero_division=0))
        out["micro_f1"][str(ratio)] = float(np.mean(mi))
        out["macro_f1"][str(ratio)] = float(np.mean(ma))
    return out


@dataclass(frozen=True)
class EdgeSplit:
    """A link-prediction split: the training graph and held-out positive / negative pairs."""

    train: sp.csr_matrix
    test_pos: np.ndarray
    test_neg: np.ndarray

    def __post_init__(self) -> None:
        if self.test_pos.shape != self.test_neg.shape or self.test_pos.ndim != 2:
            raise ValueError("test_pos and test_neg must both be (m, 2) arrays of the same shape")


def sample_non_edges(adj: sp.csr_matrix, m: int, rng: np.random.Generator,
                     exclude: set | None = None) -> np.ndarray:
    """``m`` distinct random pairs ``u < v`` that are not edges of ``adj`` (nor in ``exclude``)."""
    n = adj.shape[0]
    a = sp.csr_matrix(adj)
    a.sort_indices()
    seen = set() if exclude is None else set(exclude)
    out: list[np.ndarray] = []
    have = 0
    while have < m:
        u = rng.integers(0, n, 2 * (m - have) + 16)
        v = rng.integers(0, n, len(u))
        u, v = np.minimum(u, v), np.maximum(u, v)
        ok = u != v
        u, v = u[ok], v[ok]
        is_edge = np.asarray(a[u, v]).ravel() != 0
        u, v = u[~is_edge], v[~is_edge]
        keys = u.astype(np.int64) * n + v
        _, first = np.unique(keys, return_index=True)
        fresh = [i for i in np.sort(first) if keys[i] not in seen]
        seen.update(keys[fresh].tolist())
        pairs = np.stack([u[fresh], v[fresh]], axis=1)[: m - have]
        out.append(pairs)
        have += len(pairs)
    return np.concatenate(out).astype(np.int64)


def split_edges(adj: sp.spmatrix, test_frac: float = 0.1, seed: int = 0) -> EdgeSplit:
    """Hold out ``test_frac`` of the undirected edges, never from a random spanning forest."""
    a = sp.csr_matrix(adj)
    rng = np.random.default_rng(seed)
    up = sp.triu(a, k=1).tocoo()
    w = sp.coo_matrix((rng.random(up.nnz) + 1.0, (up.row, up.col)), shape=a.shape)
    tree = minimum_spanning_tree(w.tocsr()).tocoo()
    tree_keys = set((np.minimum(tree.row, tree.col).astype(np.int64) * a.shape[0]
                     + np.maximum(tree.row, tree.col)).tolist())
    keys = up.row.astype(np.int64) * a.shape[0] + up.col
    cand = np.flatnonzero(~np.isin(keys, np.fromiter(tree_keys, np.int64, len(tree_keys))))
    m = min(int(round(test_frac * up.nnz)), len(cand))
    test = rng.choice(cand, m, replace=False)
    mask = np.ones(up.nnz, bool)
    mask[test] = False
    r, c = up.row[mask], up.col[mask]
    train = sp.coo_matrix((np.ones(2 * len(r), np.float32), (np.r_[r, c], np.r_[c, r])), shape=a.shape).tocsr()
    pos = np.stack([up.row[test], up.col[test]], axis=1).astype(np.int64)
    neg = sample_non_edges(a, m, rng)
    return EdgeSplit(train, pos, neg)


def link_prediction_auc(x: np.ndarray, split: EdgeSplit, seed: int = 0) -> float:
    """ROC-AUC of a Hadamard-product logistic regression on the held-out pairs of ``split``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed + 1)
    m = len(split.test_pos)
    up = sp.triu(split.train, k=1).tocoo()
    pick = rng.choice(up.nnz, min(m, up.nnz), replace=False)
    tr_pos = np.stack([up.row[pick], up.col[pick]], axis=1)
    n = split.train.shape[0]
    held = set((split.test_neg[:, 0] * n + split.test_neg[:, 1]).tolist())
    tr_neg = sample_non_edges(split.train + _pairs_matrix(split.test_pos, n), len(tr_pos), rng, exclude=held)
    xn = _normalize(np.asarray(x, dtype=np.float64))

    def feats(p: np.ndarray) -> np.ndarray:
        return xn[p[:, 0]] * xn[p[:, 1]]

    clf = LogisticRegression(max_iter=1000)
    clf.fit(np.r_[feats(tr_pos), feats(tr_neg)], np.r_[np.ones(len(tr_pos)), np.zeros(len(tr_neg))])
    s = clf.decision_function(np.r_[feats(split.test_pos), feats(split.test_neg)])
    return float(roc_auc_score(np.r_[np.ones(m), np.zeros(m)], s))


def _pairs_matrix(p: np.ndarray, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(2 * len(p), np.float32), (np.r_[p[:, 0], p[:, 1]], np.r_[p[:, 1], p[:, 0]])),
                         shape=(n, n))


def dense_vectors(path: str | Path, n: int | None = None) -> np.ndarray:
    """A job's ``vectors(id, vector)`` table as a dense ``(n, dim)`` array by id (:mod:`embeddings.vectors`)."""
    return dense_by_id(*vectors.read_vectors(path), n)


def main(argv: list[str] | None = None) -> int:
    """CLI: evaluate the single-machine embedder (or a job's vectors) on a shared graph; print a table."""
    from embeddings import datasets
    from embeddings.prone import ProNE

    ap = argparse.ArgumentParser(prog="python -m embeddings.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=["blogcatalog", "slashdot"], default="blogcatalog")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--vectors", help="a job's output DIR (node classification only); default: run ProNE")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="ProNE's threads (0: every core)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-link", action="store_true", help="skip link prediction")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.dataset == "blogcatalog":
        adj, labels = datasets.blogcatalog(args.data_root)
    else:
        adj, labels = datasets.slashdot(args.data_root), None
    rows = []
    if labels is not None:
        t = time.perf_counter()
        x = dense_vectors(args.vectors, adj.shape[0]) if args.vectors else ProNE(args.dim, seed=args.seed, threads=args.threads).fit_transform(adj)
        fit_s = time.perf_counter() - t
        nc = node_classification(x, labels, repeats=args.repeats, seed=args.seed)
        for r in nc["micro_f1"]:
            rows.append((f"micro/macro-F1 @{r}", f"{nc['micro_f1'][r]:.3f} / {nc['macro_f1'][r]:.3f}"))
        rows.append(("load seconds" if args.vectors else "embed seconds", f"{fit_s:.1f}"))
    if not args.no_link and not args.vectors:
        split = split_edges(adj, 0.1, seed=args.seed)
        x = ProNE(args.dim, seed=args.seed, threads=args.threads).fit_transform(split.train)
        rows.append(("link-prediction AUC", f"{link_prediction_auc(x, split, seed=args.seed):.3f}"))
    w = max(len(r[0]) for r in rows)
    print(f"{'metric'.ljust(w)}  {args.dataset}")
    for k, v in rows:
        print(f"{k.ljust(w)}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
