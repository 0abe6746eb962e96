"""Job configuration of embed_graph and knn: --help, parsing, validation (no Spark session)."""
from __future__ import annotations

import pytest

from jobs import embed_graph, knn


@pytest.mark.parametrize("mod", [embed_graph, knn])
def test_help_exits_cleanly(mod, capsys):
    with pytest.raises(SystemExit) as e:
        mod.parse_args(["--help"])
    assert e.value.code == 0 and "--output" in capsys.readouterr().out


def test_embed_config_parsing_and_validation():
    cfg = embed_graph.parse_args(["--edges", "g", "--output", "o", "--dim", "32", "--max-part-nodes", "1000"])
    d = cfg.distne()
    assert (d.dim, d.max_subgraph_nodes, d.refine_order) == (32, 1000, 2)
    assert d.sizes(5000) == (500, 500)
    with pytest.raises(ValueError, match="dim"):
        embed_graph.parse_args(["--edges", "g", "--output", "o", "--dim", "0"])
    with pytest.raises(ValueError, match="refine_order"):
        embed_graph.parse_args(["--edges", "g", "--output", "o", "--refine-order", "1"]).distne()


def test_memory_budget_sets_m():
    small = embed_graph.parse_args(["--edges", "g", "--output", "o", "--memory-mb", "1024"]).distne()
    big = embed_graph.parse_args(["--edges", "g", "--output", "o", "--memory-mb", "4096"]).distne()
    assert abs(big.resolved_m() - 4 * small.resolved_m()) <= 4  # linear in the budget (up to rounding)
    # denser graphs get smaller subgraphs; the graph's size fixes M once; the flag always wins
    assert small.resolved_m(edges_per_node=25) < small.resolved_m(edges_per_node=5) < small.resolved_m()
    fixed = small.for_graph(100_000, 2_500_000)
    assert fixed.max_subgraph_nodes == small.resolved_m(25.0) and fixed.resolved_m(1e6) == fixed.max_subgraph_nodes
    flag = embed_graph.parse_args(["--edges", "g", "--output", "o", "--max-part-nodes", "777"]).distne()
    assert flag.for_graph(100_000, 2_500_000).max_subgraph_nodes == 777
    # with M from the budget, subgraphs also get the edges a task of M nodes holds (2.5 x edges per node x M)
    assert fixed.max_subgraph_edges == pytest.approx(2.5 * 25 * fixed.max_subgraph_nodes, rel=1e-3)
    assert flag.for_graph(100_000, 2_500_000).max_subgraph_edges is None
    both = embed_graph.parse_args(["--edges", "g", "--output", "o", "--max-subgraph-edges", "5000"]).distne()
    assert both.for_graph(100_000, 2_500_000).max_subgraph_edges == 5000
    with pytest.raises(ValueError, match="for_graph"):  # no silent node-only M for the part sizes
        small.sizes(100_000)
    m = fixed.max_subgraph_nodes
    assert fixed.sizes(100_000) == (m // 2, m - m // 2)


@pytest.mark.parametrize("edge_factor", [4, 32])
def test_memory_model_bounds_the_embedders_peak(edge_factor):
    """The M derivation's bytes per node/edge cover ProNE's measured peak (tracemalloc) on R-MAT graphs,
    and are not so loose that the budget is wasted (within 2x)."""
    import tracemalloc

    import numpy as np

    from embeddings.datasets import symmetric_adjacency
    from embeddings.distne import DistNEConfig
    from embeddings.prone import ProNE
    from graphs.generators import rmat_block

    a = symmetric_adjacency(*rmat_block(13, edge_factor * 2**13, seed=3), n=2**13)
    live = np.diff(a.indptr) > 0
    a = a[live][:, live].tocsr()
    n, e = a.shape[0], a.nnz // 2
    tracemalloc.start()
    try:
        ProNE(128, seed=0).fit_transform(a)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    model = DistNEConfig.NODE_BYTES * n + DistNEConfig.EDGE_BYTES * e
    assert peak <= model, (n, e, peak, model)
    assert peak >= 0.5 * model, (n, e, peak, model)


def test_knn_config_validation():
    cfg = knn.parse_args(["--vectors", "v", "--output", "o", "--k", "7", "--index", "ivf"])
    assert cfg.knn().k == 7 and cfg.knn().index == "ivf"
    with pytest.raises(ValueError):
        knn.parse_args(["--vectors", "v", "--output", "o", "--k", "0"])
