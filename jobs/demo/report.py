"""Markdown run report of one ``graphrec_daily`` day, with PNG figures, from the jobs' outputs.

Reads ``<work>/<table>/ds=<ds>/`` (what the DAG wrote) and writes ``<work>/report/ds=<ds>/report.md``
plus, where the inputs exist:

* ``degrees.png`` — in/out-degree distributions (log–log) of the ingested graph and of the
  sample (``sample_graph``), with the sample job's L1/KS figures;
* ``embedding.png`` — a 2-D PCA view of the node embedding coloured by planted community, with
  node-classification micro/macro-F1 (:func:`embeddings.evaluate.node_classification`) and the
  friend-kNN same-community rate;
* ``recommender.png`` — the recommender's ranking metrics from its ``metrics.json`` (Recall@20,
  NDCG@20 and any baseline it reports);
* ``bandit.png`` — the bandit's learning curve (reward rate per batch of simulated requests,
  against random catalogue items) from ``traffic/curve``;
* the heavy hitters and the privacy ledger (a table: per party, users, ε, reports, levels, oracles);
* ``days.png`` — with several days, the per-day figures (:mod:`jobs.demo.report_days`).

Sections whose inputs are missing say so instead of failing. Also writes ``summary.json`` with the
headline figures. Paths come from :mod:`jobs.runtime.layout`.

    python -m jobs.demo.report --work runs/pipeline --ds 2026-01-05

>>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
>>> d = Path(tempfile.mkdtemp()); (d / "edges").mkdir()
>>> pq.write_table(pa.table({"src": [0, 0, 1], "dst": [1, 2, 2]}), d / "edges" / "p.parquet")
>>> [x.tolist() for x in degrees(d / "edges")]
[[2, 1, 0], [0, 1, 2]]
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script
    import bootstrap  # noqa: F401

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from graphs.atomic import write_json
from jobs.runtime.layout import dated_path

log = logging.getLogger("graphrec.report")


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _table(path: Path, columns: list[str] | None = None):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns) if path.exists() else None


def degrees(edges_dir: Path, n: int | None = None, batch: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Per-node (out, in) degrees from an ``edges(src, dst)`` table, read in batches (memory O(nodes))."""
    import pyarrow.dataset as ds

    out = np.zeros(n or 0, np.int64)
    inn = np.zeros(n or 0, np.int64)
    for b in ds.dataset(edges_dir, format="parquet").to_batches(columns=["src", "dst"], batch_size=batch):
        s, d = b.column(0).to_numpy(), b.column(1).to_numpy()
        m = int(max(s.max(initial=-1), d.max(initial=-1))) + 1
        if m > out.size:
            out, inn = np.pad(out, (0, m - out.size)), np.pad(inn, (0, m - inn.size))
        out += np.bincount(s, minlength=out.size)
        inn += np.bincount(d, minlength=inn.size)
    return out, inn


