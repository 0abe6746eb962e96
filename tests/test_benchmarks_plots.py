"""benchmarks.plots: the series each figure draws, and the figures themselves, from small result files."""
import json

import numpy as np
import pytest

from benchmarks import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _embedding_results():
    res = {"blogcatalog": {"_graph": {"edges": 333983, "nodes": 10312}, "prone": {"ok": True, "seconds": 9.0}}}
    for scale, edges in ((16, 9e5), (18, 3.8e6), (20, 1.6e7)):
        res[f"rmat{scale}"] = {"_graph": {"edges": edges},
                               "distne-spark": {"ok": True, "seconds": edges / 4e4, "peak_mb": 4000.0, "driver_peak_mb": 170.0},
                               "prone": {"ok": True, "seconds": edges / 8e4, "peak_mb": edges / 4e3}}
    res["rmat18"]["prone-threads"] = {"ok": False, "seconds": 1.0}  # a failed run
    res["rmat14"] = {"_graph": {"edges": 2e5}, "distne-spark": {"ok": True, "seconds": 200.0, "conditions": "not timed"},
                     "prone": {"ok": False, "seconds": 1.0}}
    return res


def test_scaling_series_sorted_and_filtered():
    res = _embedding_results()
    e, s = plots.scaling_series(res, "distne-spark")
    # rmat14 and blogcatalog are not in the benchmark's scaling series.
    np.testing.assert_array_equal(e, [9e5, 3.8e6, 1.6e7])
    np.testing.assert_allclose(s, e / 4e4)
    e, s = plots.scaling_series(res, "prone")
    np.testing.assert_array_equal(e, [9e5, 3.8e6, 1.6e7])
    e, m = plots.scaling_series(res, "distne-spark", "driver_peak_mb")
    np.testing.assert_array_equal(m, [170.0] * 3)
    assert plots.scaling_series(res, "prone-threads")[0].size == 0  # rmat18's run failed


def test_f1_series_orders_epsilon():
    cell = {"4.0": {"taps": {"f1_mean": 0.8, "f1_std": 0.1}}, "1.0": {"taps": {"f1_mean": 0.1, "f1_std": 0.0}},
            "2.0": {"fedpem": {"f1_mean": 0.3}}}
    eps, mean, std = plots.f1_series(cell, "taps")
    np.testing.assert_array_equal(eps, [1.0, 4.0])
    np.testing.assert_array_equal(mean, [0.1, 0.8])
    np.testing.assert_array_equal(std, [0.0, 0.1])
    eps, _, std = plots.f1_series(cell, "fedpem")
    np.testing.assert_array_equal(eps, [2.0])
    np.testing.assert_array_equal(std, [0.0])


def _run(recall, hist):
    return {"recall@20": recall, "history": [{"epoch": e, "recall@20": r} for e, r in hist]}


def test_recommender_seed_runs_curve_and_density_ratios():
    group = {"mf@1": _run(0.10, [(10, 0.08), (20, 0.10)]),
             "mf@1 seed1": _run(0.12, [(10, 0.06), (20, 0.12)]),
             "mf@0.2": _run(0.09, [(10, 0.05), (20, 0.09)]),
             "mf@0.2 seed1": _run(0.099, [(10, 0.07)]),
             "mf@0.2 random": _run(0.05, [(10, 0.02), (20, 0.05)]),
             "mf@0.5": _run(0.11, []),
             "popularity": {"recall@20": 0.04}}
    assert len(plots.seed_runs(group, "mf@0.2")) == 2  # "mf@0.2 random" is another method
    ep, mean, lo, hi = plots.curve(plots.seed_runs(group, "mf@1"))
    np.testing.assert_array_equal(ep, [10, 20])
    np.testing.assert_allclose(mean, [0.07, 0.11])
    np.testing.assert_allclose(lo, [0.06, 0.10])
    np.testing.assert_allclose(hi, [0.08, 0.12])
    ep, mean, _, _ = plots.curve(plots.seed_runs(group, "mf@0.2"))  # only the epochs both seeds evaluated
    np.testing.assert_array_equal(ep, [10])
    np.testing.assert_allclose(mean, [0.06])
    d, ratio, std = plots.density_ratios(group)
    np.testing.assert_array_equal(d, [0.2, 0.5])
    np.testing.assert_allclose(ratio, [(0.09 + 0.099) / 2 / 0.11, 0.11 / 0.11])
    np.testing.assert_allclose(std[0], np.std([0.09 / 0.11, 0.099 / 0.11]))
    assert plots.density_ratios({"mf@0.2": group["mf@0.2"]})[0].size == 0  # no dense run: no ratios


