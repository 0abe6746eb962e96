"""Faults on a multi-host Spark cluster (master + 2 workers in network namespaces): right output or none.

The fast subset of ``python -m benchmarks.faults``: one fault of each kind, on the cheapest job (ingest of a
~10⁴-edge generated graph). Executor, worker and link faults must leave tables equal to the fault-free run's;
a driver killed mid-write and a full output disk must publish nothing, the disk with a clear error, and the
next run must succeed. Needs root and ``ip netns`` (skips with the reason otherwise).
"""
from __future__ import annotations

import pytest

from benchmarks import faults
from benchmarks.netns_cluster import NetnsCluster, unavailable_reason

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
JOB = "ingest"


@pytest.fixture(scope="session")
def netns_cluster(tmp_path_factory):
    """The namespace cluster, up for the whole session; namespaces, veths, bridge and tmpfs removed after."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no namespace cluster: {reason}")
    with NetnsCluster(tmp_path_factory.mktemp("netns") / "cluster") as c:
        yield c


@pytest.fixture(scope="session")
def fault_env(netns_cluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    (work / "logs").mkdir()
    inputs = faults.prepare_inputs(work)
    base: dict = {}
    b = faults.baseline(netns_cluster, JOB, work, inputs, base)
    tables = faults.tables(base[JOB])
    assert tables and all(rows for rows in tables.values())
    return {"work": work, "inputs": inputs, "base": base, "tables": tables, "wall": b["wall_s"]}


def _fault(netns_cluster, fault_env, fault, **kw):
    e = fault_env
    return faults.fault_run(netns_cluster, JOB, fault, e["work"], e["inputs"], e["base"], e["tables"],
                            kw.get("cut_s", 20.0))


def test_cluster_hosts_are_namespaces(netns_cluster):
    state = netns_cluster.state()
    hosts = sorted(w["host"] for w in state["workers"] if w["state"] == "ALIVE")
    assert hosts == [netns_cluster.hosts["w1"], netns_cluster.hosts["w2"]]
    assert all(h.startswith("10.231.") for h in hosts)
    assert all(w["cores"] == 1 for w in state["workers"])


@pytest.mark.parametrize("fault", ["executor", "worker", "link"])
def test_recoverable_fault_gives_equal_output(netns_cluster, fault_env, fault):
    r = _fault(netns_cluster, fault_env, fault)
    assert r["injected"], f"{fault}: the job ended before the fault ({r})"
    assert r["rc"] == 0, (fault_env["work"] / r["log"]).read_text()[-3000:]
    assert r["equal"] and r["complete"] and r["partial_left"] == 0


@pytest.mark.parametrize("fault", ["driver", "disk"])
def test_fatal_fault_publishes_nothing_and_next_run_succeeds(netns_cluster, fault_env, fault):
    r = _fault(netns_cluster, fault_env, fault)
    assert r["rc"] != 0 and not r["output_published"] and r["partial_left"] == 0
    if fault == "driver":
        assert r["injected"]
    else:
        assert r["no_space_error"], (fault_env["work"] / r["log"]).read_text()[-3000:]
    assert r["rerun_rc"] == 0 and r["rerun_equal"]
