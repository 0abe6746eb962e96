"""Model selection on held-out training interactions: a seeded per-user validation split, early
stopping on validation Recall@K, and the user groups the reports break figures down by.

Without a published validation split the trainer carves one out of the training positives:
``round(fraction · n_u)`` random interactions of every user with at least ``min_items`` go to
validation (at least one, never all), the rest stay in train; test is never touched, so the
validation share is disjoint from test by construction.

Early stopping (Prechelt, "Early Stopping -- But When?", 1998): evaluate every few epochs, keep the
model of the best validation Recall@K, stop after ``patience`` evaluations without an improvement
of more than ``min_delta``, and restore the best model.

>>> import numpy as np, scipy.sparse as sp
>>> from recsys.data import Interactions
>>> rng = np.random.default_rng(0)
>>> data = Interactions.from_pairs(np.repeat(np.arange(4), 10), rng.integers(0, 50, 40))
>>> held = with_validation(data, fraction=0.2, seed=1)
>>> held.n_train + held.n_valid == data.n_train, held.train.multiply(held.valid).nnz
(True, 0)
>>> stop = EarlyStopping(patience=2)
>>> [stop.update(e, r) for e, r in [(1, 0.1), (2, 0.3), (3, 0.2), (4, 0.25)]], stop.best_epoch
([False, False, False, True], 2)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys.data import Interactions, split_per_user

COLD_MAX_TRAIN = 5  #: a "cold" test user has at most this many training interactions


def holdout(train: sp.csr_matrix, fraction: float, seed: int, min_items: int = 3
            ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(train', valid)``: a seeded per-user share of ``train`` moved to ``valid``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    coo = train.tocoo()
    u, i = coo.row.astype(np.int64), coo.col.astype(np.int64)
    is_valid, _ = split_per_user(u, i, fraction, seed)
    counts = np.diff(train.tocsr().indptr)
    is_valid &= counts[u] >= min_items
    def part(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(int(mask.sum()), np.float32), (u[mask], i[mask])), shape=train.shape)
        m.sort_indices()
        return m
    return part(~is_valid), part(is_valid)


def with_validation(data: Interactions, fraction: float = 0.1, seed: int = 0, min_items: int = 3) -> Interactions:
    """``data`` with a validation split: the given one when present, else a :func:`holdout` of train."""
    if data.n_valid:
        return data
    train, valid = holdout(data.train, fraction, seed, min_items)
    return Interactions(train, data.test, data.user_ids, data.item_ids, data.source,
                        {**data.extra, "valid_fraction": fraction, "valid_seed": seed}, valid)


def refit_data(data: Interactions) -> Interactions | None:
    """The data to refit on once model selection is done: train ∪ the validation share :func:`with_validation`
    carved out of it (they are training interactions; the final model should learn from them, for the selected
    number of epochs). ``None`` when there is nothing carved: the data set's own validation split stays held out."""
    if not data.n_valid or "valid_fraction" not in data.extra:
        return None
    full = (data.train + data.valid).tocsr()
    full.data[:] = 1.0
    extra = {k: v for k, v in data.extra.items() if k not in ("valid_fraction", "valid_seed")}
    return Interactions(full, data.test, data.user_ids, data.item_ids, data.source, extra)


def seen(data: Interactions) -> sp.csr_matrix:
    """The interactions a user has: train, plus the validation share :func:`with_validation` carved out of it
    (excluded from ranking and from candidates); a data set's own validation split stays unseen."""
    return (data.train + data.valid).tocsr() if "valid_fraction" in data.extra else data.train


def restrict_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``m`` with every row outside the boolean mask ``rows`` emptied."""
    return (sp.diags(rows.astype(np.float32)) @ m).tocsr()


def cold_mask(train: sp.csr_matrix, max_train: int = COLD_MAX_TRAIN) -> np.ndarray:
    """Users with at most ``max_train`` training interactions."""
    return np.diff(train.tocsr().indptr) <= max_train


@dataclass
class EarlyStopping:
    """Patience counter over evaluations; remembers the best epoch and its value."""

    patience: int = 5
    min_delta: float = 0.0
    best: float = -np.inf
    best_epoch: int = 0
    bad: int = 0
    history: list = field(default_factory=list)

    def update(self, epoch: int, value: float) -> bool:
        """Record ``value`` at ``epoch``; ``True`` when training should stop."""
        self.history.append((epoch, value))
        if value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            return False
        self.bad += 1
        return self.patience > 0 and self.bad >= self.patience

    @property
    def improved(self) -> bool:
        """Whether the last update was a new best."""
        return self.bad == 0 and bool(self.history)
