"""Embedding tuning (issue 27): the core's scores, the job on a local SparkSession, embed_graph --settings."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings.tuning import (Setting, TuningConfig, default_grid, kendall_tau, read_settings, regret, tune)
from graphs.generators import PlantedConfig, planted_block
from graphs.profile import simple_edges

GRID = (Setting(2, -1.0, 0.5), Setting(5, 0.2, 0.5), Setting(5, 1.0, 2.0))


@pytest.fixture(scope="module")
def planted():
    cfg = PlantedConfig(nodes=600, communities=6, avg_degree=8, mu=0.1, seed=3)
    s, d = simple_edges(*planted_block(cfg, 0, 600, 0), 600)
    ids, inv = np.unique(np.r_[s, d], return_inverse=True)  # nodes with an edge, dense (as the job relabels)
    s, d = inv[: s.size], inv[s.size:]
    return s, d, ids.size


def adj(s, d, n):
    return sp.csr_matrix((np.ones(len(s), np.float32), (s, d)), shape=(n, n))


@pytest.fixture(scope="module")
def tuned(planted):
    return tune(adj(*planted), GRID, TuningConfig(dim=16, threads=1))


def test_tune_scores_every_setting_and_chooses_the_best(tuned, planted):
    assert tuned.settings() == GRID and tuned.nodes == planted[2]
    aucs = tuned.aucs()
    assert all(0.5 < a <= 1.0 for a in aucs.values())
    assert tuned.chosen == max(tuned.scores, key=lambda s: s.auc).setting
    # the filter's settings matter on this graph: the AUCs of the grid spread by more than 0.02
    assert max(aucs.values()) - min(aucs.values()) > 0.02
    assert tuned.seconds["smf"] > 0 and set(tuned.seconds) >= {"split", "smf", "settings", "total"}
    # paired scoring: the same split and factorisation, so a second run gives the same numbers
    again = tune(adj(*planted), GRID[:2], TuningConfig(dim=16, threads=1))
    assert [s.auc for s in again.scores] == [s.auc for s in tuned.scores[:2]]


def test_chosen_round_trip_and_grid(tuned, tmp_path):
    obj = tuned.write_chosen(tmp_path / "chosen.json", dim=16)
    assert read_settings(tmp_path / "chosen.json") == tuned.chosen and obj["dim"] == 16
    grid = default_grid()
    assert len(grid) >= 12 and len(set(grid)) == len(grid)
    with pytest.raises(ValueError, match="order must be >= 2"):
        Setting(1, 0.2, 0.5)


def test_rank_transfer_measures():
    assert kendall_tau([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendall_tau([0.1, 0.2, 0.3, 0.4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    full = {"a": 0.93, "b": 0.90, "c": 0.80}
    assert regret(full, "a") == 0 and regret(full, "c") == pytest.approx(0.13)


@pytest.mark.spark
def test_job_tunes_in_one_task_and_embed_graph_applies_the_choice(spark, planted, tuned, tmp_path):
    from jobs.embed_graph import parse_args as embed_args
    from jobs.tune_embedding import parse_args, run
    from tests.test_sampling_job import write_graph_dir

    s, d, n = planted
    gdir = write_graph_dir(tmp_path / "sample", s, d, n)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"order": g.order, "mu": g.mu, "theta": g.theta} for g in GRID]))
    out = tmp_path / "tuned"
    chosen = run(spark, parse_args(["--edges", str(gdir), "--output", str(out), "--dim", "16", "--grid", str(grid),
                                    "--threads", "1"]))
    assert {p.name for p in out.iterdir()} >= {"chosen.json", "scores.json", "_meta.json"}
    scores = json.loads((out / "scores.json").read_text())["scores"]
    # the same AUCs as the core on the same graph (the task relabels the sample's ids the same way)
    assert {x["label"]: x["auc"] for x in scores} == pytest.approx(tuned.aucs(), abs=1e-9)
    assert (chosen["order"], chosen["mu"], chosen["theta"]) == (tuned.chosen.order, tuned.chosen.mu, tuned.chosen.theta)
    assert json.loads((out / "chosen.json").read_text()) == chosen
    with pytest.raises(ValueError, match="exceed --max-edges"):
        run(spark, parse_args(["--edges", str(gdir), "--output", str(tmp_path / "x"), "--max-edges", "10"]))
    # embed_graph --settings (the file or the folder) carries the choice into DistNE's config
    for arg in (str(out / "chosen.json"), str(out)):
        cfg = embed_args(["--edges", str(gdir), "--output", str(tmp_path / "emb"), "--settings", arg])
        dn = cfg.distne()
        assert (dn.order, dn.mu, dn.theta) == (chosen["order"], chosen["mu"], chosen["theta"])
    plain = embed_args(["--edges", str(gdir), "--output", str(tmp_path / "emb")]).distne()
    assert (plain.order, plain.mu, plain.theta) == (5, 0.2, 0.5)  # DistNE's defaults without --settings
    # a forest cannot be scored: the job writes the defaults and says why, so the day's pipeline goes on
    tree = write_graph_dir(tmp_path / "tree", np.arange(20), np.arange(1, 21), 21)
    fallback = run(spark, parse_args(["--edges", str(tree), "--output", str(tmp_path / "t2"), "--dim", "4"]))
    assert (fallback["order"], fallback["mu"], fallback["theta"]) == (5, 0.2, 0.5) and "forest" in fallback["fallback"]
    assert json.loads((tmp_path / "t2" / "scores.json").read_text())["scores"] == []


def test_a_forest_cannot_be_tuned():
    from embeddings.tuning import spare_edges

    path = adj(np.arange(9), np.arange(1, 10), 10)  # a path: every edge is on the spanning tree
    assert spare_edges(sp.csr_matrix(path.maximum(path.T))) == 0
    with pytest.raises(ValueError, match="forest"):
        tune(path, GRID[:1], TuningConfig(dim=4, threads=1))
    cycle = adj(np.arange(10), (np.arange(10) + 1) % 10, 10)
    assert spare_edges(sp.csr_matrix(cycle.maximum(cycle.T))) == 1
