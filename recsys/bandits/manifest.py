"""``manifest.json`` of a parameter version as one typed, validated dataclass (:class:`Manifest`).

The manifest says how a version is to be served and which feedback it contains:

* ``off_graph`` — **required**, the serving mode: ``"skip"`` (a (context cluster, item) pair that
  is not an edge neither scores nor learns) or ``"prior"`` (it scores with ``d = λ, b = 0`` and
  feedback on it creates the edge), see :mod:`recsys.bandits.state`. The scoring service, the
  offline policy and the batch job take it from here and nowhere else.
* ``lambda``, ``alpha``, ``K``, ``W``, the event :class:`Watermark`, ``created_at``, counts, and
  ``extra`` (descriptive only: how the candidate graph was built; never read to score or learn).

Format 2 (this one) stores ``off_graph`` at the top level. **Older manifests** are handled
explicitly: format 1 as written by ``recsys.candidates`` kept the mode in ``extra.off_graph`` and
is read from there; a manifest with the mode in neither place did not record how it is to be
served (readers used to assume ``"prior"``), so reading it **fails** with an error that names the
file and says how to fix it — a version is never served in a mode it does not state.

>>> m = Manifest(version=3, lam=1.0, alpha=0.5, k=3, w=100, off_graph="skip")
>>> Manifest.from_json(m.to_json(), "manifest.json") == m
True
>>> Manifest.from_json({**m.to_json(), "off_graph": None, "extra": {}}, "v=3/manifest.json")
Traceback (most recent call last):
...
ValueError: v=3/manifest.json: no 'off_graph' (the serving mode, 'skip' or 'prior'); the manifest predates the field and does not say how the version is to be served — add "off_graph": "prior" (how it was served until now) or "skip" to it, or rebuild the version with recsys.candidates
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from recsys.bandits.state import check_off_graph
from recsys.bandits.versions import resolve_version, version_dir

__all__ = ["FORMAT", "Watermark", "Manifest", "read_manifest"]

FORMAT = 2


@dataclass(frozen=True)
class Watermark:
    """Which feedback events a version includes.

    Attributes:
        events: number of events merged into the statistics so far (all versions).
        ts: largest event time merged (seconds since the epoch, UTC), None if none.
        seq: largest service-log sequence number merged, when the exported events carry ``seq``.
    """

    events: int = 0
    ts: float | None = None
    seq: int | None = None

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError(f"Watermark.events must be >= 0, got {self.events}")
        if self.ts is not None and not math.isfinite(self.ts):
            raise ValueError(f"Watermark.ts must be finite, got {self.ts}")

    def advanced(self, events: int, ts: float | None, seq: int | None = None) -> "Watermark":
        """The watermark after merging ``events`` more events with max time ``ts`` and max ``seq``."""
        ts_all = [t for t in (self.ts, ts) if t is not None]
        seq_all = [s for s in (self.seq, seq) if s is not None]
        return Watermark(self.events + int(events), max(ts_all) if ts_all else None, max(seq_all) if seq_all else None)

    def to_json(self) -> dict[str, Any]:
        iso = None if self.ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts)) + f".{int(round(self.ts % 1 * 1e6)) % 1000000:06d}Z"
        return {"events": int(self.events), "ts": self.ts, "ts_iso": iso, "seq": self.seq}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Watermark":
        return cls(events=int(obj.get("events", 0)), ts=obj.get("ts"), seq=obj.get("seq"))


_REQUIRED = ("version", "lambda", "alpha", "K", "W")


@dataclass(frozen=True)
class Manifest:
    """The content of ``manifest.json`` (see the module docstring).

    Attributes:
        version: the version number (>= 0; published versions are >= 1).
        lam, alpha: prior precision λ > 0 and exploration weight α >= 0.
        k, w: clusters per user context K >= 1 and items per cluster W >= 1.
        off_graph: the serving mode, ``"skip"`` or ``"prior"`` (required).
        watermark: the feedback the statistics contain.
        created_at: publication time (ISO 8601, UTC).
        num_edges, num_clusters, num_users, dim: sizes of the version's tables.
        previous_version: the version this one was computed from (None: built from scratch).
        extra: descriptive JSON fields (how the graph was built); never read to score or learn.
    """

    version: int
    lam: float
    alpha: float
    k: int
    w: int
    off_graph: str
    watermark: Watermark = Watermark()
    created_at: str = ""
    num_edges: int = 0
    num_clusters: int = 0
    num_users: int = 0
    dim: int = 0
    previous_version: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_off_graph(self.off_graph, "Manifest.off_graph")
        if not (self.lam > 0 and math.isfinite(self.lam)):
            raise ValueError(f"Manifest.lambda must be > 0, got {self.lam}")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ValueError(f"Manifest.alpha must be >= 0, got {self.alpha}")
        if self.k < 1 or self.w < 1:
            raise ValueError(f"Manifest.K and W must be >= 1, got K={self.k} W={self.w}")
        for name in ("version", "num_edges", "num_clusters", "num_users", "dim"):
            if getattr(self, name) < 0:
                raise ValueError(f"Manifest.{name} must be >= 0, got {getattr(self, name)}")
        if "off_graph" in self.extra:
            raise ValueError("Manifest.extra must not hold 'off_graph' (it is the typed field Manifest.off_graph)")

    def to_json(self) -> dict[str, Any]:
        out = {"format": FORMAT, "version": self.version, "lambda": self.lam, "alpha": self.alpha, "K": self.k,
               "W": self.w, "off_graph": self.off_graph, "watermark": self.watermark.to_json(),
               "created_at": self.created_at, "num_edges": self.num_edges, "num_clusters": self.num_clusters,
               "num_users": self.num_users, "dim": self.dim, "extra": dict(self.extra)}
        if self.previous_version is not None:
            out["previous_version"] = self.previous_version
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str) -> "Manifest":
        """Parse ``obj`` (read from ``source``, named in every error); see the module docstring for old formats."""
        if not isinstance(obj, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in _REQUIRED if k not in obj]
        if missing:
            raise ValueError(f"{source}: missing field(s) {missing}")
        extra = dict(obj.get("extra") or {})
        legacy = extra.pop("off_graph", None)          # format 1 (recsys.candidates) kept it here
        mode = obj.get("off_graph") or legacy
        if mode is None:
            raise ValueError(f"{source}: no 'off_graph' (the serving mode, 'skip' or 'prior'); the manifest predates "
                             "the field and does not say how the version is to be served — add \"off_graph\": "
                             "\"prior\" (how it was served until now) or \"skip\" to it, or rebuild the version with "
                             "recsys.candidates")
        if legacy is not None and obj.get("off_graph") not in (None, legacy):
            raise ValueError(f"{source}: off_graph={obj['off_graph']!r} but extra.off_graph={legacy!r}")
        try:
            return cls(version=int(obj["version"]), lam=float(obj["lambda"]), alpha=float(obj["alpha"]),
                       k=int(obj["K"]), w=int(obj["W"]), off_graph=mode,
                       watermark=Watermark.from_json(obj.get("watermark") or {}),
                       created_at=str(obj.get("created_at", "")), num_edges=int(obj.get("num_edges", 0)),
                       num_clusters=int(obj.get("num_clusters", 0)), num_users=int(obj.get("num_users", 0)),
                       dim=int(obj.get("dim", 0)), previous_version=obj.get("previous_version"), extra=extra)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from None

    def replace(self, **changes: Any) -> "Manifest":
        return type(self)(**{**asdict(self), "watermark": self.watermark, **changes})


def read_manifest(params_dir: str | os.PathLike, version: int | None = None) -> Manifest:
    """The manifest of ``version`` (default: the one named by ``CURRENT``)."""
    v = resolve_version(params_dir, version)
    path = version_dir(params_dir, v) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing manifest of version {v}")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    return Manifest.from_json(obj, str(path))
