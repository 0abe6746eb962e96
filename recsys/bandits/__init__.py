"""Contextual bandits over the sparse cluster–item candidate graph (Diag-LinUCB and baselines).

Modules (imports run downwards only: edge_index ← state ← versions/manifest ← publish ← params):
    edge_index  the one (cluster, item) key layout and the growable edge index.
    state       the one Diag-LinUCB state (``EdgeStats``: score, apply, merge of partial sums),
                used by the offline policy, the scoring service and the batch job.
    versions    the ``PARAMS_DIR/v=<n>/`` + ``CURRENT`` layout and table schemas.
    manifest    the typed ``manifest.json`` (``Manifest``, ``Watermark``; the serving mode ``off_graph``).
    publish     atomic publishing of a new version.
    params      ``BanditParams`` (one version in memory) and reading a version.
    records     typed ``ImpressionRecord`` / ``FeedbackEvent`` and their Parquet schemas.
    spark       the batch update's DataFrame side (imported by ``jobs/bandit_update.py`` only).
    simulate    offline replay simulator; feedback_sim: simulated impression/feedback logs.
    base        the ``BanditPolicy`` contract; diag_linucb, linucb, egreedy, random_policy implement it.
"""
from recsys.bandits.params import BanditParams, Watermark, load_params
from recsys.bandits.publish import publish_params
from recsys.bandits.records import FeedbackEvent, ImpressionRecord

__all__ = ["BanditParams", "Watermark", "load_params", "publish_params", "FeedbackEvent", "ImpressionRecord"]
