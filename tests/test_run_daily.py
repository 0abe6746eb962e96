"""The multi-day driver of ``make run`` (jobs.demo.run_daily) with a stand-in ``airflow`` CLI, its console
progress (jobs.demo.dag_progress), the output layout (jobs.runtime.layout) and the report's per-day section."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import sys
import textwrap

import pytest

from jobs.demo import report, run_daily
from jobs.demo.dag_progress import Progress, task_states
from jobs.demo.report_days import collect, path_counts
from jobs.runtime import layout

SCHEMA = ("CREATE TABLE dag_run(id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, logical_date TEXT);"
          "CREATE TABLE task_instance(dag_id TEXT, run_id TEXT, task_id TEXT, state TEXT, try_number INT,"
          " start_date TEXT, end_date TEXT, duration REAL);")

# A stand-in for `airflow` with the metadata tables run_daily reads: `db migrate` creates them, `dags test DAG DS
# -c CONF` records two successful tasks (the second fails for FAKE_FAIL_DS) and, for graphrec_daily, writes the
# day's recommender metrics.json into the work_dir of the -c Params (recall rising with the day); `api-server -p
# PORT` answers the Execution API's health check until it is stopped. Every call's arguments and executor
# settings go to calls.jsonl in AIRFLOW_HOME.
FAKE_AIRFLOW = textwrap.dedent(f"""\
    #!{sys.executable}
    import http.server, json, os, sqlite3, sys
    home = os.environ["AIRFLOW_HOME"]
    args = sys.argv[1:]
    with open(os.path.join(home, "calls.jsonl"), "a") as f:
        f.write(json.dumps({{"args": args, "pid": os.getpid(),
                            "env": {{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")}}}}) + "\\n")
    if args[0] == "api-server":
        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200 if self.path == "/execution/health" else 404)
                self.end_headers()
        http.server.HTTPServer(("127.0.0.1", int(args[args.index("-p") + 1])), Health).serve_forever()
    db = sqlite3.connect(os.path.join(home, "airflow.db"))
    if args[:2] == ["db", "migrate"]:
        db.executescript({SCHEMA!r})
        sys.exit(0)
    dag, ds, conf = args[2], args[3], json.loads(args[args.index("-c") + 1])
    fail = os.environ.get("FAKE_FAIL_DS") == ds
    run = "manual__" + ds
    db.execute("INSERT INTO dag_run(dag_id, run_id, logical_date) VALUES (?, ?, ?)", (dag, run, ds + "T00:00:00+00:00"))
    for task in ("first", "second"):
        state = "failed" if fail and task == "second" else "success"
        db.execute("INSERT INTO task_instance VALUES (?, ?, ?, ?, 1, ?, ?, 2.0)", (dag, run, task, state, ds, ds))
    db.commit()
    if dag == "graphrec_daily":
        out = os.path.join(conf["work_dir"], "recommender", "ds=" + ds)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump({{"recall@20": 0.1 + int(ds[-2:]) / 100}}, f)
    sys.exit(1 if fail else 0)
""")


@pytest.fixture
def fake_airflow(tmp_path):
    venv = tmp_path / "airflow-venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "airflow"
    exe.write_text(FAKE_AIRFLOW)
    exe.chmod(0o755)
    return venv


def _config(tmp_path, venv, days: int) -> run_daily.RunConfig:
    return run_daily.parse_args(["--work", str(tmp_path / "work"), "--ds", "2026-01-30", "--days", str(days),
                                 "--nodes", "200", "--items", "20", "--airflow-venv", str(venv),
                                 "--airflow-home", str(tmp_path / "home")])


def test_runs_consecutive_days_and_reports_each(tmp_path, fake_airflow, capsys):
    cfg = _config(tmp_path, fake_airflow, days=3)
    assert cfg.dates == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert run_daily.run(cfg) == 0
    out = capsys.readouterr().out
    work = tmp_path / "work"
    for ds in cfg.dates:
        assert (layout.dated_path(work, "raw", ds) / "graph" / "edges").is_dir()  # the day's landing zone
        for dag in ("graphrec_daily", "graphrec_heavy_hitters"):
            assert f"{dag} {ds}  second  success in 2 s  [2/2 done]" in out  # a console line per task
            assert (layout.dated_path(work, "logs", ds) / f"{dag}.log").is_file()
        text = (layout.dated_path(work, "report", ds) / "report.md").read_text()
        assert "**succeeded**, 4/4 tasks succeeded" in text
    last = layout.dated_path(work, "report", "2026-02-01")
    assert "## Day by day" in (last / "report.md").read_text() and (last / "days.png").stat().st_size > 1000
    assert [r["recall@20"] for r in json.loads((last / "days.json").read_text())] == pytest.approx([0.4, 0.41, 0.11])
    assert "## Day by day" not in (layout.dated_path(work, "report", "2026-01-30") / "report.md").read_text()
    assert out.rstrip().endswith(f"report: {last / 'report.md'}")


def test_a_failing_day_ends_the_run(tmp_path, fake_airflow, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL_DS", "2026-01-31")
    assert run_daily.run(_config(tmp_path, fake_airflow, days=3)) == 1
    out = capsys.readouterr().out
    assert "graphrec_daily 2026-01-31  second  failed" in out
    assert "graphrec_heavy_hitters 2026-01-31" not in out and "2026-02-01" not in out
    work = tmp_path / "work"
    assert "**FAILED**, 1/2 tasks succeeded" in (layout.dated_path(work, "report", "2026-01-31") / "report.md").read_text()
    assert not layout.dated_path(work, "raw", "2026-02-01").exists()


def _calls(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "home" / "calls.jsonl").read_text().splitlines()]


def test_tasks_run_side_by_side_through_an_execution_api(tmp_path, fake_airflow):
    assert run_daily.run(_config(tmp_path, fake_airflow, days=2)) == 0
    calls = _calls(tmp_path)
    servers = [c for c in calls if c["args"][0] == "api-server"]
    assert len(servers) == 1 and servers[0]["args"][1:3] == ["--apps", "execution"]  # one server for every day
    port = servers[0]["args"][servers[0]["args"].index("-p") + 1]
    tests = [c for c in calls if c["args"][:2] == ["dags", "test"]]
    assert len(tests) == 4 and all("--use-executor" in c["args"] for c in tests)
    for c in tests + servers:  # the DAG runs' executor and the server share the address and the JWT secret
        assert c["env"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert c["env"]["AIRFLOW__CORE__PARALLELISM"] == "2"
        assert c["env"]["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"  # a task's successor starts promptly
        assert c["env"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"
    assert len({c["env"]["AIRFLOW__API_AUTH__JWT_SECRET"] for c in tests + servers}) == 1
    with pytest.raises(ProcessLookupError):  # stopped at the end
        os.kill(servers[0]["pid"], 0)


@pytest.mark.parametrize("change", [{"parallelism": 1}, {"mark_success": "second"}])
def test_tasks_run_in_the_dags_test_process_when_serial_or_marked(tmp_path, fake_airflow, change):
    cfg = dataclasses.replace(_config(tmp_path, fake_airflow, days=1), **change)
    assert run_daily.run(cfg) == 0
    calls = _calls(tmp_path)
    assert not [c for c in calls if c["args"][0] == "api-server"]
    tests = [c for c in calls if c["args"][:2] == ["dags", "test"]]
    assert len(tests) == 2 and not any("--use-executor" in c["args"] for c in tests)
    assert not any("AIRFLOW__CORE__EXECUTOR" in c["env"] for c in tests)


def test_run_config_checks_days():
    with pytest.raises(ValueError, match="--days"):
        run_daily.RunConfig(work="w", ds="2026-01-05", days=0)
    with pytest.raises(ValueError, match="--parallelism"):
        run_daily.RunConfig(work="w", ds="2026-01-05", parallelism=0)
    assert run_daily.parse_args(["--ds", "2026-01-05"]).dates == ["2026-01-05"]


def test_progress_prints_each_task_start_and_end(tmp_path):
    db = sqlite3.connect(tmp_path / "airflow.db")
    db.executescript(SCHEMA)
    db.execute("INSERT INTO dag_run(dag_id, run_id, logical_date) VALUES ('d', 'r1', '2026-01-05T00:00:00+00:00')")
    db.executemany("INSERT INTO task_instance VALUES ('d', 'r1', ?, ?, 1, NULL, NULL, NULL)",
                   [("a", "running"), ("b", None)])
    db.commit()
    buf = io.StringIO()
    p = Progress(tmp_path, "d", "2026-01-05", out=buf)
    p.poll()
    db.execute("UPDATE task_instance SET state='success', duration=12.4 WHERE task_id='a'")
    db.execute("UPDATE task_instance SET state='up_for_retry' WHERE task_id='b'")
    db.commit()
    p.poll()
    db.execute("UPDATE task_instance SET state='running', try_number=2 WHERE task_id='b'")
    db.commit()
    p.poll()
    p.poll()  # nothing changed: nothing printed
    lines = [line.split(" ", 1)[1] for line in buf.getvalue().splitlines()]  # without the clock
    assert lines == ["d 2026-01-05  a  started", "d 2026-01-05  a  success in 12 s  [1/2 done]",
                     "d 2026-01-05  b  up for retry", "d 2026-01-05  b  started (try 2)"]
    assert [t["task_id"] for t in task_states(tmp_path, "2026-01-05", "d")] == ["a", "b"]
    assert task_states(tmp_path / "missing", "2026-01-05") == []


def test_layout_lists_days_and_rejects_unknown_tables(tmp_path):
    for ds in ("2026-01-06", "2026-01-05"):
        layout.dated_path(tmp_path, "report", ds).mkdir(parents=True)
    (tmp_path / "report" / "ds=latest").mkdir()
    assert layout.days(tmp_path, "report") == ["2026-01-05", "2026-01-06"] and layout.days(tmp_path, "graph") == []
    with pytest.raises(ValueError, match="unknown table"):
        layout.dated(str(tmp_path), "reports", "2026-01-05")


PROM = """# TYPE graphrec_score_path_total counter
graphrec_score_path_total{{path="personal"}} {personal}
graphrec_score_path_total{{path="social"}} {social}
graphrec_score_path_total{{path="fallback"}} {fallback}
graphrec_requests_total{{endpoint="score",status="200"}} 99
"""


def _day(work, ds, recall, cold=None, paths=None, reward=(0.05, 0.1)):
    rec = layout.dated_path(work, "recommender", ds)
    rec.mkdir(parents=True)
    (rec / "metrics.json").write_text(json.dumps({"recall@20": recall, **({"recall@20_cold": cold} if cold else {})}))
    tr = layout.dated_path(work, "traffic", ds)
    tr.mkdir(parents=True)
    (tr / "summary.json").write_text(json.dumps({"requests": 100, "reward_rate_first_quarter": reward[0],
                                                 "reward_rate_last_quarter": reward[1], "random_rate": 0.01}))
    if paths:
        sv = layout.dated_path(work, "serving", ds)
        sv.mkdir(parents=True)
        (sv / "metrics.prom").write_text(PROM.format(**paths))


def test_report_plots_per_day_figures(tmp_path):
    _day(tmp_path, "2026-01-05", 0.10, paths={"personal": 60, "social": 30, "fallback": 10})
    _day(tmp_path, "2026-01-06", 0.12, cold=0.05, paths={"personal": 160, "social": 50, "fallback": 30})
    _day(tmp_path, "2026-01-07", 0.13, reward=(0.09, 0.12))  # no metrics scrape that day
    _day(tmp_path, "2026-01-08", 0.50)  # after the report's day: left out
    rows = collect(tmp_path, "2026-01-07")
    assert [r["ds"] for r in rows] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert rows[0]["path_share"] == pytest.approx({"personal": 0.6, "social": 0.3, "fallback": 0.1})
    # the service's counters are cumulative: day 2's shares are its own requests (100, 20, 20)
    assert rows[1]["path_share"] == pytest.approx({"personal": 100 / 140, "social": 20 / 140, "fallback": 20 / 140})
    assert rows[1]["recall@20_cold"] == 0.05 and "recall@20_cold" not in rows[0] and "path_share" not in rows[2]
    path = report.write_report(tmp_path, "2026-01-07")
    text = path.read_text()
    assert "(days.png)" in text and (path.parent / "days.png").stat().st_size > 1000
    assert "| day | recall@20 | recall@20_cold | reward_first_quarter | reward_last_quarter | reward_random | " \
           "share `fallback` | share `personal` | share `social` |" in text
    assert "| 2026-01-06 | 0.1200 | 0.0500 | 0.0500 | 0.1000 | 0.0100 | 14.3% | 71.4% | 14.3% |" in text
    assert "| 2026-01-07 | 0.1300 | – | 0.0900 | 0.1200 | 0.0100 | – | – | – |" in text
    assert json.loads((path.parent / "summary.json").read_text())["days"] == 3
    one = report.write_report(tmp_path, "2026-01-06", days=["2026-01-06"])  # the run's days only
    assert "Day by day" not in one.read_text()


def test_path_counts_without_a_path_label():
    assert path_counts('graphrec_requests_total{endpoint="score",status="200"} 5\n') == {}


def test_report_renders_the_privacy_ledger_as_a_table(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    hh = layout.dated_path(tmp_path, "heavy_hitters", "2026-01-05")
    (hh / "heavy_hitters").mkdir(parents=True)
    pq.write_table(pa.table({"item": np.array([7, 3], np.int64), "estimate": [9.0, 4.0], "rank": np.array([1, 2], np.int32)}),
                   hh / "heavy_hitters" / "p.parquet")
    party = {"users": 120, "users_reported": 118, "epsilon_per_user": 4.0, "reports_per_user": 1, "levels": 3,
             "oracles": ["grr", "olh"], "groups_used": [0, 1, 2], "rounds": [{"groups": [0]}]}
    (hh / "ledger.json").write_text(json.dumps({"method": "taps", "epsilon_per_user": 4.0, "reports_per_user": 1,
                                                "composition": "parallel", "group_shares": [0.25, 0.75],
                                                "parties": {"10": party, "2": {**party, "users": 80}}}))
    text = report.write_report(tmp_path, "2026-01-05").read_text()
    assert "Privacy ledger: method `taps`, ε = 4 per user, 1 report per user; composition: parallel; " \
           "level shares 0.25, 0.75." in text
    table = text[text.index("| party |"):].splitlines()
    assert table[2:4] == ["| 2 | 80 | 118 | 4 | 1 | 3 | grr, olh | 0, 1, 2 |",
                          "| 10 | 120 | 118 | 4 | 1 | 3 | grr, olh | 0, 1, 2 |"]
    assert "'rounds'" not in text and "{'" not in text  # no flattened dict


def test_report_shows_the_feedback_loop_per_day(tmp_path):
    """Feedback joined each day and users served from friends, from the day's outputs; without a /metrics scrape the
    day's simulated requests give the path shares."""
    for ds, added, social, paths in (("2026-01-05", None, 60, {"personal": 80, "social": 15, "fallback": 5}),
                                     ("2026-01-06", 42, 51, {"personal": 90, "social": 8, "fallback": 2})):
        rec = layout.dated_path(tmp_path, "recommender", ds)
        rec.mkdir(parents=True)
        (rec / "metrics.json").write_text(json.dumps({"recall@20": 0.2, "social": {"users_without_interactions": social}}))
        inter = layout.dated_path(tmp_path, "interactions", ds)
        inter.mkdir(parents=True)
        fb = {"missing": True} if added is None else {"events": 100, "added": added}
        (inter / "stats.json").write_text(json.dumps({"interactions": 1000, "feedback": fb}))
        tr = layout.dated_path(tmp_path, "traffic", ds)
        tr.mkdir(parents=True)
        (tr / "summary.json").write_text(json.dumps({"requests": 100, "paths": paths, "reward_rate_first_quarter": 0.1,
                                                     "reward_rate_last_quarter": 0.2, "random_rate": 0.01}))
    rows = collect(tmp_path, "2026-01-06")
    assert "feedback_added" not in rows[0] and rows[1]["feedback_added"] == 42
    assert [r["social_users"] for r in rows] == [60, 51]
    assert rows[1]["path_share"] == pytest.approx({"fallback": 0.02, "personal": 0.9, "social": 0.08})
    text = report.write_report(tmp_path, "2026-01-06").read_text()
    assert "| 2026-01-06 | 0.2000 | 0.1000 | 0.2000 | 0.0100 | 42 | 51 | 2.0% | 90.0% | 8.0% |" in text
    assert "joined from its exported events 42 of 100" in text
