"""Federated LDP heavy hitters: TAPS, TAP, federated PEM, pooled PEM and pure-ldp's PEM.

    python -m benchmarks.heavy_hitters                 # quality grid (AOL, retail, BMS) + pure-ldp
    python -m benchmarks.heavy_hitters --scale         # Spark job on 1e6, 3e6, 1e7 Zipf users

Quality grid: data sets × {1, 5 non-IID parties} × ε ∈ {1, 2, 4}, k = 32, ``--seeds`` perturbation
seeds from ``--seed0`` (default 1000; data sampling and the Dirichlet(α=0.5) party split use seed 0).
Every (data set, method) runs in its own child process; the peak RSS of its process tree is sampled
with psutil.
pure-ldp's PEM (benchmark-only, own venv ``.bench-venvs/pureldp``) aggregates each OLH report by a
Python loop over the whole 2^bits domain, so it is compared on the setting where it finishes:
``zipf12`` (Zipf 1.3 over a 12-bit domain, 20,000 users, k = 10, start 2, fragment 2 bits) against
our PEM with the same levels. Writes ``benchmarks/results/heavy_hitters.json`` shaped
``{dataset: {parties: {epsilon: {method: {f1_mean, f1_std, ncr_mean, seconds, f1_seeds, ...}}}}}``
and prints, next to the table, each method's per-seed paired F1 difference to federated PEM
(:func:`paired`);
``--variant 'NAME=taps:{"candidate_budget": 8192, ...}'`` adds a row of TAPS/TAP with other
``TAPConfig`` options. ``--scale`` writes ``benchmarks/results/heavy_hitters_scale.json``. ``--bound`` computes the genie bound
(:func:`genie_f1`) next to TAPS and federated PEM on the same seeds and writes
``benchmarks/results/heavy_hitters_bound.json``. ``--timing --seeds 1 --merge`` times one
seed per cell (meant to run alone, holding the shared timing lock) and stores it as ``seconds_locked``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"
PURELDP_PY = ROOT / ".bench-venvs" / "pureldp" / "bin" / "python"
METHODS = ("taps", "tap", "fedpem", "pem")


def run_child(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, float, int]:
    """Run ``cmd``, its output shown; return (wall seconds, peak RSS of the process tree in MiB, return code)."""
    from benchmarks.proctree import run_tree

    run = run_tree(cmd, env, cwd, capture=False)
    return run.seconds, run.peak_mb, run.returncode


# ---------------------------------------------------------------------------------------------
def load(dataset: str):
    """``(items, bits, k, pem_kw)`` of a benchmark data set (seed 0)."""
    from ldp.datasets import load_dataset

    if dataset == "zipf12":
        rng = np.random.default_rng(0)
        w = np.arange(1, 4097, dtype=np.float64) ** -1.3
        items = np.random.default_rng(1).permutation(4096)[rng.choice(4096, 20_000, p=w / w.sum())]
        return items.astype(np.int64), 12, 10, {"pem_step": 2, "start_bits": 2}
    items, bits = load_dataset(dataset, SHARED, seed=0)
    return items, bits, 32, {}


def parse_variant(spec: str) -> tuple[str, str, dict]:
    """``NAME=METHOD:JSON`` → (name, method, TAPConfig options): an extra row, e.g.
    ``taps_2level=taps:{"candidate_budget": 8192, "final_share": 0.8}``."""
    name, sep, rest = spec.partition("=")
    method, sep2, kw = rest.partition(":")
    if not (sep and sep2 and name) or method not in ("taps", "tap") or name in METHODS:
        raise ValueError(f"--variant {spec!r}: expected NAME=taps|tap:JSON with a new NAME")
    try:
        opts = json.loads(kw)
    except json.JSONDecodeError as e:
        raise ValueError(f"--variant {spec!r}: bad JSON ({e})") from None
    if not isinstance(opts, dict):
        raise ValueError(f"--variant {spec!r}: the options must be a JSON object")
    return name, method, opts


def worker(dataset: str, method: str, parties: list[int], eps: list[float], seeds: int, out: str,
           seed0: int = 1000, tap_kw: dict | None = None) -> None:
    """Child process: every (parties, ε, seed ``seed0 + s``) of one method on one data set."""
    from ldp.datasets import dirichlet_parties
    from ldp.federated import run_method
    from ldp.metrics import evaluate
    from ldp.pem import PEMConfig, pem
    from ldp.rounds import LocalPopulation

    items, bits, k, pem_kw = load(dataset)
    res = {}
    for P in parties:
        part = dirichlet_parties(items, P, alpha=0.5, seed=0)
        for e in eps:
            rows = []
            for s in range(seeds):
                pop = LocalPopulation(part, np.arange(items.size), items, bits, e, seed=seed0 + s)
                t = time.time()
                if method == "pem" and "start_bits" in pem_kw:
                    hh = pem(pop, PEMConfig(k=k, step=pem_kw["pem_step"], start_bits=pem_kw["start_bits"], seed=seed0 + s))
                else:
                    hh = run_method(method, pop, k=k, seed=seed0 + s, **(tap_kw or {}))
                m = evaluate(hh.items, hh.estimates, items, k)
                rows.append((m["f1"], m["ncr"], m["relative_error"], time.time() - t))
            a = np.array(rows)
            res.setdefault(str(P), {})[str(e)] = {
                "f1_mean": float(a[:, 0].mean()), "f1_std": float(a[:, 0].std()), "ncr_mean": float(a[:, 1].mean()),
                "ncr_std": float(a[:, 1].std()), "rel_error_mean": float(a[:, 2].mean()),
                "seconds": float(a[:, 3].mean()), "seeds": seeds, "seed0": seed0, "users": int(items.size), "bits": bits, "k": k,
                "olh_pool": "adaptive", "f1_seeds": [round(float(f), 5) for f in a[:, 0]],
                **({"method": method, "options": tap_kw} if tap_kw else {})}
            print(f"  {dataset} P={P} eps={e} {method}: F1 {a[:, 0].mean():.3f}±{a[:, 0].std():.3f} "
                  f"NCR {a[:, 1].mean():.3f} {a[:, 3].mean():.1f}s", flush=True)
    Path(out).write_text(json.dumps(res))


def pureldp(eps: list[float], seeds: int) -> dict:
    """pure-ldp's PEM on zipf12, one child process per run (its own venv)."""
    from ldp.metrics import evaluate

    items, bits, k, kw = load("zipf12")
    res = {}
    with tempfile.TemporaryDirectory() as td:
        for e in eps:
            rows, peaks = [], []
            for s in range(seeds):
                inp, out = Path(td) / "in.npz", Path(td) / "out.json"
                np.savez(inp, items=items, bits=bits, epsilon=e, k=k, start=kw["start_bits"],
                         fragment=kw["pem_step"], seed=s)
                wall, peak, rc = run_child([str(PURELDP_PY), str(ROOT / "benchmarks" / "pureldp_pem.py"), str(inp), str(out)])
                if rc != 0:
                    raise RuntimeError("pure-ldp child failed")
                r = json.loads(out.read_text())
                m = evaluate(np.array(r["found"], dtype=np.int64), np.zeros(len(r["found"])), items, k)
                rows.append((m["f1"], m["ncr"], r["seconds"]))
                peaks.append(peak)
            a = np.array(rows)
            res[str(e)] = {"f1_mean": float(a[:, 0].mean()), "f1_std": float(a[:, 0].std()),
                           "ncr_mean": float(a[:, 1].mean()), "ncr_std": float(a[:, 1].std()),
                           "seconds": float(a[:, 2].mean()), "seeds": seeds, "peak_rss_mb": float(max(peaks)),
                           "users": int(items.size), "bits": bits, "k": k}
            print(f"  zipf12 P=1 eps={e} pureldp_pem: F1 {a[:, 0].mean():.3f}±{a[:, 0].std():.3f} "
                  f"NCR {a[:, 1].mean():.3f} {a[:, 2].mean():.1f}s", flush=True)
    return res


