"""Implicit-feedback interactions for the recommenders, and a vectorised BPR sampler.

Two input layouts are read:

- an ``ingest_interactions`` output ``DIR/interactions`` (Parquet: ``user int64, item int64, ...``),
  split per user into train/test at random (``test_fraction``, seeded);
- a LightGCN split folder (``train.txt[.gz]`` and optionally ``test.txt[.gz]``, one line per user:
  ``user item item ...``), used as is so figures compare with the LightGCN papers.

Internally users and items are dense ``0..n-1``; ``user_ids`` / ``item_ids`` map back to the
input's ids (the identity for LightGCN folders).

BPR (Rendle et al., UAI 2009) needs triples ``(u, i, j)`` with ``i`` a positive and ``j`` a
negative of ``u``. :class:`BPRSampler` draws one uniform negative per positive, rejecting the
user's positives with a vectorised ``searchsorted`` membership test on the sorted keys
``u * n_items + i`` and resampling only the rejected ones.

>>> import numpy as np
>>> data = Interactions.from_pairs(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
>>> (data.n_users, data.n_items, data.n_train)
(3, 3, 4)
>>> u, i, j = next(BPRSampler(data.train, seed=0).batches(4))
>>> bool(np.all(data.train[u, j] == 0))
True
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import scipy.sparse as sp

from graphs.errors import InputFormatError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


def _csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


@dataclass(frozen=True)
class Interactions:
    """Binary user-item train (and optional test) matrices with the external id maps.

    Attributes:
        train: CSR ``n_users x n_items`` of training positives (values 1).
        test: CSR of held-out positives (may be empty: then there is nothing to evaluate).
        user_ids: external id of each internal user row.
        item_ids: external id of each internal item column.
        source: where the data came from (for metadata).
        valid: CSR of validation positives (model selection only; empty when there is none).
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    source: str = ""
    extra: dict = field(default_factory=dict)
    valid: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        if self.valid is None:
            object.__setattr__(self, "valid", sp.csr_matrix(self.train.shape, dtype=np.float32))
        if self.train.shape != self.test.shape or self.valid.shape != self.train.shape:
            raise ValueError(f"train shape {self.train.shape} != test {self.test.shape} / valid {self.valid.shape}")
        if self.train.shape != (len(self.user_ids), len(self.item_ids)):
            raise ValueError("id maps do not match the matrix shape")
        if self.train.nnz == 0:
            raise ValueError(f"{self.source or 'interactions'}: no training interactions")

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @property
    def n_train(self) -> int:
        return int(self.train.nnz)

    @property
    def n_test(self) -> int:
        return int(self.test.nnz)

    @property
    def n_valid(self) -> int:
        return int(self.valid.nnz)

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, test_users: np.ndarray | None = None,
                   test_items: np.ndarray | None = None, n_users: int | None = None,
                   n_items: int | None = None, source: str = "") -> "Interactions":
        """Build from dense 0-based id arrays (ids are used as internal indices directly)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        tu = np.asarray(test_users if test_users is not None else [], dtype=np.int64)
        ti = np.asarray(test_items if test_items is not None else [], dtype=np.int64)
        if len(users) != len(items) or len(tu) != len(ti):
            raise ValueError("user and item arrays differ in length")
        if min(users.min(initial=0), items.min(initial=0), tu.min(initial=0), ti.min(initial=0)) < 0:
            raise ValueError(f"{source or 'interactions'}: negative user/item id")
        nu = n_users if n_users is not None else int(max(users.max(initial=-1), tu.max(initial=-1)) + 1)
        ni = n_items if n_items is not None else int(max(items.max(initial=-1), ti.max(initial=-1)) + 1)
        train = _csr(users, items, nu, ni)
        test = _csr(tu, ti, nu, ni)
        test = test - test.multiply(train)  # a pair in both splits counts as training only
        test.eliminate_zeros()
        return cls(train.tocsr(), test.tocsr(), np.arange(nu, dtype=np.int64), np.arange(ni, dtype=np.int64), source)


def _read_lightgcn_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``user item item ...`` lines (LightGCN) -- also ``user item`` pairs, comma- or space-separated,
    with an optional ``user,item`` header on the first line (SocialLGN, RecDiff conversions).

    Ids are integers in ``[0, 2**63)``; anything else (and bytes that are not UTF-8, a broken gzip
    stream) raises :class:`~graphs.errors.InputFormatError` naming the file and line."""
    from graphs.errors import InputFormatError
    from graphs.readers import open_text, text_errors

    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    with text_errors(path), open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if not all(p.isascii() and p.lstrip("+-").isdigit() for p in parts):
                if lineno == 1 and not any(p.isascii() and p.lstrip("-").isdigit() for p in parts):
                    continue  # a header line
                bad = next(p for p in parts if not (p.isascii() and p.lstrip("+-").isdigit()))
                raise InputFormatError(str(path), f"expected integer ids 'user item item ...', got {bad[:40]!r}", line=lineno)
            vals = [int(p) for p in parts]
            if min(vals) < 0:
                raise InputFormatError(str(path), f"negative id {min(vals)}", line=lineno)
            if max(vals) >= 2**63:
                raise InputFormatError(str(path), f"id {max(vals)} is beyond int64", line=lineno)
            row = np.array(vals, dtype=np.int64)
            users.append(np.full(len(row) - 1, row[0], dtype=np.int64))
            items.append(row[1:])
    if not sum(u.size for u in users):
        raise InputFormatError(str(path), "no interactions (no line has a user and an item)")
    return np.concatenate(users), np.concatenate(items)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.txt.gz", f"{stem}.txt"):
        if (folder / name).exists():
            return folder / name
    return None


