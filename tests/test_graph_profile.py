"""Graph profile core (issue 27): every property against networkx on small random digraphs.

Exact properties must equal networkx's; the sampled ones (clustering above the wedge budget, distances
from sampled BFS sources) must lie within four of their own stated standard errors of the exact value.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import networkx as nx
import numpy as np
import pytest

from graphs.profile import GraphProfile, ProfileConfig, profile_graph, simple_edges
from graphs.profile_compare import COUNT, PROPERTIES, compare, comparison_report, distribution_distances
from graphs.profile_paths import distances, effective_diameter, pagerank, pagerank_summary
from graphs.profile_structure import clustering, components, core_numbers, cores, undirected_csr
from tests.test_cluster import cluster  # noqa: F401  (the standalone-cluster fixture of test_cluster.py)


def random_digraph(seed: int, n: int = 120, m: int = 480, recip: float = 0.3):
    """A simple digraph with a heavy-ish tail (preferential targets) and some reciprocated edges."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m)
    dst = (n * rng.random(m) ** 2).astype(np.int64)  # skewed in-degrees
    back = rng.random(m) < recip
    s, d = simple_edges(np.r_[src, dst[back]], np.r_[dst, src[back]], n)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(s.tolist(), d.tolist()))
    return s, d, n, g


@pytest.fixture(scope="module", params=[0, 1, 2])
def graph(request):
    return random_digraph(request.param)


def test_degree_section_matches_networkx(graph):
    s, d, n, g = graph
    p = profile_graph(s, d, n)
    deg = p.degree
    assert deg.nodes == n and deg.edges == g.number_of_edges()
    outs = np.bincount([k for _, k in g.out_degree()])
    assert dict(zip(deg.out_pmf["degree"], deg.out_pmf["count"])) == {k: int(c) for k, c in enumerate(outs) if c}
    ins = np.array([k for _, k in g.in_degree()])
    assert deg.in_quantiles["0.9"] == int(np.quantile(ins, 0.9, method="inverted_cdf"))
    assert deg.in_zero_frac == pytest.approx((ins == 0).mean())
    assert deg.reciprocity == pytest.approx(nx.overall_reciprocity(g))
    for x, y in (("out", "in"), ("in", "out"), ("out", "out"), ("in", "in")):
        ref = nx.degree_pearson_correlation_coefficient(g, x=x, y=y)
        assert deg.assortativity[f"{x}-{y}"] == pytest.approx(ref, abs=1e-10), (x, y)
    outd = np.array([k for _, k in g.out_degree()])
    assert deg.joint_log_corr == pytest.approx(np.corrcoef(np.log1p(outd), np.log1p(ins))[0, 1])


def test_exact_clustering_matches_networkx(graph):
    s, d, n, g = graph
    u = g.to_undirected()
    c = clustering(s, d, n)
    assert c.exact
    assert c.average == pytest.approx(nx.average_clustering(u), abs=1e-12)
    assert c.transitivity == pytest.approx(nx.transitivity(u), abs=1e-12)
    assert c.triangles == sum(nx.triangles(u).values()) // 3
    local, degs = nx.clustering(u), dict(u.degree())
    for lo, count, mean in zip(c.by_degree["bin_lo"], c.by_degree["nodes"], c.by_degree["mean"]):
        members = [v for v in u if lo <= degs[v] < 2 * lo]
        assert count == len(members) and mean == pytest.approx(np.mean([local[v] for v in members]))


def test_sampled_clustering_within_its_standard_error(graph):
    s, d, n, _ = graph
    exact = clustering(s, d, n)
    est = clustering(s, d, n, wedge_budget=0, nodes_per_bin=20, wedges_per_node=16, transitivity_wedges=20_000,
                     seed=3)
    assert not est.exact and 0 < est.average_se < 0.05 and 0 < est.transitivity_se < 0.01
    assert abs(est.average - exact.average) <= 4 * est.average_se
    assert abs(est.transitivity - exact.transitivity) <= 4 * est.transitivity_se