def table(results: dict) -> str:
    """Markdown table: F1 (mean ± std) per method, TAPS − fedpem."""
    lines = ["| data | parties | ε | " + " | ".join(["TAPS", "TAP", "fed. PEM", "pooled PEM", "pure-ldp PEM"])
             + " | TAPS − fedPEM | s/run TAPS / PEM |", "|" + " --- |" * 10]
    for ds, byp in results.items():
        for P, bye in byp.items():
            for e, bym in bye.items():
                def cell(m):  # † = measured before the adaptive OLH pool (fixed 1,024 keys)
                    r = bym.get(m)
                    old = "†" if r and m != "pureldp_pem" and r.get("olh_pool") != "adaptive" else ""
                    return f"{r['f1_mean']:.3f} ± {r['f1_std']:.3f}{old}" if r else "—"
                same = "taps" in bym and "fedpem" in bym and bym["taps"].get("olh_pool") == bym["fedpem"].get("olh_pool")
                diff = f"{bym['taps']['f1_mean'] - bym['fedpem']['f1_mean']:+.3f}" if same else "—"
                key = "seconds_locked" if "seconds_locked" in bym.get("taps", {}) else "seconds"  # timed alone (--timing)
                sec = (f"{bym['taps'][key]:.1f} / {bym['pem'][key]:.1f}"
                       if "taps" in bym and key in bym.get("pem", {}) else "—")
                lines.append(f"| {ds} | {P} | {e} | " + " | ".join(cell(m) for m in (*METHODS, "pureldp_pem"))
                             + f" | {diff} | {sec} |")
    return "\n".join(lines)


