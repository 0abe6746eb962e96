"""Idealised sequential-narrowing protocols: how far can *any* tree of this family get?

    python -m benchmarks.heavy_hitters_ideal --datasets aol,retail,bms --eps 4 --seeds 10

A design is a list of stages ``(share, bits, keep)``: a ``share`` of all users reports once with the
full ε about the ``bits``-bit prefixes in the current candidate set; the ``keep`` best become the
next set (extended by every suffix when the next stage is wider; asked again when it has the same
width, and then each party's two estimates are combined by inverse variance). Stage one asks all
``2^bits`` prefixes; the last stage's top ``k`` is the answer. This family holds PEM, TAP and TAPS
(prefix levels, re-asking a short list). Its designs get every advantage we can model:

* **ideal oracles**: each stage uses the lower-variance of GRR and OUE (= OLH with an unlimited key
  pool); supports are drawn exactly per candidate, ``Binomial(f, p) + Binomial(n − f, q)``;
* three ways to score a stage's candidates:

  - **pooled** (``mode="pooled"``): the parties' estimates summed, as if one population;
  - **party genie** (``mode="party"``): the server is *told* which parties hold each prefix, so only
    their estimates are summed (non-holders' noise dropped, and prefixes nobody holds are known to
    be empty) — the most a federated protocol could take from non-IID data;
  - **Bayes** (``mode="bayes"``): no genie; the last stage scores by TAPS's rule, the sum of the
    parties' posterior means (``ldp.shrinkage``, prior fitted per party on ≤ 8,192 candidates),
    earlier stages as pooled. It is slow on wide stages, so it tries only the best designs the
    other modes found (same run or file);
* **hindsight**: the grid's designs are scored on tuning seeds and the best ones re-run on fresh
  seeds, so the reported figure is the best design's, not a default's.

Writes ``benchmarks/results/heavy_hitters_ideal.json``: per data set, ε and mode, every design's
tuning F1, the top designs' fresh-seed F1 (mean, se, per seed) and, as ``reference``, fed. PEM's and
TAPS's mean F1 from the committed paired run (``heavy_hitters_paired.json``, 100–200 seeds), and
redraws ``heavy_hitters_ideal.png`` next to it (``benchmarks.plots``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldp.oracles import choose_oracle, make_oracle
from ldp.shrinkage import posterior_mean

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODES = ("pooled", "party", "bayes")


@dataclass(frozen=True)
class Stage:
    """A share of the users asked about the current candidates' ``bits``-bit prefixes; best ``keep`` go on."""

    share: float
    bits: int
    keep: int = 0


def oracle_pq(epsilon: float, m: int) -> tuple[float, float]:
    """(p, q) of the lower-variance ideal oracle for ``m`` candidates: GRR over C ∪ {⊥} or OUE
    (``ldp.oracles.choose_oracle``; OUE has OLH's variance without its finite key pool)."""
    o = make_oracle("grr" if choose_oracle(epsilon, m) == "grr" else "oue", epsilon, np.arange(m))
    return o.p, o.q


class PartyCounts:
    """Sparse per-(item, party) counts, the only form of the data the simulation needs (48-bit items)."""

    def __init__(self, items: np.ndarray, parties: np.ndarray, bits: int):
        self.P = int(parties.max()) + 1
        u, c = np.unique(np.asarray(items, dtype=np.int64) * self.P + parties, return_counts=True)
        self.item, self.party, self.count, self.bits = u // self.P, u % self.P, c, bits
        self._prefixes: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def at(self, counts: np.ndarray, bits: int, cands: np.ndarray) -> np.ndarray:
        """``(P, m)`` matrix: ``counts`` (one value per sparse entry) summed per party over each candidate prefix."""
        if bits not in self._prefixes:  # (prefix, party) keys and each entry's key, once per width
            key = (self.item >> (self.bits - bits)) * self.P + self.party
            self._prefixes[bits] = np.unique(key, return_inverse=True)
        u, inv = self._prefixes[bits]
        tot = np.bincount(inv, weights=counts, minlength=u.size)
        want = cands[None, :] * self.P + np.arange(self.P)[:, None]
        idx = np.minimum(np.searchsorted(u, want), u.size - 1)
        return np.where(u[idx] == want, tot[idx], 0.0)


