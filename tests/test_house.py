"""House rules of the tree (issue 29): job and entry-point flags generated from their config dataclass (a parser
default equals the dataclass default, every field and visible flag has help), no import cycle among the project's
modules (a static import graph; imports under ``if TYPE_CHECKING:`` do not count), every module imports, no module
over 400 lines outside ``benchmarks/``."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphs", "embeddings", "ldp", "recsys", "jobs", "benchmarks")
# job module -> (config class, the required flags that make a minimal command line)
JOBS = {
    "ingest_graph": ("IngestGraphConfig", ["--input", "i", "--format", "snap", "--output", "o"]),
    "ingest_interactions": ("IngestInteractionsConfig", ["--input", "i", "--format", "pairs", "--output", "o"]),
    "sample_graph": ("SampleConfig", ["--edges", "e", "--ratio", "0.5", "--output", "o"]),
    "embed_graph": ("EmbedGraphConfig", ["--edges", "e", "--output", "o"]),
    "knn": ("KnnJobConfig", ["--vectors", "v", "--output", "o"]),
    "graph_profile": ("GraphProfileConfig", ["--edges", "e", "--output", "o"]),
    "tune_embedding": ("TuneEmbeddingConfig", ["--edges", "e", "--output", "o"]),
    "heavy_hitters": ("HeavyHittersConfig", ["--input", "i", "--output", "o"]),
    "bandit_update": ("BanditUpdateConfig", ["--events", "e", "--impressions", "i", "--params", "p", "--output", "o"]),
}
# entry points outside jobs/ (flags from graphs.flags, which jobs.runtime.cli re-exports):
# module -> (config, minimal argv)
CLIS = {
    "recsys.train": ("RunConfig", ["--data", "d", "--output", "o"]),
    "recsys.candidates": ("CandidateRunConfig", ["--params", "p"]),
    "recsys.serving.cli": ("ServeConfig", ["--params", "p", "--store", "sqlite:///s.db"]),
}


def _defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize("job", [*sorted(JOBS), *sorted(CLIS)])
def test_job_flags_come_from_the_config(job):
    mod = importlib.import_module(job if job in CLIS else f"jobs.{job}")
    cls_name, required = CLIS.get(job) or JOBS[job]
    cls = getattr(mod, cls_name)
    cfg = mod.parse_args(required)
    assert type(cfg) is cls
    got = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}  # a nested config: its default instance
    for name, default in _defaults(cls).items():
        assert got[name] == default, (job, name, got[name], default)
    missing = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help")]
    assert not missing, f"{cls_name}: fields without help: {missing}"


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_entry_point_flags_have_help_and_hidden_ones_stay_hidden(cli, capsys):
    """Every visible flag of the entry points outside jobs/ (nested core-config flags included) has help; the hidden
    research flags of recsys.train are accepted but not in --help."""
    import argparse

    mod = importlib.import_module(cli)
    parser = mod.build_parser()
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert actions and not [a.option_strings for a in actions if not a.help], cli
    hidden = {a.option_strings[0] for a in actions if a.help == argparse.SUPPRESS}
    with pytest.raises(SystemExit):
        mod.parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(a.option_strings[0] in out for a in actions if a.help != argparse.SUPPRESS)
    parser.epilog = None  # (recsys.train's epilog names the hidden flags)
    listed = set(parser.format_help().replace("[", " ").replace("]", " ").split())
    assert not hidden & listed, cli
    if cli == "recsys.train":
        assert hidden == {"--rounds", "--grow-signal", "--grow-window", "--min-interval-epochs", "--min-row-active",
                          "--init-mask", "--init-spread", "--grow-zero-signal", "--prune-start",
                          "--init-density-scale", "--social-map"}
        cfg = mod.parse_args([*CLIS[cli][1], "--rounds", "7", "--social-map", "--no-progress", "--no-refit"])
        assert (cfg.train.target_rounds, cfg.social.map, cfg.train.show_progress, cfg.refit) == (7, True, False, False)
    else:
        assert not hidden, cli


@pytest.mark.parametrize("kind", ["graph", "interactions", "rmat"])
def test_generate_flags_come_from_the_configs(kind):
    from graphs.generators import InteractionConfig, PlantedConfig
    from jobs.generate import RMAT_BLOCK, GenerateConfig, parse_args

    cfg = parse_args([kind, "--output", "o"])
    assert cfg.graph == PlantedConfig() and cfg.interactions == InteractionConfig()
    assert cfg.block == (RMAT_BLOCK if kind == "rmat" else GenerateConfig.block)
    for name, default in _defaults(GenerateConfig).items():
        if name not in ("block", "graph", "interactions"):
            assert getattr(cfg, name) == default, (kind, name)
    assert all(f.metadata.get("help") for f in dataclasses.fields(GenerateConfig))


def test_help_shows_defaults(capsys):
    from jobs import knn

    with pytest.raises(SystemExit):
        knn.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 20)" in out and "(default: 200000)" in out and "--exclude-edges" in out


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere (function bodies included), except under TYPE_CHECKING."""
    out: set[str] = set()
    stack = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            for a in node.names:
                m = a.name
                while m and m not in mods:
                    m = m.rpartition(".")[0]
                if m:
                    out.add(m)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(pkg + ([node.module] if node.module else []))
            for a in node.names:
                if f"{base}.{a.name}" in mods:
                    out.add(f"{base}.{a.name}")
                elif base in mods:
                    out.add(base)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert graph["jobs.embed_graph"] >= {"jobs.runtime.cli", "embeddings.distne"}  # the graph sees real imports
    assert _cycles(graph) == []


def test_every_module_imports():
    """One child interpreter imports every module of the packages (none needs a Spark session or a GPU)."""
    names = sorted(n for n in _modules() if n != "jobs.bootstrap")
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    r = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_modules_are_at_most_400_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in (*PACKAGES, "dags", "tests") if pkg != "benchmarks"
            for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


@pytest.mark.parametrize("job", sorted({*JOBS, "generate"}))
def test_jobs_share_one_shape(job):
    """parse_args -> run(spark, cfg) -> publish (bandit_update publishes a parameter version instead), main by
    jobs.runtime.cli.run_job."""
    import inspect

    mod = importlib.import_module(f"jobs.{job}")
    assert list(inspect.signature(mod.run).parameters)[:2] == ["spark", "cfg"]
    writer = "new_version_dir(" if job == "bandit_update" else "publish("
    assert writer in inspect.getsource(mod.run) and "run_job(" in inspect.getsource(mod.main)


def test_generated_flags_keep_their_forms():
    """Renamed and negated flags, comma lists, optional values and choices as the hand-written parsers had them."""
    from jobs import graph_profile, heavy_hitters, ingest_graph

    base = ["--input", "i", "--format", "snap", "--output", "o"]
    assert ingest_graph.parse_args(base).dedup and not ingest_graph.parse_args([*base, "--keep-duplicates"]).dedup
    hh = heavy_hitters.parse_args(["--input", "i", "--output", "o", "--no-consistency", "--no-check-users"])
    assert (hh.consistency, hh.check_users, hh.seed, hh.final_share) == (False, False, None, None)
    assert graph_profile.parse_args(["--edges", "e", "--output", "o", "--skip", "cores,,pagerank"]).skip == (
        "cores", "pagerank")
    with pytest.raises(SystemExit):
        ingest_graph.parse_args(["--input", "i", "--format", "nope", "--output", "o"])
