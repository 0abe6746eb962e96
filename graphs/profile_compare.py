"""Sample against full graph: each profiled property, the sample's estimate of it and the relative error.

A sample of ratio ``r`` (about ``r N`` nodes) *estimates* a property of the full graph by a stated
scaling law:

* ``direct`` — intensive properties compare as they are: degree pmfs and quantiles, fractions,
  correlations, clustering, path lengths, ``n · PR`` quantiles (the sample is meant to be the same kind
  of graph, smaller);
* ``others/r`` — component counts: the largest component is one component at any scale, the others are
  many and small and their number scales with the node count, so a sample with ``c`` components
  estimates ``1 + (c - 1) / r`` (a plain ``c / r`` would turn a connected sample of a connected graph
  into ``1 / r`` components).

Relative error = ``|estimate - full| / max(|full|, floor)``; ``floor`` keeps coefficients near 0
(assortativity, correlations: 0.1) and small fractions (0.01) from turning tiny absolute differences
into huge relative ones. ``order`` says which structure a property depends on (Mahadevan et al.,
SIGCOMM 2006, dK-series): ``1K`` the degree distribution, ``2K`` degree correlations (what the JDM/DCM
construction fixes), ``3K`` triangles, ``global`` long-range structure — a 2K-preserving sample is
expected to carry 1K/2K properties and not necessarily 3K or global ones.

>>> full = {"degree": {"reciprocity": 0.5}, "components": {"wcc_count": 10, "wcc_largest": 80,
...         "scc_count": 50, "scc_largest": 40}}
>>> sample = {"degree": {"reciprocity": 0.45}, "components": {"wcc_count": 2, "wcc_largest": 8,
...           "scc_count": 5, "scc_largest": 4}}
>>> rows = {c.name: c for c in compare(full, sample, 0.1, nodes=(100, 10))}
>>> round(rows["reciprocity"].rel_error, 3), round(rows["wcc_count"].estimate, 1)
(0.1, 11.0)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

DIRECT, COUNT = "direct", "others/r"


@dataclass(frozen=True)
class Property:
    """A scalar property: how to read it from a profile dict, how it scales with ``r``, its error floor."""

    name: str
    section: str
    law: str
    order: str
    floor: float
    get: Callable[[dict], float]
    description: str


def _q(side: str, q: str) -> Callable[[dict], float]:
    return lambda d: float(d["degree"][f"{side}_quantiles"][q])


def _frac(section: str, key: str) -> Callable[[dict], float]:
    return lambda d: d[section][key] / max(_nodes(d), 1)


def _nodes(d: dict) -> int:
    deg = d.get("degree") or {}
    if "nodes" in deg:
        return int(deg["nodes"])
    return int(d["_nodes"])


PROPERTIES: tuple[Property, ...] = (
    Property("mean_degree", "degree", DIRECT, "1K", 1e-9, lambda d: d["degree"]["mean_degree"], "edges per node"),
    Property("out_degree_p90", "degree", DIRECT, "1K", 1.0, _q("out", "0.9"), "90th percentile of out-degree"),
    Property("in_degree_p90", "degree", DIRECT, "1K", 1.0, _q("in", "0.9"), "90th percentile of in-degree"),
    Property("out_zero_frac", "degree", DIRECT, "1K", 0.01, lambda d: d["degree"]["out_zero_frac"],
             "fraction of nodes without out-edges (sinks)"),
    Property("in_zero_frac", "degree", DIRECT, "1K", 0.01, lambda d: d["degree"]["in_zero_frac"],
             "fraction of nodes without in-edges (sources)"),
    Property("joint_log_corr", "degree", DIRECT, "1K", 0.1, lambda d: d["degree"]["joint_log_corr"],
             "Pearson corr. of log(1+out) and log(1+in) over nodes (joint degree)"),
    Property("reciprocity", "degree", DIRECT, "2K", 0.01, lambda d: d["degree"]["reciprocity"],
             "fraction of edges whose reverse exists"),
    *(Property(f"assort_{x}_{y}", "degree", DIRECT, "2K", 0.1, (lambda k: lambda d: d["degree"]["assortativity"][k])(
        f"{x}-{y}"), f"assortativity: {x}-degree of source vs {y}-degree of target")
      for x, y in (("out", "in"), ("in", "out"), ("out", "out"), ("in", "in"))),
    Property("avg_clustering", "clustering", DIRECT, "3K", 0.01, lambda d: d["clustering"]["average"],
             "average local clustering (undirected)"),
    Property("transitivity", "clustering", DIRECT, "3K", 0.01, lambda d: d["clustering"]["transitivity"],
             "triangles x 3 / wedges (undirected)"),
    Property("wcc_count", "components", COUNT, "global", 1e-9, lambda d: d["components"]["wcc_count"],
             "number of weakly connected components"),
    Property("largest_wcc_frac", "components", DIRECT, "global", 0.01, _frac("components", "wcc_largest"),
             "largest WCC / nodes"),
    Property("scc_count", "components", COUNT, "global", 1e-9, lambda d: d["components"]["scc_count"],
             "number of strongly connected components"),
    Property("largest_scc_frac", "components", DIRECT, "global", 0.01, _frac("components", "scc_largest"),
             "largest SCC / nodes"),
    Property("degeneracy", "cores", DIRECT, "global", 1.0, lambda d: d["cores"]["degeneracy"],
             "largest k with a non-empty k-core"),
    Property("mean_coreness", "cores", DIRECT, "global", 1e-9, lambda d: d["cores"]["mean_coreness"],
             "mean core number (k-core sizes)"),
    Property("effective_diameter", "distances", DIRECT, "global", 1e-9,
             lambda d: d["distances"]["effective_diameter"], "90% effective diameter (out-edges)"),
    Property("mean_distance", "distances", DIRECT, "global", 1e-9, lambda d: d["distances"]["mean_distance"],
             "mean distance between reachable pairs"),
    Property("reachable_frac", "distances", DIRECT, "global", 0.01, lambda d: d["distances"]["reachable_fraction"],
             "fraction of ordered pairs joined by a directed path"),
    Property("pagerank_p90", "pagerank", DIRECT, "global", 1e-9, lambda d: d["pagerank"]["quantiles"]["0.9"],
             "90th percentile of n*PageRank"),
    Property("pagerank_p99", "pagerank", DIRECT, "global", 1e-9, lambda d: d["pagerank"]["quantiles"]["0.99"],
             "99th percentile of n*PageRank"),
    Property("pagerank_top1_share", "pagerank", DIRECT, "global", 0.01, lambda d: d["pagerank"]["top1_share"],
             "PageRank mass of the top 1% of nodes"),
)
BY_NAME = {p.name: p for p in PROPERTIES}


def scalars(profile: dict) -> dict:
    """``{name: value}`` for every property of :data:`PROPERTIES` whose section the profile holds."""
    return _safe_scalars(profile)


@dataclass(frozen=True)
class PropertyComparison:
    """One property: the full graph's value, the sample's, the sample's estimate of the full value, the error."""

    name: str
    law: str
    order: str
    full: float
    sample: float
    estimate: float
    rel_error: float


