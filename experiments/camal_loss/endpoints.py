"""The primary endpoints of the pre-registration (PREREGISTRATION.md), one table per cell.

For each cell (env and algorithm) of the given sweep folders, with the runs trained to their
budget and evaluated (``camal-rl evaluate``'s metrics.json):

- A1 Grad-CAM EPG, ``camal`` v ``energy``: success when ``camal``'s mean is at least ``energy``'s;
- A2 perturbation-saliency EPG, ``camal`` v ``none``: higher, Holm-adjusted p < 0.05;
- F1 Grad-CAM deletion AUC, ``camal`` v ``energy``: at least 35% lower, the 95% bootstrap interval
  of the percent change excluding 0;
- F2 Grad-CAM occlusion KL log10 ratio, ``camal`` v ``energy``: at least 35% higher, likewise;
- F3 behaviour log10 ratio, ``camal`` v ``none``: higher, Holm-adjusted p < 0.05;
- L1 median steps to the first greedy evaluation at or above ``--solved`` (0.9 MiniGrid, 75
  ViZDoom), ``camal`` v ``none``: at most 1.10 times. A seed that never reaches it counts as later
  than any that does (``inf`` in the median);
- L2 seeds solved (a greedy evaluation at or above the threshold), ``camal`` v ``energy``: at
  least as many (the pre-registration reads it on LavaCrossing; printed for every cell);
- G1 mean held-out return on layouts never trained on (generalisation.py's files),
  ``camal`` v ``none``: at least the baseline's, per layout.

The tests are the exact two-sided Mann-Whitney U test on per-seed values, with Welch's t-test
beside it (:mod:`camal_rl.statistics`, as ``camal-rl compare`` computes them). Holm's correction runs
over the five tested endpoints of a cell (A1, A2, F1, F2, F3), separately for each test. Each
comparison has its probability of improvement with a 95% percentile-bootstrap interval.

    python experiments/camal_loss/endpoints.py experiments/camal_loss/runs/doorkey-ppo
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from camal_rl.statistics import (
    BootstrapEstimate,
    Improvement,
    ProbabilityOfImprovement,
    RunResult,
    defined,
    holm,
    load_results,
    mann_whitney_u,
    mean_or_nan,
    metric_value,
    percent_improvement,
    probability_of_improvement,
    welch_t_test,
)
from camal_rl.tables import format_p, markdown_table
from experiments.camal_loss.generalisation import UNSEEN, unseen_return

ALPHA = 0.05
"""Significance level of A2 and F3, after Holm's correction."""
MIN_IMPROVEMENT = 35.0
"""Percent improvement over ``energy`` that F1 and F2 ask for."""
MAX_SLOWDOWN = 1.10
"""Largest ratio of median steps to solve, ``camal`` over ``none`` (L1)."""


@dataclass(frozen=True)
class Endpoint:
    """One tested endpoint: the metric, the comparison and how success is judged."""

    name: str
    metric: str
    reference: str
    """The method ``camal`` is compared with: ``energy`` or ``none``."""
    rule: str
    """``mean``: camal's mean at least the reference's; ``test``: higher, Holm-adjusted p < ALPHA;
    ``percent``: at least MIN_IMPROVEMENT percent better, the interval excluding 0."""
    lower_is_better: bool = False


ENDPOINTS = (
    Endpoint("A1", "gradcam/epg", "energy", "mean"),
    Endpoint("A2", "perturbation/epg", "none", "test"),
    Endpoint("F1", "gradcam/deletion_auc", "energy", "percent", lower_is_better=True),
    Endpoint("F2", "gradcam/occlusion_kl_log_ratio", "energy", "percent"),
    Endpoint("F3", "behaviour/behaviour_log_ratio", "none", "test"),
)
"""The five tested endpoints of a cell, the family Holm's correction runs over."""


def first_solved(evaluations: Sequence[Mapping[str, float]], threshold: float) -> float:
    """The step of the first periodic evaluation whose mean return reaches ``threshold``; ``inf``
    when none does (later than the budget)."""
    for row in evaluations:
        if row.get("return_mean", -math.inf) >= threshold:
            return float(row["step"])
    return math.inf


