"""Bad input, fuzzed: every reader given corrupted real-format files (issue 31 item 4).

Each *target* writes a valid input in its real format (SNAP, KONECT, pairs, CSV pairs — plain and
gzipped —, LightGCN split folders, ``ingest_interactions`` Parquet, the LDP AOL and basket files,
the feedback export tables), one *corruption* is applied (hypothesis draws the kind and where):
truncated or corrupt gzip, binary garbage, wrong delimiters, missing or extra columns, ids beyond
int64, negative ids, NaN/inf/non-numeric weights, non-UTF-8 bytes, empty files and directories, a
directory where a file is expected, Parquet with missing/extra/mistyped columns or nulls. The reader
must then either return a sane result (the corruption left a valid input: ids non-negative int64,
weights finite) or raise the project's :class:`graphs.errors.InputFormatError` whose message names
the input (and, for a bad line of a text file, carries its line number). Any other exception is an
*unhandled* one.

``tests/test_fuzz_readers.py`` runs these with a bounded example count; this script runs more and
writes ``benchmarks/results/fuzz.json`` (inputs tried, accepted, refused and unhandled per reader):

    python -m benchmarks.fuzz_inputs [--examples 1000] [--out benchmarks/results/fuzz.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs.errors import InputFormatError

log = logging.getLogger("graphrec.fuzz")
TEXT_KINDS = ("truncate", "garbage", "insert_garbage", "wrong_delimiter", "missing_column", "extra_column", "big_id",
              "negative_id", "non_utf8", "empty", "empty_dir", "dir_for_file")
LINE_KINDS = {"missing_column", "extra_column", "big_id", "negative_id", "bad_weight", "non_utf8", "wrong_delimiter"}
PARQUET_KINDS = ("truncate", "garbage", "flip_bytes", "empty", "empty_dir", "dir_for_file", "missing_column",
                 "extra_column", "wrong_type", "big_id", "negative_id", "nulls", "nan")
FILE_LEVEL = ("empty or only comments", "no interactions", "no items found", "no queries")  # errors about a whole file
BIG = ["9223372036854775808", "18446744073709551616", "99999999999999999999999999", "-9223372036854775809"]


class Unhandled(AssertionError):
    """A reader raised something other than a clear :class:`InputFormatError` (or returned nonsense)."""


@dataclass
class Case:
    """One input on disk: ``root`` is what the reader is given, ``target`` the file corrupted."""

    root: Path
    target: Path
    lines: list[str] = field(default_factory=list)   # the target's text lines (text formats)
    sep: str = " "
    gz: bool = False
    weight_col: int | None = None


# ------------------------------------------------------------------------------------ valid inputs

def _ids(draw, n, hi=10**6):
    return draw(st.lists(st.integers(0, hi), min_size=n, max_size=n))


def _text_lines(draw, fmt: str) -> tuple[list[str], str, int | None]:
    n = draw(st.integers(1, 12))
    if fmt == "lightgcn":
        rows = [" ".join(str(v) for v in [u] + _ids(draw, draw(st.integers(1, 5)), 50)) for u in range(n)]
        return rows, " ", None
    if fmt == "baskets":
        return [" ".join(str(v) for v in _ids(draw, draw(st.integers(1, 6)), 1000)) for _ in range(n)], " ", None
    sep = {"csv-pairs": ","}.get(fmt, draw(st.sampled_from(["\t", " "])))
    src, dst = _ids(draw, n), _ids(draw, n)
    weighted = fmt in ("snap", "konect") and draw(st.booleans())
    rows = [sep.join([str(a), str(b)] + ([f"{draw(st.floats(0, 10, allow_nan=False)):.3g}"] if weighted else []))
            for a, b in zip(src, dst)]
    head = {"snap": ["# SNAP edge list", "# FromNodeId\tToNodeId"], "konect": ["% sym unweighted"],
            "csv-pairs": ["user,item"] if draw(st.booleans()) else []}.get(fmt, [])
    return head + rows, sep, 2 if weighted else None


def _write_text(path: Path, lines: list[str], gz: bool) -> None:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


# ------------------------------------------------------------------------------------- corruptions

def _data_lines(case: Case) -> list[int]:
    return [i for i, t in enumerate(case.lines) if t and not t.startswith(("#", "%")) and not t.startswith("user,")]


def corrupt_text(draw, case: Case, kinds=TEXT_KINDS) -> str:
    """Apply one drawn corruption to ``case.target`` (a text file, maybe gzipped); return its kind."""
    kinds = tuple(kinds) + (("gzip_corrupt",) if case.gz else ()) + (("bad_weight",) if case.weight_col else ())
    kind = draw(st.sampled_from(kinds))
    p, lines = case.target, list(case.lines)
    if kind in ("empty_dir", "dir_for_file"):
        p.unlink()
        p.mkdir()
        if kind == "dir_for_file":
            _write_text(p / "part-0.txt", lines, False)
        return kind
    if kind == "truncate":
        raw = p.read_bytes()
        p.write_bytes(raw[:draw(st.integers(0, max(len(raw) - 1, 0)))])
        return kind
    if kind == "gzip_corrupt":
        raw = bytearray(p.read_bytes())
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(10, len(raw) - 1))
            raw[i] ^= draw(st.integers(1, 255))
        p.write_bytes(bytes(raw))
        return kind
    if kind == "empty":
        p.write_bytes(gzip.compress(b"", mtime=0) if case.gz and draw(st.booleans()) else b"")
        return kind
    text = ("\n".join(lines) + "\n").encode() if lines else p.read_bytes()
    rows = _data_lines(case)
    i = draw(st.sampled_from(rows)) if rows else 0
    fields = (lines[i].split(case.sep) if case.sep != " " else lines[i].split()) if lines else []
    joiner = case.sep if case.sep != " " else " "
    if kind == "garbage":
        text = draw(st.binary(min_size=1, max_size=200))
    elif kind == "insert_garbage":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=20)) + text[at:]
    elif kind == "non_utf8" and not lines:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80abc"])) + text[at:]
    elif kind == "non_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x80abc", b"\xfe\xff"]))
        at = draw(st.integers(0, len(lines[i])))
        lines_b = [t.encode() for t in lines]
        lines_b[i] = lines_b[i][:at] + bad + lines_b[i][at:]
        text = b"\n".join(lines_b) + b"\n"
    else:
        if kind == "wrong_delimiter":
            new = draw(st.sampled_from([";", "|", ":", "\x00", ", ", ";;"]))
            for j in (rows if draw(st.booleans()) else [i]):
                f = lines[j].split(case.sep) if case.sep != " " else lines[j].split()
                lines[j] = new.join(f)
        elif kind == "missing_column":
            lines[i] = joiner.join(fields[:draw(st.integers(0, max(len(fields) - 1, 0)))])
        elif kind == "extra_column":
            extra = draw(st.lists(st.sampled_from(["7", "x", "1.5", "-3", "nan"]), min_size=1, max_size=4))
            lines[i] = joiner.join(fields + extra)
        elif kind in ("big_id", "negative_id"):
            j = draw(st.integers(0, max(len(fields) - 1, 0))) if case.weight_col is None else draw(st.integers(0, 1))
            fields[j] = draw(st.sampled_from(BIG)) if kind == "big_id" else str(-draw(st.integers(1, 10**6)))
            lines[i] = joiner.join(fields)
        elif kind == "bad_weight":
            w = draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "abc", "1e999", "-1e999"]))
            lines[i] = joiner.join(fields[:2] + [w])
        text = ("\n".join(lines) + "\n").encode()
    p.write_bytes(gzip.compress(text, mtime=0) if case.gz else text)
    return kind


def corrupt_parquet(draw, case: Case, table: pa.Table, id_cols: tuple[str, ...]) -> str:
    """Apply one drawn corruption to the Parquet file ``case.target`` holding ``table``; return its kind."""
    kind = draw(st.sampled_from(PARQUET_KINDS))
    p = case.target
    raw = p.read_bytes()
    col = draw(st.sampled_from(id_cols))
    n = table.num_rows
    if kind in ("empty_dir", "dir_for_file"):
        p.unlink()
        p.mkdir()
        if kind == "dir_for_file":
            (p / "nested.parquet").write_bytes(raw)
        return kind
    if kind == "truncate":
        p.write_bytes(raw[:draw(st.integers(0, len(raw) - 1))])
    elif kind == "garbage":
        p.write_bytes(draw(st.binary(min_size=0, max_size=300)))
    elif kind == "flip_bytes":
        b = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] ^= draw(st.integers(1, 255))
        p.write_bytes(bytes(b))
    elif kind == "empty":
        pq.write_table(table.schema.empty_table(), p) if draw(st.booleans()) else p.write_bytes(b"")
    else:
        t = table
        if kind == "missing_column":
            t = t.drop_columns([col])
        elif kind == "extra_column":
            t = t.append_column("extra", pa.array(["x"] * n))
        elif kind == "wrong_type":
            t = t.set_column(t.column_names.index(col), col, pa.array([draw(st.sampled_from(["a", "1.5", "", "7"]))] * n))
        elif kind == "big_id":
            t = t.set_column(t.column_names.index(col), col, pa.array([2**63 + draw(st.integers(0, 99))] * n, pa.uint64()))
        elif kind == "negative_id":
            t = t.set_column(t.column_names.index(col), col, pa.array([-draw(st.integers(1, 99))] * n, pa.int64()))
        elif kind == "nulls":
            t = t.set_column(t.column_names.index(col), col, pa.array([None] * n, t.schema.field(col).type))
        elif kind == "nan":
            t = t.set_column(t.column_names.index(col), col, pa.array([float("nan")] * n, pa.float64()))
        pq.write_table(t, p)
    return kind


# -------------------------------------------------------------------------------------------- targets

def _edges(fmt: str, gz: bool):
    def build(draw, tmp: Path) -> Case:
        lines, sep, wcol = _text_lines(draw, fmt)
        p = tmp / ("edges.txt.gz" if gz else "edges.txt")
        _write_text(p, lines, gz)
        return Case(p, p, lines, sep, gz, wcol)

    def read(root: Path):
        from graphs.readers import read_edges

        e = read_edges(root, fmt)
        ids = np.concatenate([e.src, e.dst])
        assert ids.dtype == np.int64 and len(e) > 0 and (ids >= 0).all(), "ids must be non-negative int64"
        assert e.weight is None or np.isfinite(e.weight).all(), "weights must be finite"
    return build, read


def _split(gz: bool):
    def build(draw, tmp: Path) -> Case:
        root = tmp / "split"
        root.mkdir()
        train, _, _ = _text_lines(draw, "lightgcn")
        test, _, _ = _text_lines(draw, "lightgcn")
        name = draw(st.sampled_from(["train", "test"]))
        for stem, lines in (("train", train), ("test", test)):
            _write_text(root / (f"{stem}.txt.gz" if gz else f"{stem}.txt"), lines, gz)
        target = root / (f"{name}.txt.gz" if gz else f"{name}.txt")
        return Case(root, target, train if name == "train" else test, " ", gz)

    def read(root: Path):
        from recsys.data import load_interactions

        d = load_interactions(root)
        assert d.n_train > 0 and (d.user_ids >= 0).all() and (d.item_ids >= 0).all()
    return build, read


def _interactions_build(draw, tmp: Path) -> tuple[Case, pa.Table]:
    root = tmp / "ingested"
    (root / "interactions").mkdir(parents=True)
    n = draw(st.integers(1, 20))
    t = pa.table({"user": pa.array(_ids(draw, n, 30), pa.int64()), "item": pa.array(_ids(draw, n, 30), pa.int64()),
                  "weight": pa.array([1.0] * n, pa.float32())})
    p = root / "interactions" / "part-00000.parquet"
    pq.write_table(t, p)
    return Case(root, p), t


def _interactions():
    def build(draw, tmp: Path):
        case, t = _interactions_build(draw, tmp)
        case.table = t
        return case

    def read(root: Path):
        from recsys.data import load_interactions

        d = load_interactions(root)
        assert d.n_train + d.n_test > 0 and (d.user_ids >= 0).all() and (d.item_ids >= 0).all()
    return build, read


def _baskets():
    def build(draw, tmp: Path) -> Case:
        lines, _, _ = _text_lines(draw, "baskets")
        p = tmp / "baskets.dat"
        _write_text(p, lines, False)
        return Case(p, p, lines)

    def read(root: Path):
        from ldp.datasets import load_baskets

        items = load_baskets(root, seed=0)
        assert items.dtype == np.int64 and items.size and (items >= 0).all()
    return build, read


def _aol():
    def build(draw, tmp: Path) -> Case:
        n = draw(st.integers(1, 10))
        keys = [draw(st.binary(min_size=6, max_size=6).filter(lambda b: b"\n" not in b)) for _ in range(n)]
        raw = b"".join(k + b"\t" + str(draw(st.integers(1, 5))).encode() + b"\n" for k in keys)
        p = tmp / "aol.txt"
        p.write_bytes(raw)
        return Case(p, p, [])

    def read(root: Path):
        from ldp.datasets import load_aol

        items = load_aol(root)
        assert items.dtype == np.int64 and items.size and (items >= 0).all()
    return build, read


def _feedback():
    """The feedback export tables (``events``, ``impressions``) as ``graphs.feedback.merge_feedback`` reads them."""
    def build(draw, tmp: Path):
        n = draw(st.integers(1, 8))
        ev = pa.table({"event_id": [f"e{i}" for i in range(n)], "score_id": [f"s{i % 3}" for i in range(n)],
                       "item": pa.array(_ids(draw, n, 9), pa.int64()), "reward": pa.array([1.0] * n, pa.float32())})
        imp = pa.table({"score_id": [f"s{i % 3}" for i in range(n)], "user": pa.array([i % 3 for i in range(n)], pa.int64()),
                        "item": ev.column("item")})
        which = draw(st.sampled_from(["events", "impressions"]))
        root = tmp / which
        root.mkdir()
        p = root / "part-0.parquet"
        pq.write_table(ev if which == "events" else imp, p)
        other = imp if which == "events" else ev
        case = Case(root, p)
        case.table, case.other, case.which = (ev if which == "events" else imp), other, which
        return case

    def read_with(case):
        def read(root: Path):
            from graphs.feedback import merge_feedback

            t = _read_parquet_dir(root)
            ev, imp = (t, case.other) if case.which == "events" else (case.other, t)
            at = (str(root), "impressions") if case.which == "events" else ("events", str(root))
            rows, _ = merge_feedback(pa.table({"user": pa.array([1], pa.int64()), "item": pa.array([1], pa.int64())}),
                                     ev, imp, sources=at)
            new = rows.filter(pa.compute.is_valid(rows.column("event_id")))   # the export's rows
            u, i = new.column("user").to_numpy(), new.column("item").to_numpy()
            assert (u >= 0).all() and (i >= 0).all() and np.isfinite(new.column("weight").to_numpy(zero_copy_only=False)).all()
        return read
    return build, read_with


def _read_parquet_dir(root: Path) -> pa.Table:
    from graphs.feedback import read_export_table

    return read_export_table(root)


@dataclass(frozen=True)
class Target:
    name: str
    kind: str            # "text" | "parquet" | "bytes"
    build: Callable
    read: Callable
    id_cols: tuple[str, ...] = ()
    per_case: bool = False   # read is built from the case


TARGETS: list[Target] = (
    [Target(f"graphs.read_edges[{f}{'.gz' if gz else ''}]", "text", *_edges(f, gz))
     for f in ("snap", "konect", "pairs", "csv-pairs") for gz in (False, True)]
    + [Target(f"recsys.data.load_interactions[lightgcn{'.gz' if gz else ''}]", "text", *_split(gz)) for gz in (False, True)]
    + [Target("recsys.data.load_interactions[parquet]", "parquet", *_interactions(), id_cols=("user", "item")),
       Target("ldp.load_baskets", "text", *_baskets()),
       Target("ldp.load_aol", "bytes", *_aol()),
       Target("graphs.feedback.merge_feedback", "parquet", *_feedback(), id_cols=("item", "score_id"), per_case=True)]
)


# ------------------------------------------------------------------------------------------- the check

def attempt(target: Target, draw, tmp: Path) -> tuple[str, str]:
    """Build, corrupt and read one input; return ``(kind, "accepted" | "refused")`` or raise :class:`Unhandled`."""
    case = target.build(draw, tmp)
    if target.kind == "text":
        kind = corrupt_text(draw, case)
    elif target.kind == "parquet":
        kind = corrupt_parquet(draw, case, case.table, target.id_cols)
    else:
        kind = corrupt_text(draw, case, kinds=("truncate", "garbage", "insert_garbage", "non_utf8", "empty",
                                               "empty_dir", "dir_for_file"))
    read = target.read(case) if target.per_case else target.read
    try:
        read(case.root)
    except InputFormatError as e:
        if str(case.root) not in str(e) and case.root.name not in str(e):
            raise Unhandled(f"{target.name} [{kind}]: the error does not name the input {case.root}: {e}") from e
        if (kind in LINE_KINDS and target.kind == "text" and not case.gz and e.line is None
                and not any(w in str(e) for w in FILE_LEVEL)):
            raise Unhandled(f"{target.name} [{kind}]: a bad line without its line number: {e}") from e
        return kind, "refused"
    except AssertionError as e:
        raise Unhandled(f"{target.name} [{kind}]: accepted a bad input: {e}") from e
    except Exception as e:  # noqa: BLE001 — the point: anything else is unhandled
        raise Unhandled(f"{target.name} [{kind}]: {type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}") from e
    return kind, "accepted"


def run_target(target: Target, examples: int, stats: Counter | None = None, raise_first: bool = True,
               seed: int | None = None) -> Counter:
    """Run ``examples`` hypothesis examples of ``target``; count outcomes into ``stats``."""
    stats = Counter() if stats is None else stats
    errors: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.data())
    def prop(data):
        with tempfile.TemporaryDirectory(prefix="graphrec-fuzz-") as tmp:
            try:
                kind, outcome = attempt(target, data.draw, Path(tmp))
            except Unhandled as e:
                stats["tried"] += 1
                stats["unhandled"] += 1
                errors.append(str(e))
                if raise_first:
                    raise
                return
        stats["tried"] += 1
        stats[outcome] += 1
        stats[f"kind:{kind}"] += 1

    prop()
    stats["_errors"] = errors[:5]  # type: ignore[assignment]
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_inputs", description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000, help="hypothesis examples per reader")
    ap.add_argument("--out", default="benchmarks/results/fuzz.json")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = {}
    for t in TARGETS:
        t0 = time.perf_counter()
        s = run_target(t, a.examples, raise_first=False)
        errors = s.pop("_errors")
        results[t.name] = {"tried": s["tried"], "accepted": s["accepted"], "refused": s["refused"],
                           "unhandled": s["unhandled"], "seconds": round(time.perf_counter() - t0, 1),
                           "kinds": {k[5:]: v for k, v in sorted(s.items()) if k.startswith("kind:")},
                           "unhandled_examples": errors}
    total = {k: sum(r[k] for r in results.values()) for k in ("tried", "accepted", "refused", "unhandled")}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"examples_per_reader": a.examples, "total": total, "readers": results}, indent=2))
    print("| reader | inputs tried | accepted (still valid) | refused (clear error) | unhandled |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| `{name}` | {r['tried']} | {r['accepted']} | {r['refused']} | {r['unhandled']} |")
    print(f"| total | {total['tried']} | {total['accepted']} | {total['refused']} | {total['unhandled']} |")
    return 1 if total["unhandled"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
