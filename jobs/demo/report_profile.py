"""The run report's what-if analytics section: the day's graph profile and how its sample transfers.

Reads ``<work>/profile/ds=<ds>/`` (``graph_profile`` of the full graph) and ``<work>/sample_profile/ds=<ds>/``
(``graph_profile --reference``: the sample's profile compared with the full graph's, per property the estimate
by its scaling law and the relative error). Copies their figures next to the report and returns Markdown:
the headline properties of the graph, then the comparison table — which questions the day's sample answers.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from jobs.runtime.layout import dated_path

# full-graph properties worth a line in the report (graphs.profile_compare.scalars' names)
HEADLINE = ("mean_degree", "reciprocity", "avg_clustering", "largest_wcc_frac", "largest_scc_frac", "degeneracy",
            "effective_diameter", "pagerank_top1_share")


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def profile_section(work: Path, ds: str, figs: Path, head: dict) -> list[str]:
    """Markdown lines of the section (empty when the day has no profile: an older run or a skipped step)."""
    full_dir, sample_dir = dated_path(work, "profile", ds), dated_path(work, "sample_profile", ds)
    if not (full_dir / "profile.json").is_file():
        return []
    from graphs.profile_compare import scalars

    lines = []
    if (full_dir / "profile.png").is_file():
        shutil.copyfile(full_dir / "profile.png", figs / "profile.png")
        lines += ["![profile of the day's graph](profile.png)", ""]
    values = scalars(_json(full_dir / "profile.json"))
    shown = [k for k in HEADLINE if k in values]
    if shown:
        lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown),
                  "| " + " | ".join(f"{values[k]:.4g}" for k in shown) + " |", ""]
    comparison = _json(sample_dir / "comparison.json")
    if comparison:
        head["sample_median_rel_error"] = comparison.get("median_rel_error")
        lines += [f"The sample (r = {comparison.get('ratio')}) against the full graph, each property estimated by its "
                  f"scaling law: median relative error **{comparison.get('median_rel_error', float('nan')):.3f}**. "
                  "Properties with a large error are questions to ask of the full graph's profile, not of the sample.",
                  ""]
        if (sample_dir / "comparison.md").is_file():
            lines += [(sample_dir / "comparison.md").read_text().rstrip(), ""]
        if (sample_dir / "comparison.png").is_file():
            shutil.copyfile(sample_dir / "comparison.png", figs / "sample_profile.png")
            lines += ["![the sample's profile against the full graph's](sample_profile.png)"]
    return lines
