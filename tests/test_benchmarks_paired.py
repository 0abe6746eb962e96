"""Paired per-seed differences of the heavy-hitter benchmark (benchmarks.heavy_hitters.paired)."""
from benchmarks.heavy_hitters import paired


def _cell(f1s, seed0=10):
    return {"f1_mean": sum(f1s) / len(f1s), "f1_seeds": f1s, "seeds": len(f1s), "seed0": seed0}


def test_paired_differences_are_per_seed_and_need_the_same_seeds():
    results = {"retail": {"5": {"4.0": {
        "fedpem": _cell([0.5, 0.4, 0.6]),
        "taps": _cell([0.6, 0.5, 0.6]),  # differences 0.1, 0.1, 0.0
        "tap": _cell([0.9, 0.9, 0.9], seed0=11),  # other seeds: not comparable
        "pem": {"f1_mean": 0.7, "seeds": 3, "seed0": 10},  # no per-seed figures
    }}}}
    rows = [r for r in paired(results).splitlines() if r.startswith("| retail")]
    assert rows == ["| retail | 5 | 4.0 | taps | 10–12 | 0.567 | 0.500 | +0.067 ± 0.033 | 2 / 0 |"]


def test_paired_is_empty_without_per_seed_figures():
    assert paired({"aol": {"1": {"4.0": {"fedpem": {"f1_mean": 0.7}, "taps": {"f1_mean": 0.8}}}}}) == ""


def test_variant_rows_parse_and_bad_ones_are_refused():
    import pytest

    from benchmarks.heavy_hitters import parse_variant

    assert parse_variant('taps_2level=taps:{"candidate_budget": 8192, "final_share": 0.8}') == \
        ("taps_2level", "taps", {"candidate_budget": 8192, "final_share": 0.8})
    for bad, why in [('x=pem:{}', "NAME=taps"), ('taps=taps:{}', "new NAME"), ('x=taps{}', "NAME=taps"),
                     ('x=taps:{"a": }', "bad JSON"), ('x=taps:[1]', "JSON object")]:
        with pytest.raises(ValueError, match=why):
            parse_variant(bad)
