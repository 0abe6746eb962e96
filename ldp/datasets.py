"""Item data for heavy-hitter simulations: real loaders, a Zipf generator and a non-IID party split.

* ``aol_query6`` (PEM's AOL data): ``<6-byte key>\\t<count>`` per line, keys contain spaces, so the
  key is the first 6 *bytes* of the line (never ``split()``); the key read big-endian is a 48-bit
  item; counts expand to one user per occurrence (657,427 users).
* ``fimi_retail``: one basket per line, space-separated item ids; one item sampled per basket.
* ``bms_webview2``: SPMF layout; ``-1``/``-2`` are separators, not items; one item per session.
* :func:`zipf_items`: ranks ~ Zipf(s) over ``distinct`` ranks, each rank mapped to a fixed
  pseudo-random ``bits``-bit id.
* :func:`dirichlet_parties`: non-IID split — item ``v`` spreads its users over parties with
  proportions ``π_v ~ Dirichlet(α · w)``, ``w`` uneven party weights.

All randomness here is seeded (simulation data, not perturbation).

>>> import numpy as np
>>> parties = dirichlet_parties(np.repeat([1, 2, 3], 100), 3, alpha=0.5, seed=0)
>>> parties.shape, set(parties.tolist()) <= {0, 1, 2}
((300,), True)
"""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd

from graphs.errors import InputFormatError
from ldp.hashing import keyed_hash

DATASETS = {"aol": ("aol_query6", "query_6bytes_sorted.txt.gz"),
            "retail": ("fimi_retail", "retail.dat.gz"),
            "bms": ("bms_webview2", "BMS2.txt.gz")}
DEFAULT_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)


def _read(path: Path) -> bytes:
    """The file's bytes (gunzipped); a directory, unreadable file or broken gzip raises naming the file."""
    from graphs.errors import InputFormatError
    from graphs.readers import text_errors

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset file not found")
    if path.is_dir():
        raise InputFormatError(str(path), "is a directory, expected a file")
    opener = gzip.open if path.suffix == ".gz" else open
    with text_errors(path), opener(path, "rb") as fh:
        return fh.read()


def load_aol(path: str | Path, key_bytes: int = 6) -> np.ndarray:
    """One 48-bit item per query occurrence (key bytes big-endian); keys with spaces kept intact."""
    keys, counts = [], []
    for no, line in enumerate(_read(Path(path)).split(b"\n"), 1):
        if not line:
            continue
        count = line[key_bytes + 1:]
        if (len(line) < key_bytes + 2 or line[key_bytes:key_bytes + 1] != b"\t" or not count.isdigit()
                or len(count) > 12):
            raise InputFormatError(str(path), f"expected a {key_bytes}-byte key, a tab and a count", line=no)
        keys.append(line[:key_bytes])
        counts.append(int(count))
    if not sum(counts):
        raise InputFormatError(str(path), "no queries: the file is empty")
    raw = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, key_bytes).astype(np.int64)
    vals = np.zeros(raw.shape[0], dtype=np.int64)
    for b in range(key_bytes):
        vals = (vals << 8) | raw[:, b]
    return np.repeat(vals, np.asarray(counts, dtype=np.int64))