def test_components_match_networkx(graph):
    s, d, n, g = graph
    c = components(s, d, n)
    for kind, fn in (("wcc", nx.weakly_connected_components), ("scc", nx.strongly_connected_components)):
        sizes = sorted(len(x) for x in fn(g))
        assert getattr(c, f"{kind}_count") == len(sizes) and getattr(c, f"{kind}_largest") == sizes[-1]
        hist = getattr(c, f"{kind}_sizes")
        assert sorted(np.repeat(hist["size"], hist["count"]).tolist()) == sizes


def test_cores_match_networkx(graph):
    s, d, n, g = graph
    ref = nx.core_number(g.to_undirected())
    got = core_numbers(*undirected_csr(s, d, n))
    assert got.tolist() == [ref[v] for v in range(n)]
    c = cores(s, d, n)
    assert c.degeneracy == max(ref.values())
    assert c.sizes == [sum(v >= k for v in ref.values()) for k in range(c.degeneracy + 1)]


def _nx_hist(g) -> np.ndarray:
    h = np.zeros(g.number_of_nodes(), np.int64)
    for _, lengths in nx.all_pairs_shortest_path_length(g):
        for dist in lengths.values():
            h[dist] += 1
    h[0] = 0
    return np.trim_zeros(h, "b")


def test_exact_distances_match_networkx(graph):
    s, d, n, g = graph
    dist = distances(s, d, n, sources=n)
    ref = _nx_hist(g)
    assert dist.exact and dist.hist == ref.tolist()
    assert dist.effective_diameter == pytest.approx(effective_diameter(ref))
    assert dist.mean_distance == pytest.approx((np.arange(ref.size) * ref).sum() / ref.sum())
    assert dist.reachable_fraction == pytest.approx(ref.sum() / (n * (n - 1)))
    assert dist.max_distance == ref.size - 1


def test_sampled_distances_within_their_standard_error(graph):
    s, d, n, _ = graph
    exact = distances(s, d, n, sources=n)
    est = distances(s, d, n, sources=64, groups=8, seed=5)
    assert not est.exact and est.sources == 64 and est.effective_diameter_se > 0
    assert abs(est.effective_diameter - exact.effective_diameter) <= 4 * est.effective_diameter_se
    assert abs(est.mean_distance - exact.mean_distance) <= 4 * est.mean_distance_se


def test_effective_diameter_interpolates():
    # F(1) = 0.5, F(2) = 0.8, F(3) = 1.0: 90 % is reached halfway from 2 to 3
    assert effective_diameter(np.array([0, 5, 3, 2])) == pytest.approx(2.5)


def test_pagerank_matches_networkx(graph):
    s, d, n, g = graph
    ref = nx.pagerank(g, alpha=0.85, tol=1e-13, max_iter=2000)
    pr = pagerank(s, d, n, tol=1e-13)
    assert np.abs(pr - np.array([ref[v] for v in range(n)])).max() < 1e-9
    summ = profile_graph(s, d, n).pagerank
    x = np.sort(pr * n)
    assert summ.quantiles["0.9"] == pytest.approx(np.quantile(x, 0.9), rel=1e-6)
    assert summ.top1_share == pytest.approx(x[-2:].sum() / n, rel=1e-6)  # 1 % of 120 nodes = 2


def test_profile_drops_loops_and_duplicates_and_round_trips(tmp_path):
    s, d, n, g = random_digraph(7, n=40, m=100)
    noisy = profile_graph(np.r_[s, s[:5], [0, 1]], np.r_[d, d[:5], [0, 1]], n)
    clean = profile_graph(s, d, n)
    assert noisy.degree == clean.degree and noisy.scalars() == clean.scalars()
    clean.write(tmp_path / "p.json")
    back = GraphProfile.read(tmp_path / "p.json")
    assert back.scalars() == clean.scalars() and back.cores == clean.cores
    assert json.loads((tmp_path / "p.json").read_text())["components"]["wcc_count"] == clean.components.wcc_count
    part = profile_graph(s, d, n, ProfileConfig(skip=("distances", "pagerank")))
    assert part.distances is None and part.pagerank is None
    assert not any(p.section in ("distances", "pagerank") for p in PROPERTIES if p.name in part.scalars())


