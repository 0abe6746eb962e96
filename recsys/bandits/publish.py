"""Publishing a parameter version atomically: ``PARAMS_DIR/v=<n+1>/`` then ``CURRENT``.

A new version is written to a hidden temporary folder inside ``PARAMS_DIR``, fsynced, renamed to
``v=<n>`` and only then ``CURRENT`` is replaced (``os.replace`` of a fsynced temporary file), all
under an exclusive ``flock`` on ``PARAMS_DIR/.publish.lock`` — concurrent publishers serialise and a
reader never sees a half-written version. See :mod:`recsys.bandits.versions` for the layout.

This module depends only on the layout and the manifest, never on :mod:`recsys.bandits.params`:
a version to publish is any object with ``tables()`` (name → Arrow table) and ``manifest(version,
created_at, previous_version)`` (:class:`~recsys.bandits.manifest.Manifest`), which
:class:`~recsys.bandits.params.BanditParams` provides.

>>> import tempfile
>>> import numpy as np
>>> from recsys.bandits.params import BanditParams
>>> root = Path(tempfile.mkdtemp())
>>> p = BanditParams.build(lam=1.0, alpha=0.5, k=1, w=1, edge_cluster=[0], edge_item=[3], user=[1],
...     user_cluster=[0], user_weight=[1.0], centroids=np.zeros((1, 2), np.float32), off_graph="skip")
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

from recsys.bandits.versions import MERGED_EVENTS_SCHEMA, current_version, list_versions

log = logging.getLogger(__name__)

__all__ = ["ANY_VERSION", "new_version_dir", "write_version", "publish_params"]

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


def write_version(out: Path, params: Any, version: int, created_at: str, merged_events: pa.Table | None = None,
                  with_merged_events: bool = True, previous_version: int | None = None) -> None:
    """Write the tables of ``params`` and ``manifest.json`` into the (temporary) version folder ``out``.

    ``merged_events`` (``(event_id, ts)``; None: an empty table) is written unless
    ``with_merged_events`` is False (the batch job writes that table with Spark).
    """
    from graphs.atomic import write_json

    tables = dict(params.tables())
    if with_merged_events:
        tables["merged_events"] = (MERGED_EVENTS_SCHEMA.empty_table() if merged_events is None
                                   else merged_events.select(MERGED_EVENTS_SCHEMA.names).cast(MERGED_EVENTS_SCHEMA))
    for name, t in tables.items():
        (out / name).mkdir()
        pq.write_table(t, out / name / "part-00000.parquet")
    write_json(out / "manifest.json", params.manifest(version, created_at, previous_version).to_json())


def publish_params(params_dir: str | os.PathLike, params: Any, merged_events: pa.Table | None = None,
                   producer: str = "recsys.bandits.params", meta: dict | None = None,
                   expect_current: int | None | object = ANY_VERSION, previous_version: int | None = None) -> Any:
    """Publish ``params`` as the next version (its ``version`` field is ignored) and return it as published.

    Args:
        params_dir: the ``PARAMS_DIR`` root.
        params: a :class:`~recsys.bandits.params.BanditParams` (statistics, contexts, centroids).
        merged_events: the ``(event_id, ts)`` ids contained in the statistics (carry the previous
            version's table forward when rebuilding). None: an empty set.
        producer: recorded in ``_meta.json``.
        meta: extra ``_meta.json`` fields (parameters, timings).
        expect_current: fail unless ``CURRENT`` is still this version (see :func:`new_version_dir`).
        previous_version: recorded in the manifest (the version ``params`` was computed from).
    """
    from graphs.atomic import write_meta

    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with new_version_dir(params_dir, expect_current) as (tmp, n):
        write_version(tmp, params, n, created, merged_events, previous_version=previous_version)
        write_meta(tmp, producer, meta or {}, version=n, rows={"edges": params.num_edges, "user_clusters": int(params.user.size),
                                                              "merged_events": 0 if merged_events is None else merged_events.num_rows})
    return params.replace(version=n, created_at=created)
