"""Fusion: alignment maps and the propagation program (equal to ProNE's spectral propagation)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings import fusion
from embeddings.prone import spectral_propagation


def _graph_and_signal(n: int, density: float, d: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """A random symmetric adjacency without self-loops and an ``n x d`` signal."""
    a = sp.random(n, n, density=density, random_state=seed, dtype=np.float32)
    a = (a + a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    return a, np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("order", [2, 3, 5, 10])
def test_propagation_program_equals_prone_filter(order):
    a, x = _graph_and_signal(80, 0.08, 6, order)
    assert fusion.n_products(order) == 2 * order - 1
    assert np.allclose(fusion.propagate(a, x, order=order), spectral_propagation(a, x, order=order), atol=1e-4)


@pytest.mark.parametrize("method", ["orthogonal", "lstsq"])
def test_alignment_recovers_a_rotation(method):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 8))
    r, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    m = fusion.align_map(z @ r.T, z, method)
    assert np.allclose((z @ r.T) @ m, z, atol=1e-4)


def test_alignment_rejects_bad_input():
    with pytest.raises(ValueError):
        fusion.align_map(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        fusion.align_map(np.zeros((3, 2)), np.zeros((3, 2)), "affine")
    with pytest.raises(ValueError):
        fusion.n_products(1)



def _products(a, x, order, live_only):
    """Run the propagation program; ``live_only`` keeps between products only the slots that
    :func:`fusion.live_slots` lists (what the Spark rounds carry)."""
    from embeddings.prone import propagation_operator

    ai, da = propagation_operator(a)
    deg = np.asarray(ai.sum(axis=1)).ravel().astype(np.float32)
    state, cur = fusion.init_state(x)
    for k in range(fusion.n_products(order)):
        if live_only:
            keep = fusion.live_slots(k - 1, order) if k else ()
            state = fusion.unpack_state(state[:, list(keep)].copy() if keep else None, len(x), x.shape[1], k, order, cur)
        state, cur = fusion.step(k, state, da @ cur, deg, order)
    return cur


@pytest.mark.parametrize("order", [2, 3, 4])
def test_propagation_with_only_live_slots_is_exact(order):
    a, x = _graph_and_signal(60, 0.1, 5, order)
    assert np.array_equal(_products(a, x, order, True), _products(a, x, order, False))
    assert fusion.live_slots(0, 2) == (0,) and fusion.live_slots(1, 2) == ()  # order 2 carries ≤ d floats


def _part0_round_inputs(seed: int, d: int = 8):
    """Part 0's inputs to a Spark fusion round (:func:`embeddings.spark.fuse.round_task`): its packed edges and its
    messages (own rows, then one halo row per neighbour in part 1), on a random graph of 60 nodes in two parts."""
    import pandas as pd

    from embeddings.spark.codec import ARC
    from embeddings.spark.parts import messages

    a, x = _graph_and_signal(60, 0.3, d, seed)
    part = (np.arange(60) >= 30).astype(np.int32)
    u = a.tocoo()
    m = part[u.row] == 0
    rec = np.empty(int(m.sum()), ARC)
    rec["src"], rec["dst"], rec["w"], rec["pd"], rec["cd"] = u.row[m], u.col[m], u.data[m], part[u.col[m]], u.col[m]
    arcs = pd.DataFrame({"part": [np.int32(0)], "z": [rec.tobytes()]})
    own = messages(0, np.arange(30), x[:30], None, (np.zeros(0, np.int64),) * 2)
    halo_ids = np.unique(u.col[m & (part[u.col] == 1)])
    halo = pd.DataFrame({"part": np.int32(0), "id": halo_ids, "own": False,
                         "cur": [x[i].tobytes() for i in halo_ids], "state": [b""] * len(halo_ids)})
    return arcs, own, halo


def test_fusion_round_does_not_depend_on_the_order_messages_arrive_in():
    """On a cluster the shuffle delivers a part's halo rows in a different order on every run (or task retry); the
    round's output must still be the same bits, or a retried task changes the embedding (issue 31: a re-run after
    an executor loss must equal the fault-free run)."""
    import pandas as pd

    from embeddings.distne import DistNEConfig
    from embeddings.spark.fuse import round_task

    arcs, own, halo = _part0_round_inputs(seed=3)
    task = round_task(0, DistNEConfig(dim=8, refine_order=2))
    outs = []
    for perm_seed in range(4):
        perm = np.random.default_rng(perm_seed).permutation(len(halo))
        msgs = pd.concat([halo.iloc[perm], own], ignore_index=True)  # halo first, shuffled
        out = task(arcs, msgs.iloc[np.random.default_rng(perm_seed + 9).permutation(len(msgs))])
        outs.append(out.sort_values(["part", "id", "own"]).reset_index(drop=True))
    assert outs[0]["own"].sum() == 30 and all(len(o) == len(outs[0]) for o in outs)
    for o in outs[1:]:
        assert o["cur"].tolist() == outs[0]["cur"].tolist()  # bit-identical vectors
        assert o["state"].tolist() == outs[0]["state"].tolist()


def test_part_subgraph_sums_duplicate_edges_in_one_order():
    """Cut edges contracted to one cluster are duplicates summed into one weight; with float weights the sum must
    not depend on the order the edges arrived in."""
    from embeddings.partition import build_part_subgraph

    rng = np.random.default_rng(0)
    nodes, proxies = np.arange(5), np.array([10, 11])
    cut_v, cut_c = rng.integers(0, 5, 400), rng.choice(proxies, 400)
    cut_w = rng.random(400).astype(np.float32) * 1e3
    none = (np.zeros(0, np.int64),) * 2 + (np.zeros(0, np.float32),)
    ref = build_part_subgraph(0, nodes, proxies, none, (cut_v, cut_c, cut_w), none).adjacency
    for s in range(5):
        p = np.random.default_rng(s).permutation(400)
        got = build_part_subgraph(0, nodes, proxies, none, (cut_v[p], cut_c[p], cut_w[p]), none).adjacency
        assert (got != ref).nnz == 0 and got.data.tobytes() == ref.data.tobytes()