#: Split-folder layouts: name -> (train stem, validation stems, test stem).
SPLITS = {
    "lightgcn": ("train", ("valid", "val"), "test"),
    "lightgcnpp": ("lightgcnpp_train", ("lightgcnpp_valid",), "test"),
    "recdiff": ("recdiff_train", ("recdiff_val",), "recdiff_test"),
    "sociallgn": ("train_set", (), "test_set"),
}


def detect_split(folder: Path) -> str | None:
    """The one split layout present in ``folder`` (the plain ``lightgcn`` one when its
    ``lightgcnpp`` re-split sits beside it: ask for that with ``split="lightgcnpp"``);
    ``ValueError`` when several unrelated ones are."""
    found = [name for name, (tr, _, _) in SPLITS.items() if _find(folder, tr) is not None]
    if "lightgcnpp" in found and "lightgcn" in found:
        found.remove("lightgcnpp")
    if len(found) > 1:
        raise ValueError(f"{folder}: several split layouts {found}; choose one with --split")
    return found[0] if found else None


def load_lightgcn_dir(folder: str | Path, split: str = "auto") -> Interactions:
    """Read a split folder (``SPLITS``: train, optional validation, optional test files)."""
    folder = Path(folder)
    name = detect_split(folder) if split == "auto" else split
    if name not in SPLITS:
        raise FileNotFoundError(f"{folder}: no train file of a known split layout {sorted(SPLITS)}")
    train_stem, valid_stems, test_stem = SPLITS[name]
    train_p = _find(folder, train_stem)
    if train_p is None:
        raise FileNotFoundError(f"{folder}: no {train_stem}.txt or {train_stem}.txt.gz")
    u, i = _read_lightgcn_file(train_p)
    test_p = _find(folder, test_stem)
    tu, ti = _read_lightgcn_file(test_p) if test_p is not None else (None, None)
    data = Interactions.from_pairs(u, i, tu, ti, source=str(folder))
    valid_p = next((p for p in (_find(folder, s) for s in valid_stems) if p is not None), None)
    if valid_p is not None:
        vu, vi = _read_lightgcn_file(valid_p)
        if max(vu.max(), -1) >= data.n_users or max(vi.max(), -1) >= data.n_items:
            raise ValueError(f"{valid_p}: a user or item id beyond those of {train_p.name} / {test_stem}")
        valid = _csr(vu, vi, data.n_users, data.n_items)
        valid = valid - valid.multiply(data.train)
        valid.eliminate_zeros()
        data = Interactions(data.train, data.test, data.user_ids, data.item_ids, data.source, {"split": name},
                            valid.tocsr())
    log.info("%s (%s): %d users, %d items, %d train, %d valid, %d test", folder, name, data.n_users, data.n_items,
             data.n_train, data.n_valid, data.n_test)
    return data


