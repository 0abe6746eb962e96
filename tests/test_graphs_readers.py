import gzip

import numpy as np
import pytest

from graphs.errors import InputFormatError
from graphs.readers import read_edges
from tests.conftest import data_file


def write(tmp_path, name, text, gz=False):
    p = tmp_path / name
    if gz:
        with gzip.open(p, "wt") as fh:
            fh.write(text)
    else:
        p.write_bytes(text.encode())
    return p


def test_snap_crlf_tabs_spaces_and_comments(tmp_path):
    p = write(tmp_path, "g.txt.gz", "# header\r\n0\t1\r\n1 2\r\n\r\n# mid\r\n2  0\r\n", gz=True)
    e = read_edges(p, "snap")
    assert e.src.tolist() == [0, 1, 2] and e.dst.tolist() == [1, 2, 0]


def test_konect_weights_and_timestamps(tmp_path):
    p = write(tmp_path, "out.x", "% sym weighted\n% 3 3 3\n1 2 0.5 100\n2 3 2 101\n3 1 1 102\n")
    e = read_edges(p, "konect")
    assert e.weight.tolist() == [0.5, 2.0, 1.0]


@pytest.mark.parametrize("text,msg,line", [
    ("# c\n0 1\n1 x\n", "non-integer id 'x'", 3),
    ("0 1\n1\n", "at least 2 columns", 2),
    ("0 1\n1 2 3 4\n", "at most 3 columns", 2),
])
def test_bad_lines_name_file_and_line(tmp_path, text, msg, line):
    p = write(tmp_path, "bad.txt", text)
    with pytest.raises(InputFormatError) as e:
        read_edges(p, "snap")
    assert msg in str(e.value) and e.value.line == line and str(p) in str(e.value)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(InputFormatError, match="empty"):
        read_edges(write(tmp_path, "e.txt", "# only comments\n"), "snap")
    with pytest.raises(InputFormatError, match="not found"):
        read_edges(tmp_path / "nope.txt", "snap")


def test_slashdot_counts(shared_data):
    e = read_edges(data_file(shared_data, "soc-slashdot0902", "soc-Slashdot0902.txt.gz"), "snap")
    assert len(e) == 948_464
    assert int((e.src == e.dst).sum()) == 78_303
    assert len(np.union1d(e.src, e.dst)) == 82_168
