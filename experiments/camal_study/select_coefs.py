"""Pick each method's coefficient from the tuning sweep (preset study-tune), by a rule fixed
before the sweep ran:

    Among a method's coefficients whose mean tuning return is at least 0.95 x the baseline's
    (method none, same seeds), take the one with the highest mean Grad-CAM EPG; if none qualifies,
    the one with the highest mean return.

Prints the tuning table (markdown) and the chosen coefficients. The study presets
(experiments/presets.py) hold the chosen values; this script shows where they come from.

Run: ``python experiments/camal_study/select_coefs.py [experiments/camal_study/runs/tune]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from camal_rl.statistics import load_results, mean_or_nan, metric_values
from camal_rl.tune import select_coefficients, variant_groups

TUNE = Path("experiments/camal_study/runs/tune")
RETURN_FRACTION = 0.95


@dataclass(frozen=True)
class Row:
    """One tuned variant, averaged over the tuning seeds."""

    method: str
    coef: float
    seeds: int
    mean_return: float
    gradcam_epg: float
    perturbation_epg: float


def tuning_table(path: Path) -> tuple[list[Row], dict[str, float]]:
    """The tuning rows and the chosen coefficient per method (the rule is
    :func:`camal_rl.tune.select_coefficients`', which ``camal-rl tune`` applies)."""
    results = load_results([path])
    rows = [
        Row(
            method,
            coef,
            len(runs),
            mean_or_nan(metric_values(runs, "return")),
            mean_or_nan(metric_values(runs, "gradcam/epg")),
            mean_or_nan(metric_values(runs, "perturbation/epg")),
        )
        for (method, coef), runs in sorted(variant_groups(results).items())
    ]
    tuning = select_coefficients(results, "gradcam/epg", return_tolerance=1 - RETURN_FRACTION)
    return rows, tuning.chosen


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else TUNE
    rows, chosen = tuning_table(path)
    print("| method | coef | seeds | return | Grad-CAM EPG | perturbation EPG | chosen |")
    print("|:--|--:|--:|--:|--:|--:|:--|")
    for row in rows:
        mark = "yes" if chosen.get(row.method) == row.coef else ""
        print(
            f"| {row.method} | {row.coef:g} | {row.seeds} | {row.mean_return:.3f} | "
            f"{row.gradcam_epg:.3f} | {row.perturbation_epg:.3f} | {mark} |"
        )
    print()
    print("chosen:", ", ".join(f"{m}:{c:g}" for m, c in chosen.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
