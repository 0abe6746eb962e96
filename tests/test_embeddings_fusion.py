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
