"""The feedback → interactions rules on Arrow tables (graphs.feedback, no Spark)."""
import pyarrow as pa
import pytest

from graphs.feedback import FeedbackCounts, feedback_rows, merge_feedback


def _events(rows):
    eid, sid, item, reward = zip(*rows) if rows else ((), (), (), ())
    return pa.table({"event_id": pa.array(eid, pa.string()), "score_id": pa.array(sid, pa.string()),
                     "item": pa.array(item, pa.int64()), "reward": pa.array(reward, pa.float32()),
                     "ts": pa.array(range(len(eid)), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                     "seq": pa.array(range(1, len(eid) + 1), pa.int64())})


IMPS = pa.table({"score_id": ["s1"] * 4 + ["s2"] * 2, "user": [3] * 4 + [9] * 2,
                 "cluster": pa.array([0, 0, 1, 1, 0, 0], pa.int32()), "item": [100, 200, 100, 200, 200, 300]})


def test_positive_once_per_event_with_its_impression():
    ev = _events([("e1", "s1", 200, 1.0), ("e2", "s1", 100, 0.0), ("e3", "s7", 100, 1.0), ("e1", "s1", 200, 1.0),
                  ("e4", "s2", 300, 2.0), ("e5", "s2", 100, 1.0), ("e6", "s1", 100, -1.0)])
    rows, n = feedback_rows(ev, IMPS)
    assert rows.select(["user", "item", "event_id"]).to_pylist() == [
        {"user": 3, "item": 200, "event_id": "e1"}, {"user": 9, "item": 300, "event_id": "e4"}]
    assert rows.column("weight").to_pylist() == [1.0, 2.0]
    assert n == FeedbackCounts(events=7, non_positive=2, duplicate_events=1, no_impression=2, already_present=0, added=2)


def test_merge_is_idempotent_and_exactly_once_across_days():
    base = pa.table({"user": [3, 4], "item": [100, 100]})
    day1, n1 = merge_feedback(base, _events([("e1", "s1", 200, 1.0)]), IMPS)
    day2, n2 = merge_feedback(day1, _events([("e1", "s1", 200, 1.0), ("e4", "s2", 300, 1.0)]), IMPS)
    again, n3 = merge_feedback(day2, _events([("e1", "s1", 200, 1.0), ("e4", "s2", 300, 1.0)]), IMPS)
    assert (n1.added, n2.added, n2.already_present, n3.added, n3.already_present) == (1, 1, 1, 0, 2)
    assert again.equals(day2) and day2.num_rows == 4
    assert day2.column("event_id").to_pylist().count("e1") == 1
    assert day2.column("event_id").null_count == 2  # the base rows


def test_empty_export_and_bad_inputs():
    rows, n = feedback_rows(_events([]), IMPS)
    assert rows.num_rows == 0 and n == FeedbackCounts()
    with pytest.raises(ValueError, match="names several users"):
        feedback_rows(_events([("e1", "s1", 200, 1.0)]), pa.concat_tables([IMPS, IMPS.slice(0, 2).set_column(
            1, "user", pa.array([8, 8], pa.int64()))]))
    with pytest.raises(ValueError, match=r"impressions: missing column\(s\) \['user'\]"):
        feedback_rows(_events([]), IMPS.drop_columns(["user"]))
    with pytest.raises(ValueError, match="do not add up"):
        FeedbackCounts(events=1)
