"""The ablation table of the camal-loss redesign: every run of the given sweep folders, one row a
run, then the mean over seeds of each variant.

Columns: the first periodic evaluation (greedy, ``eval_episodes`` episodes) whose mean return
reaches ``--solved`` (the learning-speed endpoint; ``never`` when none did); the final held-out return;
Grad-CAM and perturbation-saliency EPG; Grad-CAM deletion AUC (lower is better) and occlusion KL
log10 ratio; the saliency-free behaviour log10 ratio (``camal-rl evaluate``'s metrics.json).

    python experiments/camal_loss/ablation.py experiments/camal_loss/runs/tune-doorkey-ppo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from camal_rl.statistics import RunResult, load_results, metric_value, variant_order
from camal_rl.tables import markdown_table
from experiments.camal_loss.endpoints import first_solved, fmt, steps

METRICS = (
    "return",
    "gradcam/epg",
    "perturbation/epg",
    "gradcam/deletion_auc",
    "gradcam/occlusion_kl_log_ratio",
    "behaviour/behaviour_log_ratio",
)


def tables(results: Sequence[RunResult], threshold: float) -> tuple[list[str], list[str]]:
    """The per-run table (every run, in progress too) and the per-variant means (runs trained to
    their budget and evaluated)."""
    results = sorted(results, key=lambda r: (variant_order(r), r.seed))
    header = ["variant", "seed", "steps", f"first eval >= {threshold:g}", *METRICS]
    rows: list[list[str]] = []
    by_variant: dict[str, list[list[float]]] = {}
    for run in results:
        values = [metric_value(run.metrics, m) for m in METRICS]
        solved = first_solved(run.evaluations, threshold)
        rows.append([run.label, str(run.seed), f"{run.num_timesteps}", steps(solved), *map(fmt, values)])
        if run.complete and run.metrics is not None:  # the means: trained to budget and evaluated
            by_variant.setdefault(run.label, []).append([solved, *values])
    mean_header = ["variant", "seeds", f"first eval >= {threshold:g} (median; seeds never)", *METRICS]
    mean_rows = []
    for label, table in by_variant.items():
        data = np.array(table, dtype=np.float64)
        firsts = data[:, 0]
        never = int(np.isinf(firsts).sum())
        median = steps(float(np.median(firsts[~np.isinf(firsts)]))) if never < len(firsts) else "-"
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
