"""Scale-out of DistNE, measured: 1 vs 2 one-core workers of a standalone cluster, and a projection to 10⁹ edges.

    python -m benchmarks.scale_out [--graphs rmat16 rmat18] [--workers 1 2] [--parts 8] [--repeats 1]
    python -m benchmarks.scale_out --report [--target-edges 1e9 --target-workers 16 --bandwidth-gbps 10 ...]

For each worker count a :class:`~benchmarks.netns_cluster.NetnsCluster` (master + N one-core workers, each in its
own network namespace; the driver in the root namespace) runs ``jobs/embed_graph.py`` (d = 128, ``--max-part-nodes
M = 2.04·n/parts``: ``parts`` parts, one task slot per worker core) on the R-MAT graphs of
:mod:`benchmarks.embedding`. The job is submitted through this file (``--driver``): it runs ``embed_graph`` unchanged
and only labels the Spark jobs of each DistNE phase (``spark.job.description``: read, top, parts: placement / part
tasks / stats, fusion round k, output) so that the Spark event log (uncompressed) is split by phase: per phase the
wall time of its jobs, executor run and CPU seconds, and the shuffle bytes written and read (local / remote, i.e.
across the bridge). Per run: spark-submit's wall time, ``_meta.json`` (parts, embedded edges, timings).

Per-part throughput = embedded part-subgraph edges (Σ|E(H_i)|) / seconds of the part tasks, per worker core: by
wall time (``part_rate_wall``: edges / (wall of the part-task job × cores)) and by executor run time
(``part_rate_task``: edges / Σ executor run seconds of the part tasks). :func:`project` extrapolates the measured
figures to ``--target-edges`` on ``--target-workers`` with the assumptions printed beside the result.
Writes ``benchmarks/results/scale_out.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale_out.json"
DIM = 128
log = logging.getLogger("benchmarks.scale_out")


# ---------------------------------------------------------------------------------------------- driver side (Spark)
def _driver(argv: list[str]) -> int:
    """``embed_graph.main(argv)`` with each DistNE phase's Spark jobs labelled (``spark.job.description``)."""
    sys.path.insert(0, str(ROOT))
    from pyspark import SparkContext

    from embeddings.spark import embed as E
    from embeddings.spark import fuse as F
    from embeddings.spark import stats as S
    from jobs import embed_graph

    def label(text: str) -> None:
        sc = SparkContext._active_spark_context
        if sc is not None:
            sc.setJobDescription(f"phase:{text}")

    after = {"read_s": "top", "coarsen_s": "top", "top_s": "parts: placement", "parts_s": "fusion",
             "fusion_s": "output"}
    lap, ckpt, placed, of, run = S.Laps.lap, F.checkpoint, E._packed_arcs, S.PartStats.of, embed_graph.run
    rounds = [0]

    def lap_(self, name):
        lap(self, name)
        label(after.get(name, name))

    def ckpt_(df):
        label(f"fusion round {rounds[0]}")
        rounds[0] += 1
        try:
            return ckpt(df)
        finally:
            label("fusion")

    def placed_(*a, **k):
        out = placed(*a, **k)
        label("parts: part tasks")
        return out

    def of_(parted):
        label("parts: stats")
        return of(parted)

    def run_(spark, cfg):
        label("read")
        return run(spark, cfg)

    S.Laps.lap, F.checkpoint, E._packed_arcs, S.PartStats.of, embed_graph.run = lap_, ckpt_, placed_, of_, run_
    return embed_graph.main(argv)