def split_per_user(users: np.ndarray, items: np.ndarray, test_fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``is_test`` mask: ``round(test_fraction * n_u)`` random interactions of each user
    with at least two interactions go to test (at least one, never all)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(users)), users))  # users grouped, random order inside
    u_sorted = users[order]
    starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    n_test = np.where(counts >= 2, np.clip(np.round(counts * test_fraction), 1, counts - 1), 0)
    if test_fraction == 0.0:
        n_test[:] = 0
    is_test = np.zeros(len(users), dtype=bool)
    is_test[order] = rank < np.repeat(n_test, counts)
    return is_test, order


def to_catalogue(folder: str | Path, table: str, dense: np.ndarray) -> np.ndarray:
    """Map ``ingest_interactions``' dense ids to the catalogue ids of ``DIR/<table>(id, orig_id)``.

    Everything downstream of training (exported vectors, the candidate graph, the scoring service,
    fresh items from the heavy-hitter job) speaks catalogue ids. Without the table (an interactions
    table written by other tools) the ids are returned unchanged.
    """
    import pyarrow.parquet as pq

    path = Path(folder) / table
    if not path.exists():
        return dense
    t = pq.read_table(path, columns=["id", "orig_id"])
    ids, orig = t.column("id").to_numpy().astype(np.int64), t.column("orig_id").to_numpy().astype(np.int64)
    lut = np.full(int(ids.max(initial=-1)) + 1, -1, np.int64)
    lut[ids] = orig
    bad = (dense < 0) | (dense >= lut.size)
    bad[~bad] = lut[dense[~bad]] < 0
    if bad.any():
        raise ValueError(f"{path}: no orig_id for id {int(dense[bad][0])} of the interactions table")
    return lut[dense]


def load_interactions_dir(folder: str | Path, test_fraction: float = 0.2, seed: int = 0) -> Interactions:
    """Read an ``ingest_interactions`` output (``DIR/interactions`` Parquet) and split it per user.

    Users and items are identified by their catalogue ids (``DIR/users``, ``DIR/items``) when present.
    """
    folder = Path(folder)
    table_p = folder / "interactions"
    if not table_p.exists():
        raise FileNotFoundError(f"{folder}: no 'interactions' table")
    table = read_parquet(table_p, ("user", "item"))
    ext_u, ext_i = id_column(table, "user", table_p), id_column(table, "item", table_p)
    if len(ext_u) == 0:
        raise InputFormatError(str(table_p), "no interactions")
    ext_u, ext_i = to_catalogue(folder, "users", ext_u), to_catalogue(folder, "items", ext_i)
    user_ids, u = np.unique(ext_u, return_inverse=True)
    item_ids, i = np.unique(ext_i, return_inverse=True)
    keys = np.unique(u * len(item_ids) + i)  # drop duplicate pairs before splitting
    u, i = keys // len(item_ids), keys % len(item_ids)
    is_test, _ = split_per_user(u, i, test_fraction, seed)
    train = _csr(u[~is_test], i[~is_test], len(user_ids), len(item_ids))
    test = _csr(u[is_test], i[is_test], len(user_ids), len(item_ids))
    data = Interactions(train, test, user_ids, item_ids, str(folder), {"test_fraction": test_fraction, "seed": seed})
    log.info("%s: %d users, %d items, %d train, %d test", folder, data.n_users, data.n_items, data.n_train, data.n_test)
    return data