def _baskets(path: Path, drop: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat item array and per-basket lengths (empty baskets dropped)."""
    toks = []
    for no, ln in enumerate(_read(path).split(b"\n"), 1):
        words = ln.split()
        if not all(w.lstrip(b"+-").isdigit() for w in words):
            bad = next(w for w in words if not w.lstrip(b"+-").isdigit())
            raise InputFormatError(str(path), f"expected integer item ids, got {bad[:40]!r}", line=no)
        vals = [int(w) for w in words]
        if vals and max(vals) >= 2**63:
            raise InputFormatError(str(path), f"item id {max(vals)} is beyond int64", line=no)
        t = np.array([max(v, -2**62) for v in vals], dtype=np.int64)  # below int64: still negative, refused below
        t = t[~np.isin(t, drop)]
        if (t < 0).any():
            raise InputFormatError(str(path), f"negative item id other than the separators {drop}", line=no)
        toks.append(t)
    toks = [t for t in toks if t.size]
    if not toks:
        raise InputFormatError(str(path), "no items found")
    return np.concatenate(toks), np.array([t.size for t in toks], dtype=np.int64)


def sample_one_per_basket(flat: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    """One uniformly chosen item per basket (vectorised)."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return flat[starts + (rng.random(lengths.size) * lengths).astype(np.int64)]


def load_baskets(path: str | Path, seed: int, separators: tuple[int, ...] = ()) -> np.ndarray:
    """Basket file → one item per basket/user (``separators`` tokens are not items)."""
    flat, lengths = _baskets(Path(path), separators)
    return sample_one_per_basket(flat, lengths, seed)


def load_dataset(name: str, shared_data: str | Path, seed: int = 0) -> tuple[np.ndarray, int]:
    """``(items, bits)`` for ``aol`` (48 bits), ``retail`` or ``bms`` (bits = width of the max id)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    folder, file = DATASETS[name]
    path = Path(shared_data) / folder / file
    if name == "aol":
        return load_aol(path), 48
    items = load_baskets(path, seed, separators=(-1, -2) if name == "bms" else ())
    return items, max(1, math.ceil(math.log2(int(items.max()) + 1)))


def zipf_items(n: int, bits: int = 48, s: float = 1.1, distinct: int = 1_000_000, seed: int = 0) -> np.ndarray:
    """``n`` users whose items follow Zipf(s) over ``distinct`` ranks, as pseudo-random ids."""
    rng = np.random.default_rng(seed)
    w = np.arange(1, distinct + 1, dtype=np.float64) ** -s
    cdf = np.cumsum(w / w.sum())
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), distinct - 1)
    mask = np.uint64((1 << bits) - 1)
    return (keyed_hash(ranks, np.uint64(seed + 0x51F)) & mask).astype(np.int64)


def dirichlet_parties(items: np.ndarray, parties: int, alpha: float = 0.5, seed: int = 0,
                      weights: tuple[float, ...] | None = None) -> np.ndarray:
    """Party of each user: item ``v``'s users follow ``π_v ~ Dirichlet(α·w)`` (non-IID, uneven)."""
    if parties < 1 or alpha <= 0:
        raise ValueError("parties must be >= 1 and alpha > 0")
    if parties == 1:
        return np.zeros(len(items), dtype=np.int64)
    w = np.asarray(weights or (DEFAULT_WEIGHTS if parties == 5 else np.ones(parties)), dtype=np.float64)
    if w.size != parties:
        raise ValueError(f"{w.size} weights for {parties} parties")
    w = w / w.sum() * parties
    rng = np.random.default_rng(seed)
    u, inv = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
    cum = np.cumsum(rng.dirichlet(alpha * w, size=u.size), axis=1)
    return (cum[inv] < rng.random(inv.size)[:, None]).sum(axis=1).clip(0, parties - 1).astype(np.int64)


def report_table(items: np.ndarray, parties: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """The job's input schema ``party, user, item`` (int64), users shuffled ids 0..n-1."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"party": np.asarray(parties, dtype=np.int64),
                         "user": rng.permutation(len(items)).astype(np.int64),
                         "item": np.asarray(items, dtype=np.int64)})


def main(argv=None) -> None:
    """Write a report table (``party, user, item``) as Parquet: ``python -m ldp.datasets --out DIR``."""
    import argparse
    import logging

    from graphs.atomic import atomic_dir, write_meta

    ap = argparse.ArgumentParser(prog="python -m ldp.datasets", description=main.__doc__)
    ap.add_argument("--out", required=True, help="output directory (replaced atomically)")
    ap.add_argument("--dataset", default="zipf", choices=["zipf", *DATASETS])
    ap.add_argument("--shared-data", default="../shared/data", help="where the real data sets live")
    ap.add_argument("--users", type=int, default=500_000, help="zipf only")
    ap.add_argument("--zipf", type=float, default=1.2, help="zipf exponent")
    ap.add_argument("--distinct", type=int, default=1_000_000, help="zipf: number of distinct items")
    ap.add_argument("--bits", type=int, default=48, help="zipf: item width")
    ap.add_argument("--parties", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration of the party split")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if a.dataset == "zipf":
        items, bits = zipf_items(a.users, a.bits, a.zipf, a.distinct, a.seed), a.bits
    else:
        items, bits = load_dataset(a.dataset, a.shared_data, a.seed)
    table = report_table(items, dirichlet_parties(items, a.parties, a.alpha, a.seed), a.seed)
    with atomic_dir(a.out) as tmp:
        table.to_parquet(tmp / "part-00000.parquet", index=False)
        write_meta(tmp, "ldp.datasets", vars(a), rows=len(table), bits=bits)
    logging.getLogger(__name__).info("wrote %d users (%d bits) to %s", len(table), bits, a.out)


if __name__ == "__main__":
    main()
