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


def test_csv_pairs_header_gzip_crlf_and_spaces(tmp_path):
    p = write(tmp_path, "train_set.txt.gz", "user,item\r\n0,5\r\n1, 6\r\n\r\n# c\r\n2 ,7\r\n", gz=True)
    e = read_edges(p, "csv-pairs")
    assert e.src.tolist() == [0, 1, 2] and e.dst.tolist() == [5, 6, 7] and e.weight is None
    q = write(tmp_path, "noheader.txt", "0,5\n1,6\n")  # the header is optional
    assert read_edges(q, "csv-pairs").dst.tolist() == [5, 6]


def test_pairs_space_separated(tmp_path):
    p = write(tmp_path, "recdiff_trust.txt.gz", "0 1\n0\t2\r\n1 0\n", gz=True)
    e = read_edges(p, "pairs")
    assert e.src.tolist() == [0, 0, 1] and e.dst.tolist() == [1, 2, 0]


@pytest.mark.parametrize("fmt,text,msg,line", [
    ("csv-pairs", "user,item\n0,5\nuser,item\n1,6\n", "header line where data is expected", 3),
    ("csv-pairs", "0,5\n1,6\nuser,item\n", "header line where data is expected", 3),
    ("csv-pairs", "user,item\n0,5\n1,x\n", "non-integer id 'x'", 3),
    ("csv-pairs", "user,item\n0,5\n1,6,7\n", "at most 2 columns", 3),
    ("csv-pairs", "user,item\n# c\n0,5\n1\n", "at least 2 columns", 4),
    ("csv-pairs", "0,friend\n0,5\n", "non-integer id 'friend'", 1),  # not a header: it has an integer
    ("pairs", "user item\n0 5\n", "non-integer id 'user'", 1),  # pairs have no header
    ("pairs", "0 5\n1 6 7 8 9\n", "at most 2 columns", 2),
])
def test_pair_formats_bad_lines_name_file_and_line(tmp_path, fmt, text, msg, line):
    p = write(tmp_path, "bad.txt", text)
    with pytest.raises(InputFormatError) as e:
        read_edges(p, fmt)
    assert msg in str(e.value) and e.value.line == line and str(p) in str(e.value)


def test_csv_pairs_empty_or_header_only(tmp_path):
    with pytest.raises(InputFormatError, match="empty or only comments and a header"):
        read_edges(write(tmp_path, "h.txt", "user,item\r\n"), "csv-pairs")
    with pytest.raises(InputFormatError, match="empty"):
        read_edges(write(tmp_path, "e.txt.gz", "", gz=True), "csv-pairs")


def test_lastfm_and_recdiff_pairs_counts(shared_data):
    trust = read_edges(data_file(shared_data, "lastfm_social", "trust.txt.gz"), "csv-pairs")
    assert len(trust) == 25_434 and len(np.union1d(trust.src, trust.dst)) == 1_892
    train = read_edges(data_file(shared_data, "lastfm_social", "train_set.txt.gz"), "csv-pairs")
    assert len(train) == 74_267 and len(np.unique(train.src)) == 1_892
    rd = read_edges(data_file(shared_data, "ciao_social", "recdiff_trust.txt.gz"), "pairs")
    assert len(rd) == 65_084 and len(np.union1d(rd.src, rd.dst)) == 1_925
