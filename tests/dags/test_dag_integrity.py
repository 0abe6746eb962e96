"""DagBag integrity: the DAG files import cleanly, are acyclic, retry every task, take their paths and
knobs as Params, write dated paths, and do no I/O while being parsed."""
from __future__ import annotations

import ast
import builtins
import io
import os
import re
import socket
import types
from pathlib import Path
from unittest import mock

import pytest

from tests.dags.support import DAGS

DAG_IDS = {"graphrec_daily", "graphrec_heavy_hitters"}
COMMON = DAGS / "graphrec_common.py"  # shared configuration the DAG files import (listed in .airflowignore)
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if p != COMMON)
LAYOUT = DAGS.parent / "jobs" / "runtime" / "layout.py"  # the output layout, loaded by graphrec_common by path
# what each file may import besides Airflow, datetime and graphrec_common: the standard library modules that
# load the layout (graphrec_common) and that the layout itself uses — never the project's packages
EXTRA_IMPORTS = {COMMON.name: {"importlib", "sys", "pathlib"}, LAYOUT.name: {"re", "pathlib"}}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_IDS <= set(dagbag.dag_ids)


def _topological_order(dag) -> list[str]:
    """Kahn's algorithm over the task graph; raises if a cycle leaves tasks unvisited."""
    indeg = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks}
    ready = sorted(k for k, v in indeg.items() if v == 0)
    order = []
    while ready:
        tid = ready.pop()
        order.append(tid)
        for d in sorted(dag.get_task(tid).downstream_task_ids):
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    if len(order) != len(indeg):
        raise AssertionError(f"{dag.dag_id}: cycle among {sorted(set(indeg) - set(order))}")
    return order


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_acyclic_retries_static_schedule(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    order = _topological_order(dag)
    assert len(order) == len(dag.tasks) >= 2
    assert dag.catchup is False
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    for t in dag.tasks:
        assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
        assert t.execution_timeout is not None, f"{dag_id}.{t.task_id} has no execution_timeout"


def test_daily_order_and_params(dagbag):
    dag = dagbag.dags["graphrec_daily"]
    order = _topological_order(dag)
    pos = {t: i for i, t in enumerate(order)}
    for a, b in [("ingest_graph", "sample_graph"), ("ingest_graph", "embed_graph"), ("embed_graph", "friend_knn"),
                 ("ingest_interactions", "train_recommender"), ("train_recommender", "build_candidates"),
                 ("seed_bandit", "build_candidates"), ("serve_candidates", "simulate_traffic"),
                 ("simulate_traffic", "export_events"), ("export_events", "bandit_update"),
                 ("build_candidates", "bandit_update"), ("bandit_update", "publish")]:
        if a in pos and b in pos:
            assert b in dag.get_task(a).get_flat_relative_ids(upstream=False), f"{a} must precede {b}"
    for name in ("work_dir", "ratio", "dim", "density"):
        assert name in dag.params, f"graphrec_daily lacks Param {name}"
    assert dagbag.dags["graphrec_heavy_hitters"].params["epsilon"] > 0


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_every_task_writes_dated_paths(dagbag, dag_id):
    """Each task's command line (templates, unrendered) names a ``ds={{ ds }}`` folder (sensors only wait)."""
    dag = dagbag.dags[dag_id]
    for t in dag.tasks:
        if type(t).__name__.endswith("Sensor"):
            continue
        text = " ".join(str(getattr(t, f, "")) for f in t.template_fields)
        assert "/ds={{ ds }}" in text, f"{dag_id}.{t.task_id} has no dated path"


def test_spark_tasks_use_spark_default_and_project_python(dagbag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    spark_tasks = [t for d in DAG_IDS for t in dagbag.dags[d].tasks if isinstance(t, SparkSubmitOperator)]
    assert spark_tasks
    for t in spark_tasks:
        assert t._conn_id == "spark_default"
        assert t.py_files and "graphrec_py_files" in t.py_files
        assert "PYSPARK_PYTHON" in t.env_vars and "graphrec_spark_submit" in t.env_vars["PATH"]


class ParseTimeIO(AssertionError):
    pass


def _forbid(name):
    def f(*a, **k):
        raise ParseTimeIO(f"{name} called while parsing a DAG file: {a[:1]}")
    return f


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_opens_no_file_and_no_socket(path):
    """Execute the DAG file with open/os.open/listing/sockets replaced by functions that raise."""
    import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401  (imports may read config)
    import airflow.providers.standard.operators.bash  # noqa: F401
    import airflow.providers.standard.operators.python  # noqa: F401
    import airflow.sdk  # noqa: F401
    import graphrec_common  # noqa: F401  (imported by the DAG files; checked on its own below)

    source = path.read_text()
    code = compile(source, str(path), "exec")
    module = types.ModuleType(f"_parse_check_{path.stem}")
    module.__file__ = str(path)
    patches = [
        mock.patch.object(builtins, "open", _forbid("open")),
        mock.patch.object(io, "open", _forbid("io.open")),
        mock.patch.object(os, "open", _forbid("os.open")),
        mock.patch.object(os, "listdir", _forbid("os.listdir")),
        mock.patch.object(os, "scandir", _forbid("os.scandir")),
        mock.patch.object(socket, "socket", _forbid("socket.socket")),
        mock.patch.object(socket, "create_connection", _forbid("socket.create_connection")),
        mock.patch.object(socket, "getaddrinfo", _forbid("socket.getaddrinfo")),
    ]
    for p in patches:
        p.start()
    try:
        exec(code, module.__dict__)
    finally:
        for p in reversed(patches):
            p.stop()
    dags = [v for v in vars(module).values() if type(v).__name__ == "DAG"]
    assert dags, f"{path.name} defines no DAG"
    # The patch is live: the same calls outside a DAG file would have raised.
    with mock.patch.object(builtins, "open", _forbid("open")), pytest.raises(ParseTimeIO):
        open(path)


def test_common_module_is_not_parsed_as_a_dag_file():
    assert COMMON.is_file() and "graphrec_common" in (DAGS / ".airflowignore").read_text()


@pytest.mark.parametrize("path", [*DAG_FILES, COMMON, LAYOUT], ids=lambda p: p.name)
def test_no_clock_or_project_imports_in_dag_files(path):
    """DAG files are configuration: no now()/today() calls; they import only Airflow, the stdlib and
    the shared ``graphrec_common`` (which loads ``jobs/runtime/layout.py``), never the project's packages."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in {"now", "utcnow", "today"}, f"{path.name}:{node.lineno} calls {node.func.attr}()"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in mods:
                assert m.split(".")[0] in {"airflow", "datetime", "__future__", "graphrec_common"} \
                    | EXTRA_IMPORTS.get(path.name, set()), f"{path.name} imports {m}"


class _Vars:
    """``var.value`` of the template context, backed by a dict (as Variables would be at run time)."""

    def __init__(self, values: dict):
        self._values = values

    def get(self, key, default=None):
        return self._values.get(key, default)


def _renderer(dag, variables: dict, **param_overrides):
    """A function rendering a template field the way a task run would, from the DAG's default Params."""
    from airflow.sdk.execution_time import macros

    env = dag.get_template_env()
    params = {k: dag.params[k] for k in dag.params}
    params.update(param_overrides)
    ctx = {"params": params, "ds": "2026-01-05", "macros": macros,
           "var": types.SimpleNamespace(value=_Vars(variables)), "dag": dag}

    def render(v):
        if isinstance(v, str):
            return env.from_string(v).render(**ctx)
        if isinstance(v, dict):
            return {k: render(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [render(x) for x in v]
        return v

    return render


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
@pytest.mark.parametrize("variables", [{}, {"graphrec_root": "/opt/graphrec", "graphrec_python": "/py/bin/python",
                                            "graphrec_spark_submit": "/spark/bin/spark-submit"}], ids=["defaults", "set"])
def test_templates_render_to_dated_absolute_paths(dagbag, dag_id, variables):
    """Every templated field renders with the DAG's default Params; defaults follow the DAG file's location."""
    dag = dagbag.dags[dag_id]
    # render the demo branch too
    render = _renderer(dag, variables, **({"simulate_traffic": True} if "simulate_traffic" in dag.params else {}))
    root = variables.get("graphrec_root", str(DAGS.parent))
    py = variables.get("graphrec_python", f"{root}/.venv/bin/python")

    for t in dag.tasks:
        out = {f: render(getattr(t, f)) for f in t.template_fields}
        text = repr(out)
        assert "{{" not in text and "{%" not in text, f"{t.task_id}: unrendered template in {text[:300]}"
        if not type(t).__name__.endswith("Sensor"):
            assert f"{root}/runs/pipeline/" in text and "/ds=2026-01-05" in text, f"{t.task_id}: {text[:300]}"
        if type(t).__name__ == "SparkSubmitOperator":
            spark_bin = variables.get("graphrec_spark_submit", f"{root}/.venv/bin/spark-submit").rsplit("/", 1)[0]
            assert out["env_vars"]["PATH"].startswith(spark_bin + ":")
            assert out["env_vars"]["PYSPARK_PYTHON"] == py
            assert out["application"].startswith(f"{root}/jobs/") and out["py_files"] == f"{root}/dist/graphrec.zip"
        elif "bash_command" in out:
            assert py in out["bash_command"] or "curl" in out["bash_command"], t.task_id


RAW_INPUTS = {  # DAG Param -> the landing-zone input it defaults to
    "graph_input": "graph/edges", "interactions_input": "interactions/interactions", "reports_input": "reports/reports",
}


def _rendered(dagbag, **overrides) -> dict[str, str]:
    """``dag_id.task_id`` -> every templated field of the task rendered, as one string."""
    out = {}
    for dag_id in sorted(DAG_IDS):
        dag = dagbag.dags[dag_id]
        render = _renderer(dag, {}, **{k: v for k, v in overrides.items() if k in dag.params})
        for t in dag.tasks:
            out[f"{dag_id}.{t.task_id}"] = " ".join(str(render(getattr(t, f))) for f in t.template_fields)
    return out


def test_templates_spell_the_layout(dagbag):
    """The paths the tasks render are the ones ``jobs/runtime/layout.py`` defines — what run_daily and the report
    read."""
    import graphrec_common

    layout = graphrec_common.layout
    assert Path(layout.__file__).resolve() == LAYOUT.resolve()
    work, ds = f"{DAGS.parent}/{layout.DEFAULT_WORK}", "2026-01-05"
    texts = _rendered(dagbag, simulate_traffic=True)
    tables = set()
    for task, text in texts.items():
        for table in re.findall(re.escape(work) + r"/(\w+)/ds=" + ds, text):
            assert table in layout.TABLES, f"{task} writes {table!r}, a table the layout does not define"
            assert layout.dated(work, table, ds) in text
            tables.add(table)
    # the tables the DAGs produce and the run report reads
    assert {"graph", "interactions", "sample", "embedding", "friends", "recommender", "bandit", "published",
            "traffic", "events", "heavy_hitters", "raw"} <= tables, sorted(tables)
    every = " ".join(texts.values())
    for name in RAW_INPUTS.values():  # empty input Params: the day's landing zone
        assert layout.raw(work, ds, name) in every, name
    assert f"--history {layout.history(work, 'bandit')} " in texts["graphrec_daily.seed_bandit"]
    for task in ("graphrec_daily.serve_candidates", "graphrec_daily.publish", "graphrec_heavy_hitters.publish_fresh_items"):
        assert f"--live {layout.live_params(work)} " in texts[task], task
    given = _rendered(dagbag, **{p: f"/in/{p}" for p in RAW_INPUTS})  # a given input Param wins
    for p, name in RAW_INPUTS.items():
        assert f"/in/{p}" in " ".join(given.values()) and layout.raw(work, ds, name) not in " ".join(given.values())


def test_daily_closes_the_loop_through_the_previous_day(dagbag):
    """Day d's interactions take day d-1's interactions and exported events (the layout's dated paths of the day
    before); the embedding is tuned on the sample; training takes the social inputs and the tuning schedule."""
    import graphrec_common

    layout = graphrec_common.layout
    dag = dagbag.dags["graphrec_daily"]
    for a, b in [("ingest_graph", "ingest_interactions"), ("sample_graph", "tune_embedding"),
                 ("tune_embedding", "embed_graph"), ("embed_graph", "train_recommender"),
                 ("ingest_interactions", "train_recommender"), ("sample_graph", "profile_sample"),
                 ("ingest_graph", "profile_graph"), ("profile_graph", "profile_sample")]:
        assert b in dag.get_task(a).get_flat_relative_ids(upstream=False), f"{a} must precede {b}"
    work, ds, before = f"{DAGS.parent}/{layout.DEFAULT_WORK}", "2026-01-05", "2026-01-04"
    render = _renderer(dag, {}, simulate_traffic=True)

    def command(task_id: str) -> str:
        t = dag.get_task(task_id)
        out = render(t.application_args) if hasattr(t, "application_args") else render(t.bash_command)
        return " ".join(out) + " " if isinstance(out, list) else out + " "

    texts = {f"graphrec_daily.{t}": command(t) for t in dag.task_ids}
    ingest = texts["graphrec_daily.ingest_interactions"]
    for flag, table, day in [("--graph", "graph", ds), ("--previous", "interactions", before),
                             ("--feedback", "events", before), ("--output", "interactions", ds)]:
        assert f"{flag} {layout.dated(work, table, day)} " in ingest, (flag, ingest)
    assert "--missing-ok" in ingest
    assert f"--settings {layout.dated(work, 'embedding_tuning', ds)}/chosen.json" in texts["graphrec_daily.embed_graph"]
    assert f"--edges {layout.dated(work, 'sample', ds)} " in texts["graphrec_daily.tune_embedding"]
    assert f"--edges {layout.dated(work, 'graph', ds)} " in texts["graphrec_daily.profile_graph"]
    assert f"--output {layout.dated(work, 'profile', ds)} " in texts["graphrec_daily.profile_graph"]
    profile = texts["graphrec_daily.profile_sample"]  # the sample profiled and compared with the full graph
    assert f"--edges {layout.dated(work, 'sample', ds)} " in profile
    assert f"--reference {layout.dated(work, 'profile', ds)} " in profile
    train = texts["graphrec_daily.train_recommender"]
    assert f"--social-graph {layout.dated(work, 'graph', ds)} " in train
    assert f"--social-vectors {layout.dated(work, 'embedding', ds)} " in train
    assert f"-m jobs.train_schedule --history {layout.history(work, 'recommender')} --ds {ds} --every 7 --trials 8)" \
        in train and " $FLAGS " in train
    traffic = texts["graphrec_daily.simulate_traffic"]
    assert f"--population {layout.raw(work, ds, 'population')} " in traffic and f"--ds {ds} " in traffic
