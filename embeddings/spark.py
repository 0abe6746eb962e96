"""DistNE on Spark DataFrames: capped label propagation, quotient graph, part subgraphs embedded in
``applyInPandas`` tasks, alignment, and fusion by propagation with neighbour exchanges between parts.

Imported only by ``jobs/``. The driver never collects edges: it only sums ``d × d`` Gram matrices (one
per task) and reads a few counts. The per-task numerics are the pure functions of
:mod:`embeddings.distne`, :mod:`embeddings.partition` and :mod:`embeddings.fusion`, so the Spark run
and :class:`embeddings.distne.DistNE` follow the same steps (see those modules for the design).
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from embeddings.distne import DistNEConfig

log = logging.getLogger(__name__)

VEC = "array<float>"


def undirected_edges(edges: DataFrame, dedup: bool = True) -> DataFrame:
    """``(a, b, w)`` with ``a < b``: each unordered pair once, self-loops dropped, weight = max over directions.

    ``dedup=False`` trusts an undirected ingest output (each pair stored once) and skips the shuffle.
    """
    missing = {"src", "dst"} - set(edges.columns)
    if missing:
        raise ValueError(f"edges table lacks column(s) {sorted(missing)} (expected src, dst[, weight])")
    w = F.col("weight").cast("float") if "weight" in edges.columns else F.lit(1.0).cast("float")
    e = edges.select(F.col("src").cast("long").alias("s"), F.col("dst").cast("long").alias("d"), w.alias("w"))
    e = e.where(F.col("s") != F.col("d"))
    if not dedup:
        return e.select(F.least("s", "d").alias("a"), F.greatest("s", "d").alias("b"), "w")
    return (e.select(F.least("s", "d").alias("a"), F.greatest("s", "d").alias("b"), "w")
            .groupBy("a", "b").agg(F.max("w").alias("w")))


def both_directions(und: DataFrame) -> DataFrame:
    """``(src, dst, w)`` holding each undirected edge in both directions."""
    return und.select(F.col("a").alias("src"), F.col("b").alias("dst"), "w").unionByName(
        und.select(F.col("b").alias("src"), F.col("a").alias("dst"), "w"))


def lpa_round(sym: DataFrame, labels: DataFrame, cap: int, r: int) -> DataFrame:
    """One round of capped label propagation (same rule as :func:`embeddings.partition.label_propagation`)."""
    sizes = labels.groupBy("label").agg(F.count("*").alias("size"))
    score = (sym.join(labels.select(F.col("id").alias("dst"), F.col("label").alias("lab")), "dst")
             .groupBy("src", "lab").agg(F.sum("w").alias("s"))
             .join(labels.select(F.col("id").alias("src"), F.col("label").alias("own")), "src"))
    own = score.where(F.col("lab") == F.col("own")).select("src", F.col("s").alias("own_s"))
    cand = (score.where((F.col("lab") != F.col("own")) & (F.col("src") % 2 == r % 2))
            .join(sizes.where(F.col("size") < cap).select(F.col("label").alias("lab")), "lab"))
    win = Window.partitionBy("src").orderBy(F.col("s").desc(), F.col("lab").asc())
    best = cand.withColumn("rk", F.row_number().over(win)).where(F.col("rk") == 1)
    moves = (best.join(own, "src", "left").where(F.col("s") > F.coalesce(F.col("own_s"), F.lit(0.0)))
             .select(F.col("src").alias("id"), F.col("lab").alias("new")))
    return (labels.join(moves, "id", "left")
            .select("id", F.coalesce("new", "label").alias("label")))


def split_and_renumber(labels: DataFrame, cap: int) -> DataFrame:
    """Split labels above ``cap`` by rank of id and renumber ``0..n_c-1`` by (label, sub) order."""
    rk = F.row_number().over(Window.partitionBy("label").orderBy("id")) - 1
    lab = labels.withColumn("sub", F.floor(rk / cap))
    keys = lab.select("label", "sub").distinct()
    keys = keys.withColumn("cluster", F.row_number().over(Window.orderBy("label", "sub")) - 1)
    return lab.join(keys, ["label", "sub"]).select("id", F.col("cluster").cast("long").alias("cluster"))


def quotient(sym: DataFrame, node_cluster: DataFrame) -> DataFrame:
    """Quotient edges ``(a, b, w)``, ``a < b`` clusters, summed weights."""
    q = (sym.join(node_cluster.select(F.col("id").alias("src"), F.col("cluster").alias("a")), "src")
         .join(node_cluster.select(F.col("id").alias("dst"), F.col("cluster").alias("b")), "dst")
         .where(F.col("a") < F.col("b")).groupBy("a", "b").agg(F.sum("w").cast("float").alias("w")))
    return q


def coarsen(spark: SparkSession, und: DataFrame, nodes: DataFrame, n: int, cfg: DistNEConfig,
            budget: int) -> tuple[DataFrame, list[int]]:
    """Levels of capped label propagation until ≤ ``budget`` clusters; returns ``(id, cluster)``."""
    node_cluster = nodes.select("id", F.col("id").alias("cluster"))
    cur_und, cur_n, counts = und, n, []
    while cur_n > budget:
        cap = cfg.lpa_cap(cur_n, budget)
        sym = both_directions(cur_und).localCheckpoint()
        labels = sym.select(F.col("src").alias("id")).distinct().withColumn("label", F.col("id"))
        for r in range(cfg.lpa_rounds):
            labels = lpa_round(sym, labels, cap, r).localCheckpoint()
        level = split_and_renumber(labels, cap).localCheckpoint()
        new_n = level.agg(F.max("cluster")).first()[0] + 1
        if new_n >= cur_n:
            raise RuntimeError(f"coarsening made no progress at {cur_n} clusters (cap {cap})")
        node_cluster = (node_cluster.join(level.select(F.col("id").alias("cluster"), F.col("cluster").alias("c2")),
                                          "cluster").select("id", F.col("c2").alias("cluster")).localCheckpoint())
        cur_und = quotient(sym, level).localCheckpoint()
        cur_n = new_n
        counts.append(int(new_n))
    return node_cluster, counts


def _top_task(cfg: DistNEConfig, max_part: int):
    def run(qdf: pd.DataFrame, sdf: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import top_level
        from embeddings.prone import blas_threads

        nc = len(sdf)
        sizes = np.zeros(nc, np.int64)
        sizes[sdf["cluster"].to_numpy()] = sdf["size"].to_numpy()
        a, b, w = qdf["a"].to_numpy(), qdf["b"].to_numpy(), qdf["w"].to_numpy(np.float32)
        q = sp.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(nc, nc)).tocsr()
        with blas_threads(1):
            z, part = top_level(q, sizes, cfg, max_part)
        return pd.DataFrame({"cluster": np.arange(nc, dtype=np.int64), "part": part.astype(np.int32),
                             "z": list(z)})
    return run


def _part_task(cfg: DistNEConfig):
    def run(rows: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import embed_part
        from embeddings.partition import build_part_subgraph
        from embeddings.prone import blas_threads

        part = int(rows["part"].iloc[0])
        kind = rows["kind"].to_numpy()
        x, y, w = rows["x"].to_numpy(), rows["y"].to_numpy(), rows["w"].to_numpy(np.float32)
        nodes = np.unique(x[kind == 3])
        anchors = anchors.sort_values("cluster")
        proxies = anchors["cluster"].to_numpy(np.int64)
        trip = [(x[kind == k], y[kind == k], w[kind == k]) for k in (0, 1, 2)]
        sub = build_part_subgraph(part, nodes, proxies, *trip)
        zp = np.stack(anchors["z"].to_numpy()).astype(np.float32) if len(proxies) else np.zeros((0, cfg.dim), np.float32)
        with blas_threads(1):
            vec = embed_part(sub, zp, cfg)
        h_edges = sp.triu(sub.adjacency, k=1).nnz
        return pd.DataFrame({"id": nodes, "part": np.int32(part), "vector": list(vec),
                             "h_nodes": np.int64(sub.adjacency.shape[0]), "h_edges": np.int64(h_edges)})
    return run


def _round_task(k: int, order: int, cfg: DistNEConfig):
    def run(vecs: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings import fusion

        own = vecs[vecs["own"]].sort_values("id")
        ids = own["id"].to_numpy()
        halo = vecs[~vecs["own"]]
        all_ids = np.r_[ids, halo["id"].to_numpy()]
        order_ix = np.argsort(all_ids)
        cur = np.stack(np.r_[own["cur"].to_numpy(), halo["cur"].to_numpy()]).astype(np.float32)
        rows = np.searchsorted(ids, edges["src"].to_numpy())
        cols = order_ix[np.searchsorted(all_ids[order_ix], edges["dst"].to_numpy())]
        w = edges["w"].to_numpy(np.float32)
        a = sp.csr_matrix((w, (rows, cols)), shape=(len(ids), len(all_ids)))
        deg = 1.0 + np.asarray(a.sum(axis=1)).ravel().astype(np.float32)
        ay = ((cur[: len(ids)] + a @ cur) / deg[:, None]).astype(np.float32)
        d = cfg.dim
        state = np.stack(own["state"].to_numpy()).astype(np.float32).reshape(len(ids), len(fusion.SLOTS), d)
        state, nxt = fusion.step(k, state, ay, deg, order, cfg.mu, cfg.theta)
        return pd.DataFrame({"id": ids, "part": own["part"].to_numpy(np.int32), "own": True,
                             "state": list(state.reshape(len(ids), -1)), "cur": list(nxt)})
    return run


def _gram(batches):
    for pdf in batches:
        m = np.stack(pdf["cur"].to_numpy()).astype(np.float64) if len(pdf) else None
        if m is not None:
            yield pd.DataFrame({"g": [(m.T @ m).ravel()]})


def _apply_map(mp: np.ndarray):
    def run(batches):
        for pdf in batches:
            m = np.stack(pdf["cur"].to_numpy()).astype(np.float32) @ mp
            m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
            yield pd.DataFrame({"id": pdf["id"], "vector": list(m.astype(np.float32))})
    return run


def _single_task(cfg: DistNEConfig):
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        ids = np.unique(np.r_[pdf["a"].to_numpy(), pdf["b"].to_numpy()])
        a, b = np.searchsorted(ids, pdf["a"].to_numpy()), np.searchsorted(ids, pdf["b"].to_numpy())
        w = pdf["w"].to_numpy(np.float32)
        adj = sp.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(len(ids), len(ids))).tocsr()
        return pd.DataFrame({"id": ids, "vector": list(cfg.prone().fit_transform(adj))})
    return run


def embed(spark: SparkSession, edges: DataFrame, vertices: DataFrame, cfg: DistNEConfig,
          directed: bool = True) -> tuple[DataFrame, dict]:
    """Run DistNE; return ``(vectors(id, vector), meta)`` — ``vectors`` covers every vertex id.

    ``directed=False`` declares the input an undirected ingest output (pairs stored once).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    und = undirected_edges(edges, dedup=directed).localCheckpoint()
    m_edges = und.count()
    nodes = both_directions(und).select(F.col("src").alias("id")).distinct().localCheckpoint()
    n = nodes.count()
    max_part, budget = cfg.sizes(n)
    timings["read_s"] = time.perf_counter() - t0
    meta: dict = {"dim": cfg.dim, "nodes_with_edges": n, "edges": m_edges, "max_subgraph_nodes": cfg.resolved_m()}
    if n <= cfg.resolved_m():
        vec = und.withColumn("g", F.lit(0)).groupBy("g").applyInPandas(
            _single_task(cfg), f"id long, vector {VEC}")
        meta.update(levels=1, parts=1, edge_cut_fraction=0.0, largest_subgraph_nodes=n, embedded_edges_multiple=1.0)
    else:
        node_cluster, counts = coarsen(spark, und, nodes, n, cfg, budget)
        timings["coarsen_s"] = time.perf_counter() - t0 - sum(timings.values())
        sym = both_directions(und)
        q = quotient(sym, node_cluster).localCheckpoint()
        sizes = node_cluster.groupBy("cluster").agg(F.count("*").alias("size"))
        top = (q.withColumn("g", F.lit(0)).groupBy("g")
               .cogroup(sizes.withColumn("g", F.lit(0)).groupBy("g"))
               .applyInPandas(_top_task(cfg, max_part), f"cluster long, part int, z {VEC}")).localCheckpoint()
        timings["top_s"] = time.perf_counter() - t0 - sum(timings.values())
        npart = node_cluster.join(top.select("cluster", "part"), "cluster").localCheckpoint()
        s_ = npart.select(F.col("id").alias("a"), F.col("cluster").alias("ca"), F.col("part").alias("pa"))
        t_ = npart.select(F.col("id").alias("b"), F.col("cluster").alias("cb"), F.col("part").alias("pb"))
        ann = und.join(s_, "a").join(t_, "b")
        cols = ["part", "kind", "x", "y", "w"]
        internal = ann.where(F.col("pa") == F.col("pb")).select(F.col("pa").alias("part"), F.lit(0).alias("kind"),
                                                                F.col("a").alias("x"), F.col("b").alias("y"), "w")
        cut = ann.where(F.col("pa") != F.col("pb"))
        cut_rows = cut.select(F.col("pa").alias("part"), F.lit(1).alias("kind"), F.col("a").alias("x"),
                              F.col("cb").alias("y"), "w").unionByName(
            cut.select(F.col("pb").alias("part"), F.lit(1).alias("kind"), F.col("b").alias("x"),
                       F.col("ca").alias("y"), "w"))
        parts = top.select("part").distinct()
        cp = top.select("cluster", "part")
        qa = (q.join(cp.select(F.col("cluster").alias("a"), F.col("part").alias("qa")), "a")
              .join(cp.select(F.col("cluster").alias("b"), F.col("part").alias("qb")), "b"))
        coarse_rows = (qa.crossJoin(F.broadcast(parts)).where((F.col("part") != F.col("qa")) & (F.col("part") != F.col("qb")))
                       .select("part", F.lit(2).alias("kind"), F.col("a").alias("x"), F.col("b").alias("y"), "w"))
        node_rows = npart.select("part", F.lit(3).alias("kind"), F.col("id").alias("x"), F.lit(-1).cast("long").alias("y"),
                                 F.lit(0.0).cast("float").alias("w"))
        rows = internal.select(cols).unionByName(cut_rows.select(cols)).unionByName(coarse_rows.select(cols)).unionByName(node_rows.select(cols))
        anchors = (top.select("cluster", F.col("part").alias("cpart"), "z").crossJoin(F.broadcast(parts))
                   .where(F.col("part") != F.col("cpart")).select("part", "cluster", "z"))
        parted = (rows.groupBy("part").cogroup(anchors.groupBy("part"))
                  .applyInPandas(_part_task(cfg), f"id long, part int, vector {VEC}, h_nodes long, h_edges long")
                  .localCheckpoint())
        hs = parted.groupBy("part").agg(F.max("h_nodes").alias("hn"), F.max("h_edges").alias("he")).agg(
            F.max("hn"), F.sum("hn"), F.sum("he"), F.count("*")).first()
        cut_n = cut.count()
        q_edges = q.count()
        timings["parts_s"] = time.perf_counter() - t0 - sum(timings.values())
        border = cut.select(F.col("a").alias("id")).unionByName(cut.select(F.col("b").alias("id"))).distinct().count()
        meta.update(levels=len(counts) + 1, parts=int(hs[3]), coarsening_clusters=counts,
                    edge_cut_fraction=cut_n / max(m_edges, 1), largest_subgraph_nodes=int(hs[0]),
                    border_nodes_fraction=border / n,
                    per_level={"top": {"nodes_frac": counts[-1] / n, "edges_frac": q_edges / max(m_edges, 1)},
                               "parts": {"nodes_frac": int(hs[1]) / n, "edges_frac": int(hs[2]) / max(m_edges, 1)}},
                    embedded_edges_multiple=(int(hs[2]) + q_edges) / max(m_edges, 1))
        vec = parted.select("id", "vector")
        if cfg.refine_order >= 2:
            vec = refine(sym, npart, parted, cfg, meta)
            timings["fusion_s"] = time.perf_counter() - t0 - sum(timings.values())
    out = (vertices.select(F.col("id").cast("long").alias("id")).join(vec, "id", "left")
           .select("id", F.coalesce("vector", F.array_repeat(F.lit(0.0).cast("float"), cfg.dim)).alias("vector")))
    meta["timings"] = timings
    return out, meta