def test_compare_applies_the_scaling_laws():
    s, d, n, _ = random_digraph(1)
    full = profile_graph(s, d, n).to_dict()
    same = compare(full, full, 1.0)
    assert len(same) == len(PROPERTIES) and all(r.rel_error == 0 for r in same)
    half = {r.name: r for r in compare(full, full, 0.5)}
    for p in PROPERTIES:
        r = half[p.name]
        assert r.estimate == (1 + (r.sample - 1) / 0.5 if p.law == COUNT else r.sample)
        if p.law == COUNT:
            assert r.rel_error == pytest.approx((r.sample - 1) / r.sample)
    rep = comparison_report(full, full, 1.0)
    assert rep["median_rel_error"] == 0 and rep["distributions"]["in_degree_l1"] == 0
    other = profile_graph(*random_digraph(2)[:3]).to_dict()
    dd = distribution_distances(full, other)
    assert 0 < dd["in_degree_l1"] <= 2 and 0 < dd["distance_l1"] <= 2


def test_run_report_shows_the_profile_and_the_sample_comparison(tmp_path):
    """The daily DAG's profile_graph / profile_sample outputs reach the run report (jobs.demo.report_profile)."""
    from graphs.atomic import write_json
    from jobs.demo.report_profile import profile_section
    from jobs.runtime.layout import dated_path

    s, d, n, _ = random_digraph(3, n=60, m=200)
    full = profile_graph(s, d, n)
    keep = np.flatnonzero(np.random.default_rng(0).random(s.size) < 0.5)
    sample = profile_graph(s[keep], d[keep], n).to_dict()
    ds, figs = "2026-01-05", tmp_path / "fig"
    figs.mkdir()
    assert profile_section(tmp_path, ds, figs, {}) == []           # no profile that day: no section
    dated_path(tmp_path, "profile", ds).mkdir(parents=True)
    full.write(dated_path(tmp_path, "profile", ds) / "profile.json")
    rep = comparison_report(full.to_dict(), sample, 0.5)
    out = dated_path(tmp_path, "sample_profile", ds)
    out.mkdir(parents=True)
    write_json(out / "comparison.json", rep)
    head: dict = {}
    text = "\n".join(profile_section(tmp_path, ds, figs, head))
    assert head["sample_median_rel_error"] == pytest.approx(rep["median_rel_error"])
    assert f"{full.scalars()['reciprocity']:.4g}" in text and f"{rep['median_rel_error']:.3f}" in text


# --- the job: local SparkSession (both paths) and a standalone cluster ----------------------------------

def _graph_dir(root, s, d, n, meta_ratio=None):
    from tests.test_sampling_job import write_graph_dir

    out = write_graph_dir(root, s, d, n)
    if meta_ratio is not None:
        (out / "_meta.json").write_text(json.dumps({"job": "sample_graph", "params": {"ratio": meta_ratio}}))
    return out


