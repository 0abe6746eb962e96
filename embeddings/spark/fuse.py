"""DistNE's fusion on Spark: ``2(order−1)+1`` propagation rounds of messages between the part tasks, then the
final map from the parts' Gram matrices (:mod:`embeddings.fusion` holds the per-node numerics)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from embeddings.distne import DistNEConfig
from embeddings.spark.codec import ARC, arcs_of, unpack_rows
from embeddings.spark.parts import messages, part_key, subscribers
from embeddings.spark.rows import GRAM_ID, MSG
from embeddings.spark.sizing import checkpoint


def fuse(arcs: DataFrame, msgs: DataFrame, cfg: DistNEConfig, slots: int) -> DataFrame:
    """Fusion by propagation: ``2(order−1)+1`` message rounds, each one grouping of the messages (own state
    + one vector per (node, neighbouring part) pair) with the slot's packed edges ``arcs``
    (:func:`~embeddings.spark.codec.arc_chunks`). The last
    round also emits each task's Gram matrix ``curᵀcur`` as a row ``id =`` :data:`~embeddings.spark.rows.GRAM_ID`
    (float64 in ``state``)."""
    from embeddings import fusion

    e = arcs.groupBy("pk")
    for k in range(fusion.n_products(cfg.refine_order)):
        m = msgs.withColumn("pk", part_key(slots)).groupBy("pk")
        msgs = checkpoint(e.cogroup(m).applyInPandas(round_task(k, cfg), MSG))
    return msgs


def fusion_map(grams: list, d: int) -> np.ndarray:
    """The final ``d × d`` map from the per-part Gram matrices (float64 bytes; the only vector-derived
    data on the driver)."""
    from embeddings import fusion

    return fusion.final_map(np.sum([np.frombuffer(bytes(g), np.float64).reshape(d, d) for g in grams], axis=0), d)


def round_task(k: int, cfg: DistNEConfig):
    """Fusion product ``k`` for the parts of one task slot: ``Ã·cur`` over each part's edges and its halo,
    the node-local step, and the next round's messages (:func:`embeddings.fusion.step`; only the live
    state slots are carried). Input: the slot's edges (pre-partitioned once) and the messages sent to it."""
    def run(arcs: pd.DataFrame, msgs: pd.DataFrame) -> pd.DataFrame:
        by_part, m_part = arcs_of(arcs), msgs["part"].to_numpy()
        none = np.zeros(0, ARC)
        outs = [one_part(int(p), by_part.get(int(p), none), msgs[m_part == p]) for p in np.unique(m_part)]
        if not outs:
            return pd.DataFrame({"part": np.zeros(0, np.int32), "id": np.zeros(0, np.int64),
                                 "own": np.zeros(0, bool), "cur": [], "state": []})
        return pd.concat(outs, ignore_index=True)

    def one_part(part: int, arcs: np.ndarray, msgs: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings import fusion

        order, d = cfg.refine_order, cfg.dim
        own_m = msgs["own"].to_numpy(bool)
        own = msgs[own_m].sort_values("id")
        # halo rows arrive in the shuffle's order, which varies between runs on a cluster: sorted by id, every row's
        # neighbours are summed in the same order, so a re-run (or a retried task) gives the same bits
        halo = msgs[~own_m].drop_duplicates("id").sort_values("id", kind="stable")
        ids = own["id"].to_numpy(np.int64)
        all_ids = np.r_[ids, halo["id"].to_numpy(np.int64)]
        order_ix = np.argsort(all_ids, kind="stable")
        cur = np.r_[unpack_rows(own["cur"], d), unpack_rows(halo["cur"], d)]
        src, dst = arcs["src"], arcs["dst"]
        rows = np.searchsorted(ids, src)
        cols = order_ix[np.searchsorted(all_ids[order_ix], dst)]
        w = arcs["w"]
        a = sp.csr_matrix((w, (rows, cols)), shape=(len(ids), len(all_ids)))
        deg = 1.0 + np.asarray(a.sum(axis=1)).ravel().astype(np.float32)
        ay = ((cur[: len(ids)] + a @ cur) / deg[:, None]).astype(np.float32)
        slots = fusion.live_slots(k - 1, order) if k else ()
        packed = unpack_rows(own["state"], len(slots) * d) if slots else None
        state = fusion.unpack_state(packed, len(ids), d, k, order, cur[: len(ids)])
        state, nxt = fusion.step(k, state, ay, deg, order, cfg.mu, cfg.theta)
        keep = fusion.live_slots(k, order)
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        last = k == fusion.n_products(order) - 1
        subs = none if last else subscribers(src, arcs["pd"].astype(np.int64), part)
        out = messages(part, ids, nxt, state[:, list(keep)] if keep else None, subs)
        if last:  # this part's share of the global Gram matrix of the final map
            g = nxt.astype(np.float64)
            out = pd.concat([out, pd.DataFrame({"part": [np.int32(part)], "id": [np.int64(GRAM_ID)], "own": [False],
                                                "cur": [b""], "state": [(g.T @ g).tobytes()]})], ignore_index=True)
        return out
    return run
