"""ProNE's sparse × dense products against this machine's memory bandwidth (issue 28 item 3).

    python -m benchmarks.spmm_bandwidth [--graphs rmat16 rmat18 rmat20] [--dims 32 128] [--reps 5]
        [--steps-graphs rmat16 rmat18]
    python -m benchmarks.spmm_bandwidth --report   # reprint the table of results/spmm_bandwidth.json

In one process, side by side: a STREAM-like **copy** (``b[:] = a``, 256 MiB float32 arrays ≫ the 32 MiB L3, 8
bytes moved per element: read + write, no write-allocate counted) and **triad** (``a = b + s·c``, 12 bytes per
element by STREAM's count; numpy runs it as two passes, so it under-reports), each best of ``--reps``, with one
thread and with every core (threads over halves; numpy's copy releases the GIL); then ``Y = P·X`` for ProNE's
propagation operator ``P = D̃⁻¹(I + A)`` of R-MAT graphs (``benchmarks.embedding``'s generator, live nodes) and a
float32 ``X`` of ``d`` columns, best of ``--reps``, in these variants:

* ``before``  — ProNE's kernel as it was: scipy CSR × dense, one thread, the generator's vertex order;
* ``scipy-2t`` — :class:`embeddings.prone.RowSplit` over every core;
* ``torch``   — ``torch.sparse.mm`` on a CSR tensor (MKL when torch has it), every core;
* ``scipy+deg`` — one thread after :func:`embeddings.prone.locality_order` (vertices by degree, descending);
* ``after``   — what :class:`embeddings.prone.ProNE` does now with ``threads=0``: RowSplit over every core on the
  degree-ordered matrix;
* ``torch+deg`` — ``torch.sparse.mm`` on the degree-ordered matrix.

Then the whole Chebyshev filter (order 10, d = 128; ``filter_before``: the previous recursion, float64
coefficients promoting the running sum, ``M·y`` as a product and two dense passes; ``filter_after``:
:func:`embeddings.prone.chebyshev_filter`, fused float32 ``M``), both on the degree-ordered matrix with every
core, and ProNE's ``fit`` (d = 128, every core) with ``reorder`` off and on.

**Byte model** (what the kernel must stream, the "gathered" model): ``indptr (n+1)·4 + nnz·(4 + 4)`` for the
int32/float32 CSR, ``nnz·d·4`` for the gathered rows of ``X`` (every gather counted, no cache reuse), ``n·d·4``
for ``Y`` written. Achieved bandwidth = bytes / best seconds (kernels timed in interleaved rounds, so each sees the
same spells of load); its ratio to the machine's copy bandwidth — the best copy of the run, at any thread count,
measured before and after the products — is the figure of merit (goal ≥ 0.5). → ``results/spmm_bandwidth.json``, ``results/spmm_bandwidth.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STREAM_ELEMS = 64 * 2**20  # float32: 256 MiB per array


def best(fn, reps: int) -> float:
    """Best wall seconds of ``reps`` calls of ``fn``."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def _split(n: int, threads: int) -> list[slice]:
    cuts = np.linspace(0, n, threads + 1).astype(int)
    return [slice(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]


class Stream:
    """STREAM-like copy and triad over three float32 arrays of ``elems`` (allocated once), ``threads`` threads."""

    def __init__(self, elems: int = STREAM_ELEMS):
        self.elems = elems
        self.a = np.full(elems, 1.0, np.float32)
        self.b = np.full(elems, 2.0, np.float32)
        self.c = np.full(elems, 3.0, np.float32)
        self.copies: list[dict] = []  # every copy timed, with its threads (the reference is their best)

    def _run(self, f, threads: int) -> float:
        parts = _split(self.elems, threads)
        with ThreadPoolExecutor(threads) as pool:
            t = time.perf_counter()
            list(pool.map(f, parts))
            return time.perf_counter() - t

    def copy_gbs(self, threads: int) -> float:
        def copy(s):
            np.copyto(self.b[s], self.a[s])

        g = 8 * self.elems / self._run(copy, threads) / 1e9
        self.copies.append({"threads": threads, "copy_gbs": g})
        return g

    def triad_gbs(self, threads: int) -> float:
        def triad(s):
            np.multiply(self.c[s], np.float32(3.0), out=self.a[s])
            np.add(self.a[s], self.b[s], out=self.a[s])

        return 12 * self.elems / self._run(triad, threads) / 1e9

    def measure(self, reps: int, threads: int) -> dict:
        """Best copy and triad of ``reps`` each, in GB/s (10⁹ B/s)."""
        return {"threads": threads, "copy_gbs": max(self.copy_gbs(threads) for _ in range(reps)),
                "triad_gbs": max(self.triad_gbs(threads) for _ in range(reps))}


def spmm_bytes(p: sp.csr_matrix, d: int) -> int:
    """Bytes of ``P·X`` by the gathered model (module docstring)."""
    idx, val = p.indices.dtype.itemsize, p.data.dtype.itemsize
    return (p.shape[0] + 1) * p.indptr.dtype.itemsize + p.nnz * (idx + val) + p.nnz * d * 4 + p.shape[0] * d * 4


def rmat_operator(name: str) -> sp.csr_matrix:
    """ProNE's ``D̃⁻¹(I + A)`` of the R-MAT graph ``name`` (``rmatS``: 2^S nodes, 16·2^S edges)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.embedding import load_graph
    from embeddings.prone import check_adjacency, propagation_operator

    a, _ = load_graph(name, ROOT / ".." / "shared" / "data")
    return propagation_operator(check_adjacency(a))[1]


def variants(p: sp.csr_matrix, threads: int) -> dict:
    """``name -> callable(x)`` for every kernel variant (module docstring); all return ``P·X`` (up to order)."""
    import torch

    from embeddings.prone import RowSplit, locality_order, permuted

    order = locality_order(p)
    q = permuted(p, order)
    out = {"before": lambda x: p @ x, "scipy-2t": RowSplit(p, threads).__matmul__,
           "scipy+deg": lambda x: q @ x, "after": RowSplit(q, threads).__matmul__}

    def torch_mm(m):
        t = torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                    torch.from_numpy(m.indices.astype(np.int64)), torch.from_numpy(m.data),
                                    size=m.shape)
        return lambda x: torch.sparse.mm(t, torch.from_numpy(x)).numpy()

    out["torch"], out["torch+deg"] = torch_mm(p), torch_mm(q)
    return out, order, q


def measure(name: str, dims: list[int], reps: int, threads: int, stream: Stream) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    p = rmat_operator(name)
    p.indptr, p.indices = p.indptr.astype(np.int32), p.indices.astype(np.int32)
    t0 = time.perf_counter()
    kernels, order, q = variants(p, threads)
    prep_s = time.perf_counter() - t0
    rows = []
    rng = np.random.default_rng(0)
    for d in dims:
        x = rng.standard_normal((p.shape[0], d)).astype(np.float32)
        xq = np.ascontiguousarray(x[order])
        ref = p @ x
        nbytes = spmm_bytes(p, d)
        args_of = {}
        for kname, fn in kernels.items():
            ordered = kname.endswith("+deg") or kname == "after"
            args_of[kname] = xq if ordered else x
            y = fn(args_of[kname])
            y = y[np.argsort(order)] if ordered else y
            assert y.dtype == np.float32 and np.allclose(y, ref, atol=1e-5), kname
        times = {k: [] for k in kernels}
        for _ in range(reps):  # rounds over every kernel and a copy: each sees the same spells of load
            stream.copy_gbs(1)
            stream.copy_gbs(threads)
            for kname, fn in kernels.items():
                t = time.perf_counter()
                fn(args_of[kname])
                times[kname].append(time.perf_counter() - t)
        for kname in kernels:
            s = min(times[kname])
            rows.append({"graph": name, "n": p.shape[0], "nnz": int(p.nnz), "edges": int((p.nnz - p.shape[0]) // 2),
                         "d": d, "kernel": kname, "threads": 1 if kname in ("before", "scipy+deg") else threads,
                         "seconds": s, "median_s": float(np.median(times[kname])), "bytes": nbytes,
                         "gbs": nbytes / s / 1e9, "prep_s": prep_s, "load_1m": os.getloadavg()[0]})
            print(f"{name} d={d} {kname:13s} {s * 1e3:8.1f} ms {nbytes / s / 1e9:6.2f} GB/s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    return rows, p, q


def filter_before(da, x, order=10, mu=0.2, theta=0.5, threads=1):
    """The Chebyshev filter as it was before this benchmark (float64 ``iv`` scalars, ``M·y = (1−μ)y − P·y``)."""
    from scipy.special import iv

    from embeddings.prone import parallel

    da = parallel(da, threads)

    def m(y):
        return (1.0 - mu) * y - da @ y

    lx0 = x
    lx1 = 0.5 * m(m(x)) - x
    conv = iv(0, theta) * lx0 - 2 * iv(1, theta) * lx1
    for i in range(2, order):
        lx2 = m(m(lx1)) - 2 * lx1 - lx0
        conv = conv + (2 if i % 2 == 0 else -2) * iv(i, theta) * lx2
        lx0, lx1 = lx1, lx2
    return conv.astype(np.float32)


def whole_steps(name: str, p: sp.csr_matrix, q: sp.csr_matrix, reps: int, threads: int) -> list[dict]:
    """The filter before/after and ProNE's fit with ``reorder`` off/on, d = 128, every core (best of ``reps``)."""
    from embeddings.prone import ProNE, chebyshev_filter

    x = np.random.default_rng(0).standard_normal((q.shape[0], 128)).astype(np.float32)
    rows = []
    ref = filter_before(q, x, threads=threads)
    assert np.allclose(chebyshev_filter(q, x, threads=threads), ref, atol=1e-3)
    fns = {"filter_before": lambda: filter_before(q, x, threads=threads),
           "filter_after": lambda: chebyshev_filter(q, x, threads=threads)}
    times = {k: [] for k in fns}
    for _ in range(reps):
        for label, fn in fns.items():
            times[label].append(best(fn, 1))
    for label in fns:
        rows.append({"graph": name, "step": label, "seconds": min(times[label]), "load_1m": os.getloadavg()[0]})
        print(f"{name} {label:16s} {rows[-1]['seconds']:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    a = p.copy()  # P has A's pattern plus the diagonal: an adjacency with the same structure
    a.setdiag(0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    fit = {False: [], True: []}
    for _ in range(max(1, reps // 2)):
        for reorder in fit:
            fit[reorder].append(best(lambda: ProNE(dim=128, threads=threads, reorder=reorder).fit(a), 1))
    for reorder, ts in fit.items():
        rows.append({"graph": name, "step": f"prone_fit_reorder_{reorder}", "seconds": min(ts),
                     "load_1m": os.getloadavg()[0]})
        print(f"{name} prone fit reorder={reorder}: {min(ts):.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return rows


def machine_copy(res: dict) -> float:
    """The machine's copy bandwidth: the best copy of every STREAM-like measurement in the run (any threads), the rounds of the products included."""
    return max(x["copy_gbs"] for x in res["stream"] + res.get("stream_after", []) + res.get("copies", []))


def table(res: dict) -> str:
    """Markdown table: per graph and d, each kernel's GB/s and its ratio to the copy bandwidth at its threads."""
    copy = machine_copy(res)
    kernels = list(dict.fromkeys(r["kernel"] for r in res["spmm"]))
    lines = ["GB/s by the gathered model (ratio to the best copy in the run)\n",
             "| graph | edges | d | " + " | ".join(kernels) + " | after / before |",
             "|---|---|---|" + "---|" * (len(kernels) + 1)]
    by = {}
    for r in res["spmm"]:
        by.setdefault((r["graph"], r["edges"], r["d"]), {})[r["kernel"]] = r
    for (g, e, d), ks in by.items():
        cells = [f"{ks[k]['gbs']:.2f} ({ks[k]['gbs'] / copy:.2f})" if k in ks else ""
                 for k in kernels]
        speed = ks["before"]["seconds"] / ks["after"]["seconds"]
        lines.append(f"| {g} | {e:,} | {d} | " + " | ".join(cells) + f" | {speed:.2f}× |")
    s = "; ".join(f"{x['threads']} thread(s): copy {x['copy_gbs']:.2f} GB/s, triad {x['triad_gbs']:.2f} GB/s"
                  for x in res["stream"] + res.get("stream_after", []))
    s += f" — reference (best copy) {copy:.2f} GB/s"
    steps = "; ".join(f"{r['graph']} {r['step']} {r['seconds']:.2f} s" for r in res.get("steps", []))
    return "\n".join(lines) + f"\n\nSTREAM-like ({res['load']}): {s}\n\nWhole steps (every core): {steps}"


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    copy = machine_copy(res)
    kernels = list(dict.fromkeys(r["kernel"] for r in res["spmm"]))
    keys = list(dict.fromkeys((r["graph"], r["d"]) for r in res["spmm"]))
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.8 / len(kernels)
    for i, k in enumerate(kernels):
        vals = [next((r["gbs"] for r in res["spmm"] if (r["graph"], r["d"]) == key and r["kernel"] == k), 0)
                for key in keys]
        ax.bar(np.arange(len(keys)) + i * w, vals, w, label=k)
    ax.axhline(copy, ls="--", color="k", lw=1, label=f"copy {copy:.1f} GB/s (best in the run)")
    ax.axhline(0.5 * copy, ls=":", color="k", lw=1, label="half of it (goal)")
    ax.set_xticks(np.arange(len(keys)) + 0.4 - w / 2, [f"{g}\nd={d}" for g, d in keys])
    ax.set_ylabel("achieved GB/s (gathered model)")
    ax.set_title("ProNE's P·X against the copy bandwidth (dotted: half of it)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", nargs="+", default=["rmat16", "rmat18"])
    ap.add_argument("--dims", nargs="+", type=int, default=[32, 128])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--out", default=str(RESULTS / "spmm_bandwidth.json"))
    ap.add_argument("--steps-graphs", nargs="*", default=["rmat16", "rmat18"],
                    help="graphs whose filter and ProNE fit are also timed (before/after)")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report:
        print(table(json.loads(out.read_text())))
        return 0
    load0 = os.getloadavg()
    st = Stream()
    res = {"stream": [st.measure(args.reps, 1), st.measure(args.reps, args.threads)], "spmm": []}
    res["steps"] = []
    for g in args.graphs:
        rows, p, q = measure(g, args.dims, args.reps, args.threads, st)
        res["spmm"] += rows
        if g in args.steps_graphs:
            res["steps"] += whole_steps(g, p, q, args.reps, args.threads)
    res["stream_after"] = [st.measure(args.reps, 1), st.measure(args.reps, args.threads)]
    res["copies"] = st.copies
    load1 = os.getloadavg()
    res["load"] = f"load 1-min {load0[0]:.1f} at start, {load1[0]:.1f} at end"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    print(table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