def _ideal_results():
    def cell(f1s, ref):
        return {"best": {f"d{i}": {"f1_mean": f, "f1_se": 0.01} for i, f in enumerate(f1s)}, "reference": ref}

    ref = {"fedpem": {"f1_mean": 0.5, "f1_se": 0.004, "seeds": 200}, "taps": {"f1_mean": 0.55, "seeds": 200}}
    return {"bms": {"4": {"party": cell([0.7, 0.65], ref), "pooled": cell([0.52, 0.58], ref)}},
            "aol": {"2": {"pooled": cell([0.3], {})}}}


def test_ideal_bars_take_the_best_fresh_design_per_mode():
    bars = plots.ideal_bars(_ideal_results())
    assert list(bars) == ["bms"]  # aol has no ε = 4 cell
    assert bars["bms"] == {"fed. PEM": (0.5, 0.004), "TAPS": (0.55, 0.0), "ideal tree, pooled": (0.58, 0.01),
                           "ideal tree, party genie": (0.7, 0.01)}
    assert list(bars["bms"]) == [v for m, v in plots.IDEAL_LABELS.items() if m != "bayes"]  # no Bayes cell


@pytest.mark.parametrize("name", sorted(plots.FIGURES))
def test_draw_writes_a_png_next_to_the_json(tmp_path, name):
    results = {"embedding": _embedding_results(),
               "heavy_hitters": {"aol": {p: {e: {m: {"f1_mean": 0.5, "f1_std": 0.1} for m in ("taps", "fedpem")}
                                                 for e in ("1.0", "4.0")} for p in ("1", "5")}},
               "heavy_hitters_ideal": _ideal_results(),
               "recommender": {"gowalla/200ep": {"mf@1": _run(0.14, [(10, 0.12), (80, 0.14)]),
                                                  "mf@0.2": _run(0.12, [(10, 0.10), (80, 0.12)])},
                               "gowalla/20ep": {"mf@1": {"recall@20": 0.12}, "mf@0.2": {"recall@20": 0.11}}},
               "social": {"ciao/mf/1": {a: {"runs": [{"recall@20": v, "recall@20_cold": v / 2} for v in (0.05, 0.06)]}
                                        for a in ("interactions", "social")} | {"paired": {}}},
               "recommender_tuning": {"ciao/mf/1": {k: {"recall": 0.05, "popularity_recall": 0.04}
                                                    for k in ("a_defaults", "b_early_stopping", "c_tuned")}}}[name]
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps(results))
    png = plots.draw(name, src)
    assert png == tmp_path / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000


def test_make_run_gantt_has_a_panel_per_run(tmp_path):
    from benchmarks import make_run

    def run(parallelism, offsets):
        tasks = [{"dag": "graphrec_daily", "task_id": f"t{i}", "start": f"2026-01-05T00:00:{a:02d}+00:00",
                  "end": f"2026-01-05T00:00:{b:02d}+00:00", "seconds": b - a} for i, (a, b) in enumerate(offsets)]
        return {"parallelism": parallelism, "wall_s": 30.0, "dag_s": 25.0, "load_before": 0.5, "tasks": tasks}

    path = make_run.plot([run(1, [(0, 10), (10, 20)]), run(2, [(0, 10), (0, 12)])], tmp_path / "g.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
