"""Contextual bandits over the sparse cluster–item candidate graph (Diag-LinUCB and baselines).

Modules:
    records     typed ``ImpressionRecord`` / ``FeedbackEvent`` and their Parquet schemas.
    edge_index  (cluster, item) → edge row lookups, vectorised.
    params      the versioned parameter store ``PARAMS_DIR/v=<n>/`` + ``CURRENT`` (reading).
    publish     atomic publishing of a new version.
    spark       the batch update over DataFrames (imported by ``jobs/bandit_update.py`` only).
    simulate    offline replay simulator; feedback_sim: simulated impression/feedback logs.
    base        the ``BanditPolicy`` contract; diag_linucb, linucb, egreedy, random_policy implement it.
"""
from recsys.bandits.params import BanditParams, Watermark, load_params
from recsys.bandits.publish import publish_params
from recsys.bandits.records import FeedbackEvent, ImpressionRecord

__all__ = ["BanditParams", "Watermark", "load_params", "publish_params", "FeedbackEvent", "ImpressionRecord"]
