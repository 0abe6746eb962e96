"""Degree matrices, rescaling, wiring, baselines and quality metrics of the JDM/DCM sampler (issue 4)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphs.baselines import BASELINES, induced
from graphs.degree import degree_matrices, relabel, simplify
from graphs.margins import ipf, round_to_margins
from graphs.quality import joint_distances, matrix_l1, pmf_ks, pmf_l1, quality_report, reciprocity
from graphs.rescale import check_realisable, largest_remainder, rescale, rounding_floor
from graphs.wiring import WiringPlan, repair_loops, wire
from tests.conftest import data_file

KONECT = {
    "filmtrust": ("konect_filmtrust_trust", "out.librec-filmtrust-trust.gz"),
    "ciaodvd": ("konect_ciaodvd_trust", "out.librec-ciaodvd-trust.gz"),
    "dblp": ("konect_dblp_cite", "out.dblp-cite.gz"),
}


def load_konect(path) -> tuple[np.ndarray, np.ndarray, int]:
    """A raw KONECT file (the project's reader) with dense ids; self-loops and duplicates kept."""
    from graphs.readers import read_edges

    e = read_edges(path, "konect")
    s, d, ids = relabel(np.asarray(e.src), np.asarray(e.dst))
    return s, d, ids.size


def small_rmat(scale: int, n_edges: int, seed: int, recip: float = 0.2) -> tuple[np.ndarray, np.ndarray, int]:
    """A heavy-tailed test digraph: R-MAT (a, b, c = 0.57, 0.19, 0.19) plus some reciprocated edges."""
    rng = np.random.default_rng(seed)
    src = np.zeros(n_edges, dtype=np.int64)
    dst = np.zeros(n_edges, dtype=np.int64)
    for _ in range(scale):
        u = rng.random(n_edges)
        down = (u >= 0.57) & (u < 0.76) | (u >= 0.95)
        right = (u >= 0.76)
        src = 2 * src + right
        dst = 2 * dst + down
    back = rng.random(n_edges) < recip
    src, dst = np.concatenate([src, dst[back]]), np.concatenate([dst, src[back]])
    s, d, ids = relabel(src, dst)
    g = simplify(s, d, ids.size)
    return g.src, g.dst, g.n_nodes


def assert_same(a: sp.sparray, b: sp.sparray) -> None:
    shape = (max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1]))
    pa, pb = sp.coo_array(a), sp.coo_array(b)
    ma = sp.csr_array((pa.data, (pa.row, pa.col)), shape=shape)
    mb = sp.csr_array((pb.data, (pb.row, pb.col)), shape=shape)
    assert (ma != mb).nnz == 0


def assert_simple(src: np.ndarray, dst: np.ndarray, n: int) -> None:
    assert (src != dst).all(), "self-loop"
    assert np.unique(src * n + dst).size == src.size, "duplicate edge"
    assert src.min(initial=0) >= 0 and max(src.max(initial=0), dst.max(initial=0)) < n


# --- Table 1 of the paper on the raw files -------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("filmtrust", (874, 1853, 102, 413)),
    ("ciaodvd", (4658, 40133, 834, 11127)),
    ("dblp", (12590, 49759, 769, 5201)),
])
def test_table1_counts_on_raw_konect(shared_data, name, expected):
    s, d, n = load_konect(data_file(shared_data, *KONECT[name]))
    m = degree_matrices(s, d, n)
    assert (m.n_nodes, m.n_edges, m.dcm.nnz, m.jdm.nnz) == expected
    g = simplify(s, d, n)
    assert g.self_loops == (15 if name == "dblp" else 0) and g.duplicates == 0


@pytest.mark.parametrize("name,ratio,floor_in,floor_out", [
    ("filmtrust", 0.1, 0.061, 0.068), ("ciaodvd", 0.25, 0.033, 0.023), ("dblp", 0.25, 0.0079, 0.0077),
])
def test_rounding_floor_matches_design_table(shared_data, name, ratio, floor_in, floor_out):
    s, d, n = load_konect(data_file(shared_data, *KONECT[name]))
    g = simplify(s, d, n)
    m = degree_matrices(g.src, g.dst, n)
    k = round(ratio * n)
    assert rounding_floor(np.bincount(m.in_deg), k) == pytest.approx(floor_in, abs=6e-4)
    assert rounding_floor(np.bincount(m.out_deg), k) == pytest.approx(floor_out, abs=6e-4)


@pytest.mark.parametrize("name", ["filmtrust", "dblp"])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_rescaled_sample_is_near_floor_and_beats_baselines(shared_data, name, ratio):
    s, d, n = load_konect(data_file(shared_data, *KONECT[name]))
    g = simplify(s, d, n)
    m = degree_matrices(g.src, g.dst, n)
    res = rescale(m, ratio)
    w = wire(res.dcm, res.jdm, seed=7)
    assert_simple(w.src, w.dst, w.n_nodes)
    q = quality_report(m, degree_matrices(w.src, w.dst, w.n_nodes), ratio)
    assert q["in_l1"] <= 1.5 * q["floor_in"] + 0.002
    assert q["out_l1"] <= 1.5 * q["floor_out"] + 0.002
    assert abs(q["nodes"] - ratio * n) <= 0.01 * ratio * n
    for name_b, fn in BASELINES.items():
        sb = fn(g.src, g.dst, n, q["target_nodes"], np.random.default_rng(0))
        qb = quality_report(m, degree_matrices(sb.src, sb.dst, sb.n_nodes), ratio)
        assert q["in_l1"] < qb["in_l1"] and q["out_l1"] < qb["out_l1"], name_b
        assert q["jdm_l1"] < qb["jdm_l1"], name_b


