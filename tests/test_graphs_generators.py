import numpy as np
import pytest

from graphs.generators import InteractionConfig, PlantedConfig, interactions_block, planted_block, rmat_block


def test_rmat_is_deterministic_per_block_and_skewed():
    s1, d1 = rmat_block(12, 20_000, seed=3, block=5)
    s2, d2 = rmat_block(12, 20_000, seed=3, block=5)
    s3, _ = rmat_block(12, 20_000, seed=3, block=6)
    assert np.array_equal(s1, s2) and np.array_equal(d1, d2)
    assert not np.array_equal(s1, s3)
    assert s1.min() >= 0 and s1.max() < 4096 and d1.max() < 4096
    deg = np.bincount(s1, minlength=4096)
    # Graph500 parameters give a heavy tail: the top 1% of nodes hold far more than 1% of edges
    top = np.sort(deg)[-41:].sum() / deg.sum()
    assert top > 0.08


def test_rmat_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="R-MAT"):
        rmat_block(4, 10, 0, abc=(0.6, 0.3, 0.2))


def test_planted_graph_has_communities_and_power_law():
    cfg = PlantedConfig(nodes=5000, communities=5, avg_degree=8, mu=0.1, seed=1)
    src, dst = planted_block(cfg, 0, cfg.nodes, 0)
    assert abs(len(src) / cfg.nodes - cfg.avg_degree) < 0.15 * cfg.avg_degree
    same = (cfg.labels(src) == cfg.labels(dst)).mean()
    assert 0.85 < same < 0.95  # 1 - mu, plus outside draws that land home by chance (1/C * mu)
    indeg = np.bincount(dst, minlength=cfg.nodes)
    assert indeg.max() > 20 * indeg.mean()  # hubs
    # blocks concatenate to a graph over disjoint source ranges
    a, _ = planted_block(cfg, 0, 2500, 0)
    b, _ = planted_block(cfg, 2500, 5000, 1)
    assert a.max() < 2500 <= b.min()


def test_interactions_follow_communities():
    g = PlantedConfig(nodes=2000, communities=4, seed=2)
    cfg = InteractionConfig(items=400, avg_items_per_user=10, p_in=0.9, seed=2)
    u, i = interactions_block(g, cfg, 0, g.nodes, 0)
    assert len(np.unique(u * cfg.items + i)) == len(u)  # no duplicate pairs
    home = i % g.communities
    assert (home == g.labels(u)).mean() > 0.85
    pop = np.bincount(i, minlength=cfg.items)
    assert np.sort(pop)[-40:].sum() > 0.3 * pop.sum()  # popularity skew


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="mu"):
        PlantedConfig(mu=1.5)
    with pytest.raises(ValueError, match="communities"):
        PlantedConfig(nodes=10, communities=20)
