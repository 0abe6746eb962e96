"""The idealised sequential-narrowing simulation behind benchmarks.heavy_hitters_ideal."""
import json
import math

import numpy as np
import pytest

from benchmarks.heavy_hitters_ideal import PartyCounts, Stage, designs, main, oracle_pq, simulate
from ldp.metrics import true_top_k


def _data(seed=0, n_items=400, bits=16):
    """Zipf-like counts over random 16-bit items, each item held by one party (fully non-IID)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(1 << bits, n_items, replace=False)
    counts = np.maximum(1, (3000 / np.arange(1, n_items + 1) ** 0.9).astype(int))
    items = np.repeat(ids, counts)
    parties = np.repeat(rng.integers(0, 4, n_items), counts)
    return items, parties, bits


@pytest.mark.parametrize("m", [2, 10, 200, 5000])
def test_ideal_oracle_is_eps_ldp_and_picks_the_lower_variance(m):
    eps = 2.0
    p, q = oracle_pq(eps, m)
    if (p, q) == (0.5, 1 / (math.exp(eps) + 1)):  # OUE: one bit's ratio p(1-q) / (q(1-p))
        assert math.isclose(p * (1 - q) / (q * (1 - p)), math.exp(eps))
    else:  # GRR over C ∪ {⊥}: probabilities sum to one, ratio e^ε
        assert math.isclose(p + m * q, 1.0) and math.isclose(p / q, math.exp(eps))
    grr = ((math.exp(eps) + m - 1) / (math.exp(eps) - 1) ** 2)
    oue = 4 * math.exp(eps) / (math.exp(eps) - 1) ** 2
    assert q * (1 - q) / (p - q) ** 2 == pytest.approx(min(grr, oue), rel=0.02)


@pytest.mark.parametrize("mode", ["pooled", "party"])  # Bayes: see the next test
def test_noise_free_designs_find_the_true_top_k(mode):
    items, parties, bits = _data()
    data = PartyCounts(items, parties, bits)
    truth = true_top_k(items, 20)
    for stages in ([Stage(1.0, bits)],
                   [Stage(0.3, 10, 40), Stage(0.7, bits)],
                   [Stage(0.3, 10, 40), Stage(0.3, bits, 30), Stage(0.4, bits)]):
        found = simulate(data, stages, 20, 40.0, np.random.default_rng(1), mode)
        assert sorted(found.tolist()) == sorted(truth.tolist())


def test_bayes_scores_and_the_party_genie_beat_pooled_when_each_item_has_one_holder():
    items, parties, bits = _data(seed=3)
    data = PartyCounts(items, parties, bits)
    truth, stages = true_top_k(items, 32), [Stage(1.0, bits)]

    def f1(mode):
        return np.mean([np.isin(simulate(data, stages, 32, 2.0, np.random.default_rng(s), mode), truth).mean()
                        for s in range(20)])

    pooled, party, bayes = (f1(m) for m in ("pooled", "party", "bayes"))
    # three of the four parties' noise: shrunk towards 0 by the posterior means, dropped by the genie
    assert 0.15 < pooled < bayes - 0.1 and bayes < party - 0.2


def test_bad_designs_are_refused():
    items, parties, bits = _data()
    data = PartyCounts(items, parties, bits)
    with pytest.raises(ValueError, match="sum to 1"):
        simulate(data, [Stage(0.5, 10, 10), Stage(0.4, bits)], 5, 4.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="full items"):
        simulate(data, [Stage(1.0, 12)], 5, 4.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="mode must be"):
        simulate(data, [Stage(1.0, bits)], 5, 4.0, np.random.default_rng(0), "genie")


@pytest.mark.parametrize("bits", [15, 19, 48])
def test_design_grids_are_valid(bits):
    grid = designs(bits)
    assert ("one-shot" in grid) == (bits <= 20)
    for name, stages in grid.items():
        assert math.isclose(sum(s.share for s in stages), 1.0), name
        assert stages[-1].bits == bits and all(s.share > 0 for s in stages), name
        assert all(s.keep > 0 and s.bits <= t.bits for s, t in zip(stages, stages[1:])), name


def test_cli_writes_tuning_and_fresh_seed_figures(shared_data, tmp_path):
    out = tmp_path / "ideal.json"
    main(["--datasets", "retail", "--seeds", "1", "--top", "2", "--modes", "pooled,bayes", "--out", str(out)])
    cell, bayes = (json.loads(out.read_text())["retail"]["4"][m] for m in ("pooled", "bayes"))
    assert set(bayes["tuning_f1"]) == set(cell["best"])  # Bayes tries only the designs pooled found best
    assert len(cell["tuning_f1"]) == len(designs(15)) and len(cell["best"]) == 2
    assert 0.3 < cell["reference"]["fedpem"]["f1_mean"] < 0.6  # the committed paired run
    for row in cell["best"].values():
        assert len(row["f1"]) == 2 and row["f1_mean"] == pytest.approx(np.mean(row["f1"]), abs=1e-4)
        assert 0.2 < row["f1_mean"] < 0.8  # retail at ε = 4: far from 0 and from 1
    assert out.with_suffix(".png").stat().st_size > 5000


def test_reference_reads_the_paired_run(tmp_path):
    from benchmarks.heavy_hitters_ideal import reference

    path = tmp_path / "paired.json"
    path.write_text(json.dumps({"bms": {"5": {"4.0": {"fedpem": {"f1_mean": 0.6, "f1_std": 0.1, "seeds": 100},
                                                      "taps": {"f1_mean": 0.7, "f1_std": 0.2, "seeds": 100},
                                                      "tap": {"f1_mean": 0.5}}}}}))
    assert reference("bms", 4, 5, path) == {"fedpem": {"f1_mean": 0.6, "f1_se": pytest.approx(0.01), "seeds": 100},
                                            "taps": {"f1_mean": 0.7, "f1_se": pytest.approx(0.02), "seeds": 100}}
    assert reference("aol", 4, 5, path) == {} and reference("bms", 4, 5, tmp_path / "missing.json") == {}
