"""Quality of a heavy-hitter answer against the true top-k (simulation only: raw values known).

* **F1** between the found set ``F`` and the true top-k ``T``: ``2|F∩T| / (|F| + |T|)``.
* **NCR** (normalised cumulative rank, from the SVIM paper, Wang et al.): the true top-k get scores
  ``k, k-1, …, 1`` by rank; ``NCR = Σ_{v ∈ F∩T} score(v) / (k(k+1)/2)``.
* **Relative error**: mean over found items of ``|f̂_v - f_v| / max(f_v, 1)``.

Ties at the k-th count are broken by item id (ascending), deterministically.

>>> import numpy as np
>>> truth = true_top_k(np.array([1, 1, 1, 2, 2, 3]), 2)
>>> truth.tolist(), f1_score([1, 3], truth), ncr([1, 3], truth)
([1, 2], 0.5, 0.6666666666666666)
"""
from __future__ import annotations

import numpy as np


def true_counts(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items and their counts, most frequent first (ties by item id)."""
    u, c = np.unique(np.asarray(items, dtype=np.int64), return_counts=True)
    order = np.lexsort((u, -c))
    return u[order], c[order]


def true_top_k(items: np.ndarray, k: int) -> np.ndarray:
    """The k most frequent items, ranked."""
    return true_counts(items)[0][:k]


def f1_score(found, truth) -> float:
    f, t = set(np.asarray(found).tolist()), set(np.asarray(truth).tolist())
    if not f and not t:
        return 1.0
    return 2.0 * len(f & t) / (len(f) + len(t))


def ncr(found, truth) -> float:
    t = np.asarray(truth).tolist()
    k = len(t)
    score = {v: k - r for r, v in enumerate(t)}
    return sum(score.get(v, 0) for v in set(np.asarray(found).tolist())) / (k * (k + 1) / 2)


def relative_error(found, estimates, items: np.ndarray) -> float:
    """Mean ``|f̂ - f| / max(f, 1)`` over the found items (true counts from ``items``)."""
    found = np.asarray(found, dtype=np.int64)
    if found.size == 0:
        return 0.0
    u, c = np.unique(np.asarray(items, dtype=np.int64), return_counts=True)
    idx = np.minimum(np.searchsorted(u, found), u.size - 1)
    f = np.where(u[idx] == found, c[idx], 0)
    return float(np.mean(np.abs(np.asarray(estimates, dtype=np.float64) - f) / np.maximum(f, 1)))


def scores(found, estimates, truth, found_true_counts) -> dict[str, float]:
    """F1, NCR, relative error given the ranked true top-k and the true counts of the found items."""
    f = np.asarray(found_true_counts, dtype=np.float64)
    rel = float(np.mean(np.abs(np.asarray(estimates, dtype=np.float64) - f) / np.maximum(f, 1))) if f.size else 0.0
    return {"f1": f1_score(found, truth), "ncr": ncr(found, truth), "relative_error": rel, "k": len(truth)}


def evaluate(found, estimates, items: np.ndarray, k: int) -> dict[str, float]:
    """F1, NCR and relative error of a top-k answer against ``items``' true top-k."""
    truth = true_top_k(items, k)
    out = {"f1": f1_score(found, truth), "ncr": ncr(found, truth),
           "relative_error": relative_error(found, estimates, items), "k": int(k)}
    return out