def paired(results: dict, base: str = "fedpem") -> str:
    """Markdown table: per-seed paired F1 difference of each method to ``base`` (mean ± standard error).

    Only cells whose runs recorded per-seed F1 (``f1_seeds``) on the same seeds as ``base``.
    """
    lines = []
    for ds, byp in results.items():
        for P, bye in byp.items():
            for e, bym in bye.items():
                b = bym.get(base, {})
                for m, r in bym.items():
                    if m == base or "f1_seeds" not in r or "f1_seeds" not in b or \
                            (r["seed0"], r["seeds"]) != (b["seed0"], b["seeds"]):
                        continue
                    d = np.array(r["f1_seeds"]) - np.array(b["f1_seeds"])
                    se = d.std(ddof=1) / math.sqrt(d.size) if d.size > 1 else float("nan")
                    lines.append(f"| {ds} | {P} | {e} | {m} | {r['seed0']}–{r['seed0'] + r['seeds'] - 1} | "
                                 f"{r['f1_mean']:.3f} | {b['f1_mean']:.3f} | {d.mean():+.3f} ± {se:.3f} | "
                                 f"{(d > 0).sum()} / {(d < 0).sum()} |")
    head = (f"| data | parties | ε | method | seeds | F1 | {base} F1 | paired difference ± se | "
            "seeds better / worse |\n" + "|" + " --- |" * 9)
    return head + "\n" + "\n".join(lines) if lines else ""


