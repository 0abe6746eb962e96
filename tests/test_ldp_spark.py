"""The heavy_hitters Spark job end to end on a generated report table."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ldp.datasets import dirichlet_parties, report_table, zipf_items
from ldp.metrics import true_top_k

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    items = zipf_items(40_000, bits=24, s=1.4, distinct=3000, seed=3)
    df = report_table(items, dirichlet_parties(items, 3, alpha=1.0, seed=3), seed=3)
    path = tmp_path_factory.mktemp("hh") / "reports"
    path.mkdir()
    df.to_parquet(path / "part-0.parquet")
    return path, df


def test_job_finds_heavy_hitters_and_writes_ledger(spark, table, tmp_path):
    from jobs.heavy_hitters import main

    inp, df = table
    out = tmp_path / "out"
    meta = main(["--input", str(inp), "--output", str(out), "--bits", "24", "--epsilon", "4", "--k", "8",
                 "--method", "taps", "--candidate-budget", "1024", "--seed", "5", "--evaluate"])
    hh = pd.read_parquet(out / "heavy_hitters")
    assert list(hh.columns) == ["item", "estimate", "rank"] and str(hh["item"].dtype) == "int64"
    assert hh["rank"].tolist() == list(range(1, 9))
    truth = true_top_k(df["item"].to_numpy(), 8)
    assert len(set(hh["item"]) & set(truth.tolist())) >= 7
    ledger = json.loads((out / "ledger.json").read_text())
    sizes = df.groupby("party").size()
    for p, n in sizes.items():
        entry = ledger["parties"][str(p)]
        assert entry["users"] == entry["users_reported"] == n  # every user reported, once
        assert entry["reports_per_user"] == 1 and entry["epsilon_per_user"] == 4.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] >= 0.85 and 0 <= metrics["ncr"] <= 1
    assert (out / "_meta.json").exists() and meta["rows"]["input"] == len(df)
    assert meta["params"]["score"] == "bayes" and meta["params"]["consistency"] is True


def test_job_rejects_bad_input_and_writes_nothing(spark, table, tmp_path):
    from jobs.heavy_hitters import main

    inp, df = table
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="missing party column 'tenant'"):
        main(["--input", str(inp), "--output", str(out), "--party-col", "tenant", "--bits", "24"])
    with pytest.raises(ValueError, match="outside"):
        main(["--input", str(inp), "--output", str(out), "--bits", "8"])
    dup = tmp_path / "dup"
    dup.mkdir()
    d = df.head(100).copy()
    d.loc[1, "user"] = d.loc[0, "user"]
    d.to_parquet(dup / "part-0.parquet")
    with pytest.raises(ValueError, match="more than once"):
        main(["--input", str(dup), "--output", str(out), "--bits", "24"])
    assert not out.exists()


def test_spark_population_matches_local_estimates(spark, table):
    """Executors' supports, summed over partitions, estimate the same counts as the numpy path."""
    from ldp.rounds import LocalPopulation, Query
    from ldp.spark import SparkPopulation

    _, df = table
    sdf = spark.createDataFrame(df).repartition(3)
    top = np.sort(true_top_k(df["item"].to_numpy(), 20))
    q = Query(0, (0, 1), 24, top, "olh", salt=11)
    sp = SparkPopulation(sdf, 24, 2.0, seed=1).answer([q], shares=(0.5, 0.5), group_salt=4)[0]
    lo = LocalPopulation(df.party, df.user, df.item, 24, 2.0, seed=1).answer([q], (0.5, 0.5), 4)[0]
    assert sp.n == lo.n == int((df.party == 0).sum())
    true = df[df.party == 0].item.value_counts().reindex(top, fill_value=0).to_numpy()
    tol = 5 * np.sqrt(sp.variance0)
    assert np.all(np.abs(sp.estimates - true) < tol) and np.all(np.abs(lo.estimates - true) < tol)


def test_tap_options_reach_the_config():
    from jobs.heavy_hitters import parse_args

    cfg = parse_args(["--input", "in", "--output", "out", "--score", "claims", "--no-consistency"])
    assert cfg.score == "claims" and cfg.consistency is False
    assert parse_args(["--input", "in", "--output", "out"]).consistency is True
    cfg = parse_args(["--input", "in", "--output", "out", "--candidate-budget", "8192", "--first-bits", "12",
                      "--final-share", "0.8"])
    assert (cfg.candidate_budget, cfg.first_bits, cfg.final_share) == (8192, 12, 0.8)
    from jobs.heavy_hitters import tap_options
    from ldp.federated import TAPConfig

    tap = TAPConfig(**tap_options(cfg))  # what run_method builds: BMS's two-level shape
    assert (tap.candidate_budget, tap.first_bits, tap.final_share, tap.lengths(19)) == (8192, 12, 0.8, [12, 19])
    assert tap_options(parse_args(["--input", "in", "--output", "out", "--method", "fedpem"])) == {}


def test_help_works():
    from jobs.heavy_hitters import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
