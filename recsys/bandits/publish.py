"""Publishing a parameter version atomically: ``PARAMS_DIR/v=<n+1>/`` then ``CURRENT``.

A new version is written to a hidden temporary folder inside ``PARAMS_DIR``, fsynced, renamed to
``v=<n>`` and only then ``CURRENT`` is replaced (``os.replace`` of a fsynced temporary file), all
under an exclusive ``flock`` on ``PARAMS_DIR/.publish.lock`` — concurrent publishers serialise and a
reader never sees a half-written version. See :mod:`recsys.bandits.params` for the layout.

>>> import tempfile
>>> import numpy as np
>>> from recsys.bandits.params import BanditParams, current_version
>>> root = Path(tempfile.mkdtemp())
>>> p = BanditParams.build(lam=1.0, alpha=0.5, k=1, w=1, edge_cluster=[0], edge_item=[3], user=[1],
...     user_cluster=[0], user_weight=[1.0], centroids=np.zeros((1, 2), np.float32))
>>> [publish_params(root, p).version for _ in range(2)], current_version(root)
([1, 2], 2)
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from recsys.bandits.params import (CENTROID_SCHEMA, EDGE_SCHEMA, MERGED_EVENTS_SCHEMA, USER_CLUSTER_SCHEMA,
                                   BanditParams, current_version, list_versions)

log = logging.getLogger(__name__)

__all__ = ["ANY_VERSION", "new_version_dir", "publish_params", "manifest_dict", "write_tables"]

ANY_VERSION = object()  # no expectation about CURRENT


@contextmanager
def new_version_dir(params_dir: str | os.PathLike, expect_current: int | None | object = ANY_VERSION) -> Iterator[tuple[Path, int]]:
    """Yield ``(tmp_dir, n)`` for the next version; on success publish it as ``v=<n>`` and move CURRENT.

    Held under an exclusive lock, so concurrent publishers serialise. The block must write the
    tables and ``manifest.json`` into ``tmp_dir``; on an exception nothing is published.
    ``expect_current`` (the version the new one was derived from; None: nothing published yet)
    makes publishing fail if ``CURRENT`` moved meanwhile, so a concurrent publisher's version is
    never silently overwritten by one computed from an older base.
    """
    root = Path(params_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".publish.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if expect_current is not ANY_VERSION and current_version(root) != expect_current:
                raise RuntimeError(f"{root}: CURRENT is v={current_version(root)}, but this version was computed "
                                   f"from v={expect_current}; nothing published — re-run on the current version")
            n = max(list_versions(root) + [current_version(root) or 0]) + 1
            tmp = root / f".v={n}.tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                yield tmp, n
                if not (tmp / "manifest.json").exists():
                    raise RuntimeError(f"version {n}: manifest.json was not written")
                _fsync_tree(tmp)
                os.rename(tmp, root / f"v={n}")
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            cur_tmp = root / f".CURRENT.tmp-{uuid.uuid4().hex[:8]}"
            with open(cur_tmp, "w") as f:
                f.write(f"v={n}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(cur_tmp, root / "CURRENT")
            log.info("published %s/v=%d", root, n)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def manifest_dict(p: BanditParams, version: int, created_at: str, **extra_fields: Any) -> dict[str, Any]:
    """The ``manifest.json`` content of ``p`` published as ``version``."""
    return {
        "version": version, "lambda": p.lam, "alpha": p.alpha, "K": p.k, "W": p.w,
        "watermark": p.watermark.to_json(), "created_at": created_at, "num_edges": p.num_edges,
        "num_clusters": int(p.centroid_ids.size), "num_users": int(p._users.size),
        "dim": int(p.centroids.shape[1]), "extra": p.extra, **extra_fields,
    }


def write_tables(p: BanditParams, out: Path, merged_events: pa.Table | None = None) -> None:
    """Write the Parquet tables of ``p`` into ``out`` (one part file per table)."""
    tables = {
        "edges": pa.table([pa.array(p.edge_cluster), pa.array(p.edge_item), pa.array(p.d), pa.array(p.b)], schema=EDGE_SCHEMA),
        "user_clusters": pa.table([pa.array(p.user), pa.array(p.user_cluster), pa.array(p.user_weight)], schema=USER_CLUSTER_SCHEMA),
        "centroids": pa.table([pa.array(p.centroid_ids),
                               pa.FixedSizeListArray.from_arrays(pa.array(p.centroids.ravel()), p.centroids.shape[1]).cast(pa.list_(pa.float32()))],
                              schema=CENTROID_SCHEMA),
        "merged_events": (MERGED_EVENTS_SCHEMA.empty_table() if merged_events is None
                          else merged_events.select(MERGED_EVENTS_SCHEMA.names).cast(MERGED_EVENTS_SCHEMA)),
    }
    for name, t in tables.items():
        (out / name).mkdir()
        pq.write_table(t, out / name / "part-00000.parquet")


def publish_params(params_dir: str | os.PathLike, params: BanditParams, merged_events: pa.Table | None = None,
                   producer: str = "recsys.bandits.params", meta: dict | None = None,
                   expect_current: int | None | object = ANY_VERSION) -> BanditParams:
    """Publish ``params`` as the next version (its ``version`` field is ignored) and return it as published.

    Args:
        params_dir: the ``PARAMS_DIR`` root.
        params: the statistics, contexts and centroids.
        merged_events: the ``(event_id, ts)`` ids contained in the statistics (carry the previous
            version's table forward when rebuilding). None: an empty set.
        producer: recorded in ``_meta.json``.
        meta: extra ``_meta.json`` fields (parameters, timings).
        expect_current: fail unless ``CURRENT`` is still this version (see :func:`new_version_dir`).
    """
    from graphs.atomic import write_json, write_meta

    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with new_version_dir(params_dir, expect_current) as (tmp, n):
        write_tables(params, tmp, merged_events)
        write_meta(tmp, producer, meta or {}, version=n, rows={"edges": params.num_edges, "user_clusters": int(params.user.size),
                                                              "merged_events": 0 if merged_events is None else merged_events.num_rows})
        write_json(tmp / "manifest.json", manifest_dict(params, n, created))
    return params.replace(version=n, created_at=created)
