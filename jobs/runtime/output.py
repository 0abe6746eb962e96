"""Write a job's Spark tables, JSON files and ``_meta.json`` into one atomically published folder."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

from graphs.atomic import atomic_dir, write_json, write_meta


def publish(out: str, job: str, params: Any, tables: Mapping[str, Any], files: Mapping[str, Any] | None = None,
            write: Callable[[Path], None] | None = None, **meta_fields: Any) -> dict:
    """Write ``tables`` (name → DataFrame) as Parquet, ``files`` (name → JSON object), then whatever ``write(tmp)``
    writes (figures, local tables, a report timed after them), to ``out``.

    Everything lands in a temporary sibling first; ``out`` appears only when all writes succeeded.
    Returns the ``_meta.json`` content (row counts come from ``meta_fields``).
    """
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        for name, df in tables.items():
            df.write.mode("error").parquet(str(Path(tmp) / name))
        for name, obj in (files or {}).items():
            write_json(Path(tmp) / name, obj)
        if write is not None:
            write(Path(tmp))
        timings = dict(meta_fields.pop("timings", {}) or {})
        timings["write_s"] = round(time.perf_counter() - t0, 3)
        return write_meta(tmp, job, params, timings=timings, **meta_fields)
