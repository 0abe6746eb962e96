"""Fusion: alignment maps and the propagation program (equal to ProNE's spectral propagation)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings import fusion
from embeddings.prone import spectral_propagation


@pytest.mark.parametrize("order", [2, 3, 5, 10])
def test_propagation_program_equals_prone_filter(order):
    rng = np.random.default_rng(order)
    a = sp.random(80, 80, density=0.08, random_state=order, dtype=np.float32)
    a = (a + a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    x = rng.standard_normal((80, 6)).astype(np.float32)
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
