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
    assert big.resolved_m() == 4 * small.resolved_m()


def test_knn_config_validation():
    cfg = knn.parse_args(["--vectors", "v", "--output", "o", "--k", "7", "--index", "ivf"])
    assert cfg.knn().k == 7 and cfg.knn().index == "ivf"
    with pytest.raises(ValueError):
        knn.parse_args(["--vectors", "v", "--output", "o", "--k", "0"])