def _pmf(deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.bincount(deg)
    k = np.flatnonzero(c)
    k = k[k > 0]
    return k, c[k] / max(deg.size, 1)


def degree_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    import matplotlib.pyplot as plt

    graph, sample = dated_path(work, "graph", ds), dated_path(work, "sample", ds)
    if not (graph / "edges").exists() or not (sample / "edges").exists():
        return ["_No sample: `graph/` or `sample/` output missing._"]
    stats, rep = _json(graph / "stats.json"), _json(sample / "report.json")
    g_out, g_in = degrees(graph / "edges", stats.get("nodes"))
    s_out, s_in = degrees(sample / "edges")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, g, s) in zip(axes, (("out-degree", g_out, s_out), ("in-degree", g_in, s_in))):
        for lab, d, m in ((f"graph ({g.size:,} nodes)", g, "o"), (f"sample ({s.size:,} nodes)", s, "x")):
            k, p = _pmf(d)
            ax.loglog(k, p, m, ms=3, alpha=0.7, label=lab)
        ax.set_xlabel(name), ax.set_ylabel("P(degree)"), ax.legend(), ax.grid(alpha=0.3)
    fig.suptitle(f"degree distributions, ratio {rep.get('ratio', '?')}")
    fig.tight_layout()
    fig.savefig(figs / "degrees.png", dpi=110)
    plt.close(fig)
    keys = [k for k in ("ratio", "method", "in_l1", "out_l1", "floor_in", "floor_out", "in_ks", "out_ks", "jdm_l1",
                        "dcm_l1", "nodes", "target_nodes", "edges", "reciprocity") if k in rep]
    head.update({f"sample_{k}": rep[k] for k in ("in_l1", "out_l1") if k in rep})
    lines = ["![degree distributions](degrees.png)", "",
             f"Graph: {stats.get('nodes', g_out.size):,} nodes, {stats.get('edges', int(g_out.sum())):,} edges; "
             f"sample: {s_out.size:,} nodes, {int(s_out.sum()):,} edges.", ""]
    if keys:
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
                  "| " + " | ".join(_fmt(rep[k]) for k in keys) + " |"]
    return lines


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def embedding_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    import matplotlib.pyplot as plt
    import scipy.sparse as sp

    from embeddings.evaluate import dense_vectors, node_classification

    emb, graph = dated_path(work, "embedding", ds), dated_path(work, "graph", ds)
    labels_t = _table(dated_path(work, "raw", ds) / "graph" / "labels")
    verts = _table(graph / "vertices", ["id", "orig_id"])
    if not (emb / "vectors").exists() or verts is None:
        return ["_No embedding: `embedding/` or `graph/vertices` output missing._"]
    meta = _json(emb / "_meta.json")
    x = dense_vectors(emb, verts.num_rows)
    lines = []
    if labels_t is not None:
        lab = np.full(verts.num_rows, -1, np.int64)
        orig = np.asarray(verts.column("orig_id").to_numpy(), np.int64)
        lid, lval = labels_t.column("id").to_numpy(), labels_t.column("label").to_numpy()
        pos = np.searchsorted(lid, orig)
        ok = (pos < lid.size) & (lid[np.minimum(pos, lid.size - 1)] == orig)
        lab[verts.column("id").to_numpy()[ok]] = lval[pos[ok]]
        have = lab >= 0
        y = sp.csr_matrix((np.ones(int(have.sum())), (np.flatnonzero(have), lab[have])), shape=(lab.size, lab.max() + 1))
        rng = np.random.default_rng(0)
        idx = np.flatnonzero(have)
        sub = rng.choice(idx, min(idx.size, 4000), replace=False)
        nc = node_classification(x[sub], y[sub], ratios=(0.5,), repeats=2)
        head["embedding_micro_f1@50%"] = nc["micro_f1"]["0.5"]
        lines.append(f"Node classification on the planted communities (4,000 nodes, 50% train): micro-F1 "
                     f"{nc['micro_f1']['0.5']:.3f}, macro-F1 {nc['macro_f1']['0.5']:.3f} "
                     f"(chance ≈ {1 / y.shape[1]:.3f}).")
        xs = x[sub] - x[sub].mean(axis=0)
        _, _, vt = np.linalg.svd(xs, full_matrices=False)
        p2 = xs @ vt[:2].T
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.scatter(p2[:, 0], p2[:, 1], c=lab[sub], s=3, cmap="tab10", alpha=0.7)
        ax.set_title(f"embedding (dim {x.shape[1]}), PCA, coloured by community")
        fig.tight_layout()
        fig.savefig(figs / "embedding.png", dpi=110)
        plt.close(fig)
        lines = ["![embedding](embedding.png)", ""] + lines
        nb = _table(dated_path(work, "friends", ds) / "neighbors", ["id", "neighbor"])
        if nb is not None and nb.num_rows:
            a, b = nb.column("id").to_numpy(), nb.column("neighbor").to_numpy()
            same = float(np.mean(lab[a] == lab[b]))
            head["friend_knn_same_community"] = same
            lines.append(f"Friend kNN: {nb.num_rows:,} recommendations, {same:.1%} within the user's community.")
    tuned = _json(dated_path(work, "embedding_tuning", ds) / "chosen.json")
    if tuned:
        lines.append(f"Propagation settings tuned on the day's sample (`tune_embedding`, link-prediction AUC "
                     f"{_fmt(tuned.get('auc'))}): order {tuned.get('order')}, μ {_fmt(tuned.get('mu'))}, "
                     f"θ {_fmt(tuned.get('theta'))}.")
    keys = [k for k in ("dim", "levels", "parts", "edge_cut", "largest_subgraph", "embedded_edges_multiple") if k in meta]
    if keys:
        lines += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys),
                  "| " + " | ".join(_fmt(meta[k]) for k in keys) + " |"]
    return lines