def quality(args) -> None:
    path = Path(args.out)
    results: dict = json.loads(path.read_text()) if path.exists() and args.merge else {}
    with tempfile.TemporaryDirectory() as td:
        for ds in args.datasets:
            parties = [1] if ds == "zipf12" else args.parties
            rows = [(m, m, None) for m in args.methods] + [parse_variant(v) for v in args.variant]
            for method, base, kw in rows:
                out = Path(td) / f"{ds}_{method}.json"
                cmd = [sys.executable, "-m", "benchmarks.heavy_hitters", "--worker", ds, base, str(out),
                       "--seeds", str(args.seeds), "--eps", ",".join(map(str, args.eps)),
                       "--parties", ",".join(map(str, parties)), "--seed0", str(args.seed0)]
                cmd += ["--tap-kw", json.dumps(kw)] if kw else []
                load = [round(x, 2) for x in os.getloadavg()]
                wall, peak, rc = run_child(cmd)
                if rc != 0:
                    raise RuntimeError(f"worker {ds}/{method} failed")
                load = [load, [round(x, 2) for x in os.getloadavg()]]  # 1/5/15-min load before and after
                for P, bye in json.loads(out.read_text()).items():
                    for e, r in bye.items():
                        cell = results.setdefault(ds, {}).setdefault(P, {}).setdefault(e, {})
                        if args.timing:  # keep the quality figures, add the time of one seed run alone
                            cell.setdefault(method, {}).update(seconds_locked=r["seconds"], timing_load=load)
                            continue
                        r["peak_rss_mb"] = round(peak, 1)
                        cell[method] = r
            if ds == "zipf12" and args.pureldp:
                for e, r in pureldp(args.eps, args.seeds).items():
                    results[ds]["1"].setdefault(e, {})["pureldp_pem"] = r
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))
    print(paired(results))
    if path.exists():
        from benchmarks import plots  # parent side only (matplotlib)

        plots.draw("heavy_hitters", path)


