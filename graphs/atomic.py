"""Atomic output directories: write everything to a hidden sibling, then rename into place.

A job that fails or is killed leaves at most a ``.DIR.tmp-*`` folder that no reader opens, never a
half-written ``DIR``; the next successful write of ``DIR`` removes such leftovers (those older than its own
start). ``_meta.json`` is written last, inside the temporary folder, so a published ``DIR`` always has one.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_dir(root / "out") as tmp:
...     _ = (tmp / "x.txt").write_text("hi")
>>> sorted(p.name for p in (root / "out").iterdir())
['x.txt']
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def local_path(path: str | os.PathLike) -> Path:
    """Strip a ``file:`` scheme; other schemes are not local and are rejected."""
    s = str(path)
    if s.startswith("file://"):
        s = s[len("file://"):]
    elif s.startswith("file:"):
        s = s[len("file:"):]
    elif "://" in s:
        raise ValueError(f"{path}: only local (or shared-mount) paths are supported for atomic output")
    return Path(s)


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds."""
    final = local_path(path).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: output exists and overwrite is off")
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    remove_leftovers(final, before=started)


def remove_leftovers(final: Path, before: float) -> list[Path]:
    """Remove ``.NAME.tmp-*`` / ``.NAME.old-*`` siblings of ``final`` last modified before ``before`` (what a
    killed writer left: a kill -9 runs no cleanup); return them. A writer that started later is left alone."""
    gone = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.*-*"):
        kind = p.name[len(final.name) + 2:].split("-", 1)[0]
        try:
            stale = kind in ("tmp", "old") and p.lstat().st_mtime < before
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_default))
    os.replace(tmp, p)


def write_meta(out_dir: str | os.PathLike, job: str, params: Any, **fields: Any) -> dict:
    """Write ``_meta.json`` (producer, parameters, row counts, timings, ...) and return it."""
    meta = {"job": job, "params": params, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta.update(fields)
    write_json(Path(out_dir) / "_meta.json", meta)
    return meta


def _default(o: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
