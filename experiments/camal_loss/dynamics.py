"""Training dynamics of the camal-loss runs, from their logger files: for each run, the mean of
each logged value over windows of env steps, then the median over seeds of each variant.

Exploratory, no endpoint: where `camal`'s capped gradient binds (``camal/grad_scale`` below
``camal_coef`` means the attention gradient was scaled down to the task gradient's norm), and
how large PPO's updates are (``train/approx_kl``) and how random its policy stays
(``train/entropy_loss``, minus the entropy) beside the baseline's and `energy`'s. A logger row
counts in the window holding its ``time/total_timesteps`` (the steps trained when the update was
logged); ``-`` where a run logs no such value there (DQN has no approx_kl; only `camal` logs a
grad_scale).

    python experiments/camal_loss/dynamics.py experiments/camal_loss/runs/lava-ppo
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from camal_rl.rundir import RunDir
from camal_rl.statistics import RunResult, load_results, variant_order
from camal_rl.tables import markdown_table
from experiments.camal_loss.endpoints import first_solved, solved_threshold, steps

KEYS = ("camal/grad_scale", "train/approx_kl", "train/entropy_loss")
EDGES = (0, 50_000, 150_000)
"""Window starts in env steps; the last window runs to the end of training."""


def window_means(values: Sequence[tuple[int, float]], edges: Sequence[int]) -> list[float]:
    """The mean of the ``(step, value)`` pairs whose step lies in each window ``[edges[i],
    edges[i + 1])`` (the last one open-ended); ``nan`` for a window without any."""
    bounds = [*edges, math.inf]
    means = []
    for low, high in itertools.pairwise(bounds):
        inside = [value for step, value in values if low <= step < high]
        means.append(float(np.mean(inside)) if inside else math.nan)
    return means


def window_names(edges: Sequence[int]) -> list[str]:
    """``0-50k``, ``50k-150k``, ``150k-end`` for edges (0, 50k, 150k)."""
    ends = [steps(float(edge)) for edge in edges[1:]] + ["end"]
    return [f"{steps(float(low)) if low else '0'}-{end}" for low, end in zip(edges, ends, strict=True)]


def significant(value: float) -> str:
    """Three significant digits (approx_kl spans 1e-5 to 1e-2), ``-`` for nan."""
    return "-" if math.isnan(value) else f"{value:.3g}"


def variant_medians(labels: Sequence[str], values: np.ndarray) -> dict[str, list[str]]:
    """For each variant in ``labels`` (first-seen order), the median over its rows of ``values``
    (one row per label) of each column, to three significant digits; ``-`` for a column without
    any value of that variant."""
    medians: dict[str, list[str]] = {}
    for label in dict.fromkeys(labels):
        data = values[[own == label for own in labels]]
        medians[label] = [
            significant(float(np.nanmedian(col))) if not np.isnan(col).all() else "-" for col in data.T
        ]
    return medians


def tables(results: Sequence[RunResult], edges: Sequence[int] = EDGES) -> tuple[list[str], list[str]]:
    """The per-run table (each key's window means) and the median over seeds of each variant,
    without the keys that no run logs (DQN's approx_kl and entropy)."""
    results = sorted(results, key=lambda r: (variant_order(r), r.seed))
    logs = [RunDir(run.path) for run in results]
    means = np.array(
        [[m for key in KEYS for m in window_means(log.logged_values(key), edges)] for log in logs],
        dtype=np.float64,
    ).reshape(len(results), len(KEYS) * len(edges))
    logged = [not np.isnan(column).all() for column in means.T]
    columns = [f"{key} {name}" for key in KEYS for name in window_names(edges)]
    columns = [name for name, kept in zip(columns, logged, strict=True) if kept]
    means = means[:, logged]
    rows = []
    for run, row in zip(results, means, strict=True):
        solved = first_solved(run.evaluations, solved_threshold(run.env))
        rows.append([run.label, str(run.seed), steps(solved), *map(significant, row)])
    labels = [run.label for run in results]
    medians = [
        [label, str(labels.count(label)), *cells] for label, cells in variant_medians(labels, means).items()
    ]
    return (
        markdown_table(["variant", "seed", "first eval solved", *columns], rows),
        markdown_table(["variant", "seeds", *columns], medians),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (or run directories)")
    args = parser.parse_args(argv)
    per_run, per_variant = tables(load_results(args.sweeps))
    print("\n".join(["Per run:", "", *per_run, "", "Median over seeds:", "", *per_variant]))


if __name__ == "__main__":
    main()