def refine(sym: DataFrame, npart: DataFrame, parted: DataFrame, cfg: DistNEConfig, meta: dict) -> DataFrame:
    """Fusion by propagation: ``2(order−1)+1`` rounds, each exchanging neighbour vectors between parts."""
    from embeddings import fusion

    order, d, s = cfg.refine_order, cfg.dim, len(fusion.SLOTS)
    p = npart.select("id", "part")
    edges = sym.join(p.select(F.col("id").alias("src"), "part"), "src").localCheckpoint()
    halo_ids = (edges.join(p.select(F.col("id").alias("dst"), F.col("part").alias("pd")), "dst")
                .where(F.col("part") != F.col("pd")).select("part", F.col("dst").alias("id")).distinct().localCheckpoint())
    meta["exchange_rows_per_round"] = halo_ids.count()

    def init(batches):
        for pdf in batches:
            x = np.stack(pdf["vector"].to_numpy()).astype(np.float32)
            st, cur = fusion.init_state(x)
            yield pd.DataFrame({"id": pdf["id"], "part": pdf["part"], "own": True,
                                "state": list(st.reshape(len(x), s * d)), "cur": list(cur)})

    schema = f"id long, part int, own boolean, state {VEC}, cur {VEC}"
    state = parted.select("id", "part", "vector").mapInPandas(init, schema)
    for k in range(fusion.n_products(order)):
        halo = (halo_ids.join(state.select("id", "cur"), "id")
                .select("id", "part", F.lit(False).alias("own"), F.lit(None).cast(VEC).alias("state"), "cur"))
        state = (state.unionByName(halo).groupBy("part").cogroup(edges.groupBy("part"))
                 .applyInPandas(_round_task(k, order, cfg), schema).localCheckpoint())
    grams = state.select("cur").mapInPandas(_gram, f"g array<double>").collect()
    mp = fusion.final_map(np.sum([np.asarray(r["g"]).reshape(d, d) for r in grams], axis=0), d)
    return state.select("id", "cur").mapInPandas(_apply_map(mp), f"id long, vector {VEC}")