# --- exactness: properties over many seeds and ratios ---------------------------------------------

@pytest.mark.parametrize("gseed", range(6))
def test_full_path_at_ratio_one_reproduces_the_simple_graph(gseed):
    src, dst, n = small_rmat(8 + gseed % 3, 600 + 300 * gseed, gseed)
    m = degree_matrices(src, dst, n)
    res = rescale(m, 1.0)
    assert_same(res.dcm, m.dcm)
    assert_same(res.jdm, m.jdm)
    for seed in range(3):
        w = wire(res.dcm, res.jdm, seed=seed)
        assert_simple(w.src, w.dst, w.n_nodes)
        m2 = degree_matrices(w.src, w.dst, w.n_nodes)
        assert m2.n_nodes == n
        assert_same(m2.jdm, m.jdm)
        assert_same(m2.dcm, m.dcm)


@pytest.mark.parametrize("gseed", range(12))
def test_rescaled_wiring_is_simple_and_exact(gseed):
    rng = np.random.default_rng(100 + gseed)
    src, dst, n = small_rmat(int(rng.integers(6, 11)), int(rng.integers(200, 3000)), gseed,
                             recip=float(rng.uniform(0, 0.6)))
    m = degree_matrices(src, dst, n)
    for ratio in rng.uniform(0.03, 1.0, size=4):
        res = rescale(m, float(ratio))
        check_realisable(res.dcm, res.jdm)
        assert res.n_nodes == max(round(ratio * n), 2)
        w = wire(res.dcm, res.jdm, seed=int(rng.integers(1 << 30)))
        assert_simple(w.src, w.dst, w.n_nodes)
        m2 = degree_matrices(w.src, w.dst, w.n_nodes)
        assert m2.n_nodes == res.n_nodes
        assert_same(m2.jdm, res.jdm)
        assert_same(m2.dcm, res.dcm)


def test_wiring_is_seeded():
    src, dst, n = small_rmat(9, 2000, 3)
    m = degree_matrices(src, dst, n)
    res = rescale(m, 0.4)
    a, b, c = wire(res.dcm, res.jdm, seed=5), wire(res.dcm, res.jdm, seed=5), wire(res.dcm, res.jdm, seed=6)
    assert np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
    assert not (np.array_equal(a.src, c.src) and np.array_equal(a.dst, c.dst))


def test_generate_by_cells_equals_generate_all():
    src, dst, n = small_rmat(9, 2500, 11)
    m = degree_matrices(src, dst, n)
    plan = WiringPlan.build(m.dcm, m.jdm, seed=2)
    s_all, d_all, c_all = plan.generate()
    parts = np.array_split(np.arange(plan.ci.size), 5)
    got = [plan.generate(p) for p in parts]
    assert np.array_equal(np.concatenate([g[0] for g in got]), s_all)
    assert np.array_equal(np.concatenate([g[1] for g in got]), d_all)
    # before repair: no duplicates at all (loops only); swaps keep every cell's count and add none
    assert np.unique(s_all * n + d_all).size == s_all.size
    loops0 = int((s_all == d_all).sum())
    left = repair_loops(s_all, d_all, c_all, plan, np.random.default_rng(0))
    assert left.size == int((s_all == d_all).sum()) <= loops0
    assert np.unique(s_all * n + d_all).size == s_all.size
    assert_same(degree_matrices(s_all, d_all, n).jdm, m.jdm)
    assert_same(degree_matrices(s_all, d_all, n).dcm, m.dcm)


def test_matches_networkx_reference_on_the_same_matrices():
    nx = pytest.importorskip("networkx")
    src, dst, n = small_rmat(8, 700, 21)
    m = degree_matrices(src, dst, n)
    res = rescale(m, 0.5)
    w = wire(res.dcm, res.jdm, seed=1)
    a = sp.coo_array(res.jdm)
    nkk: dict = {}
    for i, j, v in zip(a.row.tolist(), a.col.tolist(), a.data.tolist()):
        nkk.setdefault(i, {})[j] = v
    plan = WiringPlan.build(res.dcm, res.jdm)
    out_deg, in_deg = plan.node_degrees()
    G = nx.directed_joint_degree_graph(in_deg.tolist(), out_deg.tolist(), nkk, seed=1)
    e = np.asarray(G.edges(), dtype=np.int64)
    ref = degree_matrices(e[:, 0], e[:, 1], G.number_of_nodes())
    ours = degree_matrices(w.src, w.dst, w.n_nodes)
    assert_same(ref.jdm, ours.jdm)
    assert_same(ref.dcm, ours.dcm)


