"""Social-recommendation inputs: SocialLGN/RecDiff pair files through both ingest jobs, the user
overlap with a user graph, and acknowledged feedback joined into the next day's interactions."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphs import feedback as core
from graphs.errors import InputFormatError
from jobs import ingest_graph, ingest_interactions
from tests.conftest import data_file

pytestmark = pytest.mark.spark


def _graph(spark, argv):
    return ingest_graph.run(spark, ingest_graph.parse_args(argv))["stats"]


def _inter(spark, argv):
    return ingest_interactions.run(spark, ingest_interactions.parse_args(argv))["stats"]


def _gz(path, text):
    with gzip.open(path, "wb") as fh:
        fh.write(text.encode())
    return path


def _orig_rows(out):
    """The interactions table back in original ids, as sorted (user, item, event_id) tuples."""
    t = pq.read_table(out / "interactions").to_pandas()
    u = pq.read_table(out / "users").to_pandas().set_index("id")["orig_id"]
    i = pq.read_table(out / "items").to_pandas().set_index("id")["orig_id"]
    ev = t["event_id"] if "event_id" in t else [None] * len(t)
    return sorted(((int(u[a]), int(i[b]), e) for a, b, e in zip(t.user, t.item, ev)), key=repr)


def test_csv_friend_graph_undirected_dedups_reciprocated_pairs(spark, tmp_path):
    f = _gz(tmp_path / "trust.txt.gz", "user,friend\r\n10,20\r\n20,10\r\n10,30\r\n30,10\r\n20,30\r\n")
    st = _graph(spark, ["--input", str(f), "--format", "csv-pairs", "--undirected", "--output", str(tmp_path / "g")])
    assert (st["input_edges"], st["edges"], st["nodes"], st["duplicates_dropped"]) == (5, 3, 3, 2)
    e = pq.read_table(tmp_path / "g" / "edges").to_pandas()
    assert (e.src < e.dst).all()
    v = pq.read_table(tmp_path / "g" / "vertices")
    assert v.schema.field("orig_id").type == pa.int64() and sorted(v.column("orig_id").to_pylist()) == [10, 20, 30]
    st = _graph(spark, ["--input", str(f), "--format", "csv-pairs", "--output", str(tmp_path / "d")])
    assert (st["edges"], st["directed"], st["reciprocity"]) == (5, True, 0.8)


@pytest.mark.parametrize("fmt,text,msg,line", [
    ("csv-pairs", "user,friend\n0,1\nuser,friend\n1,2\n", "header line where data is expected", 3),
    ("csv-pairs", "0,1\nuser,friend\n", "header line where data is expected", 2),
    ("csv-pairs", "user,friend\n0,1\n1,x\n", "non-integer id", 3),
    ("csv-pairs", "user,friend\r\n0,1\r\n1,2,3\r\n", "expected 2 columns", 3),
    ("pairs", "0 1\n1\n", "expected 2 columns", 2),
    ("pairs", "user friend\n0 1\n", "non-integer id", 1),
])
def test_pair_formats_bad_line_names_file_and_line(spark, tmp_path, fmt, text, msg, line):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    for job, extra in ((ingest_graph, ["--undirected"]), (ingest_interactions, [])):
        with pytest.raises(InputFormatError) as e:
            job.run(spark, job.parse_args(["--input", str(f), "--format", fmt, "--output", str(tmp_path / "o"), *extra]))
        assert msg in str(e.value) and e.value.line == line and e.value.path.endswith("bad.txt")
        assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.tmp-*"))


def test_pair_formats_empty_header_only_and_missing(spark, tmp_path):
    h = tmp_path / "h.txt"
    h.write_text("user,item\n")
    with pytest.raises(InputFormatError, match="no data lines: the file is empty or only comments and a header"):
        _inter(spark, ["--input", str(h), "--format", "csv-pairs", "--output", str(tmp_path / "o")])
    with pytest.raises(InputFormatError, match="no data lines"):
        _graph(spark, ["--input", str(_gz(tmp_path / "e.txt.gz", "")), "--format", "pairs", "--output", str(tmp_path / "o")])
    with pytest.raises(InputFormatError, match="not found"):
        _inter(spark, ["--input", str(tmp_path / "nope.txt"), "--format", "pairs", "--output", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_overlap_with_user_graph(spark, tmp_path):
    g = _gz(tmp_path / "trust.txt.gz", "user,friend\n1,2\n2,1\n3,4\n")
    _graph(spark, ["--input", str(g), "--format", "csv-pairs", "--undirected", "--output", str(tmp_path / "g")])
    f = tmp_path / "train.txt"
    f.write_bytes(b"3 100\r\n4 100\r\n4 101\r\n5 102\r\n")
    st = _inter(spark, ["--input", str(f), "--format", "pairs", "--graph", str(tmp_path / "g"), "--output", str(tmp_path / "i")])
    ov = st["overlap"]
    assert (ov["users_in_both"], ov["users_with_friends_no_interactions"], ov["users_with_interactions_no_friends"]) == (2, 2, 1)
    assert (ov["graph_users"], ov["interaction_users"], ov["key_type"]) == (4, 3, "int64")
    assert json.loads((tmp_path / "i" / "stats.json").read_text())["overlap"] == ov
    users = pq.read_table(tmp_path / "i" / "users")
    assert users.schema.field("orig_id").type == pq.read_table(tmp_path / "g" / "vertices").schema.field("orig_id").type


# --- feedback -----------------------------------------------------------------------------------------

def _export(path, events, impressions):
    """An export_events-shaped folder: events(event_id, score_id, item, reward, ts, seq), impressions."""
    from recsys.serving.log_records import EXPORT_EVENT_SCHEMA, IMPRESSION_SCHEMA

    ev = {"event_id": [], "score_id": [], "item": [], "reward": [], "ts": [], "seq": []}
    for k, (eid, sid, item, reward) in enumerate(events):
        for c, v in zip(ev, (eid, sid, item, reward, 1_700_000_000_000_000 + k, k + 1)):
            ev[c].append(v)
    im = {"score_id": [], "user": [], "cluster": [], "weight": [], "item": [], "version": [], "ts": []}
    for sid, user, items in impressions:
        for cluster, w in ((0, 0.75), (3, 0.25)):  # one row per cluster x item, as the service writes
            for item in items:
                for c, v in zip(im, (sid, user, cluster, w, item, 1, 1_700_000_000_000_000)):
                    im[c].append(v)
    for name, cols, schema in (("events", ev, EXPORT_EVENT_SCHEMA), ("impressions", im, IMPRESSION_SCHEMA)):
        (path / name).mkdir(parents=True)
        arrays = [pa.array(cols[f.name], pa.int64()).cast(f.type) if f.name == "ts" else pa.array(cols[f.name], f.type)
                  for f in schema]
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path / name / "part-00000.parquet")
    return path


IMPRESSIONS = [("s1", 3, [100, 200]), ("s2", 9, [200, 300])]
DAY1 = [("e1", "s1", 200, 1.0),   # user 3 gets a new item 200
        ("e2", "s1", 100, 0.0),   # no reward: ignored
        ("e3", "s7", 100, 1.0),   # score id without an impression: reported, dropped
        ("e1", "s1", 200, 1.0),   # re-exported copy of e1
        ("e4", "s2", 300, 2.0),   # user 9 is new: joins the user map
        ("e5", "s1", 999, 1.0)]   # an item that impression did not show: no impression row


def test_feedback_joins_exactly_once_and_reruns_identically(spark, tmp_path):
    base = tmp_path / "train.txt"
    base.write_text("user,item\n3,100\n4,100\n")
    ex1 = _export(tmp_path / "events1", DAY1, IMPRESSIONS)
    argv = ["--input", str(base), "--format", "csv-pairs", "--feedback", str(ex1)]
    st = _inter(spark, [*argv, "--output", str(tmp_path / "d1")])
    fb = st["feedback"]
    assert (fb["events"], fb["non_positive"], fb["duplicate_events"], fb["no_impression"]) == (6, 1, 1, 2)
    assert (fb["already_present"], fb["added"], fb["new_pairs"]) == (0, 2, 2)
    rows = _orig_rows(tmp_path / "d1")
    assert rows == sorted([(3, 100, None), (4, 100, None), (3, 200, "e1"), (9, 300, "e4")], key=repr)
    t = pq.read_table(tmp_path / "d1" / "interactions")
    assert t.schema.field("event_id").type == pa.string() and pa.types.is_timestamp(t.schema.field("ts").type)
    assert (st["users"], st["items"], st["interactions"]) == (3, 3, 4)

    again = _inter(spark, [*argv, "--output", str(tmp_path / "d1b")])
    assert again == st
    for name in ("interactions", "users", "items"):
        a = pq.read_table(tmp_path / "d1" / name).to_pandas()
        b = pq.read_table(tmp_path / "d1b" / name).to_pandas()
        assert a.equals(b), name  # same inputs -> the same rows in the same order

    # the next day builds on day 1: e1 re-exported is already present, e6 is new
    ex2 = _export(tmp_path / "events2", [("e1", "s1", 200, 1.0), ("e6", "s2", 200, 1.0)], IMPRESSIONS)
    st2 = _inter(spark, ["--previous", str(tmp_path / "d1"), "--feedback", str(ex2), "--output", str(tmp_path / "d2")])
    assert (st2["feedback"]["already_present"], st2["feedback"]["added"]) == (1, 1)
    assert st2["previous"] == {"path": str(tmp_path / "d1"), "rows": 4, "feedback_rows": 2, "kept": 4}
    rows2 = _orig_rows(tmp_path / "d2")
    assert sorted(rows2, key=repr) == sorted(rows + [(9, 200, "e6")], key=repr)
    assert [r[2] for r in rows2].count("e1") == 1
    # re-running the day on its own output adds nothing
    st3 = _inter(spark, ["--previous", str(tmp_path / "d2"), "--feedback", str(ex2), "--output", str(tmp_path / "d3")])
    assert (st3["feedback"]["added"], st3["feedback"]["already_present"]) == (0, 2)
    assert _orig_rows(tmp_path / "d3") == rows2


def test_fresh_base_keeps_previous_feedback_rows(spark, tmp_path):
    base = tmp_path / "train.txt"
    base.write_text("user,item\n3,100\n4,100\n")
    ex1 = _export(tmp_path / "ex1", DAY1, IMPRESSIONS)
    _inter(spark, ["--input", str(base), "--format", "csv-pairs", "--feedback", str(ex1), "--output", str(tmp_path / "d1")])
    fresh = tmp_path / "train2.txt"
    fresh.write_text("user,item\n4,100\n5,500\n")  # the day's new base snapshot: (3, 100) is gone
    st = _inter(spark, ["--input", str(fresh), "--format", "csv-pairs", "--previous", str(tmp_path / "d1"),
                        "--feedback", str(ex1), "--output", str(tmp_path / "d2")])
    assert st["previous"]["kept"] == 2 and st["feedback"]["already_present"] == 2 and st["feedback"]["added"] == 0
    assert _orig_rows(tmp_path / "d2") == sorted([(4, 100, None), (5, 500, None), (3, 200, "e1"), (9, 300, "e4")], key=repr)


def test_missing_feedback_and_previous(spark, tmp_path):
    base = tmp_path / "train.txt"
    base.write_text("0 1\n")
    args = ["--input", str(base), "--format", "pairs", "--previous", str(tmp_path / "nope"),
            "--feedback", str(tmp_path / "nofb"), "--output", str(tmp_path / "o")]
    with pytest.raises(FileNotFoundError):
        _inter(spark, args)
    assert not (tmp_path / "o").exists()
    st = _inter(spark, [*args, "--missing-ok"])
    assert st["feedback"]["missing"] and st["previous"]["missing"] and st["interactions"] == 1
    assert pq.read_table(tmp_path / "o" / "interactions").column_names == ["user", "item", "ts", "event_id"]


def test_spark_feedback_path_matches_the_core(spark, tmp_path):
    from graphs.spark_interactions import feedback_rows

    ex = _export(tmp_path / "ex", DAY1 + [("e7", "s2", 300, -1.0), ("e8", "s2", 200, 0.5)], IMPRESSIONS)
    ev, im = pq.read_table(ex / "events"), pq.read_table(ex / "impressions")
    known = pa.array(["e4"])
    rows, counts = core.feedback_rows(ev, im, known)
    sdf, scounts = feedback_rows(spark.read.parquet(str(ex / "events")), spark.read.parquet(str(ex / "impressions")),
                                 spark.createDataFrame([("e4",)], "event_id string"))
    assert scounts == counts and counts.added == 2 and counts.already_present == 1
    got = sdf.toPandas().sort_values("event_id").reset_index(drop=True)
    want = rows.to_pandas().sort_values("event_id").reset_index(drop=True)
    assert got[["user", "item", "event_id"]].equals(want[["user", "item", "event_id"]])
    assert got["weight"].tolist() == want["weight"].tolist() == [1.0, 0.5]
    empty, ecounts = feedback_rows(spark.read.parquet(str(ex / "events")).limit(0), spark.read.parquet(str(ex / "impressions")))
    assert empty.count() == 0 and ecounts == core.feedback_rows(ev.slice(0, 0), im)[1] == core.FeedbackCounts()


# --- the real files (SOURCE.md's verified counts) ---------------------------------------------------

def test_lastfm_sociallgn_split_counts_and_full_overlap(spark, shared_data, tmp_path):
    trust = data_file(shared_data, "lastfm_social", "trust.txt.gz")
    train = data_file(shared_data, "lastfm_social", "train_set.txt.gz")
    g = _graph(spark, ["--input", str(trust), "--format", "csv-pairs", "--undirected", "--output", str(tmp_path / "g")])
    assert (g["input_edges"], g["edges"], g["nodes"], g["duplicates_dropped"], g["self_loops"]) == (25_434, 12_717, 1_892, 12_717, 0)
    st = _inter(spark, ["--input", str(train), "--format", "csv-pairs", "--graph", str(tmp_path / "g"),
                        "--output", str(tmp_path / "i")])
    assert (st["users"], st["items"], st["interactions"], st["duplicates_dropped"]) == (1_892, 15_320, 74_267, 0)
    ov = st["overlap"]
    assert (ov["users_in_both"], ov["users_with_friends_no_interactions"], ov["users_with_interactions_no_friends"]) == (1_892, 0, 0)


def test_ciao_sociallgn_and_recdiff_counts(spark, shared_data, tmp_path):
    d = "ciao_social"
    g = _graph(spark, ["--input", str(data_file(shared_data, d, "trust.txt.gz")), "--format", "csv-pairs",
                       "--output", str(tmp_path / "g")])
    assert (g["edges"], g["nodes"], g["duplicates_dropped"]) == (57_544, 2_342, 0)
    assert g["reciprocity"] == pytest.approx(27_708 / 57_544)
    st = _inter(spark, ["--input", str(data_file(shared_data, d, "train_set.txt.gz")), "--format", "csv-pairs",
                        "--graph", str(tmp_path / "g"), "--output", str(tmp_path / "i")])
    assert (st["input_rows"], st["duplicates_dropped"], st["users"], st["items"]) == (227_268, 947, 7_375, 90_815)
    ov = st["overlap"]  # only 32% of Ciao's users have a trust edge: normal, not an error
    assert (ov["users_in_both"], ov["users_with_friends_no_interactions"], ov["users_with_interactions_no_friends"]) == (2_342, 0, 5_033)
    rg = _graph(spark, ["--input", str(data_file(shared_data, d, "recdiff_trust.txt.gz")), "--format", "pairs",
                        "--undirected", "--output", str(tmp_path / "rg")])
    assert (rg["input_edges"], rg["edges"], rg["nodes"]) == (65_084, 32_542, 1_925)
    rs = _inter(spark, ["--input", str(data_file(shared_data, d, "recdiff_train.txt.gz")), "--format", "pairs",
                        "--graph", str(tmp_path / "rg"), "--output", str(tmp_path / "ri")])
    assert (rs["interactions"], rs["users"], rs["items"], rs["overlap"]["users_in_both"]) == (23_223, 1_925, 11_865, 1_925)