def knn_batches(path: str, cfg, sample_mod: int):
    """``mapInPandas`` body of the kNN job: ``(id, excl)`` batches → ``(id, neighbor, score, rank, hit)``.

    ``hit`` is 1/0 for queries with ``id % sample_mod == 0`` (neighbour also in the exact top-k), −1 otherwise.
    """
    def run(batches):
        from embeddings.knn import cached_searchers

        searcher, exact = cached_searchers(path, cfg)
        for pdf in batches:
            ids = pdf["id"].to_numpy(np.int64)
            excl = [np.asarray(e if e is not None else [], np.int64) for e in pdf["excl"]]
            nb, sc = searcher.search(ids, excl)
            hit = np.full(nb.shape, -1, np.int32)
            sampled = np.flatnonzero(ids % sample_mod == 0) if exact is not None else np.empty(0, np.int64)
            if len(sampled):
                ex, _ = exact.search(ids[sampled], [excl[i] for i in sampled])
                for j, r in enumerate(sampled):
                    hit[r] = np.isin(nb[r], ex[j][ex[j] >= 0]).astype(np.int32)
            rank = np.tile(np.arange(1, nb.shape[1] + 1, dtype=np.int16), len(ids))
            yield pd.DataFrame({"id": np.repeat(ids, nb.shape[1]), "neighbor": nb.ravel(), "score": sc.ravel(),
                                "rank": rank, "hit": hit.ravel()})
    return run