def read_parquet(path: Path, columns: tuple[str, ...]) -> "pa.Table":
    """A Parquet file or folder with at least ``columns``; an unreadable, empty or incomplete one raises
    :class:`~graphs.errors.InputFormatError` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir() and not any(p.is_file() and not p.name.startswith(("_", ".")) for p in path.rglob("*")):
        raise InputFormatError(str(path), "empty directory: no Parquet files")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(str(path), f"not readable as Parquet ({type(e).__name__}: {e})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputFormatError(str(path), f"missing column {missing[0]!r} (has {table.column_names})")
    return table


def id_column(table: "pa.Table", col: str, path: Path) -> np.ndarray:
    """Column ``col`` as int64 ids: an integer type, no nulls, every value in ``[0, 2**63)``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    c = table.column(col)
    if not pa.types.is_integer(c.type):
        raise InputFormatError(str(path), f"column {col!r} holds {c.type}, expected integer ids")
    if c.null_count:
        raise InputFormatError(str(path), f"column {col!r} has {c.null_count} null id(s)")
    if len(c) and (pc.min(c).as_py() < 0 or pc.max(c).as_py() >= 2**63):
        bad = pc.min(c).as_py() if pc.min(c).as_py() < 0 else pc.max(c).as_py()
        raise InputFormatError(str(path), f"column {col!r}: id {bad} outside [0, 2**63)")
    return c.to_numpy().astype(np.int64)


def load_interactions(folder: str | Path, test_fraction: float = 0.2, seed: int = 0,
                      split: str = "auto") -> Interactions:
    """Dispatch on the folder layout: ingest output (``interactions/``) or split files (:data:`SPLITS`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    if (folder / "interactions").exists():
        return load_interactions_dir(folder, test_fraction, seed)
    if split != "auto" or detect_split(folder) is not None:
        return load_lightgcn_dir(folder, split)
    raise InputFormatError(str(folder), "neither an ingest output (interactions/) nor a split folder "
                           "(train.txt[.gz], recdiff_train.txt[.gz], ...)")


class BPRSampler:
    """One epoch = every training positive once, shuffled, each with one uniform negative.

    Negatives are drawn uniformly from all items and rejected when ``(u, j)`` is a training
    positive (vectorised membership test on the sorted keys ``u * n_items + i``); only the
    rejected draws are redrawn, so an epoch costs a few vector passes.
    """

    def __init__(self, train: sp.csr_matrix, seed: int = 0):
        train = train.tocsr()
        train.sort_indices()
        self.n_users, self.n_items = train.shape
        self.users = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(train.indptr))
        self.items = train.indices.astype(np.int64)
        self.keys = self.users * self.n_items + self.items  # sorted: CSR order with sorted indices
        if np.any(np.diff(train.indptr)[:] == self.n_items):
            raise ValueError("a user has interacted with every item: no negative exists")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.users)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Vectorised ``(u, j) in train`` test."""
        q = users * self.n_items + items
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def negatives(self, users: np.ndarray) -> np.ndarray:
        """One uniform negative item per user entry (rejection sampling, vectorised)."""
        neg = self.rng.integers(0, self.n_items, size=len(users))
        bad = np.flatnonzero(self.is_positive(users, neg))
        while len(bad):
            neg[bad] = self.rng.integers(0, self.n_items, size=len(bad))
            bad = bad[self.is_positive(users[bad], neg[bad])]
        return neg

    def epoch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ``(u, i, j)`` triples of one epoch, shuffled."""
        perm = self.rng.permutation(len(self.users))
        u, i = self.users[perm], self.items[perm]
        return u, i, self.negatives(u)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield the epoch's triples in batches of ``batch_size`` (the last one may be smaller)."""
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        u, i, j = self.epoch()
        for s in range(0, len(u), batch_size):
            yield u[s:s + batch_size], i[s:s + batch_size], j[s:s + batch_size]

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self.users) // batch_size)
