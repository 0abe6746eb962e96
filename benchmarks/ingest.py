"""Ingest throughput: graphrec's ``ingest_graph`` (spark-submit, local[2]) vs plain pandas+pyarrow.

Generates R-MAT SNAP text files of 10⁶, 4·10⁶, 1.6·10⁷ edges (Graph500 parameters, 16 edges per
node), then for each size times (a) the whole ``spark-submit jobs/ingest_graph.py`` run (JVM
start-up included; the job's own ingest+write phases from ``_meta.json`` too) and (b) a plain
``pandas.read_csv`` → dedup → ``pyarrow.parquet.write_table`` conversion of the same file (no dense
relabelling, no statistics — a lower bound for single-machine work). Prints edges/s, ratios and
the fitted growth exponent of time in edges (log-log least squares), and writes
``benchmarks/results/ingest.json``.

    python -m benchmarks.ingest [--sizes 1e6 4e6 1.6e7] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graphs.generators import rmat_block
from jobs.runtime.session import PROJECT_ROOT, build_zip

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "ingest.json"


def write_snap(path: Path, n_edges: int, seed: int = 1) -> None:
    scale = int(np.ceil(np.log2(max(n_edges // 16, 2))))
    src, dst = rmat_block(scale, n_edges, seed)
    with open(path, "w") as fh:
        fh.write(f"# R-MAT scale {scale}, {n_edges} edges\n")
        pd.DataFrame({"s": src, "d": dst}).to_csv(fh, sep="\t", header=False, index=False)


def run_ours(path: Path, out: Path) -> dict:
    zip_path = build_zip()
    py = sys.executable
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=py, PYSPARK_DRIVER_PYTHON=py)
    cmd = [str(Path(py).parent / "spark-submit"), "--master", "local[2]", "--driver-memory", "6g",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=8",
           "--py-files", str(zip_path), str(PROJECT_ROOT / "jobs" / "ingest_graph.py"),
           "--input", str(path), "--format", "snap", "--drop-self-loops", "--output", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    meta = json.loads((out / "_meta.json").read_text())
    return {"seconds": wall, "ingest_s": meta["timings"]["ingest_s"], "write_s": meta["timings"]["write_s"],
            "edges_out": meta["rows"]["edges"]}


def run_pandas(path: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    df = pd.read_csv(path, sep="\t", comment="#", header=None, names=["src", "dst"], dtype=np.int64)
    df = df[df.src != df.dst].drop_duplicates()
    df["weight"] = np.float32(1.0)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out)
    return {"seconds": time.perf_counter() - t0, "edges_out": len(df)}


def exponent(sizes, times) -> float:
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=float, default=[1e6, 4e6, 1.6e7])
    p.add_argument("--workdir", default=None)
    a = p.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="graphrec-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in map(int, a.sizes):
        f = work / f"rmat_{n}.txt"
        if not f.exists():
            write_snap(f, n)
        ours = run_ours(f, work / f"ours_{n}")
        base = run_pandas(f, work / f"pandas_{n}.parquet")
        rows.append({"edges": n, "ours": ours, "pandas": base})
        print(f"{n:>12,d} edges  graphrec {ours['seconds']:7.1f} s ({n / ours['seconds']:>10,.0f} edges/s; "
              f"ingest phase {ours['ingest_s']:.1f} s)   pandas+pyarrow {base['seconds']:6.1f} s "
              f"({n / base['seconds']:>10,.0f} edges/s)   ratio {ours['seconds'] / base['seconds']:.2f}x", flush=True)
    sizes = [r["edges"] for r in rows]
    summary = {"sizes": rows,
               "exponent_ours_wall": exponent(sizes, [r["ours"]["seconds"] for r in rows]),
               "exponent_ours_phases": exponent(sizes, [r["ours"]["ingest_s"] + r["ours"]["write_s"] for r in rows]),
               "exponent_pandas": exponent(sizes, [r["pandas"]["seconds"] for r in rows]),
               "machine": f"{os.cpu_count()} cores, local[2]"}
    print(f"fitted time exponent: graphrec wall {summary['exponent_ours_wall']:.2f} "
          f"(ingest+write phases {summary['exponent_ours_phases']:.2f}), pandas {summary['exponent_pandas']:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
