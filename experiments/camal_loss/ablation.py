"""The ablation table of the camal-loss redesign: every run of the given sweep folders, one row a
run, then the mean over seeds of each variant.

Columns: the first periodic evaluation (greedy, ``eval_episodes`` episodes) whose mean return
reaches ``--solved`` (the learning-speed endpoint; ``-`` when none did); the final held-out return;
Grad-CAM and perturbation-saliency EPG; Grad-CAM deletion AUC (lower is better) and occlusion KL
log10 ratio; the saliency-free behaviour log10 ratio (``camal-rl evaluate``'s metrics.json).

    python experiments/camal_loss/ablation.py experiments/camal_loss/runs/tune-doorkey-ppo
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camal_rl.statistics import RunResult, load_results, metric_value, variant_order
from camal_rl.tables import markdown_table

METRICS = (
    "return",
    "gradcam/epg",
    "perturbation/epg",
    "gradcam/deletion_auc",
    "gradcam/occlusion_kl_log_ratio",
    "behaviour/behaviour_log_ratio",
)


def first_solved(run: RunResult, threshold: float) -> float:
    """The step of the first periodic evaluation with a mean return >= ``threshold`` (nan: none)."""
    for row in run.evaluations:
        if row.get("return_mean", -math.inf) >= threshold:
            return float(row["step"])
    return math.nan


def fmt(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def steps(value: float) -> str:
    return "-" if math.isnan(value) else f"{value / 1000:.0f}k"


def tables(results: Sequence[RunResult], threshold: float) -> tuple[list[str], list[str]]:
    """The per-run table (every run, in progress too) and the per-variant means (runs trained to
    their budget and evaluated)."""
    results = sorted(results, key=lambda r: (variant_order(r), r.seed))
    header = ["variant", "seed", "steps", f"first eval >= {threshold:g}", *METRICS]
    rows: list[list[str]] = []
    by_variant: dict[str, list[list[float]]] = {}
    for run in results:
        values = [metric_value(run.metrics, m) for m in METRICS]
        solved = first_solved(run, threshold)
        rows.append([run.label, str(run.seed), f"{run.num_timesteps}", steps(solved), *map(fmt, values)])
        if run.complete and run.metrics is not None:  # the means: trained to budget and evaluated
            by_variant.setdefault(run.label, []).append([solved, *values])
    mean_header = ["variant", "seeds", f"first eval >= {threshold:g} (median; seeds never)", *METRICS]
    mean_rows = []
    for label, table in by_variant.items():
        data = np.array(table, dtype=np.float64)
        firsts = data[:, 0]
        never = int(np.isnan(firsts).sum())
        median = steps(float(np.median(firsts[~np.isnan(firsts)]))) if never < len(firsts) else "-"
        means = [fmt(float(np.nanmean(col))) if not np.isnan(col).all() else "-" for col in data[:, 1:].T]
        mean_rows.append([label, str(len(data)), f"{median}; {never} never", *means])
    return markdown_table(header, rows), markdown_table(mean_header, mean_rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (or run directories)")
    parser.add_argument("--solved", type=float, default=0.9, help="return that counts as solved (0.9)")
    args = parser.parse_args(argv)
    results = load_results(args.sweeps)
    per_run, per_variant = tables(results, args.solved)
    print("\n".join(["Per run:", "", *per_run, "", "Mean over seeds:", "", *per_variant]))


if __name__ == "__main__":
    main()