def solved_threshold(env: str) -> float:
    """The return that counts as solved: 75 on ViZDoom basic, 0.9 on MiniGrid."""
    return 75.0 if "vizdoom" in env.lower() else 0.9


@dataclass(frozen=True)
class EndpointResult:
    """One tested endpoint of a cell: the means, both tests with raw and Holm-adjusted p-values,
    the percent improvement and the probability of improvement with their intervals."""

    endpoint: Endpoint
    camal: float
    """``camal``'s mean over seeds."""
    reference: float
    """The reference method's mean over seeds."""
    mwu: float
    welch: float
    mwu_holm: float
    welch_holm: float
    improvement: Improvement
    poi: ProbabilityOfImprovement

    @property
    def success(self) -> bool:
        """Whether the endpoint meets its pre-registered success rule (:class:`Endpoint`)."""
        rule = self.endpoint.rule
        if rule == "mean":
            return self.camal >= self.reference
        if rule == "test":
            lower = self.endpoint.lower_is_better
            higher = self.camal < self.reference if lower else self.camal > self.reference
            return higher and self.mwu_holm < ALPHA
        return bool(self.improvement.estimate >= MIN_IMPROVEMENT and self.improvement.ci_low > 0)


def endpoint_rows(values: Mapping[str, Mapping[str, np.ndarray]]) -> list[EndpointResult]:
    """One result per endpoint of :data:`ENDPOINTS` from per-seed values ``values[method][metric]``,
    Holm's correction running over the five, separately for each test."""
    pairs = [(e, values["camal"][e.metric], values[e.reference][e.metric]) for e in ENDPOINTS]
    mwu = [mann_whitney_u(a, b).p_value for _, a, b in pairs]
    welch = [welch_t_test(a, b).p_value for _, a, b in pairs]
    return [
        EndpointResult(
            endpoint=endpoint,
            camal=mean_or_nan(a),
            reference=mean_or_nan(b),
            mwu=mwu_p,
            welch=welch_p,
            mwu_holm=float(mwu_holm),
            welch_holm=float(welch_holm),
            improvement=percent_improvement(a, b, lower_is_better=endpoint.lower_is_better),
            poi=probability_of_improvement(a, b, lower_is_better=endpoint.lower_is_better),
        )
        for (endpoint, a, b), mwu_p, welch_p, mwu_holm, welch_holm in zip(
            pairs, mwu, welch, holm(mwu), holm(welch), strict=True
        )
    ]


def median_steps(firsts: np.ndarray) -> float:
    """Median of first-solved steps, ``inf`` for seeds that never solved (later than any that did)."""
    return float(np.median(firsts)) if firsts.size else math.nan


def learning_rows(firsts: Mapping[str, np.ndarray]) -> list[list[str]]:
    """L1 and L2 from ``firsts[method]``: per-seed steps to the first solved evaluation."""
    none, camal = (median_steps(firsts[m]) for m in ("none", "camal"))
    ratio = camal / none if math.isfinite(none) and none > 0 else math.nan
    l1_ok = math.isfinite(camal) and (math.isinf(none) or ratio <= MAX_SLOWDOWN)
    solved = {m: int(np.isfinite(firsts[m]).sum()) for m in ("none", "camal", "energy")}
    n = {m: firsts[m].size for m in solved}
    return [
        [
            "L1",
            "median steps to solve, camal / none",
            f"{steps(camal)} / {steps(none)}",
            fmt(ratio, 2),
            f"<= {MAX_SLOWDOWN:.2f}",
            yes(l1_ok),
        ],
        [
            "L2",
            "seeds solved, camal v energy",
            f"{solved['camal']}/{n['camal']} v {solved['energy']}/{n['energy']}",
            "",
            ">=",
            yes(solved["camal"] >= solved["energy"]),
        ],
    ]


