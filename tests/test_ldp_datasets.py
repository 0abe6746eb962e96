"""Loaders for the heavy-hitter data sets and the non-IID party split."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from tests.conftest import data_file
from ldp.datasets import dirichlet_parties, load_aol, load_baskets, load_dataset, report_table, zipf_items
from ldp.metrics import true_counts


def test_aol_keys_are_sliced_bytes(tmp_path):
    p = tmp_path / "q.txt.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b"a b  c\t3\n\tx y z\t2\ngoogle\t1\n")  # spaces and a leading tab inside keys
    items = load_aol(p)
    assert items.size == 6
    assert int(items[0]) == int.from_bytes(b"a b  c", "big") and int(items[3]) == int.from_bytes(b"\tx y z", "big")
    assert int(items[-1]) == int.from_bytes(b"google", "big")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"short\t1\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        load_aol(bad)


def test_baskets_drop_separators_and_sample_one_item(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("5 -1 7 -1 -2\n-1\n9 -1\n")
    items = load_baskets(p, seed=0, separators=(-1, -2))
    assert items.size == 2 and items[0] in (5, 7) and items[1] == 9


def test_real_datasets(shared_data):
    data_file(shared_data, "aol_query6", "query_6bytes_sorted.txt.gz")
    aol, bits = load_dataset("aol", shared_data)
    assert bits == 48 and aol.size == 657_427
    u, c = true_counts(aol)
    assert u.size == 120_978 and c[0] == 18_720 and int(u[1]) == int.from_bytes(b"google", "big")
    retail, rb = load_dataset("retail", shared_data, seed=1)
    assert retail.size == 88_162 and retail.max() < (1 << rb)
    bms, bb = load_dataset("bms", shared_data, seed=1)
    assert bms.size == 77_512 and bms.min() >= 0 and np.unique(bms).size <= 3_340


def test_dirichlet_split_is_seeded_uneven_and_non_iid():
    items = zipf_items(100_000, bits=48, s=1.1, distinct=2000, seed=0)
    a = dirichlet_parties(items, 5, alpha=0.5, seed=1)
    np.testing.assert_array_equal(a, dirichlet_parties(items, 5, alpha=0.5, seed=1))
    sizes = np.bincount(a, minlength=5) / a.size
    assert sizes.max() > 1.5 * sizes.min()  # uneven
    top = true_counts(items)[0][:10]
    shares = np.array([np.bincount(a[items == v], minlength=5) / (items == v).sum() for v in top])
    assert np.mean(shares.max(axis=1)) > 0.5  # heavy items concentrate in one party
    assert items.max() < (1 << 48)
    t = report_table(items, a)
    assert list(t.columns) == ["party", "user", "item"] and t["user"].is_unique