def simulate(data: PartyCounts, stages: list[Stage], k: int, epsilon: float, rng: np.random.Generator,
             mode: str = "pooled") -> np.ndarray:
    """Top-``k`` items found by one run of an idealised design (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not np.isclose(sum(s.share for s in stages), 1.0) or stages[-1].bits != data.bits:
        raise ValueError("stage shares must sum to 1 and the last stage must ask full items")
    rest, left, users = data.count, 1.0, []
    for s in stages[:-1]:  # every user in exactly one stage: binomial thinning of the counts
        x = rng.binomial(rest, min(1.0, s.share / left))
        users.append(x)
        rest, left = rest - x, left - s.share
    users.append(rest)
    cands, prev = np.arange(1 << stages[0].bits, dtype=np.int64), None
    for i, (s, x) in enumerate(zip(stages, users)):
        p, q = oracle_pq(epsilon, cands.size)
        f = data.at(x, s.bits, cands)
        n = np.bincount(data.party, weights=x, minlength=data.P)[:, None]
        sup = rng.binomial(f.astype(np.int64), p) + rng.binomial((n - f).astype(np.int64), q)
        cnt = (sup - n * q) / (p - q) / s.share  # per party, scaled to all its users
        var = np.broadcast_to(np.maximum(n * q * (1 - q), 1e-9) / ((p - q) * s.share) ** 2, cnt.shape)
        if prev is not None:  # the same candidates asked again: inverse-variance combination, per party
            w = prev[1] / (prev[1] + var)
            cnt, var = w * cnt + (1 - w) * prev[0], prev[1] * var / (prev[1] + var)
        last = i == len(stages) - 1
        if mode == "party":  # the genie: only the parties holding a prefix count
            score = np.where(data.at(data.count, s.bits, cands) > 0, cnt, 0.0).sum(0)
        elif mode == "bayes" and last:  # TAPS's rule: sum of the parties' posterior means
            score = sum(posterior_mean(c, np.sqrt(v), fit_size=8192) for c, v in zip(cnt, var))
        else:
            score = cnt.sum(0)
        order = np.argsort(-score, kind="stable")
        if last:
            return cands[order[:k]]
        sel = np.sort(order[:s.keep])
        nxt = stages[i + 1].bits
        prev = (cnt[:, sel], var[:, sel]) if nxt == s.bits else None
        cands = (cands[sel][:, None] << (nxt - s.bits) | np.arange(1 << (nxt - s.bits))[None, :]).ravel()


def designs(bits: int) -> dict[str, list[Stage]]:
    """The design grid for a ``bits``-wide domain (names say the stages: ``p12(0.3,64)`` = 12-bit prefixes, share 0.3, keep 64)."""
    out: dict[str, list[Stage]] = {}
    if bits <= 20:
        out["one-shot"] = [Stage(1.0, bits)]
        for a, m in itertools.product((0.2, 0.3, 0.5), (256, 1024, 4096)):
            out[f"full({a},{m})->again"] = [Stage(a, bits, m), Stage(1 - a, bits)]
        for g in (12, 16):
            if bits - g > 8 or g >= bits:
                continue
            for a, m in itertools.product((0.2, 0.3, 0.4, 0.5, 0.6), (32, 64, 128, 256, 512)):
                out[f"p{g}({a},{m})->full"] = [Stage(a, g, m), Stage(1 - a, bits)]
                for m2, a2 in itertools.product((48, 64, 128, 256), (0.2, 0.3)):
                    if a + a2 < 0.9:
                        out[f"p{g}({a},{m})->full({a2},{m2})->again"] = [Stage(a, g, m), Stage(a2, bits, m2),
                                                                        Stage(round(1 - a - a2, 10), bits)]
        if bits > 16:  # two prefix levels, as TAPS's 12, 16, 19 on BMS
            for a, m, a2, m2 in itertools.product((0.2, 0.3), (64, 128, 256), (0.2, 0.3), (64, 128, 256)):
                out[f"p12({a},{m})->p16({a2},{m2})->full"] = [Stage(a, 12, m), Stage(a2, 16, m2),
                                                             Stage(round(1 - a - a2, 10), bits)]
    else:  # wide domains: a tree of 6-bit steps from 12 bits, as TAPS's levels on AOL
        levels = list(range(12, bits, 6))
        for m, fin in itertools.product((64, 128, 256), (0.3, 0.4, 0.5, 0.6)):
            up = [Stage((1 - fin) / len(levels), g, m) for g in levels]
            out[f"tree(keep{m},final{fin})"] = up + [Stage(fin, bits)]
            for m2, a2 in itertools.product((48, 64, 128), (0.2, 0.3)):
                if fin - a2 > 0.1:
                    out[f"tree(keep{m},final{fin - a2:.1f},keep{m2})->again({a2})"] = \
                        up + [Stage(round(fin - a2, 10), bits, m2), Stage(a2, bits)]
    return out


def f1s(data: PartyCounts, stages: list[Stage], truth: np.ndarray, epsilon: float, seeds, mode: str) -> np.ndarray:
    k = truth.size
    return np.array([np.isin(simulate(data, stages, k, epsilon, np.random.default_rng(s), mode), truth).sum() / k
                     for s in seeds])


def reference(dataset: str, epsilon: float, parties: int, path: Path = RESULTS / "heavy_hitters_paired.json") -> dict:
    """fed. PEM's and TAPS's mean F1 in the committed paired run (many seeds), to set the ideal figures against."""
    if not path.exists():
        return {}
    cell = json.loads(path.read_text()).get(dataset, {}).get(str(parties), {}).get(str(float(epsilon)), {})
    return {m: {"f1_mean": cell[m]["f1_mean"], "f1_se": cell[m]["f1_std"] / math.sqrt(cell[m]["seeds"]),
                "seeds": cell[m]["seeds"]} for m in ("fedpem", "taps") if m in cell}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=lambda s: s.split(","), default=["aol", "retail", "bms"])
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[4.0])
    ap.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES))
    ap.add_argument("--parties", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=10, help="tuning seeds (0..); the top designs get 2x as many fresh ones")
    ap.add_argument("--top", type=int, default=5, help="designs re-run on fresh seeds")
    ap.add_argument("--out", default=str(RESULTS / "heavy_hitters_ideal.json"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.heavy_hitters import load
    from ldp.datasets import dirichlet_parties
    from ldp.metrics import true_top_k

    path = Path(args.out)
    results = json.loads(path.read_text()) if path.exists() else {}
    tune, fresh = range(args.seeds), range(100_000, 100_000 + 2 * args.seeds)
    for ds in args.datasets:
        items, bits, k, _ = load(ds)
        data = PartyCounts(items, dirichlet_parties(items, args.parties, alpha=0.5, seed=0), bits)
        truth, grid = true_top_k(items, k), designs(bits)
        for e, mode in itertools.product(args.eps, args.modes):
            t = time.time()
            done = results.get(ds, {}).get(f"{e:g}", {})
            tried = grid
            if mode == "bayes" and any(m in done for m in ("pooled", "party")):  # slow: only the designs
                tried = {n: grid[n] for m in ("pooled", "party") for n in done.get(m, {}).get("best", {})}
            scored = {name: f1s(data, st, truth, e, tune, mode).mean() for name, st in tried.items()}
            best = sorted(scored, key=lambda n: -scored[n])[:args.top]
            ref = reference(ds, e, args.parties)
            cell = {"tuning_seeds": list(tune), "fresh_seeds": list(fresh), "parties": args.parties,
                    "tuning_f1": {n: round(float(v), 4) for n, v in scored.items()}, "best": {}, "reference": ref}
            base = ref.get("fedpem", {}).get("f1_mean")
            for name in best:
                f = f1s(data, grid[name], truth, e, fresh, mode)
                cell["best"][name] = {"f1_mean": float(f.mean()), "f1_se": float(f.std(ddof=1) / math.sqrt(f.size)),
                                      "f1": [round(float(x), 4) for x in f],
                                      "stages": [[s.share, s.bits, s.keep] for s in grid[name]]}
                print(f"{ds} eps={e:g} {mode}: {name}: tuning {scored[name]:.3f}, fresh {f.mean():.3f} "
                      f"± {cell['best'][name]['f1_se']:.3f}" + (f" (minus fed. PEM: {f.mean() - base:+.3f})" if base else ""),
                      flush=True)
            print(f"  ({len(tried)} designs, {time.time() - t:.0f}s; committed paired run: "
                  + ", ".join(f"{m} {r['f1_mean']:.3f}" for m, r in ref.items()) + ")", flush=True)
            results.setdefault(ds, {}).setdefault(f"{e:g}", {})[mode] = cell
            path.write_text(json.dumps(results, indent=2, sort_keys=True))
    from benchmarks import plots  # matplotlib: only once the results are written

    plots.draw("heavy_hitters_ideal", path)


if __name__ == "__main__":
    main()