def fmt(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def steps(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "never" if math.isinf(value) else f"{value / 1000:.0f}k"


def interval(estimate: BootstrapEstimate, digits: int) -> str:
    """``estimate [low, high]``."""
    return (
        f"{fmt(estimate.estimate, digits)} [{fmt(estimate.ci_low, digits)}, {fmt(estimate.ci_high, digits)}]"
    )


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def endpoint_table(rows: Sequence[EndpointResult]) -> list[str]:
    header = [
        "#",
        "metric",
        "camal",
        "reference",
        "change % [95% CI]",
        "P(camal better) [95% CI]",
        "MW p (Holm)",
        "Welch p (Holm)",
        "success",
    ]
    lines = [
        [
            row.endpoint.name,
            row.endpoint.metric,
            fmt(row.camal),
            f"{fmt(row.reference)} ({row.endpoint.reference})",
            interval(row.improvement, 1),
            interval(row.poi, 2),
            f"{format_p(row.mwu)} ({format_p(row.mwu_holm)})",
            f"{format_p(row.welch)} ({format_p(row.welch_holm)})",
            yes(row.success),
        ]
        for row in rows
    ]
    return markdown_table(header, lines)


def generalisation_rows(
    runs: Mapping[str, Sequence[RunResult]],
    unseen_return: Callable[[Path, str, int], float],
    layouts: Sequence[tuple[str, str, int]],
) -> list[list[str]]:
    """G1: per unseen layout, the mean held-out return of ``camal`` and ``none`` over the seeds
    evaluated there, and whether ``camal``'s is at least the baseline's."""
    rows = []
    for name, _, distractors in layouts:
        means = {}
        for method in ("camal", "none"):
            values = np.array([unseen_return(r.path, name, distractors) for r in runs[method]])
            means[method] = (mean_or_nan(values), defined(values).size)
        (camal, n_camal), (none, n_none) = means["camal"], means["none"]
        ok = "-" if math.isnan(camal) or math.isnan(none) else yes(camal >= none)
        rows.append([name, f"{fmt(camal)} ({n_camal})", f"{fmt(none)} ({n_none})", ok])
    return rows


def cell_report(runs: Mapping[str, Sequence[RunResult]], env: str) -> list[str]:
    """The markdown of one cell: the five tested endpoints, L1 and L2, and G1 where evaluated."""
    values = {
        method: {e.metric: np.array([metric_value(r.metrics, e.metric) for r in results]) for e in ENDPOINTS}
        for method, results in runs.items()
    }
    threshold = solved_threshold(env)
    firsts = {m: np.array([first_solved(r.evaluations, threshold) for r in rs]) for m, rs in runs.items()}
    seeds = ", ".join(f"{m} {sorted(r.seed for r in rs)}" for m, rs in runs.items())
    lines = [f"Seeds: {seeds}.", "", *endpoint_table(endpoint_rows(values)), ""]
    lines += markdown_table(["#", "endpoint", "values", "ratio", "target", "success"], learning_rows(firsts))
    if env in UNSEEN:
        lines += ["", "G1, held-out return on unseen layouts (mean over the seeds evaluated):", ""]
        lines += markdown_table(
            ["layout", "camal (seeds)", "none (seeds)", "camal >= none"],
            generalisation_rows(runs, unseen_return, UNSEEN[env]),
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (or run directories)")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="report a cell before all its runs are complete (never for a verdict)",
    )
    args = parser.parse_args(argv)
    results = [r for r in load_results(args.sweeps) if r.complete and r.metrics is not None]
    for env, algo in sorted({(r.env, r.algo) for r in results}):
        cell = [r for r in results if (r.env, r.algo) == (env, algo)]
        runs = {
            m: sorted((r for r in cell if r.method == m and r.label == f"{algo}-{m}"), key=lambda r: r.seed)
            for m in ("none", "camal", "energy")
        }
        counts = {m: len(rs) for m, rs in runs.items()}
        print(f"\n## {env}, {algo.upper()}\n")
        if min(counts.values()) < 5 and not args.partial:
            print(f"incomplete cell ({counts}): pass --partial to see it anyway")
            continue
        if min(counts.values()) < 2:
            print(f"too few seeds to compare ({counts})")
            continue
        print("\n".join(cell_report(runs, env)))


if __name__ == "__main__":
    main()
