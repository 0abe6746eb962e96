"""Versioned Diag-LinUCB parameters: :class:`BanditParams` and reading ``PARAMS_DIR/v=<n>/``.

Layout of one version (architecture.md, "Bandit parameters"; names and schemas in
:mod:`recsys.bandits.versions`):

* ``edges``          ``(cluster int32, item int64, d float64, b float64)`` — per edge
  ``d = λ + Σ w_uc²`` and ``b = Σ w_uc · r`` (Yi et al., RecSys 2023, arXiv 2307.15893).
* ``user_clusters``  ``(user int64, cluster int32, weight float32, path string)`` — each user's
  top-K context and where its vector came from (``personal`` | ``social``; no column: personal).
* ``popular``        ``(item int64, count int64)`` — the service's ``fallback`` items (optional).
* ``centroids``      ``(cluster int32, vector array<float32>)`` — the k-means centroids (kept to
  warm-start and match the next rebuild, see :mod:`recsys.candidates`).
* ``merged_events``  ``(event_id string, ts timestamp)`` — ids of every feedback event whose terms
  are inside ``d``/``b`` (the batch job's dedup set; an event is merged at most once).
* ``manifest.json``  :class:`~recsys.bandits.manifest.Manifest`: version, λ, α, K, W, the serving
  mode ``off_graph`` (required), the event watermark, created_at, counts.
* ``_meta.json``     producer and parameters (as every output folder).

``CURRENT`` holds one line ``v=<n>``. Publishing (:mod:`recsys.bandits.publish`, re-exported here
as ``publish_params``/``new_version_dir``) writes a hidden temporary folder, renames it to
``v=<n+1>`` and only then replaces ``CURRENT`` atomically — a reader never sees a half-written
version. The dependency runs one way: this module imports :mod:`~recsys.bandits.publish`, which
knows only the layout and the manifest.

The serving mode is the typed field :attr:`BanditParams.off_graph` (``"skip"`` or ``"prior"``,
:mod:`recsys.bandits.state`). In memory it defaults to ``"prior"`` when not given (and
``extra={"off_graph": m}`` is accepted as a spelling of it); ``extra["off_graph"]`` always holds a
read-only copy of the field for older readers. On disk the manifest states it explicitly.

For the scoring service (``recsys/serving``): ``p = load_params(dir)`` gives a frozen
:class:`BanditParams`; ``p.context(users)`` → the users' clusters and weights, ``p.candidates(
clusters)`` → the union of those clusters' items; :meth:`recsys.bandits.state.EdgeStats.from_params`
→ the statistics to score and learn with. The watermark (:class:`Watermark`) says which events the
version contains: events whose id is in ``merged_events`` — :func:`load_merged_event_ids` — and,
when the log has sequence numbers, all events with ``seq ≤ watermark.seq``; on reload re-apply
only the acknowledged events not covered.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> p = BanditParams.build(lam=1.0, alpha=0.5, k=1, w=2,
...     edge_cluster=[0, 0], edge_item=[10, 11], user=[7], user_cluster=[0], user_weight=[1.0],
...     centroids=np.zeros((1, 4), np.float32), off_graph="skip")
>>> publish_params(root, p).version
1
>>> q = load_params(root)
>>> q.version, q.off_graph, q.d.tolist(), q.candidates([0]).tolist()
(1, 'skip', [1.0, 1.0], [10, 11])
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from recsys.bandits.edge_index import edge_keys, lookup
from recsys.bandits.manifest import Manifest, Watermark, read_manifest
from recsys.bandits.publish import new_version_dir, publish_params
from recsys.bandits.state import check_off_graph
from recsys.bandits.versions import (CENTROID_SCHEMA, EDGE_SCHEMA, MERGED_EVENTS_SCHEMA, POPULAR_SCHEMA,
                                     USER_CLUSTER_SCHEMA, USER_PATHS, current_version, encode_paths, list_versions,
                                     read_table, version_dir)

log = logging.getLogger(__name__)

__all__ = [
    "BanditParams", "Watermark", "Manifest", "load_params", "publish_params", "new_version_dir", "current_version",
    "list_versions", "load_merged_event_ids", "read_manifest", "EDGE_SCHEMA", "USER_CLUSTER_SCHEMA",
    "CENTROID_SCHEMA", "MERGED_EVENTS_SCHEMA",
]


def _arr(x: Any, dtype: Any, name: str) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(x, dtype=dtype))
    if a.ndim != 1:
        raise ValueError(f"BanditParams.{name} must be 1-D, got shape {a.shape}")
    return a


def _sorted_popular(item: Sequence[int] | None, count: Sequence[int] | None) -> dict[str, np.ndarray | None]:
    """Popular items and counts sorted by count desc, item asc (None stays None)."""
    if item is None and count is None:
        return {"popular_item": None, "popular_count": None}
    i, c = np.asarray(item, np.int64), np.asarray(count, np.int64)
    if i.shape != c.shape:
        raise ValueError(f"BanditParams.popular: {i.size} items but {c.size} counts")
    o = np.lexsort((i, -c))
    return {"popular_item": i[o], "popular_count": c[o]}


@dataclass(frozen=True, eq=False)
class BanditParams:
    """One immutable parameter version (arrays are not copied; treat them as read-only).

    Edges are sorted by (cluster, item); ``user_clusters`` rows by (user, weight desc).
    ``off_graph`` is the serving mode (None when constructing: ``extra["off_graph"]`` if given,
    else ``"prior"``); ``extra`` is descriptive and carries a copy of the mode. ``user_path`` is
    each row's user path code (index into :data:`~recsys.bandits.versions.USER_PATHS`, or the
    strings; None: all ``personal``); ``popular_item``/``popular_count`` the fallback items, most
    popular first (None: none).
    """

    version: int
    lam: float
    alpha: float
    k: int
    w: int
    edge_cluster: np.ndarray
    edge_item: np.ndarray
    d: np.ndarray
    b: np.ndarray
    user: np.ndarray
    user_cluster: np.ndarray
    user_weight: np.ndarray
    centroid_ids: np.ndarray
    centroids: np.ndarray
    watermark: Watermark = Watermark()
    created_at: str = ""
    extra: dict = field(default_factory=dict)
    off_graph: str | None = None
    user_path: np.ndarray | None = None
    popular_item: np.ndarray | None = None
    popular_count: np.ndarray | None = None
    keys: np.ndarray = field(init=False, repr=False)
    _cluster_ptr: np.ndarray = field(init=False, repr=False)
    _users: np.ndarray = field(init=False, repr=False)
    _user_ptr: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        extra = dict(self.extra or {})
        legacy = extra.pop("off_graph", None)
        mode = self.off_graph if self.off_graph is not None else legacy if legacy is not None else "prior"
        if legacy is not None and legacy != mode:
            raise ValueError(f"BanditParams: off_graph={mode!r} but extra['off_graph']={legacy!r}")
        s(self, "off_graph", check_off_graph(mode, "BanditParams.off_graph"))
        s(self, "extra", {**extra, "off_graph": mode})
        if not (self.lam > 0 and math.isfinite(self.lam)):
            raise ValueError(f"BanditParams.lam must be > 0, got {self.lam}")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ValueError(f"BanditParams.alpha must be >= 0, got {self.alpha}")
        if self.k < 1 or self.w < 1:
            raise ValueError(f"BanditParams.k and w must be >= 1, got k={self.k} w={self.w}")
        for name, dt in (("edge_cluster", np.int32), ("edge_item", np.int64), ("d", np.float64), ("b", np.float64),
                         ("user", np.int64), ("user_cluster", np.int32), ("user_weight", np.float32),
                         ("centroid_ids", np.int32)):
            s(self, name, _arr(getattr(self, name), dt, name))
        s(self, "centroids", np.ascontiguousarray(np.asarray(self.centroids, dtype=np.float32)))
        n = self.edge_cluster.size
        if not (self.edge_item.size == self.d.size == self.b.size == n):
            raise ValueError("BanditParams edges: cluster, item, d, b differ in length")
        if not (self.user_cluster.size == self.user_weight.size == self.user.size):
            raise ValueError("BanditParams user_clusters: user, cluster, weight differ in length")
        if self.centroids.ndim != 2 or self.centroids.shape[0] != self.centroid_ids.size:
            raise ValueError(f"BanditParams.centroids must be (C, dim) matching centroid_ids, got {self.centroids.shape}")
        if n and not (np.isfinite(self.d).all() and np.isfinite(self.b).all()):
            raise ValueError("BanditParams edges: d and b must be finite")
        if n and self.d.min() < self.lam * (1 - 1e-12):
            raise ValueError(f"BanditParams edges: d must be >= lambda={self.lam}, got min {self.d.min()}")
        if self.user_weight.size and not (np.isfinite(self.user_weight).all() and self.user_weight.min() >= 0):
            raise ValueError("BanditParams user_clusters: weights must be finite and >= 0")
        keys = edge_keys(self.edge_cluster, self.edge_item)
        if n > 1 and not (np.diff(keys) > 0).all():
            raise ValueError("BanditParams edges must be sorted by (cluster, item) without duplicates; use BanditParams.build")
        s(self, "keys", keys)
        ncl = int(max(self.edge_cluster.max(initial=-1), self.centroid_ids.max(initial=-1))) + 1
        s(self, "_cluster_ptr", np.searchsorted(self.edge_cluster, np.arange(ncl + 1, dtype=np.int32)))
        if self.user.size > 1 and not (np.diff(self.user) >= 0).all():
            raise ValueError("BanditParams user_clusters must be sorted by user; use BanditParams.build")
        users, start = np.unique(self.user, return_index=True)
        s(self, "_users", users)
        s(self, "_user_ptr", np.append(start, self.user.size).astype(np.int64))
        up = self.user_path if self.user_path is not None else np.zeros(self.user.size, np.int8)
        up = np.asarray(up)
        up = encode_paths(up, "BanditParams.user_path") if up.dtype.kind in "OUS" else _arr(up, np.int8, "user_path")
        if up.size != self.user.size or (up.size and not ((up >= 0) & (up < len(USER_PATHS))).all()):
            raise ValueError(f"BanditParams.user_path: need one code in [0, {len(USER_PATHS)}) per user_clusters row")
        if up.size and (up != np.repeat(up[start], np.diff(self._user_ptr))).any():
            raise ValueError("BanditParams.user_path: the rows of one user must share its path")
        s(self, "user_path", up)
        pi = _arr(np.zeros(0) if self.popular_item is None else self.popular_item, np.int64, "popular_item")
        pn = _arr(np.zeros(0) if self.popular_count is None else self.popular_count, np.int64, "popular_count")
        if pi.size != pn.size or (pn.size and pn.min() < 0) or np.unique(pi).size != pi.size:
            raise ValueError("BanditParams.popular: need distinct items and counts >= 0 of equal length")
        if pi.size > 1 and (np.lexsort((pi, -pn)) != np.arange(pi.size)).any():
            raise ValueError("BanditParams.popular must be sorted by count desc, item asc; use BanditParams.build")
        s(self, "popular_item", pi)
        s(self, "popular_count", pn)

    @classmethod
    def build(cls, *, lam: float, alpha: float, k: int, w: int, edge_cluster: Sequence[int], edge_item: Sequence[int],
              user: Sequence[int], user_cluster: Sequence[int], user_weight: Sequence[float], centroids: np.ndarray,
              centroid_ids: Sequence[int] | None = None, d: Sequence[float] | None = None,
              b: Sequence[float] | None = None, version: int = 0, watermark: Watermark = Watermark(),
              extra: dict | None = None, off_graph: str | None = None, user_path: Sequence | None = None,
              popular_item: Sequence[int] | None = None, popular_count: Sequence[int] | None = None) -> "BanditParams":
        """Sort and deduplicate the inputs (d defaults to λ, b to 0) and build a version."""
        ec, ei = np.asarray(edge_cluster, np.int32), np.asarray(edge_item, np.int64)
        dd = np.full(ec.size, lam) if d is None else np.asarray(d, np.float64)
        bb = np.zeros(ec.size) if b is None else np.asarray(b, np.float64)
        keys = edge_keys(ec, ei)
        uk, first = np.unique(keys, return_index=True)
        if uk.size != keys.size:
            raise ValueError(f"BanditParams.build: {keys.size - uk.size} duplicate (cluster, item) edges")
        u, uc, uw = np.asarray(user, np.int64), np.asarray(user_cluster, np.int32), np.asarray(user_weight, np.float32)
        uo = np.lexsort((-uw, u))
        cen = np.asarray(centroids, np.float32)
        cid = np.arange(cen.shape[0], dtype=np.int32) if centroid_ids is None else np.asarray(centroid_ids, np.int32)
        return cls(version=version, lam=float(lam), alpha=float(alpha), k=int(k), w=int(w),
                   edge_cluster=ec[first], edge_item=ei[first], d=dd[first], b=bb[first],
                   user=u[uo], user_cluster=uc[uo], user_weight=uw[uo], centroid_ids=cid, centroids=cen,
                   watermark=watermark, extra=dict(extra or {}), off_graph=off_graph,
                   user_path=None if user_path is None else np.asarray(user_path)[uo],
                   **_sorted_popular(popular_item, popular_count))

    @property
    def num_edges(self) -> int:
        return int(self.keys.size)

    @property
    def num_clusters(self) -> int:
        return int(self._cluster_ptr.size - 1)

    def edge_index(self, cluster: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Row numbers of (cluster, item) edges (broadcast shapes); -1 where absent."""
        return lookup(self.keys, cluster, item)

    def cluster_items(self, cluster: int) -> np.ndarray:
        """The candidate items of one cluster (sorted)."""
        if not 0 <= cluster < self.num_clusters:
            return np.zeros(0, np.int64)
        return self.edge_item[self._cluster_ptr[cluster]:self._cluster_ptr[cluster + 1]]

    def candidates(self, clusters: Sequence[int] | np.ndarray) -> np.ndarray:
        """Union of the candidate items of ``clusters`` (sorted, unique); ids < 0 are ignored."""
        parts = [self.cluster_items(int(c)) for c in np.asarray(clusters).ravel() if c >= 0]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def candidate_matrix(self, clusters: np.ndarray) -> np.ndarray:
        """Per row of ``clusters (n, K)`` the union of those clusters' items: ``(n, M)`` int64, sorted, -1 padded."""
        cl = np.atleast_2d(np.asarray(clusters, dtype=np.int64))
        ptr = self._cluster_ptr
        ok_c = (cl >= 0) & (cl < self.num_clusters)
        safe = np.where(ok_c, cl, 0)
        lens = np.where(ok_c, ptr[safe + 1] - ptr[safe], 0)
        out = np.full((cl.shape[0], max(int(lens.sum(axis=1).max(initial=0)), 1)), -1, dtype=np.int64)
        for k in range(cl.shape[1]):  # K columns; vectorised over rows
            off = lens[:, :k].sum(axis=1)
            j = np.arange(int(lens[:, k].max(initial=0)))
            rows, cols = np.nonzero(j[None, :] < lens[:, k][:, None])
            out[rows, off[rows] + cols] = self.edge_item[ptr[safe[rows, k]] + cols]
        out = np.where(out < 0, np.iinfo(np.int64).max, out)
        out.sort(axis=1)
        dup = np.zeros(out.shape, dtype=bool)
        dup[:, 1:] = out[:, 1:] == out[:, :-1]
        out[dup] = np.iinfo(np.int64).max
        out.sort(axis=1)
        out[out == np.iinfo(np.int64).max] = -1
        return out

    @property
    def num_popular(self) -> int:
        return int(self.popular_item.size)

    def user_paths(self, users: Sequence[int] | np.ndarray) -> np.ndarray:
        """Path code of each user (index into ``USER_PATHS``); -1 for users without a context."""
        u = np.asarray(users, dtype=np.int64).ravel()
        if not self._users.size:
            return np.full(u.size, -1, np.int8)
        pos = np.minimum(np.searchsorted(self._users, u), self._users.size - 1)
        known = self._users[pos] == u
        return np.where(known, self.user_path[self._user_ptr[pos]], -1).astype(np.int8)

    def has_user(self, user: int) -> bool:
        i = np.searchsorted(self._users, user)
        return bool(i < self._users.size and self._users[i] == user)

    def context(self, users: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-K context of each user: ``clusters (n, K) int32`` (-1 padded), ``weights (n, K) float32``.

        Unknown users get an all-padding row (clusters -1, weights 0); use :meth:`has_user` to reject them.
        """
        u = np.asarray(users, dtype=np.int64).ravel()
        pos = np.searchsorted(self._users, u)
        posc = np.minimum(pos, max(self._users.size - 1, 0))
        known = (pos < self._users.size) & (self._users[posc] == u) if self._users.size else np.zeros(u.size, bool)
        start = np.where(known, self._user_ptr[posc], 0)
        cnt = np.where(known, self._user_ptr[posc + 1] - start, 0) if self._users.size else np.zeros(u.size, np.int64)
        cols = np.arange(self.k)
        ok = cols[None, :] < np.minimum(cnt, self.k)[:, None]
        idx = np.where(ok, start[:, None] + cols[None, :], 0)
        cl = np.where(ok, self.user_cluster[idx] if self.user.size else -1, -1).astype(np.int32)
        wt = np.where(ok, self.user_weight[idx] if self.user.size else 0, 0).astype(np.float32)
        return cl, wt

    def with_edges(self, cluster: np.ndarray, item: np.ndarray, d: np.ndarray, b: np.ndarray) -> "BanditParams":
        """A copy with these edges and statistics (any order; sorted here, duplicates raise)."""
        keys = edge_keys(cluster, item)
        uk, first = np.unique(keys, return_index=True)
        if uk.size != keys.size:
            raise ValueError(f"BanditParams.with_edges: {keys.size - uk.size} duplicate (cluster, item) edges")
        return self.replace(edge_cluster=np.asarray(cluster, np.int32)[first], edge_item=np.asarray(item, np.int64)[first],
                            d=np.asarray(d, np.float64)[first], b=np.asarray(b, np.float64)[first])

    def replace(self, **changes: Any) -> "BanditParams":
        """A copy with fields changed (validated again); ``extra={"off_graph": m}`` sets the mode too."""
        if "extra" in changes and "off_graph" not in changes and "off_graph" in (changes["extra"] or {}):
            changes["off_graph"] = None             # the new extra names the mode
        elif "off_graph" in changes and "extra" not in changes:
            changes["extra"] = {k: v for k, v in self.extra.items() if k != "off_graph"}
        return dataclasses.replace(self, **changes)

    # -- publishing (see recsys.bandits.publish) ------------------------------------------------
    def tables(self) -> dict[str, pa.Table]:
        """The version's Arrow tables except ``merged_events``."""
        cen = pa.FixedSizeListArray.from_arrays(pa.array(self.centroids.ravel()), self.centroids.shape[1])
        return {
            "edges": pa.table([pa.array(self.edge_cluster), pa.array(self.edge_item), pa.array(self.d), pa.array(self.b)],
                              schema=EDGE_SCHEMA),
            "user_clusters": pa.table([pa.array(self.user), pa.array(self.user_cluster), pa.array(self.user_weight),
                                       pa.array(np.asarray(USER_PATHS, dtype=object)[self.user_path], pa.string())],
                                      schema=USER_CLUSTER_SCHEMA),
            "popular": pa.table([pa.array(self.popular_item), pa.array(self.popular_count)], schema=POPULAR_SCHEMA),
            "centroids": pa.table([pa.array(self.centroid_ids), cen.cast(pa.list_(pa.float32()))], schema=CENTROID_SCHEMA),
        }

    def manifest(self, version: int, created_at: str, previous_version: int | None = None) -> Manifest:
        """The manifest of this version published as ``version``."""
        return Manifest(version=version, lam=self.lam, alpha=self.alpha, k=self.k, w=self.w, off_graph=self.off_graph,
                        watermark=self.watermark, created_at=created_at, num_edges=self.num_edges,
                        num_clusters=int(self.centroid_ids.size), num_users=int(self._users.size),
                        dim=int(self.centroids.shape[1]), previous_version=previous_version,
                        extra={k: v for k, v in self.extra.items() if k != "off_graph"})


# ----------------------------------------------------------------------------------------------- I/O

def load_params(params_dir: str | os.PathLike, version: int | None = None) -> BanditParams:
    """Load ``version`` (default: the one named by ``CURRENT``); errors name the file at fault."""
    man = read_manifest(params_dir, version)
    vdir = version_dir(params_dir, man.version)
    e = read_table(vdir / "edges", EDGE_SCHEMA)
    uc = read_table(vdir / "user_clusters", USER_CLUSTER_SCHEMA, optional=("path",))
    paths = None                                      # no column (older versions): every user is personal
    if "path" in uc.column_names:
        paths = encode_paths(uc.column("path").to_numpy(zero_copy_only=False), f"{vdir / 'user_clusters'} column path")
    pop = read_table(vdir / "popular", POPULAR_SCHEMA) if (vdir / "popular").exists() else POPULAR_SCHEMA.empty_table()
    ce = read_table(vdir / "centroids", CENTROID_SCHEMA).sort_by("cluster")
    cen_ids = ce.column("cluster").to_numpy()
    vecs = ce.column("vector").combine_chunks()
    dim = man.dim or (len(vecs[0]) if len(vecs) else 0)
    flat = vecs.values.to_numpy(zero_copy_only=False) if len(vecs) else np.zeros(0, np.float32)
    if flat.size != cen_ids.size * dim:
        raise ValueError(f"{vdir / 'centroids'}: vectors are not all of dimension {dim}")
    try:
        p = BanditParams.build(
            lam=man.lam, alpha=man.alpha, k=man.k, w=man.w, off_graph=man.off_graph, extra=man.extra,
            edge_cluster=e.column("cluster").to_numpy(), edge_item=e.column("item").to_numpy(),
            d=e.column("d").to_numpy(), b=e.column("b").to_numpy(),
            user=uc.column("user").to_numpy(), user_cluster=uc.column("cluster").to_numpy(),
            user_weight=uc.column("weight").to_numpy(), user_path=paths, centroid_ids=cen_ids,
            popular_item=pop.column("item").to_numpy(), popular_count=pop.column("count").to_numpy(),
            centroids=flat.reshape(cen_ids.size, dim), version=man.version, watermark=man.watermark)
    except ValueError as err:
        raise ValueError(f"{vdir}: {err}") from None
    object.__setattr__(p, "created_at", man.created_at)
    return p


def load_merged_event_ids(params_dir: str | os.PathLike, version: int | None = None) -> pa.Table:
    """The ``merged_events`` table ``(event_id, ts)`` of a version (empty when absent)."""
    v = current_version(params_dir) if version is None else version
    path = Path(params_dir) / f"v={v}" / "merged_events"
    if v is None or not path.exists():
        return MERGED_EVENTS_SCHEMA.empty_table()
    return read_table(path, MERGED_EVENTS_SCHEMA)
