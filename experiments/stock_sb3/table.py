"""The stock SB3 PPO agents' returns and attention beside the study's DoorKey PPO agents.

Reads ``metrics.json`` files only (written by ``camal-rl evaluate`` at the study's evaluation
settings) and prints a markdown table: per group the mean over seeds of each run's value, the
range over seeds, and Welch / Mann-Whitney p-values of the stock agents against the study's
baseline (``none``: the same PPO and budget on camal-rl's cell-aligned MiniGridCNN).

    python experiments/stock_sb3/table.py > experiments/stock_sb3/table.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.statistics import mann_whitney_u, metric_value, welch_t_test
from camal_rl.tables import markdown_table

HERE = Path(__file__).parent
STUDY = HERE.parent / "camal_study" / "runs" / "doorkey-ppo" / "MiniGrid-DoorKey-5x5-v0"
GROUPS: dict[str, list[Path]] = {
    "stock SB3 PPO, NatureCNN (seeds 0-2)": sorted((HERE / "runs").glob("ppo-stock-seed*.metrics.json")),
    "study `none`, MiniGridCNN (seeds 0-4)": sorted(STUDY.glob("ppo-none/seed*/metrics.json")),
    "study CAMAL, MiniGridCNN (seeds 0-4)": sorted(STUDY.glob("ppo-camal-v1/seed*/metrics.json")),
}
METRICS = (
    "return",
    "success_rate",
    "gradcam/epg",
    "gradcam/iou",
    "gradcam/deletion_auc",
    "perturbation/epg",
    "perturbation/iou",
    "perturbation/deletion_auc",
    "behaviour/behaviour_log_ratio",
    "distractors/return",
)


def values(paths: list[Path], metric: str) -> np.ndarray:
    """One value per run (seed): the run's mean over its held-out episodes."""
    reports: list[dict[str, Any]] = [json.loads(path.read_text()) for path in paths]
    return np.array([metric_value(report, metric) for report in reports])


def main() -> None:
    names = list(GROUPS)
    header = ["metric", *names, "stock v `none`: Welch p", "Mann-Whitney p"]
    cells = []
    for metric in METRICS:
        per_group = [values(GROUPS[name], metric) for name in names]
        row = [metric]
        for group in per_group:
            if group.size:
                row.append(f"{np.mean(group):.3f} [{np.min(group):.3f}, {np.max(group):.3f}]")
            else:
                row.append("-")
        stock, baseline = per_group[0], per_group[1]
        for test in (welch_t_test, mann_whitney_u):
            p_value = test(stock, baseline).p_value
            row.append("-" if np.isnan(p_value) else f"{p_value:.3f}")
        cells.append(row)
    counts = ", ".join(f"{name}: {len(paths)} runs" for name, paths in GROUPS.items())
    print("\n".join(markdown_table(header, cells)))
    print(f"\nMean over seeds [min, max]; each run's value is its mean over 20 held-out episodes. {counts}.")


if __name__ == "__main__":
    main()