def recommender_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    import matplotlib.pyplot as plt

    rec = dated_path(work, "recommender", ds)
    m = _json(rec / "metrics.json")
    if not m:
        return ["_No recommender metrics: `recommender/metrics.json` missing._"]
    bars = {k: v for k, v in m.items() if isinstance(v, (int, float)) and ("recall" in k or "ndcg" in k)}
    for k in ("recall@20", "ndcg@20", "recall@20_cold"):
        if isinstance(m.get(k), (int, float)):
            head[f"recommender_{k}"] = m[k]
    if bars:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.bar(list(bars), list(bars.values()), color=["C0" if "pop" not in k else "C7" for k in bars])
        for i, v in enumerate(bars.values()):
            ax.text(i, v, f"{v:.3f}", ha="center", va="bottom")
        ax.set_title(f"recommender: {m.get('model', '?')} at density {m.get('density', '?')}")
        fig.tight_layout()
        fig.savefig(figs / "recommender.png", dpi=110)
        plt.close(fig)
    keys = [k for k in ("model", "density", "recall@20", "ndcg@20", "recall@20_cold", "users_cold", "params", "bytes",
                        "dense_bytes", "epochs", "best_epoch", "rounds", "seconds_per_epoch", "device") if k in m]
    return (["![recommender](recommender.png)", ""] if bars else []) + training_lines(work, ds, m) + [
        "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys), "| " + " | ".join(_fmt(m[k]) for k in keys) + " |"]


def training_lines(work: Path, ds: str, m: dict) -> list[str]:
    """What the day trained on: the interactions with the previous day's feedback, the social side, the settings."""
    lines = []
    st = _json(dated_path(work, "interactions", ds) / "stats.json")
    fb, prev = st.get("feedback") or {}, st.get("previous") or {}
    if st:
        lines.append(f"Interactions: {st.get('interactions', 0):,} of {st.get('users', 0):,} users; feedback rows "
                     f"carried from the day before {prev.get('feedback_rows', 0):,}, joined from its exported events "
                     f"{fb.get('added', 0):,} of {fb.get('events', 0):,} (not positive {fb.get('non_positive', 0):,}, "
                     f"already present {fb.get('already_present', 0):,})"
                     + (" — a first day: no earlier output." if prev.get("missing") else "."))
    social = m.get("social") or {}
    if social:
        lines.append(f"Social inputs: {social.get('users_without_interactions', 0):,} users with friends and no "
                     f"interactions served from their friends' vectors.")
    if "settings" in m:
        how = "tuned this day" if m.get("tuning") else "reused / defaults"
        lines.append(f"Training settings ({how}): {_fmt(m['settings'])}.")
    return lines + [""] if lines else []


def bandit_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    import matplotlib.pyplot as plt

    tr = dated_path(work, "traffic", ds)
    curve, summ = _table(tr / "curve"), _json(tr / "summary.json")
    lines = []
    if curve is not None and curve.num_rows:
        c = {n: curve.column(n).to_numpy() for n in curve.column_names}
        fig, ax = plt.subplots(figsize=(7, 3.8))
        w = max(1, c["reward_rate"].size // 10)
        smooth = np.convolve(c["reward_rate"], np.ones(w) / w, mode="valid")
        ax.plot(c["requests"], c["reward_rate"], ".", alpha=0.35, label="Diag-LinUCB, per batch")
        ax.plot(c["requests"][w - 1:], smooth, "-", label=f"Diag-LinUCB, moving mean ({w} batches)")
        ax.axhline(float(np.mean(c["random_rate"])), color="C7", ls="--", label="random catalogue items")
        ax.set_xlabel("simulated score requests"), ax.set_ylabel("reward rate of shown items"), ax.legend()
        ax.set_title("bandit learning curve (online feedback)"), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(figs / "bandit.png", dpi=110)
        plt.close(fig)
        lines += ["![bandit learning curve](bandit.png)", ""]
    if summ:
        head.update({"bandit_reward_first_quarter": summ.get("reward_rate_first_quarter"),
                     "bandit_reward_last_quarter": summ.get("reward_rate_last_quarter"),
                     "bandit_random_rate": summ.get("random_rate")})
        lines.append(f"{summ['requests']:,} requests, {summ.get('events', 0):,} feedback events: reward rate "
                     f"{summ['reward_rate_first_quarter']:.3f} (first quarter) → {summ['reward_rate_last_quarter']:.3f} "
                     f"(last quarter); random items {summ['random_rate']:.3f}. Score latency p50 "
                     f"{summ.get('score_p50_ms', float('nan')):.1f} ms, p99 {summ.get('score_p99_ms', float('nan')):.1f} ms.")
    if summ.get("paths"):
        lines.append("Score requests per serving path: " + ", ".join(f"{p} {n:,}" for p, n in sorted(summ["paths"].items()))
                     + ".")
    ev = _json(dated_path(work, "events", ds) / "_meta.json")
    if ev:
        lines.append(f"Exported for the batch update: {ev.get('rows', {}).get('events', 0):,} events "
                     f"(seq {ev.get('first_seq')}..{ev.get('last_seq')}).")
    for step in ("candidates", "bandit"):
        r = _json(dated_path(work, "published", ds) / step / "reload.json")
        if r:
            lines.append(f"Service reload after `{step}`: {_fmt(r)}.")
            head[f"served_version_after_{step}"] = r.get("version")
    return lines or ["_No bandit traffic: `traffic/` output missing._"]


def heavy_hitters_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    hh = dated_path(work, "heavy_hitters", ds)
    t = _table(hh / "heavy_hitters")
    if t is None:
        return ["_No heavy hitters for this day (`graphrec_heavy_hitters` has not run)._"]
    ledger, metrics = _json(hh / "ledger.json"), _json(hh / "metrics.json")
    top = t.sort_by("rank").slice(0, 10).to_pydict()
    lines = [f"{t.num_rows} trending items; top 10: " + ", ".join(str(i) for i in top["item"]) + "."]
    if metrics:
        head.update({f"heavy_hitters_{k}": v for k, v in metrics.items() if k in ("f1", "ncr")})
        lines.append("Against the true top-k (simulation): " + _fmt(metrics) + ".")
    if ledger:
        lines += [""] + ledger_table(ledger)
    return lines


def ledger_table(ledger: dict) -> list[str]:
    """The privacy ledger (``ledger.json`` of :class:`ldp.ledger.PrivacyLedger`) as a Markdown table, one row per party.

    >>> print("\\n".join(ledger_table({"method": "taps", "epsilon_per_user": 4.0, "reports_per_user": 1,
    ...     "composition": "parallel", "group_shares": [0.5, 0.5], "parties": {"0": {"users": 10,
    ...     "users_reported": 10, "epsilon_per_user": 4.0, "reports_per_user": 1, "levels": 2,
    ...     "oracles": ["grr", "olh"], "groups_used": [0, 1]}}})))
    Privacy ledger: method `taps`, ε = 4 per user, 1 report per user; composition: parallel; level shares 0.5, 0.5.
    <BLANKLINE>
    | party | users | users reported | ε per user | reports per user | levels | oracles | groups used |
    |---|---|---|---|---|---|---|---|
    | 0 | 10 | 10 | 4 | 1 | 2 | grr, olh | 0, 1 |
    """
    shares = ledger.get("group_shares") or []
    head = (f"Privacy ledger: method `{ledger.get('method', '?')}`, ε = {_fmt(ledger.get('epsilon_per_user', '?'))} "
            f"per user, {ledger.get('reports_per_user', '?')} report per user; composition: "
            f"{ledger.get('composition', '?')}" + (f"; level shares {', '.join(_fmt(x) for x in shares)}" if shares else "")
            + ".")
    rows = []
    for party, p in sorted((ledger.get("parties") or {}).items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0]):
        rows.append("| " + " | ".join([party] + [_fmt(p.get(k, "")) if not isinstance(p.get(k), list)
                                                  else ", ".join(str(x) for x in p[k])
                                                  for k in ("users", "users_reported", "epsilon_per_user",
                                                            "reports_per_user", "levels", "oracles", "groups_used")])
                    + " |")
    if not rows:
        return [head]
    return [head, "", "| party | users | users reported | ε per user | reports per user | levels | oracles | groups used |",
            "|---|---|---|---|---|---|---|---|", *rows]


def _timing_text(t: dict) -> str:
    if {"total_s", "setup_s", "dag_s"} <= t.keys():
        return f", wall time {t['total_s']:.0f} s (set-up {t['setup_s']:.0f} s, DAG {t['dag_s']:.0f} s)"
    return f", DAGs {t['dag_s']:.0f} s" if "dag_s" in t else ""


def write_report(work: str | Path, ds: str, tasks: list[dict] | None = None, timings: dict | None = None,
                 dag_rc: int | None = None, days: list[str] | None = None) -> Path:
    """Write ``<work>/report/ds=<ds>/report.md`` (+ PNGs, ``summary.json``); return the report's path.

    ``days``: the run's days (several: a section plots the per-day figures of those up to ``ds``);
    ``None``: every day of the work directory up to ``ds``."""
    from jobs.demo.report_days import days_section
    from jobs.demo.report_profile import profile_section

    import matplotlib

    matplotlib.use("Agg")
    work = Path(work).absolute()
    out = dated_path(work, "report", ds)
    out.mkdir(parents=True, exist_ok=True)
    head: dict = {"ds": ds, **(timings or {})}
    if tasks is not None:
        head["tasks"] = len(tasks)
        head["tasks_succeeded"] = sum(t["state"] == "success" for t in tasks)
    sections = []
    for title, fn in (("Sampled graph (JDM/DCM rescaling)", degree_section),
                      ("What-if analytics: the graph's profile and its sample", profile_section),
                      ("Graph embedding and friend recommendations", embedding_section),
                      ("DSL sparse recommender", recommender_section),
                      ("Diag-LinUCB bandit", bandit_section),
                      ("Federated LDP heavy hitters", heavy_hitters_section),
                      ("Day by day", lambda *a: days_section(*a, days=days))):
        try:
            body = fn(work, ds, out, head)
        except Exception as e:  # a broken input must not hide the rest of the report
            log.exception("report section %r failed", title)
            body = [f"_Section failed: {type(e).__name__}: {e}_"]
        if body:
            sections += [f"## {title}", ""] + body + [""]
    lines = [f"# graphrec daily run — ds={ds}", ""]
    if dag_rc is not None:
        dags = list(dict.fromkeys(t.get("dag", "graphrec_daily") for t in tasks or [])) or ["graphrec_daily"]
        lines.append(f"DAG{'s' if len(dags) > 1 else ''} {' + '.join(f'`{d}`' for d in dags)}: "
                     f"**{'succeeded' if dag_rc == 0 else 'FAILED'}**"
                     + (f", {head['tasks_succeeded']}/{head['tasks']} tasks succeeded" if tasks is not None else "")
                     + _timing_text(timings or {}) + ".")
        lines.append("")
    lines += ["| headline | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in head.items() if v is not None]
    lines += [""] + sections
    if tasks:
        lines += ["## Tasks", "", "| DAG | task | state | tries | seconds |", "|---|---|---|---|---|"]
        lines += [f"| {t.get('dag', '')} | {t['task_id']} | {t['state']} | {t['tries']} | {_fmt(t['seconds'])} |"
                  for t in tasks]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_json(out / "summary.json", head)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="report", description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--ds", required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(write_report(a.work, a.ds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
