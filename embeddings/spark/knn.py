"""The kNN job's search as a ``mapInPandas`` body (the index is built once per Python worker)."""
from __future__ import annotations

import numpy as np
import pandas as pd


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
