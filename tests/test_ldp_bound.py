"""Genie bound of the heavy-hitter benchmark (benchmarks.heavy_hitters.genie_f1, frontier_needed)."""
import numpy as np
import pytest

from benchmarks.heavy_hitters import frontier_needed, genie_f1, genie_sizes
from ldp.metrics import true_top_k


def _zipf(n=20_000, bits=12, s=1.3, seed=0):
    rng = np.random.default_rng(seed)
    w = np.arange(1, (1 << bits) + 1, dtype=np.float64) ** -s
    return np.random.default_rng(seed + 1).permutation(1 << bits)[rng.choice(1 << bits, n, p=w / w.sum())].astype(np.int64)


@pytest.mark.parametrize("mode", ["pooled", "party", "rr"])
def test_genie_with_exactly_the_top_k_is_perfect(mode):
    items = _zipf()
    parties = np.random.default_rng(3).integers(0, 3, items.size)
    f1, ncr = genie_f1(items, 12, 10, 1.0, 10, seed=5, mode=mode, parties=parties)
    assert f1 == 1.0 and ncr == 1.0


def test_genie_whole_domain_degrades_with_noise():
    items = _zipf()
    strong = [genie_f1(items, 12, 10, 8.0, None, seed=s)[0] for s in range(3)]
    weak = [genie_f1(items[:2000], 12, 10, 0.2, None, seed=s)[0] for s in range(3)]
    assert min(strong) >= 0.9
    assert max(weak) < 0.9 and np.mean(weak) < np.mean(strong)


def test_genie_share_uses_fewer_users():
    items = _zipf()
    full = np.mean([genie_f1(items, 12, 10, 1.0, 512, seed=s)[0] for s in range(6)])
    tenth = np.mean([genie_f1(items, 12, 10, 1.0, 512, seed=s, share=0.1)[0] for s in range(6)])
    assert tenth < full


def test_frontier_needed_bounds():
    items = _zipf(bits=14)
    need = np.unique(true_top_k(items, 10) >> 4).size
    r_all = frontier_needed(items, 14, 10, 2.0, seed=1, prefix_bits=10, cover=1.0)
    r_half = frontier_needed(items, 14, 10, 2.0, seed=1, prefix_bits=10, cover=0.5)
    assert need <= r_all <= 1 << 10
    assert r_half <= r_all


def test_genie_sizes_skip_what_cannot_apply():
    ms = ["64", "4096", "all"]
    assert genie_sizes(ms, 12) == [("64", 64), ("all", None)]  # 4,096 is the whole 12-bit domain
    assert genie_sizes(ms, 19) == [("64", 64), ("4096", 4096), ("all", None)]
    assert genie_sizes(ms, 48) == [("64", 64), ("4096", 4096)]  # 2^48 cannot be enumerated
