"""The Spark jobs' input paths given one fixed corrupt case per corruption kind (issue 31 item 4; hypothesis
fuzzes the single-machine readers in ``tests/test_fuzz_readers.py``, Spark is too slow for that): the job
raises the project's InputFormatError naming the file (and line, for a bad line) and writes no output."""
from __future__ import annotations

import gzip

import pytest

from graphs.errors import InputFormatError
from jobs import ingest_graph, ingest_interactions

pytestmark = pytest.mark.spark

GOOD = "# c\n0\t1\n1\t2\n2\t0\n"
MANY = gzip.compress("".join(f"{i}\t{i * 7919 % 100003}\n" for i in range(5000)).encode(), mtime=0)
# kind -> (file name, bytes, message fragment, line or None)
CASES = {
    "truncated_gzip": ("g.txt.gz", MANY[:len(MANY) // 2], "gzip", None),
    "corrupt_gzip": ("g.txt.gz", gzip.compress(GOOD.encode(), mtime=0)[:12] + b"\x00garbage\xff" * 4, "gzip", None),
    "binary_garbage": ("g.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "", 1),
    "wrong_delimiter": ("g.txt", b"0;1\n1;2\n", "expected 2..3 columns", 1),
    "missing_column": ("g.txt", b"0 1\n1\n", "expected 2..3 columns", 2),
    "extra_column": ("g.txt", b"0 1\n1 2 1.0 7 8\n", "expected 2..3 columns", 2),
    "id_beyond_int64": ("g.txt", b"0 1\n1 99999999999999999999\n", "int64", 2),
    "negative_id": ("g.txt", b"0 1\n-5 2\n", "negative id", 2),
    "nan_weight": ("g.txt", b"0 1 1.0\n1 2 nan\n", "finite", 2),
    "inf_weight": ("g.txt", b"0 1 1.0\n1 2 inf\n", "finite", 2),
    "non_utf8": ("g.txt", b"0 1\n1 2\xff\n", "UTF-8", 2),
    "empty_file": ("g.txt", b"", "no data lines", None),
}


def _ingest(spark, src, out, fmt="snap"):
    return ingest_graph.run(spark, ingest_graph.parse_args(["--input", str(src), "--format", fmt, "--output", str(out)]))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_ingest_graph_refuses_corrupt_input(spark, tmp_path, kind):
    name, data, msg, line = CASES[kind]
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out"
    with pytest.raises(InputFormatError) as e:
        _ingest(spark, src, out)
    assert name in e.value.path and msg in str(e.value), str(e.value)
    if line is not None:
        assert e.value.line == line, str(e.value)
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_ingest_graph_refuses_empty_directory_and_a_directory_of_garbage(spark, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="empty"):
        _ingest(spark, tmp_path / "empty", tmp_path / "out")
    d = tmp_path / "parts"
    d.mkdir()
    (d / "part-0.txt").write_bytes(b"0 1\n")
    (d / "part-1.txt").write_bytes(b"1 2\n2 x\n")
    with pytest.raises(InputFormatError) as e:
        _ingest(spark, d, tmp_path / "out")
    assert "part-1.txt" in e.value.path and e.value.line == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text,msg,line", [
    (b"0 5 6\n1 6 99999999999999999999\n", "int64", 2),
    (b"0 5 6\n1 -6\n", "negative", 2),
    (b"0 5 6\n1 6\xfe\n", "UTF-8", 2),
])
def test_ingest_interactions_refuses_corrupt_lines(spark, tmp_path, text, msg, line):
    bad = tmp_path / "train.txt"
    bad.write_bytes(text)
    with pytest.raises(InputFormatError) as e:
        ingest_interactions.run(spark, ingest_interactions.parse_args(
            ["--input", str(bad), "--format", "lightgcn", "--output", str(tmp_path / "o")]))
    assert "train.txt" in e.value.path and msg in str(e.value) and e.value.line == line, str(e.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    ["--input", "x", "--format", "bogus", "--output", "o"],
    ["--input", "x", "--format", "snap"],
    ["--input", "x", "--format", "snap", "--output", "o", "--partitions", "0"],
    ["--input", "x", "--format", "snap", "--output", "o", "--partitions", "many"],
])
def test_job_flags_refused_before_anything_runs(argv, capsys):
    with pytest.raises((SystemExit, ValueError)) as e:
        ingest_graph.parse_args(argv)
    if isinstance(e.value, SystemExit):
        assert e.value.code != 0 and "error" in capsys.readouterr().err
    else:
        assert "--" in str(e.value)


@pytest.mark.parametrize("job", ["ingest_graph", "ingest_interactions", "heavy_hitters"])
def test_parquet_inputs_refuse_garbage_and_missing_columns(spark, tmp_path, job):
    """A Parquet input that is not Parquet, or lacks a column the job needs: InputFormatError naming it, no output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs import heavy_hitters

    def run(src, out):
        if job == "ingest_graph":
            return _ingest(spark, src, out, fmt="parquet")
        if job == "ingest_interactions":
            return ingest_interactions.run(spark, ingest_interactions.parse_args(
                ["--input", str(src), "--format", "parquet", "--output", str(out)]))
        return heavy_hitters.run(spark, heavy_hitters.parse_args(
            ["--input", str(src), "--bits", "8", "--output", str(out)]))

    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), bad / "part-0.parquet")
    (bad / "part-1.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 50 + b"PAR1")   # Parquet's magic, no footer
    out = tmp_path / "out"
    with pytest.raises(InputFormatError) as e:
        run(bad, out)
    assert "bad" in e.value.path, str(e.value)
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    (bad / "part-1.parquet").unlink()                                                 # readable, wrong columns
    with pytest.raises(ValueError, match="column"):
        run(bad, out)
    assert not out.exists()
