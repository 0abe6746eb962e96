"""The social and tuning benchmarks' bookkeeping: paired differences, and their figures."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import plots
from benchmarks.social import paired


def _runs(values, cold):
    return [{"recall@20": v, "recall@20_cold": c} for v, c in zip(values, cold)]


def test_paired_difference_and_standard_error():
    a, b = _runs([0.10, 0.12, 0.11], [0.05] * 3), _runs([0.12, 0.13, 0.14], [0.07] * 3)
    p = paired(a, b, "recall@20")
    d = np.array([0.02, 0.01, 0.03])
    assert p["diff"] == pytest.approx(d.mean()) and p["se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3))
    assert p["gain"] == pytest.approx(0.13 / 0.11 - 1)
    assert paired(a, b, "recall@20_cold")["se"] == pytest.approx(0.0)


def test_figures_draw_from_results(tmp_path):
    cell = {"interactions": {"runs": _runs([0.1, 0.11], [0.05, 0.06])},
            "social": {"runs": _runs([0.12, 0.13], [0.07, 0.08])}, "paired": {}}
    results = {"config": {"seeds": 2}, "ciao/mf/1": cell, "ciao/cold_start_replay": {"ratio": 1.2}}
    assert [k for k, _ in plots.social_cells(results)] == ["ciao/mf/1"]
    assert plots.plot_social(results, tmp_path / "s.png").stat().st_size > 0
    row = {"recall": 0.1, "popularity_recall": 0.05}
    tuning = {"ciao/mf/1": {"a_defaults": row, "b_early_stopping": row, "c_tuned": row}}
    assert plots.plot_recommender_tuning(tuning, tmp_path / "t.png").stat().st_size > 0
