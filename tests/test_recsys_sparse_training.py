"""The DSL mask contract: constant budget, masked weights stay zero, regrown weights start at zero."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys.data import BPRSampler, Interactions
from recsys.lightgcn import LightGCN
from recsys.mf import MF
from recsys.sparse_training import DSLConfig, DynamicSparsity, shared_prefix_mask

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread on shared machines


def _data(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    return Interactions.from_pairs(rng.integers(0, 60, 1500), rng.integers(0, 80, 1500))


def _backward_steps(model, opt, data, steps, device="cpu", batch=128, seed=1):
    """``steps`` BPR steps over repeated epochs: zero the gradients, backward, then yield the step index."""
    sampler = BPRSampler(data.train, seed=seed)
    step = 0
    while step < steps:
        for u, i, j in sampler.batches(batch):
            if step >= steps:
                return
            opt.zero_grad()
            model.loss(*(torch.from_numpy(a).to(device) for a in (u, i, j)), 1e-4).backward()
            yield step
            step += 1


def _run_and_check(model, data, density, steps, interval, device, remask, **extra):
    opt = model.make_optimizer(1e-2)
    dsl = DynamicSparsity(model.named_parameters(),
                          DSLConfig(density, steps, update_interval=interval, remask=remask, **extra), opt)
    budgets = dict(dsl.budget)
    for name, p in dsl.params.items():
        assert budgets[name] == round(density * p.numel())
    grown_checked = 0
    for _ in _backward_steps(model, opt, data, steps, device):
        before = {n: m.clone() for n, m in dsl.masks.items()}
        dsl.before_step()
        for n, p in dsl.params.items():
            new = dsl.masks[n] & ~before[n]
            if new.any():  # a round happened: regrown weights start at exactly zero
                assert torch.all(p.detach()[new] == 0)
                grown_checked += 1
        opt.step()
        dsl.after_step()
        for n, p in dsl.params.items():
            assert int(dsl.masks[n].sum()) == budgets[n], "budget changed"
            assert not p.detach()[~dsl.masks[n]].any(), "a masked weight moved"
        dsl.check()
    return dsl, grown_checked


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("remask", [True, False])
def test_mask_contract_mf_sparse_grads(device, remask):
    data = _data()
    model = MF(data.n_users, data.n_items, dim=16).to(device)
    dsl, grown = _run_and_check(model, data, 0.2, 40, 5, device, remask)
    assert dsl.rounds == len(range(5, 40, 5)) and grown > 0
    # trained active weights actually moved away from zero (the model learns within the budget)
    assert all(int((p != 0).sum()) > 0.9 * dsl.budget[n] for n, p in dsl.params.items())


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_mask_contract_lightgcn_dense_grads(device):
    data = _data(1)
    model = LightGCN(data.train, dim=16, layers=2).to(device)
    dsl, grown = _run_and_check(model, data, 0.3, 20, 4, device, remask=False)
    assert dsl.rounds == 4 and grown > 0


def test_masks_move_and_prune_smallest():
    w = torch.nn.Parameter(torch.arange(1.0, 41.0).reshape(5, 8))
    dsl = DynamicSparsity([("w", w)], DSLConfig(0.5, total_steps=100, update_interval=1, prune_start=0.5, prune_end=0.5))
    original = w.detach().clone()  # masked positions already zeroed, active ones keep 1..40
    old_mask = dsl.masks["w"].clone()
    g = torch.zeros(5, 8)
    inactive = (~old_mask).nonzero()
    g[inactive[0, 0], inactive[0, 1]] = 5.0  # the one inactive weight with a non-zero gradient
    w.grad = g
    dsl.before_step()
    n = math.ceil(0.5 * 20)
    pruned = old_mask & ~dsl.masks["w"]
    assert int(pruned.sum()) == n
    expected = torch.sort(original[old_mask])[0][:n]  # the n smallest |w| among the active
    assert torch.equal(torch.sort(original[pruned])[0], expected)
    assert bool(dsl.masks["w"][inactive[0, 0], inactive[0, 1]])
    assert not w.detach()[pruned].any()


def test_cosine_schedule_and_interval_scale_with_steps():
    cfg = DSLConfig(0.2, total_steps=1000, target_rounds=50)
    assert cfg.interval == 20
    assert cfg.prune_ratio(0) == pytest.approx(0.5)
    assert cfg.prune_ratio(1000) == pytest.approx(0.005)
    assert cfg.prune_ratio(500) == pytest.approx((0.5 + 0.005) / 2)
    ratios = [cfg.prune_ratio(s) for s in range(0, 1001, 50)]
    assert all(a >= b for a, b in zip(ratios, ratios[1:]))
    w = torch.nn.Parameter(torch.randn(30, 8))
    dsl = DynamicSparsity([("w", w)], cfg)
    for _ in range(1000):
        w.grad = torch.randn(30, 8)
        dsl.before_step()
        dsl.after_step()
    assert dsl.rounds == 49  # every 20 steps, none at the final step
    dsl.check()


def test_density_one_is_dense_noop():
    w = torch.nn.Parameter(torch.randn(4, 4))
    before = w.detach().clone()
    dsl = DynamicSparsity([("w", w)], DSLConfig(1.0, total_steps=10, update_interval=1))
    w.grad = torch.randn(4, 4)
    dsl.before_step()
    dsl.after_step()
    assert torch.equal(w.detach(), before) and dsl.rounds == 0 and dsl.active_params == 16


def test_optimizer_moments_reset_where_masks_change():
    data = _data(2)
    model = MF(data.n_users, data.n_items, dim=8)
    opt = model.make_optimizer(1e-2)
    dsl = DynamicSparsity(model.named_parameters(), DSLConfig(0.5, 100, update_interval=3), opt)
    sampler = BPRSampler(data.train)
    for step, (u, i, j) in enumerate(sampler.batches(64)):
        opt.zero_grad()
        model.loss(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(j), 1e-4).backward()
        dsl.before_step()
        opt.step()
        dsl.after_step()
        if step == 5:
            break
    for n, p in dsl.params.items():
        st = opt.state[p]
        assert not st["exp_avg"][~dsl.masks[n]].any() and not st["exp_avg_sq"][~dsl.masks[n]].any()


@pytest.mark.parametrize("kwargs", [dict(density=0.0, total_steps=5), dict(density=1.5, total_steps=5),
                                    dict(density=0.5, total_steps=0), dict(density=0.5, total_steps=5, update_interval=0),
                                    dict(density=0.5, total_steps=5, prune_start=0.1, prune_end=0.2),
                                    dict(density=0.5, total_steps=5, init_mask="blocks"),
                                    dict(density=0.5, total_steps=5, grow_zero_signal="never"),
                                    dict(density=0.5, total_steps=5, init_mask="shared", init_spread=1.5)])
def test_bad_config_rejected(kwargs):
    with pytest.raises(ValueError):
        DSLConfig(**kwargs)


@pytest.mark.parametrize("window, expect", [(None, "a"), (1, "b")])
def test_accumulated_signal_respects_grow_window(window, expect):
    """Growth follows the gradient summed over the last ``grow_window`` steps before the round."""
    w = torch.nn.Parameter(torch.randn(4, 4))
    dsl = DynamicSparsity([("w", w)], DSLConfig(0.5, total_steps=100, update_interval=4, prune_start=0.1,
                                                prune_end=0.1, grow_signal="accumulated", grow_window=window))
    inactive = (~dsl.masks["w"]).nonzero()
    a, b = tuple(inactive[0].tolist()), tuple(inactive[1].tolist())
    for step in range(4):
        g = torch.zeros(4, 4)
        if step < 3:
            g[a] = 10.0  # large, but only before the window
        else:
            g[b] = 1.0
        w.grad = g
        dsl.before_step()
        dsl.after_step()
    assert dsl.rounds == 1
    grown = {"a": a, "b": b}[expect]
    other = b if expect == "a" else a
    assert bool(dsl.masks["w"][grown]) and not bool(dsl.masks["w"][other])
    assert float(w.detach()[grown]) == 0.0  # regrown at zero
    dsl.check()


def test_mf_contract_with_accumulated_window():
    data = _data(3)
    model = MF(data.n_users, data.n_items, dim=16)
    opt = model.make_optimizer(1e-2)
    dsl = DynamicSparsity(model.named_parameters(), DSLConfig(0.2, 60, update_interval=6, remask=False,
                                                              grow_signal="accumulated", grow_window=2), opt)
    for _ in _backward_steps(model, opt, data, 60):
        dsl.before_step()
        opt.step()
        dsl.after_step()
        dsl.check()  # budget constant, inactive weights exactly zero without re-masking
    assert dsl.rounds == 9


def _sparse_grad(rows: list[int], values: torch.Tensor, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(torch.tensor([rows]), values, shape, check_invariants=True)


@pytest.mark.parametrize("signal, expect", [("accumulated", "b"), ("mean", "a")])
def test_mean_signal_divides_by_row_appearances(signal, expect):
    """Row a: one batch with gradient 3; row b: four batches with 1 -> sum favours b, mean favours a."""
    w = torch.nn.Parameter(torch.randn(4, 2))
    dsl = DynamicSparsity([("w", w)], DSLConfig(0.5, total_steps=100, update_interval=4, prune_start=0.25,
                                                prune_end=0.25, grow_signal=signal, seed=3))
    inactive = (~dsl.masks["w"]).nonzero().tolist()
    (ra, ca), (rb, cb) = next((x, y) for x in inactive for y in inactive if x[0] != y[0])
    for step in range(4):
        vals, rows = [], []
        for r, c, v in ((ra, ca, 3.0 if step == 0 else None), (rb, cb, 1.0)):
            if v is not None:
                row = torch.zeros(2)
                row[c] = v
                rows.append(r)
                vals.append(row)
        w.grad = _sparse_grad(rows, torch.stack(vals), (4, 2))
        dsl.before_step()
        dsl.after_step()
    assert dsl.rounds == 1
    grown, other = ((ra, ca), (rb, cb)) if expect == "a" else ((rb, cb), (ra, ca))
    assert bool(dsl.masks["w"][grown]) and not bool(dsl.masks["w"][other])
    dsl.check()


def test_momentum_signal_masks_the_update_and_grows_by_exp_avg():
    data = _data(4)
    model = MF(data.n_users, data.n_items, dim=16)
    opt = model.make_optimizer(1e-2)
    dsl = DynamicSparsity(model.named_parameters(), DSLConfig(0.2, 60, update_interval=6, remask=False,
                                                              grow_signal="momentum"), opt)
    grown_checked = 0
    for step in _backward_steps(model, opt, data, 60):
        before = {n: m.clone() for n, m in dsl.masks.items()}
        if (step + 1) % 6 == 0:  # a round is due: the grown weights are the inactive ones of largest |m|
            expect = {}
            for n, p in dsl.params.items():
                score = opt.state[p]["exp_avg"].abs().masked_fill(before[n], -1.0).view(-1)
                k = math.ceil(dsl.config.prune_ratio(step + 1) * dsl.budget[n])
                expect[n] = set(torch.topk(score, k).indices.tolist())
        dsl.before_step()
        for n, p in dsl.params.items():
            new = dsl.masks[n] & ~before[n]
            if new.any():
                assert torch.all(p.detach()[new] == 0)  # regrown at zero
                assert set(new.view(-1).nonzero().squeeze(1).tolist()) == expect[n]
                assert not opt.state[p]["exp_avg"][new].any()  # moments reset where masks changed
                grown_checked += 1
        opt.step()
        dsl.after_step()
        dsl.check()  # budget constant; masked weights exactly zero although their moments move
    assert dsl.rounds == 9 and grown_checked > 0
    # inactive weights did see gradients (their first moments are the growth signal)
    assert any(bool(opt.state[p]["exp_avg"][~dsl.masks[n]].any()) for n, p in dsl.params.items())


def test_min_row_active_keeps_every_row_alive():
    """Row 0 holds the smallest weights: plain |w| pruning empties it, the floor keeps 2 of its weights."""
    for floor, expect_row0 in ((0, 0), (2, 2)):
        w = torch.nn.Parameter(torch.ones(4, 8) * torch.arange(1.0, 5.0).unsqueeze(1))
        w.data[0] = torch.arange(1, 9) * 1e-3  # row 0: tiny, distinct weights
        dsl = DynamicSparsity([("w", w)], DSLConfig(0.5, total_steps=100, update_interval=1, prune_start=0.5,
                                                    prune_end=0.5, min_row_active=floor, seed=1))
        kept0 = dsl.masks["w"][0].clone()
        g = torch.zeros(4, 8)
        g[1:] = 1.0  # growth goes to rows 1-3
        w.grad = g
        dsl.before_step()
        assert int(dsl.masks["w"][0].sum()) == expect_row0
        if floor:  # the survivors are row 0's largest active weights
            top = torch.topk(w.detach()[0].abs().masked_fill(~kept0, -1), 2).indices
            assert bool(dsl.masks["w"][0, top].all())
        dsl.check()


def test_regrown_second_moment_row_mean():
    """``row_mean``: a regrown weight's exp_avg_sq is its row's mean over the other active weights."""
    data = _data(5)
    model = MF(data.n_users, data.n_items, dim=8)
    opt = model.make_optimizer(1e-2)
    dsl = DynamicSparsity(model.named_parameters(), DSLConfig(0.5, 100, update_interval=4, prune_start=0.3,
                                                              prune_end=0.3, regrow_second_moment="row_mean"), opt)
    sampler = BPRSampler(data.train, seed=2)
    for step, (u, i, j) in enumerate(sampler.batches(64)):
        opt.zero_grad()
        model.loss(torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(j), 1e-4).backward()
        before = {n: m.clone() for n, m in dsl.masks.items()}
        v_before = {n: opt.state[p]["exp_avg_sq"].clone() for n, p in dsl.params.items() if p in opt.state}
        dsl.before_step()
        if dsl.rounds:
            break
        opt.step()
        dsl.after_step()
    checked = 0
    for n, p in dsl.params.items():
        v, m = opt.state[p]["exp_avg_sq"], dsl.masks[n]
        grown = m & ~before[n]
        kept = m & before[n]
        assert not opt.state[p]["exp_avg"][grown].any() and not v[~m].any()
        for r in grown.any(1).nonzero().squeeze(1).tolist():
            live = kept[r] & (v_before[n][r] > 0)
            if live.any():
                expect = v_before[n][r][live].mean()
                assert torch.allclose(v[r][grown[r]], expect.expand(int(grown[r].sum())))
                checked += 1
    assert checked > 0
    dsl.check()


@pytest.mark.parametrize("spread", [0.0, 0.5])
def test_shared_init_masks_are_aligned_prefixes(spread):
    """``init_mask="shared"``: exact budget per tensor, every row a prefix of one column order shared by
    the user and item tables (so a user and an item share min(L_u, L_i) dims), lengths within the spread."""
    u, i = torch.nn.Parameter(torch.randn(300, 20)), torch.nn.Parameter(torch.randn(170, 20))
    dsl = DynamicSparsity([("u", u), ("i", i)], DSLConfig(0.2, 10, init_mask="shared", init_spread=spread, seed=3))
    mu, mi = dsl.masks["u"], dsl.masks["i"]
    assert int(mu.sum()) == dsl.budget["u"] == 1200 and int(mi.sum()) == dsl.budget["i"] == 680
    order = torch.argsort(-mu.sum(0).float(), stable=True)  # columns by how many user rows hold them
    for m in (mu, mi):
        lengths = m.sum(1)
        assert torch.equal(m[:, order], torch.arange(20).unsqueeze(0) < lengths.unsqueeze(1)), "not prefixes"
        assert lengths.min() >= math.floor(4 * (1 - spread)) - 1 and lengths.max() <= math.ceil(4 * (1 + spread)) + 1
        if spread == 0.0:
            assert set(lengths.tolist()) == {4}
    shared = (mu[:170] & mi).sum(1)
    assert torch.equal(shared, torch.minimum(mu[:170].sum(1), mi.sum(1)))
    assert not u.detach()[~mu].any() and not i.detach()[~mi].any()
    if spread > 0:
        assert int(mu.sum(1).max()) > 4 and int(mu.any(0).sum()) > 4  # columns beyond rho*d are in use


def test_shared_init_mask_contract_mf():
    """The mask contract holds with shared initial masks, and the rounds keep growth aligned: a weight is
    only grown where the other table has active weights in that column (elsewhere its gradient is 0)."""
    data = _data(4)
    model = MF(data.n_users, data.n_items, dim=16)
    dsl, grown = _run_and_check(model, data, 0.25, 40, 5, "cpu", False, init_mask="shared", init_spread=0.5,
                                grow_signal="accumulated")
    assert dsl.rounds == 7 and grown > 0
    used_u, used_i = dsl.masks["user.weight"].any(0), dsl.masks["item.weight"].any(0)
    start = DynamicSparsity(MF(data.n_users, data.n_items, dim=16).named_parameters(),
                            DSLConfig(0.25, 40, init_mask="shared", init_spread=0.5, grow_signal="accumulated"))
    assert (used_u | used_i).sum() <= (start.masks["user.weight"].any(0) | start.masks["item.weight"].any(0)).sum()


@pytest.mark.parametrize("fill, stays", [("skip", True), ("random", False)])
def test_shared_masks_without_spread_never_leave_their_columns(fill, stays):
    """Spread 0 (the trainer's default): rows start on ``floor``/``ceil(ρ·d)`` columns of one order, and growth
    by gradient can only fill the last of those (any other column has no partner weight, so zero gradient):
    with ``skip`` the tables use exactly the ``ceil(ρ·d)`` starting columns after every round; the paper's
    random fill scatters weights into the other columns."""
    data = _data(5)
    model = MF(data.n_users, data.n_items, dim=16)
    opt = model.make_optimizer(1e-2)
    cfg = DSLConfig(0.2, 40, update_interval=5, init_mask="shared", init_spread=0.0, grow_signal="accumulated",
                    grow_zero_signal=fill)
    dsl = DynamicSparsity(model.named_parameters(), cfg, opt)
    first = dsl.masks["user.weight"].any(0)
    assert int(first.sum()) == 4 and torch.equal(dsl.masks["item.weight"].any(0), first)  # ceil(0.2 * 16)
    moved, left = 0, False
    for _ in _backward_steps(model, opt, data, 40):
        before = {n: m.clone() for n, m in dsl.masks.items()}
        dsl.before_step()
        opt.step()
        dsl.after_step()
        moved += sum(int((dsl.masks[n] & ~before[n]).sum()) for n in before)
        left |= any(not torch.equal(m.any(0) | first, first) for m in dsl.masks.values())
    assert dsl.rounds == 7 and moved > 0  # the rounds did move weights...
    assert left != stays  # ...within the starting columns only, unless filled at random


def test_shared_prefix_mask_caps_rows_at_width():
    gen = torch.Generator().manual_seed(0)
    m = shared_prefix_mask(10, 8, 75, 1.0, torch.randperm(8, generator=gen), gen)
    assert int(m.sum()) == 75 and int(m.sum(1).max()) <= 8
    with pytest.raises(ValueError):
        shared_prefix_mask(10, 8, 81, 0.0, torch.arange(8), gen)


@pytest.mark.parametrize("mode, moved", [("random", 10), ("skip", 1)])
def test_grow_zero_signal(mode, moved):
    """With one inactive weight of non-zero gradient and n = 10 to move, ``random`` fills the other 9 at
    random among zero-gradient weights; ``skip`` moves just the one (and prunes just the smallest |w|)."""
    w = torch.nn.Parameter(torch.arange(1.0, 41.0).reshape(5, 8))
    dsl = DynamicSparsity([("w", w)], DSLConfig(0.5, total_steps=100, update_interval=1, prune_start=0.5,
                                                prune_end=0.5, grow_zero_signal=mode))
    old = dsl.masks["w"].clone()
    smallest = w.detach()[old].min()
    g = torch.zeros(5, 8)
    r, c = (~old).nonzero()[0]
    g[r, c] = 1.0
    w.grad = g
    dsl.before_step()
    grown, pruned = dsl.masks["w"] & ~old, old & ~dsl.masks["w"]
    assert int(grown.sum()) == int(pruned.sum()) == moved and bool(grown[r, c])
    assert int(dsl.masks["w"].sum()) == dsl.budget["w"] == 20
    if mode == "skip":
        assert float(w.detach()[old & ~dsl.masks["w"]].sum()) == 0.0 and bool((torch.arange(1.0, 41.0).reshape(5, 8)[pruned] == smallest).all())