@pytest.mark.spark
def test_job_one_task_and_distributed_match_the_core(spark, tmp_path):
    from jobs.graph_profile import GraphProfileConfig, parse_args, run

    s, d, n, _ = random_digraph(4, n=150, m=600)
    noisy_s, noisy_d = np.r_[s, s[:7], [3, 4]], np.r_[d, d[:7], [3, 4]]  # duplicates and self-loops: dropped
    full_dir = _graph_dir(tmp_path / "full", noisy_s, noisy_d, n)
    core = profile_graph(s, d, n).to_dict()
    body = run(spark, GraphProfileConfig(str(full_dir), str(tmp_path / "pf")))
    out = tmp_path / "pf"
    assert {p.name for p in out.iterdir()} >= {"profile.json", "profile.png", "_meta.json"}
    meta = json.loads((out / "_meta.json").read_text())
    assert meta["mode"] == "one task" and meta["input"]["self_loops"] == 2 and meta["input"]["duplicates"] == 7
    deg, ref = body["degree"], core["degree"]
    for k in ("nodes", "edges", "out_pmf", "in_pmf", "out_quantiles", "dcm_nnz"):
        assert deg[k] == ref[k], k
    assert deg["reciprocity"] == pytest.approx(ref["reciprocity"])
    assert deg["joint_log_corr"] == pytest.approx(ref["joint_log_corr"])
    for k, v in ref["assortativity"].items():
        assert deg["assortativity"][k] == pytest.approx(v, abs=1e-9), k
    for sec in ("clustering", "components", "cores", "distances", "pagerank"):
        assert body[sec] == core[sec], sec  # the same code on the executor
    # a "sample": every second node's induced subgraph, compared with the full profile (ratio from _meta.json)
    keep = (s % 2 == 0) & (d % 2 == 0)
    smp_dir = _graph_dir(tmp_path / "smp", s[keep] // 2, d[keep] // 2, n // 2, meta_ratio=0.5)
    dist = run(spark, parse_args(["--edges", str(smp_dir), "--output", str(tmp_path / "ps"), "--reference", str(out),
                                  "--distributed", "--pagerank-max-iter", "6", "--bfs-sources", "40"]))
    meta = json.loads((tmp_path / "ps" / "_meta.json").read_text())
    assert meta["mode"] == "distributed" and set(meta["not_computed"]) == {"cores", "strong components"}
    small = profile_graph(s[keep] // 2, d[keep] // 2, n // 2, ProfileConfig(bfs_sources=40))
    cl, exact = dist["clustering"], small.clustering
    assert not cl["exact"] and exact.exact and cl["average_se"] > 0
    assert abs(cl["average"] - exact.average) <= 4 * cl["average_se"]
    assert abs(cl["transitivity"] - exact.transitivity) <= 4 * cl["transitivity_se"]
    assert cl["by_degree"]["bin_lo"] == exact.by_degree["bin_lo"] and cl["by_degree"]["nodes"] == exact.by_degree["nodes"]
    assert dist["distances"] == asdict(small.distances) and not small.distances.exact  # the same 40 sources
    assert dist["components"]["wcc_count"] == small.components.wcc_count
    assert dist["components"]["wcc_sizes"] == small.components.wcc_sizes and dist["components"]["scc_count"] is None
    # six steps of the distributed power iteration = six steps of the core's; approxQuantile returns a value
    # whose rank is within one of q * n (the relative error 1/20000 is below one rank here)
    pr6 = pagerank(s[keep] // 2, d[keep] // 2, n // 2, tol=0.0, max_iter=6)
    x = np.sort(pr6 * pr6.size)
    assert dist["seconds"]["pagerank_iterations"] == 6
    for q, v in dist["pagerank"]["quantiles"].items():
        k = float(q) * x.size
        assert x[max(int(np.floor(k)) - 1, 0)] - 1e-9 <= v <= x[min(int(np.ceil(k)), x.size - 1)] + 1e-9, q
    assert dist["pagerank"]["top1_share"] == pytest.approx(pagerank_summary(pr6).top1_share, rel=1e-9)
    comp = json.loads((tmp_path / "ps" / "comparison.json").read_text())
    rows = {r["name"]: r for r in comp["properties"]}
    assert comp["ratio"] == 0.5 and "degeneracy" not in rows and "scc_count" not in rows
    assert rows["wcc_count"]["estimate"] == pytest.approx(1 + (small.components.wcc_count - 1) / 0.5)
    assert rows["reciprocity"]["full"] == pytest.approx(ref["reciprocity"])
    assert (tmp_path / "ps" / "comparison.png").exists() and "| reciprocity |" in (tmp_path / "ps" / "comparison.md").read_text()


def test_job_flags_are_checked():
    from jobs.graph_profile import parse_args

    with pytest.raises(ValueError, match="--ratio needs --reference"):
        parse_args(["--edges", "g", "--output", "o", "--ratio", "0.1"])
    with pytest.raises(ValueError, match="unknown sections"):
        parse_args(["--edges", "g", "--output", "o", "--skip", "triangles"])
    cfg = parse_args(["--edges", "g", "--output", "o", "--skip", "distances,cores", "--bfs-sources", "32"])
    assert cfg.profile().skip == ("distances", "cores") and cfg.profile().bfs_sources == 32


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_jobs_on_standalone_cluster(cluster, tmp_path):
    """graph_profile (and tune_embedding, sharing the cluster) submitted with the project zip; executors run the
    one-task sections and return what the core computes."""
    from jobs.runtime.session import build_zip
    from tests.test_cluster import ROOT, _submit

    s, d, n, _ = random_digraph(9, n=150, m=600)
    gdir = _graph_dir(tmp_path / "g", s, d, n)
    zip_path = build_zip(tmp_path / "graphrec.zip")
    r = _submit(cluster, zip_path, str(ROOT / "jobs" / "graph_profile.py"), "--edges", str(gdir), "--output",
                str(tmp_path / "prof"))
    assert r.returncode == 0, r.stderr[-4000:]
    body = json.loads((tmp_path / "prof" / "profile.json").read_text())
    core = profile_graph(s, d, n).to_dict()
    assert body["degree"]["in_pmf"] == core["degree"]["in_pmf"]
    for sec in ("clustering", "components", "cores", "distances", "pagerank"):
        assert body[sec] == core[sec], sec
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"order": 2, "mu": -1.0, "theta": 0.5}, {"order": 5, "mu": 0.2, "theta": 0.5}]))
    r = _submit(cluster, zip_path, str(ROOT / "jobs" / "tune_embedding.py"), "--edges", str(gdir), "--output",
                str(tmp_path / "tune"), "--dim", "8", "--grid", str(grid))
    assert r.returncode == 0, r.stderr[-4000:]
    chosen = json.loads((tmp_path / "tune" / "chosen.json").read_text())
    assert {chosen["order"], chosen["mu"]} <= {2, 5, -1.0, 0.2} and 0.5 < chosen["auc"] <= 1
    assert list((cluster["tmp"] / "work").glob("app-*")), "no executor ran on the standalone worker"


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_distributed_profile_on_standalone_cluster(cluster, tmp_path):
    """``--distributed`` on the cluster: PageRank and the components iterate over local checkpoints, stored
    replicated off local masters (``graphs.spark_helpers.local_checkpoint``); the answers are the core's."""
    from jobs.runtime.session import build_zip
    from tests.test_cluster import ROOT, _submit

    s, d, n, _ = random_digraph(5, n=300, m=1200)
    gdir = _graph_dir(tmp_path / "g", s, d, n)
    r = _submit(cluster, build_zip(tmp_path / "graphrec.zip"), str(ROOT / "jobs" / "graph_profile.py"), "--edges",
                str(gdir), "--output", str(tmp_path / "p"), "--distributed", "--skip", "clustering,distances",
                "--pagerank-max-iter", "5")
    assert r.returncode == 0, r.stderr[-4000:]
    assert json.loads((tmp_path / "p" / "_meta.json").read_text())["mode"] == "distributed"
    body, core = json.loads((tmp_path / "p" / "profile.json").read_text()), profile_graph(s, d, n)
    assert body["components"]["wcc_sizes"] == core.components.wcc_sizes
    assert body["degree"]["out_pmf"] == core.to_dict()["degree"]["out_pmf"]
    assert body["pagerank"]["top1_share"] == pytest.approx(
        pagerank_summary(pagerank(s, d, n, tol=0.0, max_iter=5)).top1_share, rel=1e-9)