def scale(args) -> None:
    """Spark job (spark-submit, local[2]) on generated Zipf users: wall time and peak RSS."""
    from ldp.datasets import dirichlet_parties, report_table, zipf_items

    rows = []
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    with tempfile.TemporaryDirectory() as td:
        for n in args.sizes:
            inp, out = Path(td) / f"in_{n}", Path(td) / f"out_{n}"
            inp.mkdir()
            t = time.time()
            for c, a in enumerate(range(0, n, 2_000_000)):  # written in chunks to bound memory
                m = min(n, a + 2_000_000) - a
                items = zipf_items(m, bits=48, s=1.1, distinct=1_000_000, seed=c)
                df = report_table(items, dirichlet_parties(items, 5, alpha=0.5, seed=c), seed=c)
                df["user"] += a
                df.to_parquet(inp / f"part-{c:03d}.parquet")
            gen = time.time() - t
            cmd = [spark_submit, "--master", "local[2]", "--conf", "spark.driver.memory=3g",
               "--conf", "spark.sql.shuffle.partitions=8", "--conf", "spark.ui.enabled=false",
                   str(ROOT / "jobs" / "heavy_hitters.py"), "--input", str(inp), "--output", str(out),
                   "--bits", "48", "--epsilon", "4", "--k", "32", "--method", args.scale_method, "--seed", "1"]
            wall, peak, rc = run_child(cmd, env={"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable})
            if rc != 0:
                raise RuntimeError(f"spark job failed at n={n}")
            meta = json.loads((out / "_meta.json").read_text())
            rows.append({"users": n, "method": args.scale_method, "wall_s": round(wall, 1),
                         "protocol_s": meta["timings"]["protocol_s"], "read_validate_s": meta["timings"]["read_validate_s"],
                         "rounds": meta["rounds"], "peak_rss_mb": round(peak, 1), "generate_s": round(gen, 1)})
            print(rows[-1], flush=True)
    base = rows[0]
    for r in rows:
        r["time_ratio"] = round(r["wall_s"] / base["wall_s"], 2)
        r["size_ratio"] = round(r["users"] / base["users"], 2)
    (RESULTS / "heavy_hitters_scale.json").write_text(json.dumps(rows, indent=2))
    print("| users | method | wall s | protocol s | rounds | peak RSS MiB | time ratio | size ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['users']:,} | {r['method']} | {r['wall_s']} | {r['protocol_s']} | {r['rounds']} | "
              f"{r['peak_rss_mb']} | {r['time_ratio']} | {r['size_ratio']} |")


# ---------------------------------------------------------------------------------------------
def genie_f1(items: np.ndarray, bits: int, k: int, epsilon: float, m: int | None, seed: int,
             share: float = 1.0, mode: str = "pooled", parties: np.ndarray | None = None) -> tuple[float, float]:
    """(F1, NCR) of a *genie* protocol: users answer only the true top-``m`` items, top ``k`` kept.

    A genie hands the server the true top-``m`` set for free (``m = None``: the whole ``2^bits``
    domain, i.e. one-shot direct estimation — a real protocol). A ``share`` of the users (seeded
    subset) reports once with the full ε. ``mode``:

    * ``pooled``: every party pooled, the lower-variance oracle — GRR if ``m + 1 < 3e^ε + 2`` (run
      through :class:`ldp.rounds.LocalPopulation`), else OUE, whose variance equals OLH's with an
      unlimited key pool. OUE's supports are independent given the counts,
      ``Binomial(f_j, 1/2) + Binomial(n − f_j, q)``, so they are drawn exactly in O(m).
    * ``party``: OUE per party, and the genie also says which parties hold each item: the global
      estimate sums only those parties' estimates (the noise of non-holders is dropped — the most a
      federated protocol can gain from non-IID data). This also reveals the items' *support*: with
      ``m = None`` every item no party holds is excluded for free, so it is a candidate genie too.
    * ``rr``: every candidate gets *every* user's own binary randomised response ("is my item c?",
      ``p = e^ε/(e^ε+1)``) — impossible with one report per user; its variance
      ``n e^ε/(e^ε−1)²`` is the ε-LDP floor for estimating one item's count, so this is an
      optimistic model of any protocol that ranks by unbiased count estimates.
    """
    from ldp.metrics import evaluate, true_counts
    from ldp.oracles import choose_oracle, make_oracle
    from ldp.pem import top
    from ldp.randomness import public_salt
    from ldp.rounds import LocalPopulation, Query

    rng = np.random.default_rng([seed, 9])
    keep = np.ones(items.size, dtype=bool) if share >= 1 else rng.random(items.size) < share
    sub = items[keep]
    cands = np.arange(1 << bits, dtype=np.int64) if m is None else np.sort(true_counts(items)[0][:m])

    def counts(vals):
        u, c = np.unique(vals, return_counts=True)
        idx = np.minimum(np.searchsorted(u, cands), u.size - 1)
        return np.where(u[idx] == cands, c[idx], 0)

    e = math.exp(epsilon)
    if mode == "rr":
        f, p, q = counts(sub), e / (e + 1), 1 / (e + 1)
        est = (rng.binomial(f, p) + rng.binomial(sub.size - f, q) - sub.size * q) / (p - q)
    elif mode == "party":
        o = make_oracle("oue", epsilon, cands[:1])
        est = np.zeros(cands.size)
        for pid in np.unique(parties):
            vals = items[keep & (parties == pid)]
            f = counts(vals)
            sup = rng.binomial(f, o.p) + rng.binomial(vals.size - f, o.q)
            est += np.where(f > 0, o.debias(sup, vals.size), 0.0)
    elif choose_oracle(epsilon, cands.size) == "grr":
        pop = LocalPopulation(np.zeros(sub.size, dtype=np.int64), np.arange(sub.size), sub, bits, epsilon, seed=seed)
        salt = public_salt(seed, 9) % (1 << 40)
        est = pop.answer([Query(0, (0,), bits, cands, "grr", salt)], (1.0,), salt)[0].estimates
    else:
        o = make_oracle("oue", epsilon, cands[:1])
        f = counts(sub)
        est = o.debias(rng.binomial(f, o.p) + rng.binomial(sub.size - f, o.q), sub.size)
    found, est = top(cands, est, k)
    r = evaluate(found, est, items, k)
    return r["f1"], r["ncr"]


def genie_sizes(ms: list[str], bits: int, max_enum_bits: int = 24) -> list[tuple[str, int | None]]:
    """The ``--genie-m`` sizes that apply to a ``bits``-wide domain, as ``(name, m)``.

    ``m`` must be below ``2^bits``; ``"all"`` (m = None, the whole domain) only where the domain can
    be enumerated (``bits ≤ max_enum_bits``: not AOL's 2^48).
    """
    out = []
    for name in ms:
        m = None if name == "all" else int(name)
        if (m is None and bits <= max_enum_bits) or (m is not None and m < 1 << bits):
            out.append((name, m))
    return out


def frontier_needed(items: np.ndarray, bits: int, k: int, epsilon: float, seed: int, prefix_bits: int = 12,
                    share: float = 0.5, cover: float = 1.0) -> int:
    """Smallest R such that the top-R ``prefix_bits``-bit prefixes, ranked by an ideal one-shot OUE
    estimate from a ``share`` of the users (pooled), hold ``cover`` of the true top-k items' prefixes.

    What a first tree level of that width must keep so that the final level still contains the
    top k: the final candidate count is then ``R · 2^(bits − prefix_bits)``.
    """
    from ldp.metrics import true_top_k
    from ldp.oracles import make_oracle

    rng = np.random.default_rng([seed, 11])
    sub = items[rng.random(items.size) < share] >> (bits - prefix_bits)
    f = np.bincount(sub, minlength=1 << prefix_bits)
    o = make_oracle("oue", epsilon, np.arange(1))
    est = o.debias(rng.binomial(f, o.p) + rng.binomial(sub.size - f, o.q), sub.size)
    rank = np.empty(f.size, dtype=np.int64)
    rank[np.argsort(-est, kind="stable")] = np.arange(f.size)
    need = np.sort(np.unique(rank[true_top_k(items, k) >> (bits - prefix_bits)]))
    return int(need[max(0, math.ceil(cover * need.size) - 1)] + 1)


def bound(args) -> None:
    """Genie bound F1(m) vs TAPS and federated PEM (``--parties``, default 5), paired on seeds ``--seed0 + s``."""
    from ldp.datasets import dirichlet_parties
    from ldp.federated import run_method
    from ldp.metrics import evaluate
    from ldp.rounds import LocalPopulation

    path = Path(args.out if args.out != str(RESULTS / "heavy_hitters.json") else RESULTS / "heavy_hitters_bound.json")
    results: dict = json.loads(path.read_text()) if path.exists() and args.merge else {}
    seeds = [args.seed0 + s for s in range(args.seeds)]
    P = args.parties[-1]
    for ds in args.datasets:
        items, bits, k, _ = load(ds)
        part = dirichlet_parties(items, P, alpha=0.5, seed=0)
        for e in args.eps:
            cell = results.setdefault(ds, {}).setdefault(str(P), {}).setdefault(str(e), {})
            runs = {}
            for method in args.methods:
                if method in ("taps", "tap", "fedpem", "pem"):
                    f = []
                    for s in seeds:
                        pop = LocalPopulation(part, np.arange(items.size), items, bits, e, seed=s)
                        hh = run_method(method, pop, k=k, seed=s)
                        f.append(evaluate(hh.items, hh.estimates, items, k)["f1"])
                    runs[method] = f
            for m, mm in genie_sizes(args.genie_m, bits):
                t = time.time()
                for mode in args.genie_modes:
                    for sh in args.genie_share if mode == "pooled" else [1.0]:
                        name = f"genie_{m}" + ("" if mode == "pooled" else f"_{mode}") + ("" if sh >= 1 else f"_share{sh:g}")
                        runs[name] = [genie_f1(items, bits, k, e, mm, s, sh, mode, part)[0] for s in seeds]
                print(f"    genie_{m}: {time.time() - t:.1f}s", flush=True)
            for name, f in runs.items():
                a = np.array(f)
                cell[name] = {"f1_mean": float(a.mean()), "f1_std": float(a.std()), "f1": [round(x, 4) for x in f],
                              "seeds": seeds, "users": int(items.size), "bits": bits, "k": k}
                if "fedpem" in runs and name != "fedpem":
                    d = a - np.array(runs["fedpem"])
                    cell[name]["minus_fedpem_mean"] = float(d.mean())
                    cell[name]["minus_fedpem_se"] = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
                print(f"  {ds} P={P} eps={e} {name}: F1 {a.mean():.3f} ± {a.std():.3f}"
                      + (f"  (− fedPEM {cell[name]['minus_fedpem_mean']:+.3f})" if "minus_fedpem_mean" in cell[name] else ""),
                      flush=True)
            for cov in (1.0, 0.9):
                r = [frontier_needed(items, bits, k, e, s, cover=cov) for s in seeds]
                cell[f"frontier12_share0.5_cover{cov:g}"] = {"median": float(np.median(r)), "values": r,
                                                              "final_candidates_median": float(np.median(r)) * 2 ** (bits - 12)}
                print(f"  {ds} eps={e} 12-bit prefixes to keep for {cov:.0%} of the top-{k}: median {np.median(r):.0f} "
                      f"(final candidates {np.median(r) * 2 ** (bits - 12):.0f})", flush=True)
            path.write_text(json.dumps(results, indent=2, sort_keys=True))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", type=lambda s: s.split(","), default=["aol", "retail", "bms", "zipf12"])
    ap.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 2.0, 4.0])
    ap.add_argument("--parties", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5])
    ap.add_argument("--no-pureldp", dest="pureldp", action="store_false")
    ap.add_argument("--merge", action="store_true", help="update the existing results file instead of replacing it")
    ap.add_argument("--out", default=str(RESULTS / "heavy_hitters.json"))
    ap.add_argument("--timing", action="store_true",
                    help="time one seed per cell (run under the shared timing lock) and add it to --out as seconds_locked")
    ap.add_argument("--scale", action="store_true", help="Spark scale run instead of the quality grid")
    ap.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")], default=[10**6, 3 * 10**6, 10**7])
    ap.add_argument("--scale-method", default="taps")
    ap.add_argument("--bound", action="store_true",
                    help="genie bound F1(m) vs TAPS / fed. PEM on the same seeds (writes heavy_hitters_bound.json)")
    ap.add_argument("--genie-m", type=lambda s: s.split(","), default=["64", "256", "1024", "4096", "all"],
                    help="genie candidate-set sizes (true top-m items; 'all' = the whole domain)")
    ap.add_argument("--genie-share", type=lambda s: [float(x) for x in s.split(",")], default=[1.0],
                    help="shares of the users answering the genie (e.g. 1,0.5)")
    ap.add_argument("--genie-modes", type=lambda s: s.split(","), default=["pooled", "party", "rr"],
                    help="genie variants (see genie_f1)")
    ap.add_argument("--seed0", type=int, default=None,
                    help="first perturbation seed (default 1000; 4000 with --bound)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=METHOD:JSON",
                    help='an extra row: TAPS/TAP with TAPConfig options, e.g. '
                         '\'taps_2level=taps:{"candidate_budget": 8192, "final_share": 0.8}\'')
    ap.add_argument("--worker", nargs=3, metavar=("DATASET", "METHOD", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--tap-kw", type=json.loads, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.seed0 is None:
        args.seed0 = 4000 if args.bound else 1000
    sys.path.insert(0, str(ROOT))
    if args.worker:
        ds, method, out = args.worker
        worker(ds, method, args.parties, args.eps, args.seeds, out, args.seed0, args.tap_kw)
    elif args.scale:
        scale(args)
    elif args.bound:
        bound(args)
    else:
        quality(args)


if __name__ == "__main__":
    main()