def test_rescale_rejects_bad_input():
    m = degree_matrices(np.array([0, 1]), np.array([1, 2]))
    for r in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="ratio"):
            rescale(m, r)
    with pytest.raises(ValueError, match="empty"):
        rescale(degree_matrices(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3), 0.5)


def test_check_realisable_catches_violations():
    m = degree_matrices(np.array([0, 1, 2]), np.array([1, 2, 0]))
    check_realisable(m.dcm, m.jdm)
    bad = m.jdm.copy()
    bad[1, 1] += 1
    with pytest.raises(ValueError):
        check_realisable(m.dcm, bad)


# --- pieces ---------------------------------------------------------------------------------------

def test_largest_remainder_is_l1_optimal_and_respects_bounds():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.gamma(0.5, 3.0, size=12)
        total = int(round(x.sum()))
        y = largest_remainder(x, total)
        assert y.sum() == total and (np.abs(y - x) < 1 + 1e-9).all()
        for _ in range(20):  # no single unit move improves L1
            a, b = rng.integers(12, size=2)
            if a != b and y[a] > 0:
                z = y.copy()
                z[a] -= 1
                z[b] += 1
                assert np.abs(z - x).sum() >= np.abs(y - x).sum() - 1e-9
    y = largest_remainder(np.array([2.6, 0.2, 0.2]), 3, upper=np.array([1, 5, 5]))
    assert y[0] == 1 and y.sum() == 3


def test_round_to_margins_exact_floor_or_ceil():
    rng = np.random.default_rng(1)
    for _ in range(20):
        r, c = rng.integers(2, 9, size=2)
        x = rng.random((r, c)) * rng.integers(1, 5)
        R = largest_remainder(x.sum(1), int(round(x.sum())))
        C = largest_remainder(x.sum(0), int(round(x.sum())))
        ri, ci = np.divmod(np.arange(r * c), c)
        fit = ipf(ri, ci, x.ravel(), R, C, np.full(r * c, 1e9))
        v, ok = round_to_margins(ri, ci, fit, R, C, np.full(r * c, 10 ** 6))
        assert ok
        assert np.array_equal(np.bincount(ri, v, minlength=r), R)
        assert np.array_equal(np.bincount(ci, v, minlength=c), C)
        assert (np.abs(v - fit) < 1 + 1e-9).all()


def test_quality_metrics_against_independent_computations():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    a, b = rng.poisson(3, 400), rng.poisson(4, 300)
    assert pmf_ks(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    pa = np.bincount(a, minlength=20)[:20] / a.size
    pb = np.bincount(b, minlength=20)[:20] / b.size
    assert pmf_l1(a, b) == pytest.approx(np.abs(pa - pb).sum() + (b >= 20).mean() + (a >= 20).mean())
    src, dst, n = small_rmat(8, 800, 4)
    m = degree_matrices(src, dst, n)
    assert joint_distances(m, m) == (0.0, 0.0) and matrix_l1(m.jdm, m.jdm) == 0.0
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert reciprocity(src, dst) == pytest.approx(np.mean([(v, u) in pairs for u, v in pairs]))
    q = quality_report(m, m, 1.0, (src, dst), (src, dst))
    assert q["in_l1"] == q["out_l1"] == q["jdm_l1"] == q["floor_in"] == 0.0


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_baselines_return_subgraphs_of_the_target_size(method):
    src, dst, n = small_rmat(10, 4000, 5)
    k = n // 4
    s = BASELINES[method](src, dst, n, k, np.random.default_rng(3))
    assert k <= s.n_nodes <= k + 1 and s.nodes.size == s.n_nodes
    orig = set(zip(src.tolist(), dst.tolist()))
    back = set(zip(s.nodes[s.src].tolist(), s.nodes[s.dst].tolist()))
    assert back <= orig
    if method != "random-edge":  # induced samples keep every edge among the chosen nodes
        assert len(back) == induced(src, dst, n, s.nodes).src.size


def test_hash_uniform_is_a_pure_function_of_its_keys():
    from graphs.baselines import hash_uniform

    a = hash_uniform(7, 3, np.arange(1000), 5)
    assert np.array_equal(a, hash_uniform(7, 3, np.arange(1000), np.full(1000, 5)))
    assert np.array_equal(a[::-1], hash_uniform(7, 3, np.arange(999, -1, -1), 5))  # order-free
    assert not np.array_equal(a, hash_uniform(7, 4, np.arange(1000), 5))
    assert ((a >= 0) & (a < 1)).all() and abs(a.mean() - 0.5) < 0.03


def test_random_walk_follows_out_edges():
    """On a directed cycle without restarts one walker visits a contiguous forward arc."""
    from graphs.baselines import random_walk

    n_nodes = 100
    src = np.arange(n_nodes)
    dst = (src + 1) % n_nodes
    s = random_walk(src, dst, n_nodes, 20, np.random.default_rng(1), restart=0.0)
    chosen = set(s.nodes.tolist())
    assert s.n_nodes == 20 and sum((v + 1) % n_nodes in chosen for v in chosen) == 19  # one forward arc
    assert s.src.size == 19  # the induced arc is a path
