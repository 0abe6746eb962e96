"""The run report's day-by-day section: per-day figures of a multi-day run, read from each day's outputs.

For every day up to the report's, where the output exists (absent figures are left out, never fatal):

* recommender Recall@20 and, when the recommender reports it, the cold users' ``recall@20_cold``
  (``recommender/ds=<d>/metrics.json``);
* the bandit's reward rate over the first and the last quarter of the day's simulated requests, and
  random items' (``traffic/ds=<d>/summary.json``) — the first quarter shows what the previous days'
  batch updates carried over;
* the share of score requests per serving path, from any counter of the service's ``/metrics``
  with a ``path`` label (``serving/ds=<d>/metrics.prom``, saved by :mod:`jobs.demo.run_daily`); the
  service runs across the days, so a day's counts are the difference to the day before. Without a
  scrape, the simulated requests' paths of the day (``traffic/ds=<d>/summary.json``) stand in;
* the previous day's feedback events that joined the day's interactions
  (``interactions/ds=<d>/stats.json``: ``feedback.added``) and the users served from their friends
  only (``recommender/ds=<d>/metrics.json``: ``social.users_without_interactions``).

Writes ``days.png`` and ``days.json`` beside the report; the section is empty with fewer than two days
(or none with a figure).

>>> text = 'graphrec_score_total{path="personal"} 30.0\\ngraphrec_score_total{path="fallback"} 10.0\\nx 1\\n'
>>> path_counts(text)
{'fallback': 10.0, 'personal': 30.0}
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from graphs.atomic import write_json
from jobs.runtime import layout

_SAMPLE = re.compile(r'^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}\s+(\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def path_counts(prom_text: str) -> dict[str, float]:
    """Requests per serving path from Prometheus text: the counter (``*_total``) with a ``path`` label,
    preferring one whose name mentions ``score``; ``{}`` when the service exports none."""
    by_metric: dict[str, dict[str, float]] = {}
    for line in prom_text.splitlines():
        m = _SAMPLE.match(line)
        if not m or not m.group(1).endswith("_total"):
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        if "path" in labels:
            counts = by_metric.setdefault(m.group(1), {})
            counts[labels["path"]] = counts.get(labels["path"], 0.0) + float(m.group(3))
    if not by_metric:
        return {}
    name = sorted(by_metric, key=lambda n: ("score" not in n, n))[0]
    return dict(sorted(by_metric[name].items()))


def day_metrics(work: Path, ds: str, previous_paths: dict[str, float] | None = None) -> dict:
    """The per-day figures of ``ds`` that exist (see the module doc); ``paths`` holds cumulative counts."""
    out: dict = {"ds": ds}
    rec = _json(layout.dated_path(work, "recommender", ds) / "metrics.json")
    for k in ("recall@20", "recall@20_cold", "ndcg@20"):
        if isinstance(rec.get(k), (int, float)):
            out[k] = float(rec[k])
    social = rec.get("social") or {}
    if isinstance(social.get("users_without_interactions"), int):
        out["social_users"] = social["users_without_interactions"]
    feedback = _json(layout.dated_path(work, "interactions", ds) / "stats.json").get("feedback") or {}
    if isinstance(feedback.get("added"), int):
        out["feedback_added"] = feedback["added"]
    tr = _json(layout.dated_path(work, "traffic", ds) / "summary.json")
    for src, dst in (("reward_rate_first_quarter", "reward_first_quarter"),
                     ("reward_rate_last_quarter", "reward_last_quarter"), ("random_rate", "reward_random")):
        if isinstance(tr.get(src), (int, float)):
            out[dst] = float(tr[src])
    prom = layout.dated_path(work, "serving", ds) / "metrics.prom"
    if prom.exists():
        cum = path_counts(prom.read_text())
        if cum:
            prev = previous_paths or {}
            delta = {p: c - prev.get(p, 0.0) for p, c in cum.items()}
            if any(v < 0 for v in delta.values()):  # the service restarted: its counters began again
                delta = cum
            total = sum(delta.values())
            out["paths"] = cum
            if total > 0:
                out["path_share"] = {p: v / total for p, v in delta.items()}
    if "path_share" not in out and isinstance(tr.get("paths"), dict) and sum(tr["paths"].values()) > 0:
        total = sum(tr["paths"].values())  # no scrape of the service: the day's simulated requests
        out["path_share"] = {p: v / total for p, v in sorted(tr["paths"].items())}
    return out


def collect(work: Path, ds: str, days: list[str] | None = None) -> list[dict]:
    """Per-day figures of ``days`` (default: every day of the work directory) up to and including ``ds``."""
    if days is None:
        days = sorted(set(layout.days(work, "recommender")) | set(layout.days(work, "traffic"))
                      | set(layout.days(work, "serving")) | {ds})
    rows, prev = [], None
    for d in sorted(x for x in days if x <= ds):
        row = day_metrics(work, d, prev)
        prev = row.get("paths", prev)
        rows.append(row)
    return rows


def _cell(row: dict, key: str) -> str:
    v = row.get(key)
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else "–"


def days_section(work: Path, ds: str, figs: Path, head: dict, days: list[str] | None = None) -> list[str]:
    """Markdown lines (figure + table) of the per-day figures; ``[]`` with fewer than two days."""
    rows = collect(work, ds, days)
    if len(rows) < 2 or all(len(r) == 1 for r in rows):  # fewer than two days, or no figure on any day
        return []
    head["days"] = len(rows)
    write_json(figs / "days.json", rows)
    paths = sorted({p for r in rows for p in r.get("path_share", {})})
    _plot(rows, paths, figs / "days.png")
    cols = [k for k in ("recall@20", "recall@20_cold", "reward_first_quarter", "reward_last_quarter", "reward_random",
                        "feedback_added", "social_users") if any(k in r for r in rows)]
    lines = ["![per-day figures](days.png)", "",
             "| day | " + " | ".join(cols + [f"share `{p}`" for p in paths]) + " |",
             "|" + "---|" * (1 + len(cols) + len(paths))]
    for r in rows:
        shares = [f"{r['path_share'][p]:.1%}" if p in r.get("path_share", {}) else "–" for p in paths]
        lines.append(f"| {r['ds']} | " + " | ".join([_cell(r, k) for k in cols] + shares) + " |")
    if not paths:
        lines += ["", "_No per-path serving counts: the service's `/metrics` has no counter with a `path` label "
                      "(or `serving/ds=<day>/metrics.prom` is missing) and no simulated traffic counted them._"]
    if any("feedback_added" in r for r in rows):
        lines += ["", "`feedback_added`: the previous day's positive, acknowledged events that joined the day's "
                      "training interactions (each `event_id` once); `social_users`: users with friends and no "
                      "interactions, served from their friends' vectors."]
    return lines


def _plot(rows: list[dict], paths: list[str], dest: Path) -> None:
    import matplotlib.pyplot as plt

    x = list(range(len(rows)))
    labels = [r["ds"][5:] for r in rows]
    panels = [("recommender", [("recall@20", "Recall@20"), ("recall@20_cold", "Recall@20, cold users")]),
              ("bandit reward rate", [("reward_first_quarter", "first quarter of the day"),
                                      ("reward_last_quarter", "last quarter"), ("reward_random", "random items")])]
    panels = [(t, [(k, lab) for k, lab in series if any(k in r for r in rows)]) for t, series in panels]
    panels = [p for p in panels if p[1]]
    n = len(panels) + bool(paths)
    if n == 0:
        return
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.6), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for k, lab in series:
            ax.plot(x, [r.get(k, float("nan")) for r in rows], "o-", ms=4, label=lab)
        ax.set_title(title), ax.set_xticks(x, labels), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    if paths:
        ax, bottom = axes[0][-1], [0.0] * len(rows)
        for p in paths:
            share = [r.get("path_share", {}).get(p, 0.0) for r in rows]
            ax.bar(x, share, bottom=bottom, label=p)
            bottom = [b + s for b, s in zip(bottom, share)]
        ax.set_title("score requests per serving path"), ax.set_xticks(x, labels), ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
