"""The training CLI end to end: outputs, metrics.json, recommend() from the export, failure, resume."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from recsys import train as train_cli
from recsys.data import BPRSampler
from recsys.export import load_recommender, read_sparse_table, read_vectors, recommend

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread on shared machines


@pytest.fixture()
def ingest_dir(tmp_path):
    """A small ingest_interactions output with a planted structure (two taste groups)."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(120), 12)
    group = users % 2
    items = np.where(group == 0, rng.integers(0, 40, len(users)), rng.integers(40, 80, len(users)))
    d = tmp_path / "ing"
    (d / "interactions").mkdir(parents=True)
    pq.write_table(pa.table({"user": users + 5000, "item": items + 10}), d / "interactions" / "part-0.parquet")
    return d


def _args(data, out, *extra):
    return ["--data", str(data), "--output", str(out), "--epochs", "3", "--dim", "8", "--batch-size", "128",
            "--no-progress", *extra]


@pytest.mark.parametrize("model", ["mf", "lightgcn"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_cli_writes_outputs_and_metrics(ingest_dir, tmp_path, model, device):
    out = tmp_path / "out"
    assert train_cli.main(_args(ingest_dir, out, "--model", model, "--density", "0.25", "--device", device)) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("recall@20", "ndcg@20", "params", "bytes", "seconds_per_epoch", "epochs", "rounds", "device"):
        assert key in m, key
    assert m["epochs"] == 3 and m["rounds"] > 0 and 0 <= m["recall@20"] <= 1
    assert m["params"] == pytest.approx(0.25 * m["dense_params"], abs=2)
    assert m["bytes"] < m["dense_bytes"]
    assert (out / "_meta.json").exists() and not (tmp_path / "out.ckpt").exists()
    uids, U = read_vectors(out / "user_vectors")
    iids, V = read_vectors(out / "item_vectors")
    assert U.shape == (120, 8) and V.shape[1] == 8 and uids.min() == 5000 and iids.min() >= 10
    ids, base = read_sparse_table(out / "user_base", 8)
    assert base.nnz == pytest.approx(0.25 * base.shape[0] * 8, abs=1) and np.array_equal(ids, uids)
    if model == "mf":  # MF scores with its (sparse) base table directly
        assert np.allclose(base.toarray(), U)
    rec = recommend(out, np.array([5000, 5001]), k=5)
    assert rec.items.shape == (2, 5) and np.all(np.diff(rec.scores, axis=1) <= 1e-6)
    seen = pq.read_table(out / "seen").to_pandas()
    for r, u in enumerate(rec.users):
        assert not set(rec.items[r]) & set(seen.item[seen.user == u])


def test_cli_failure_exit_code_and_nothing_written(tmp_path):
    out = tmp_path / "out"
    assert train_cli.main(_args(tmp_path / "missing", out)) == 1
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--data", "x", "--output", str(out), "--model", "svd"])
    assert e.value.code == 2


def test_resume_continues_to_the_same_result(ingest_dir, tmp_path, monkeypatch):
    args = ("--model", "mf", "--density", "0.5", "--epochs", "4")
    full = tmp_path / "full"
    assert train_cli.main(_args(ingest_dir, full, *args)) == 0
    expected = read_vectors(full / "user_vectors")[1]

    real_batches = BPRSampler.batches
    calls = {"n": 0}

    def failing(self, batch_size):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in epoch 3")
        return real_batches(self, batch_size)

    out = tmp_path / "out"
    monkeypatch.setattr(BPRSampler, "batches", failing)
    assert train_cli.main(_args(ingest_dir, out, *args)) == 1
    assert not out.exists() and (tmp_path / "out.ckpt").exists()
    monkeypatch.setattr(BPRSampler, "batches", real_batches)
    assert train_cli.main(_args(ingest_dir, out, *args, "--resume")) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 4
    np.testing.assert_allclose(read_vectors(out / "user_vectors")[1], expected, rtol=1e-5, atol=1e-6)


def test_load_recommender_rejects_foreign_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="user_vectors"):
        load_recommender(tmp_path)


def test_init_density_scale_keeps_row_norms():
    """σ/sqrt(ρ) at density ρ: after masking, a row's expected squared norm matches dense init."""
    import numpy as np
    import torch

    from recsys.data import Interactions
    from recsys.trainer import TrainConfig, build_model

    rng = np.random.default_rng(0)
    data = Interactions.from_pairs(rng.integers(0, 400, 4000), rng.integers(0, 500, 4000))
    dense = build_model(TrainConfig(model="mf", density=1.0, dim=64), data)
    scaled = build_model(TrainConfig(model="mf", density=0.25, dim=64, init_density_scale=True), data)
    plain = build_model(TrainConfig(model="mf", density=0.25, dim=64), data)
    assert float(dense.user.weight.detach().std()) == pytest.approx(0.01, rel=0.05)  # MF default
    assert float(scaled.user.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    assert torch.equal(plain.user.weight, dense.user.weight)


def test_cli_structured_mask_options_reach_the_trainer():
    """``--init-mask --init-spread --grow-zero-signal`` reach TrainConfig (default: shared, skip), and a fit keeps
    the budget and starts every row on a prefix of one column order shared by users and items."""
    from recsys.data import Interactions
    from recsys.trainer import BPRRecommender, TrainConfig

    cfg = train_cli.parse_args(["--data", "d", "--output", "o", "--density", "0.25", "--init-mask", "random",
                                "--init-spread", "0.3", "--grow-zero-signal", "random"]).train
    assert (cfg.init_mask, cfg.init_spread, cfg.grow_zero_signal) == ("random", 0.3, "random")
    default = train_cli.parse_args(["--data", "d", "--output", "o"]).train
    assert (default.init_mask, default.init_spread, default.grow_zero_signal) == ("shared", 0.0, "skip")
    rng = np.random.default_rng(1)
    data = Interactions.from_pairs(rng.integers(0, 80, 1500), rng.integers(0, 90, 1500))
    static = TrainConfig(model="mf", density=0.25, epochs=2, dim=16, batch_size=256, init_mask="shared",
                         prune_start=0.0, show_progress=False)
    rec = BPRRecommender(static).fit(data)
    mu, mi = rec.dsl.masks["user.weight"], rec.dsl.masks["item.weight"]
    assert torch.equal(mu.sum(1), torch.full((80,), 4)) and torch.equal(mi[:, mu[0]], torch.ones(90, 4, dtype=torch.bool))
    assert rec.result.params == 0.25 * 16 * (80 + 90) and rec.result.rounds == 1


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_torch_threads_wait_passively_unless_the_user_says_otherwise(preset, expected):
    """OpenMP reads OMP_WAIT_POLICY when torch loads, so the CLI module sets it before its first torch import."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import builtins, os\n"  # the policy in force when torch is first imported
            "seen, real = [], builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'torch' and not seen:\n"
            "        seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "import recsys.train\n"
            "print(seen[0])\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected
