"""The study's headline tables, from the run directories alone.

For every finished cell (a sweep folder under experiments/camal_study/runs): per agent variant,
the seeds evaluated, return IQM and the main attention metrics (estimate [95% CI] over seeds),
each variant's p-values against the baseline (Welch / Mann-Whitney U), CAMAL's faithfulness
improvement over energy in percent with its CI, and the training speed relative to the baseline
(SB3's time/fps at the end of training, which includes the periodic evaluations).

Run: ``python experiments/camal_study/report.py [CELL ...]`` (default: every cell but tune).
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.results import RunResult, load_results
from camal_rl.stats import comparison_table

RUNS = Path("experiments/camal_study/runs")
HEADLINE = (
    "return",
    "gradcam/epg",
    "gradcam/iou",
    "perturbation/epg",
    "gradcam/deletion_auc",
    "gradcam/insertion_auc",
    "gradcam/occlusion_kl_log_ratio",
    "behaviour/behaviour_log_ratio",
    "distractors/return",
)
FAITHFULNESS = ("gradcam/deletion_auc", "gradcam/insertion_auc", "gradcam/occlusion_kl_log_ratio")


def training_fps(result: RunResult) -> float:
    """SB3's ``time/fps`` in the run's last logged row (nan if absent)."""
    files = sorted(result.path.glob("progress*.csv"))
    if not files:
        return math.nan
    with files[-1].open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("time/fps")]
    return float(rows[-1]["time/fps"]) if rows else math.nan


def cell(value: Mapping[str, Any], digits: int = 3) -> str:
    if not math.isfinite(value["estimate"]):
        return "-"
    ci = (
        ""
        if not math.isfinite(value["ci_low"])
        else f" [{value['ci_low']:.{digits}f}, {value['ci_high']:.{digits}f}]"
    )
    return f"{value['estimate']:.{digits}f}{ci}"


def p_value(row: Mapping[str, Any]) -> str:
    welch, mwu = row["welch_p"], row["mwu_p"]
    if not (math.isfinite(welch) or math.isfinite(mwu)):
        return "n/a"
    return f"{welch:.2g} / {mwu:.2g}"


def report_cell(path: Path) -> str:
    """Markdown tables of one cell."""
    results = [r for r in load_results([path]) if r.metrics is not None]
    if not results:
        return f"### {path.name}\n\nno evaluated run yet\n"
    available = {m for r in results for m in HEADLINE if not math.isnan(_value(r, m))}
    metrics = [m for m in HEADLINE if m in available]
    rows = comparison_table(results, metrics, baseline="none", pairs=(("camal", "energy"),))
    labels = list(dict.fromkeys(row["label"] for row in rows))
    summary = {(row["label"], row["metric"]): row for row in rows if not row["versus"]}
    versus = {(row["label"], row["versus"], row["metric"]): row for row in rows if row["versus"]}
    fps = {label: np.nanmean([training_fps(r) for r in results if r.label == label]) for label in labels}
    base_fps = fps.get(next((lb for lb in labels if lb.endswith("-none")), ""), math.nan)
    lines = [f"### {path.name}", ""]
    lines.append("| agent | seeds | " + " | ".join(metrics) + " | train fps / baseline |")
    lines.append("|:--|--:|" + "--:|" * len(metrics) + "--:|")
    for label in labels:
        n = summary[(label, metrics[0])]["n"]
        cells = [cell(summary[(label, m)]) for m in metrics]
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + f" | {fps[label] / base_fps:.2f} |")
    lines += ["", "p-values (Welch / Mann-Whitney U) against the baseline, and CAMAL against energy:", ""]
    lines.append("| comparison | " + " | ".join(metrics) + " |")
    lines.append("|:--|" + "--:|" * len(metrics))
    for (label, other), _ in {(k[0], k[1]): None for k in versus}.items():
        cells = [p_value(versus[(label, other, m)]) if (label, other, m) in versus else "-" for m in metrics]
        lines.append(f"| {label} vs {other} | " + " | ".join(cells) + " |")
    gains = [
        (m, versus[key])
        for m in FAITHFULNESS
        for key in versus
        if key[2] == m and "camal" in key[0] and "energy" in key[1]
    ]
    if gains:
        lines += [
            "",
            "Faithfulness of CAMAL over energy (percent of energy's mean, positive = better, 95% CI):",
            "",
        ]
        for metric, row in gains:
            low, high = row["improvement_low"], row["improvement_high"]
            lines.append(f"- {metric}: {row['improvement_pct']:+.1f}% [{low:+.1f}, {high:+.1f}]")
    return "\n".join(lines) + "\n"


def _value(result: RunResult, metric: str) -> float:
    from camal_rl.results import metric_value

    return metric_value(result.metrics, metric)


def main(argv: Sequence[str]) -> None:
    cells = [Path(a) for a in argv] or sorted(p for p in RUNS.iterdir() if p.is_dir() and p.name != "tune")
    for path in cells:
        print(report_cell(path))


if __name__ == "__main__":
    main(sys.argv[1:])