def compare(full: dict, sample: dict, ratio: float, nodes: tuple[int, int] | None = None) -> list[PropertyComparison]:
    """Compare two profile dicts (``GraphProfile.to_dict()``) property by property.

    ``nodes = (full, sample)`` node counts are needed only when the profiles lack a degree section.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if nodes is not None:
        full, sample = {**full, "_nodes": nodes[0]}, {**sample, "_nodes": nodes[1]}
    fs, ss = _safe_scalars(full), _safe_scalars(sample)
    rows = []
    for p in PROPERTIES:
        if p.name not in fs or p.name not in ss:
            continue
        f, s = fs[p.name], ss[p.name]
        est = estimate(p, s, ratio)
        rows.append(PropertyComparison(p.name, p.law, p.order, f, s, est, relative_error(p, f, est)))
    return rows


def estimate(p: Property, sample_value: float, ratio: float) -> float:
    """The sample's estimate of the full graph's value by ``p``'s scaling law."""
    return 1.0 + (sample_value - 1.0) / ratio if p.law == COUNT else sample_value


def relative_error(p: Property, full_value: float, est: float) -> float:
    """``|estimate - full| / max(|full|, floor)``."""
    return abs(est - full_value) / max(abs(full_value), p.floor)


def _safe_scalars(profile: dict) -> dict:
    out = {}
    for p in PROPERTIES:
        if profile.get(p.section) is None:
            continue
        try:
            out[p.name] = float(p.get(profile))
        except (KeyError, TypeError):  # a field the profile does not hold, or None (not computed)
            continue
    return out


def distribution_distances(full: dict, sample: dict) -> dict:
    """Distances between whole distributions (compare directly): in/out-degree pmf L1 (0..2), the mean absolute
    difference of clustering by degree over the bins both have, and the L1 between distance pmfs."""
    out = {}
    for side in ("out", "in"):
        a, b = full["degree"][f"{side}_pmf"], sample["degree"][f"{side}_pmf"]
        out[f"{side}_degree_l1"] = _pmf_l1(a["degree"], a["count"], b["degree"], b["count"])
    if full.get("clustering") and sample.get("clustering"):
        a, b = full["clustering"]["by_degree"], sample["clustering"]["by_degree"]
        common = sorted(set(a["bin_lo"]) & set(b["bin_lo"]))
        if common:
            ma, mb = dict(zip(a["bin_lo"], a["mean"])), dict(zip(b["bin_lo"], b["mean"]))
            out["clustering_by_degree_mad"] = float(np.mean([abs(ma[k] - mb[k]) for k in common]))
    if full.get("distances") and sample.get("distances"):
        ha, hb = (np.asarray(x["distances"]["hist"], np.float64)[1:] for x in (full, sample))
        out["distance_l1"] = _pmf_l1(np.arange(ha.size), ha, np.arange(hb.size), hb)
    return out


def _pmf_l1(ka, ca, kb, cb) -> float:
    ka, kb = np.asarray(ka, np.int64), np.asarray(kb, np.int64)
    size = int(max(ka.max(initial=0), kb.max(initial=0))) + 1
    pa = np.bincount(ka, np.asarray(ca, np.float64), minlength=size)
    pb = np.bincount(kb, np.asarray(cb, np.float64), minlength=size)
    return float(np.abs(pa / max(pa.sum(), 1e-300) - pb / max(pb.sum(), 1e-300)).sum())


def comparison_report(full: dict, sample: dict, ratio: float) -> dict:
    """JSON-ready report: per-property rows, the median relative error, distribution distances, the laws."""
    rows = compare(full, sample, ratio)
    errs = [r.rel_error for r in rows]
    return {"ratio": ratio, "properties": [asdict(r) for r in rows],
            "median_rel_error": float(np.median(errs)) if errs else None,
            "distributions": distribution_distances(full, sample),
            "laws": {p.name: {"law": p.law, "order": p.order, "floor": p.floor, "description": p.description}
                     for p in PROPERTIES}}


def comparison_table(rows: list[PropertyComparison]) -> str:
    """A Markdown table of :func:`compare`'s rows."""
    lines = ["| property | order | law | full | sample | estimate | rel. error |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.name} | {r.order} | {r.law} | {r.full:.4g} | {r.sample:.4g} | {r.estimate:.4g} | "
                     f"{r.rel_error:.3f} |")
    return "\n".join(lines)