# ---------------------------------------------------------------------------------------------- event log
def read_phases(path: Path) -> dict:
    """Per job description (``phase:…``): jobs, stages, tasks, wall (union of its jobs' intervals), executor run and
    CPU seconds (CPU: the JVM's threads only, not the Python workers), shuffle bytes written and read (local,
    remote), and the executor run seconds of its jobs' result stages (``result_run_s``)."""
    job_desc, stage_job, jobs, phases = {}, {}, {}, {}
    tasks: list[tuple[int, dict]] = []
    with open(path) as fh:
        for line in fh:
            e = json.loads(line)
            kind = e.get("Event")
            if kind == "SparkListenerJobStart":
                d = (e.get("Properties") or {}).get("spark.job.description") or "unlabelled"
                job_desc[e["Job ID"]] = d.removeprefix("phase:")
                jobs[e["Job ID"]] = [e["Submission Time"], None, max(e["Stage IDs"])]
                for s in e["Stage IDs"]:
                    stage_job.setdefault(s, e["Job ID"])
            elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
                jobs[e["Job ID"]][1] = e["Completion Time"]
            elif kind == "SparkListenerTaskEnd":
                tasks.append((e["Stage ID"], e.get("Task Metrics") or {}))
    spans: dict[str, list] = {}
    for j, (a, b, _) in jobs.items():
        p = phases.setdefault(job_desc[j], {"jobs": 0, "wall_s": 0.0, "tasks": 0, "run_s": 0.0, "cpu_s": 0.0,
                                            "result_run_s": 0.0, "shuffle_write": 0, "read_local": 0,
                                            "read_remote": 0, "stages": set()})
        p["jobs"] += 1
        spans.setdefault(job_desc[j], []).append((a, b or a))
    for d, iv in spans.items():  # the union of the phase's job intervals (broadcast jobs may overlap)
        end, union = -1.0, []
        for a, b in sorted(iv):
            if b > end:
                phases[d]["wall_s"] += (b - max(a, end)) / 1000
                union.append([max(a, end), b])
                end = b
        phases[d]["spans_ms"] = union
    for stage, m in tasks:
        j = stage_job.get(stage)
        p = phases[job_desc[j]] if j is not None else None
        if p is None:
            continue
        p["stages"].add(stage)
        p["tasks"] += 1
        p["run_s"] += m.get("Executor Run Time", 0) / 1000
        p["cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
        if stage == jobs[j][2]:  # the job's result stage: the tasks that run the phase's own code
            p["result_run_s"] += m.get("Executor Run Time", 0) / 1000
        r, w = m.get("Shuffle Read Metrics") or {}, m.get("Shuffle Write Metrics") or {}
        p["shuffle_write"] += w.get("Shuffle Bytes Written", 0)
        p["read_local"] += r.get("Local Bytes Read", 0)
        p["read_remote"] += r.get("Remote Bytes Read", 0)
    for p in phases.values():
        p["stages"] = len(p["stages"])
        for k in ("wall_s", "run_s", "cpu_s", "result_run_s"):
            p[k] = round(p[k], 3)
    return phases


# ---------------------------------------------------------------------------------------------- one run
class NetSampler:
    """Bytes received and sent by each worker's ``eth0`` (its veth peer's counters in the root namespace, read
    every ``interval`` s): every byte that crossed the bridge — shuffle fetches, checkpoint replicas, broadcasts,
    task descriptions and results, heartbeats."""

    def __init__(self, cluster, interval: float = 0.25):
        import threading

        self.paths = [Path("/sys/class/net") / cluster.ns(w) / "statistics" for w in cluster.workers]
        self.samples: list[tuple[float, int, int]] = []
        self.interval, self._stop = interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> tuple[int, int]:
        # the root-side end sends what the worker receives: its tx_bytes is the worker's rx
        return (sum(int((p / "tx_bytes").read_text()) for p in self.paths),
                sum(int((p / "rx_bytes").read_text()) for p in self.paths))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time() * 1000, *self.read()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "NetSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time() * 1000, *self.read()))

    def between(self, spans_ms: list) -> tuple[int, int]:
        """Bytes (received, sent by the workers) during the spans (linear between samples)."""
        import numpy as np

        t, rx, tx = (np.array(c, float) for c in zip(*self.samples))
        f = lambda y: sum(float(np.interp(b, t, y) - np.interp(a, t, y)) for a, b in spans_ms)
        return int(f(rx)), int(f(tx))


def run_once(cluster, gdir: Path, out: Path, events: Path, m: int, workers: int, executor_memory: str) -> dict:
    """Submit the labelled embed_graph to ``cluster``; wall time, ``_meta.json`` figures, the phases (event log)
    and the bytes the workers received / sent per phase (:class:`NetSampler`)."""
    events.mkdir(parents=True, exist_ok=True)
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file:{events}", "spark.eventLog.compress":
            "false", "spark.eventLog.rolling.enabled": "false", "spark.default.parallelism": str(workers),
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s", "spark.driver.memory": "1g",
            "spark.executor.memory": executor_memory}
    cmd = cluster.submit_cmd("benchmarks/scale_out.py", "--driver", "--edges", str(gdir), "--output", str(out),
                             "--dim", str(DIM), "--max-part-nodes", str(m), conf=conf)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(events.parent / f"{events.name}.log", "wb") as lf, NetSampler(cluster) as net:
        rc = subprocess.run(cmd, env=cluster.driver_env(), cwd=ROOT, stdout=lf, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    res = {"wall_s": round(wall, 2), "ok": rc == 0, "load_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]}
    if rc:
        res["log_tail"] = (events.parent / f"{events.name}.log").read_text(errors="replace")[-3000:]
        log.error("run failed (rc %s): %s", rc, res["log_tail"][-1500:])
        return res
    meta = json.loads((out / "_meta.json").read_text())
    res |= {k: meta.get(k) for k in ("parts", "levels", "nodes_with_edges", "edges", "embedded_edges_multiple",
                                     "edge_cut_fraction", "largest_subgraph_edges", "per_level", "timings",
                                     "shuffle_partitions")}
    logs = [p for p in events.iterdir() if p.is_file()]
    res["phases"] = read_phases(max(logs, key=lambda p: p.stat().st_mtime))
    for ph in res["phases"].values():
        ph["net_rx"], ph["net_tx"] = net.between(ph["spans_ms"])
    res["net_rx"], res["net_tx"] = net.between([[net.samples[0][0], net.samples[-1][0]]])
    return res


def derived(r: dict, workers: int) -> dict:
    """Part edges, per-core part throughput (wall / task time), fusion bytes per round and per edge."""
    e = r["edges"]
    part_edges = r["per_level"]["parts"]["edges_frac"] * e
    ph = r["phases"]
    pt = ph.get("parts: part tasks", {})
    rounds = sorted(k for k in ph if k.startswith("fusion round"))
    fw = [ph[k]["shuffle_write"] for k in rounds]
    return {"part_edges": int(part_edges), "part_tasks_wall_s": pt.get("wall_s"),
            "part_rate_wall": part_edges / max(pt.get("wall_s", 0) * workers, 1e-9),
            "part_rate_task": part_edges / max(pt.get("result_run_s", 0), 1e-9),
            "fusion_rounds": len(rounds), "fusion_wall_s": round(sum(ph[k]["wall_s"] for k in rounds), 2),
            "fusion_bytes_per_round": fw, "fusion_bytes_per_edge": sum(fw) / max(len(fw), 1) / e,
            "fusion_remote_read_per_round": [ph[k]["read_remote"] for k in rounds],
            "fusion_net_rx_per_round": [ph[k].get("net_rx", 0) for k in rounds],
            # what crossed the bridge beyond the remote shuffle reads: checkpoint replicas (``*_2`` storage on a
            # cluster), task descriptions and results, heartbeats
            "fusion_extra_net_per_edge": sum(ph[k].get("net_rx", 0) - ph[k]["read_remote"] for k in rounds)
            / max(len(rounds), 1) / e,
            "fusion_run_s_per_edge": sum(ph[k]["run_s"] for k in rounds) / max(len(rounds), 1) / e,
            "placement_bytes_per_edge": ph.get("parts: placement", {}).get("shuffle_write", 0) / e,
            "placement_run_s_per_edge": ph.get("parts: placement", {}).get("run_s", 0) / e,
            "remote_read": sum(p["read_remote"] for p in ph.values()),
            "shuffle_write": sum(p["shuffle_write"] for p in ph.values())}


# ---------------------------------------------------------------------------------------------- projection
def project(rows: list[dict], edges: float = 1e9, workers: int = 16, cores: int = 1, bandwidth_gbps: float = 10.0,
            memory_mb: int = 8192, edges_per_node: float | None = None, refine_order: int = 2,
            basis_workers: int = 1) -> dict:
    """Per-phase time of DistNE on ``edges`` edges and ``workers`` × ``cores``, from the measured ``rows``.

    Part sizes by DistNE's sizing rules (:meth:`DistNEConfig.for_graph`, d = 128, task budget ``memory_mb``): M
    nodes per subgraph, parts of ``part_fraction·M`` own nodes, every subgraph bounded to ``max_subgraph_edges``; a
    part holds its own edges (``(1 + cut)|E|/parts``) plus the quotient's edges among its outside clusters
    (``q·|E|``, measured fraction), up to the bound. Part time per core ``t(e) = t₀·(e/e₀)^b`` fitted on the two
    largest measured sizes of ``basis_workers`` (part-task executor seconds vs edges per part; ``b ≥ 1``), in
    waves of ``workers·cores``; the top level is one such task on the bounded quotient. Placement and each of the
    ``2(order−1)+1`` fusion rounds: measured shuffle bytes and executor seconds per edge × ``edges``; the network
    moves ``(W−1)/W`` of the shuffle bytes, plus the bytes per edge that crossed the bridge beyond the remote
    shuffle reads on 2 workers (checkpoint replicas, ...), over ``W`` links of ``bandwidth_gbps`` (counted in
    series with the CPU, no overlap).
    """
    from embeddings.distne import DistNEConfig

    ok = sorted((r for r in rows if r.get("ok") and r["workers"] == basis_workers), key=lambda r: r["edges"])
    if len(ok) < 1:
        raise ValueError(f"no successful run with {basis_workers} worker(s) to project from")
    big = ok[-1]
    small = next((r for r in reversed(ok) if r["edges"] < big["edges"]), None)

    def per_edge(f) -> float:
        """Marginal seconds per edge between the two largest sizes (fixed costs out), else the largest's ratio."""
        if small is not None and f(big) > f(small):
            return (f(big) - f(small)) / (big["edges"] - small["edges"])
        return f(big) / big["edges"]

    pe = lambda r: r["derived"]["part_edges"] / r["parts"]
    pt = lambda r: r["phases"]["parts: part tasks"]["result_run_s"] / r["parts"]
    b = 1.0
    if small is not None and pe(big) > pe(small):
        b = max(1.0, math.log(pt(big) / pt(small)) / math.log(pe(big) / pe(small)))
    t_part = lambda e: pt(big) * (e / pe(big)) ** b
    epn = edges_per_node or big["edges"] / big["nodes_with_edges"]
    n = edges / epn
    cfg = DistNEConfig(dim=DIM, memory_mb=memory_mb).for_graph(int(n), int(edges))
    m, bound = cfg.max_subgraph_nodes, cfg.max_subgraph_edges
    parts = math.ceil(n / (cfg.part_fraction * m))
    q, cut = big["per_level"]["top"]["edges_frac"], big["edge_cut_fraction"]
    e_part = min((1 + cut) * edges / parts + q * edges, bound)
    slots = workers * cores
    d = big["derived"]
    bw = bandwidth_gbps * 1e9 / 8  # bytes/s per worker link
    net = lambda nbytes: nbytes / (workers * bw)  # nbytes on the wire, spread over the W links
    rounds = 2 * (refine_order - 1) + 1
    two = [r for r in rows if r.get("ok") and r["graph"] == big["graph"] and r["workers"] >= 2]
    extra = max(0.0, sum(r["derived"]["fusion_extra_net_per_edge"] for r in two) / len(two)) if two else 0.0
    # on the wire per round: the shuffle's remote share and the replicas etc. measured beyond it on 2 workers
    fusion_bytes = d["fusion_bytes_per_edge"] * edges * (workers - 1) / workers + extra * edges
    ph = lambda r, k: r["phases"].get(k, {}).get("run_s", 0)
    place_s = per_edge(lambda r: ph(r, "parts: placement"))
    round_s = per_edge(lambda r: sum(ph(r, f"fusion round {k}") for k in range(rounds)) / rounds)
    phases = {
        "top (ProNE of the bounded quotient, one task)": t_part(min(q * edges, bound)),
        "placement (edges shuffled to their part's slot)": place_s * edges / slots
        + net(d["placement_bytes_per_edge"] * edges * (workers - 1) / workers),
        "part tasks": math.ceil(parts / slots) * t_part(e_part),
        f"fusion ({rounds} rounds)": rounds * (round_s * edges / slots + net(fusion_bytes)),
    }
    return {"assumptions": {"edges": edges, "workers": workers, "cores_per_worker": cores,
                            "bandwidth_gbps_per_worker": bandwidth_gbps, "task_memory_mb": memory_mb,
                            "edges_per_node": round(epn, 2), "nodes": int(n), "dim": DIM, "refine_order": refine_order,
                            "basis": f"{big['graph']} on {basis_workers} worker(s)", "part_time_exponent_b": round(b, 3),
                            "part_s_per_part_edge": pt(big) / pe(big), "placement_run_s_per_edge": place_s,
                            "fusion_run_s_per_edge_round": round_s,
                            "per_edge_costs": "marginal between " + (f"{small['graph']} and " if small else "")
                            + big["graph"]},
            "sizing": {"M": m, "max_subgraph_edges": bound, "parts": parts, "edges_per_part": int(e_part),
                       "waves": math.ceil(parts / slots), "embedded_part_edges_multiple": round(parts * e_part / edges, 2),
                       "quotient_edges_frac": q, "edge_cut_fraction": cut},
            "shuffle": {"placement_bytes": d["placement_bytes_per_edge"] * edges,
                        "fusion_shuffle_bytes_per_edge_round": d["fusion_bytes_per_edge"],
                        "fusion_extra_net_bytes_per_edge_round": extra,
                        "fusion_wire_bytes_per_round": fusion_bytes, "fusion_network_s_per_round": net(fusion_bytes)},
            "phases_s": {k: round(v, 1) for k, v in phases.items()}, "total_s": round(sum(phases.values()), 1),
            "not_modelled": ["coarsening on Spark (at this size the graph no longer coarsens inside the top task: "
                             "lpa_rounds shuffles of the edges per level)", "read/ingest and the output write",
                             "JVM and executor start-up", "part-size skew and stragglers (equal parts assumed)",
                             "spill, GC and memory pressure", "network contention beyond the per-link rate"]}


# ---------------------------------------------------------------------------------------------- report
def summary(rows: list[dict]) -> list[dict]:
    """Per graph: the 2-vs-1-worker speed-ups (part tasks, parts phase, whole job) from the mean of each cell."""
    out = []
    for g in sorted({r["graph"] for r in rows}):
        cell = {}
        for w in (1, 2):
            rs = [r for r in rows if r["graph"] == g and r["workers"] == w and r.get("ok")]
            if rs:
                mean = lambda f: sum(f(r) for r in rs) / len(rs)
                cell[w] = {"wall": mean(lambda r: r["wall_s"]), "parts": mean(lambda r: r["timings"]["parts_s"]),
                           "tasks": mean(lambda r: r["derived"]["part_tasks_wall_s"])}
        if len(cell) == 2:
            out.append({"graph": g, **{f"speedup_{k}": round(cell[1][k] / cell[2][k], 3) for k in cell[1]}})
    return out


def print_table(res: dict) -> None:
    cols = ["graph", "edges", "workers", "wall s", "parts", "part edges ×|E|", "parts s (tasks s)",
            "part edges/s/core wall (task)", "fusion s", "fusion MB/round", "remote MB", "wire MB", "load"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in res["runs"]:
        if not r.get("ok"):
            print(f"| {r['graph']} | | {r['workers']} | failed | | | | | | | | | |")
            continue
        d = r["derived"]
        print(f"| {r['graph']} | {r['edges']:,} | {r['workers']} | {r['wall_s']:.1f} | {r['parts']} | "
              f"{d['part_edges'] / r['edges']:.2f} | {r['timings']['parts_s']:.1f} ({d['part_tasks_wall_s']:.1f}) | "
              f"{d['part_rate_wall']:,.0f} ({d['part_rate_task']:,.0f}) | {r['timings'].get('fusion_s', 0):.1f} | "
              f"{'/'.join(f'{b / 1e6:.0f}' for b in d['fusion_bytes_per_round'])} | {d['remote_read'] / 1e6:.0f} | "
              f"{r.get('net_rx', 0) / 1e6:.0f} | {r['load_1m'][0]}–{r['load_1m'][1]} |")
    for s in res.get("summary", []):
        print(f"{s['graph']}: 2 vs 1 worker speed-up — part tasks {s['speedup_tasks']:.2f}×, parts phase "
              f"{s['speedup_parts']:.2f}×, whole job {s['speedup_wall']:.2f}×")
    p = res.get("projection")
    if p:
        print("\nprojection:", json.dumps(p["assumptions"]), "\n  sizing:", json.dumps(p["sizing"]),
              "\n  shuffle:", json.dumps({k: f"{v:.3g}" for k, v in p["shuffle"].items()}))
        for k, v in p["phases_s"].items():
            print(f"  {k}: {v:,.1f} s")
        print(f"  total (modelled phases): {p['total_s']:,.1f} s\n  not modelled: " + "; ".join(p["not_modelled"]))


def plot(res: dict, path: Path) -> Path:
    """Left: seconds per phase of each run (event-log phase walls; the rest of spark-submit's wall as "other").
    Right: the projection's phases."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    groups = {"read + top": ("read", "top"), "parts": ("parts: placement", "parts: part tasks", "parts: stats"),
              "fusion": ("fusion round 0", "fusion round 1", "fusion round 2", "fusion"), "output": ("output",)}
    runs = [r for r in res["runs"] if r.get("ok")]
    labels, bottom = [f"{r['graph']}\n{r['workers']} w" for r in runs], [0.0] * len(runs)
    for name, keys in groups.items():
        h = [sum(r["phases"].get(k, {}).get("wall_s", 0) for k in keys) for r in runs]
        ax.bar(range(len(runs)), h, bottom=bottom, label=name)
        bottom = [x + y for x, y in zip(bottom, h)]
    ax.bar(range(len(runs)), [r["wall_s"] - b for r, b in zip(runs, bottom)], bottom=bottom, label="other (JVMs, driver)",
           color="lightgrey")
    ax.set_xticks(range(len(runs)), labels, fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title("DistNE on 1 vs 2 one-core workers (2-core machine)")
    ax.set_ylim(0, 1.3 * max(r["wall_s"] for r in runs))
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    p = res.get("projection")
    if p:
        names = list(p["phases_s"])
        bx.barh(range(len(names)), [p["phases_s"][k] / 60 for k in names])
        bx.set_yticks(range(len(names)), [k.split(" (")[0] for k in names], fontsize=8)
        a = p["assumptions"]
        bx.set_xlabel("minutes (modelled)")
        bx.set_title(f"projection: {a['edges']:.0e} edges, {a['workers']} workers, {a['bandwidth_gbps_per_worker']:g} Gb/s",
                     fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", nargs="+", default=["rmat16", "rmat18"], help="R-MAT graphs (rmatS: 2^S nodes)")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="cluster sizes, in run order")
    ap.add_argument("--parts", type=int, default=8, help="parts forced by M = 2.04·n/parts")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--executor-memory", default="2g")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--report", action="store_true", help="only recompute the projection and print --results")
    ap.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw --results' .png")
    ap.add_argument("--target-edges", type=float, default=1e9)
    ap.add_argument("--target-workers", type=int, default=16)
    ap.add_argument("--cores-per-worker", type=int, default=1)
    ap.add_argument("--bandwidth-gbps", type=float, default=10.0, help="network rate of one worker's link")
    ap.add_argument("--task-memory-mb", type=int, default=8192, help="one part task's budget at the target size")
    ap.add_argument("--edges-per-node", type=float, default=None, help="default: the largest measured graph's")
    ap.add_argument("--basis-workers", type=int, default=1, help="the measured cluster size the projection uses")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out_file = Path(args.results)
    if args.report:  # the derived figures, summary and projection recomputed from the stored runs
        res = json.loads(out_file.read_text())
        for r in res["runs"]:
            if r.get("ok"):
                r["derived"] = derived(r, r["workers"])
    else:
        res = measure(args)
    res["summary"] = summary(res["runs"])
    res["projection"] = project(res["runs"], args.target_edges, args.target_workers, args.cores_per_worker,
                                args.bandwidth_gbps, args.task_memory_mb, args.edges_per_node,
                                basis_workers=args.basis_workers)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(res, indent=1, default=float))
    print_table(res)
    if args.plot:
        plot(res, out_file.with_suffix(".png"))
    return 0


def measure(args) -> dict:
    """Every (cluster size, graph, repeat) run, the graphs written once."""
    import numpy as np

    from benchmarks.embedding import _write_graph_dir, load_graph
    from benchmarks.netns_cluster import NetnsCluster, unavailable_reason
    from embeddings.sizing import parse_memory_mb

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"no namespace cluster here: {reason}")
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
           "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
           "config": {"dim": DIM, "parts": args.parts, "executor_memory": args.executor_memory,
                      "worker_cores": 1, "driver": "root namespace, shares the machine's cores"}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        work = Path(tmp)
        graphs = {}
        for g in args.graphs:
            a, _ = load_graph(g, ROOT.parent / "shared" / "data")
            _write_graph_dir(a, work / g)
            graphs[g] = int(np.ceil(2.04 * a.shape[0] / args.parts))
            log.info("%s: %d nodes, M = %d", g, a.shape[0], graphs[g])
        for w in args.workers:  # e.g. 1 2 2 1: a repeated size is a second cluster (load drift evens out)
            mem = f"{parse_memory_mb(args.executor_memory, 1024) + 1024}m"  # the worker offers heap + 1 GB
            with NetnsCluster(work / f"cluster{w}", workers=w, worker_memory=mem,
                              executor_memory=args.executor_memory) as c:
                for rep in range(args.repeats):
                    for g, m in graphs.items():
                        tag = f"{g}-w{w}-{len(res['runs'])}"
                        r = run_once(c, work / g, work / f"out-{tag}", work / "events" / tag, m, w,
                                     args.executor_memory)
                        r |= {"graph": g, "workers": w, "repeat": rep}
                        if r["ok"]:
                            r["derived"] = derived(r, w)
                        res["runs"].append(r)
                        log.info("%s: %s", tag, {k: r.get(k) for k in ("wall_s", "parts", "timings")})
    res["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return res


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:  # spark-submit runs this file as the application
        sys.exit(_driver(sys.argv[2:]))
    sys.exit(main())
