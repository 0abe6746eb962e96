"""graphrec recommenders: DSL sparse MF-BPR / LightGCN, bandits, candidate graph, scoring service.

Kept import-light on purpose (the scoring service imports ``recsys.serving`` without torch
training code); import the concrete modules directly:

- :mod:`recsys.device` -- the one CPU/GPU device factory.
- :mod:`recsys.data` -- interactions loading and the vectorised BPR sampler.
- :mod:`recsys.mf`, :mod:`recsys.lightgcn` -- the backbones.
- :mod:`recsys.sparse_training` -- Dynamic Sparse Learning masks (Wang et al., WSDM 2024).
- :mod:`recsys.metrics` -- full-ranking Recall@K / NDCG@K (LightGCN protocol).
- :mod:`recsys.export` -- user/item vectors and sparse base tables as Parquet; ``recommend``.
- :mod:`recsys.base` -- the ``Recommender`` contract (``fit`` / ``recommend``).
- :mod:`recsys.train` -- the training CLI (``python -m recsys.train``).
"""
