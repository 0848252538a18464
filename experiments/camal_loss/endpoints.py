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

Last, the issue's targets across the four pre-registered cells (:data:`TARGETS`), read from the
complete cells: each is ``met`` once enough cells succeed, ``missed`` once too many fail for it to
be met, and ``open`` otherwise.

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
from camal_rl import presets
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


@dataclass(frozen=True)
class Learning:
    """L1 and L2 of a cell, from ``firsts[method]``: per-seed steps to the first solved evaluation."""

    firsts: Mapping[str, np.ndarray]

    @property
    def medians(self) -> tuple[float, float]:
        """``camal``'s and ``none``'s median steps to solve."""
        return median_steps(self.firsts["camal"]), median_steps(self.firsts["none"])

    @property
    def ratio(self) -> float:
        camal, none = self.medians
        return camal / none if math.isfinite(none) and none > 0 else math.nan

    @property
    def l1(self) -> bool:
        camal, none = self.medians
        return math.isfinite(camal) and (math.isinf(none) or self.ratio <= MAX_SLOWDOWN)

    def solved(self, method: str) -> int:
        return int(np.isfinite(self.firsts[method]).sum())

    @property
    def l2(self) -> bool:
        return self.solved("camal") >= self.solved("energy")


def learning_rows(learning: Learning) -> list[list[str]]:
    """L1 and L2's table rows."""
    camal, none = learning.medians
    n = {m: learning.firsts[m].size for m in ("camal", "energy")}
    return [
        [
            "L1",
            "median steps to solve, camal / none",
            f"{steps(camal)} / {steps(none)}",
            fmt(learning.ratio, 2),
            f"<= {MAX_SLOWDOWN:.2f}",
            yes(learning.l1),
        ],
        [
            "L2",
            "seeds solved, camal v energy",
            f"{learning.solved('camal')}/{n['camal']} v {learning.solved('energy')}/{n['energy']}",
            "",
            ">=",
            yes(learning.l2),
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


def holm_p(value: float) -> str:
    """A Holm-adjusted p-value, in bold when it survives (below :data:`ALPHA`)."""
    text = format_p(value)
    return f"**{text}**" if value < ALPHA else text


def endpoint_table(rows: Sequence[EndpointResult]) -> list[str]:
    """The five tested endpoints; Holm-adjusted p-values below :data:`ALPHA` in bold."""
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
            f"{format_p(row.mwu)} ({holm_p(row.mwu_holm)})",
            f"{format_p(row.welch)} ({holm_p(row.welch_holm)})",
            yes(row.success),
        ]
        for row in rows
    ]
    return markdown_table(header, lines)


@dataclass(frozen=True)
class LayoutMeans:
    """G1 on one unseen layout: ``camal``'s and ``none``'s mean held-out return over the seeds
    evaluated there, and how many seeds each has."""

    name: str
    camal: float
    none: float
    seeds: tuple[int, int]

    @property
    def success(self) -> bool | None:
        """``camal``'s mean at least the baseline's; None while either is not evaluated."""
        return None if math.isnan(self.camal) or math.isnan(self.none) else self.camal >= self.none


def layout_means(
    runs: Mapping[str, Sequence[RunResult]],
    unseen_return: Callable[[Path, str, int], float],
    layouts: Sequence[tuple[str, str, int]],
) -> list[LayoutMeans]:
    """G1: per unseen layout, the mean held-out return of ``camal`` and ``none``."""
    means = []
    for name, _, distractors in layouts:
        values = {
            m: np.array([unseen_return(r.path, name, distractors) for r in runs[m]])
            for m in ("camal", "none")
        }
        seeds = (defined(values["camal"]).size, defined(values["none"]).size)
        means.append(LayoutMeans(name, mean_or_nan(values["camal"]), mean_or_nan(values["none"]), seeds))
    return means


def generalisation_rows(means: Sequence[LayoutMeans]) -> list[list[str]]:
    """G1's table rows: layout, ``camal`` (seeds), ``none`` (seeds), ``camal >= none``."""
    return [
        [
            m.name,
            f"{fmt(m.camal)} ({m.seeds[0]})",
            f"{fmt(m.none)} ({m.seeds[1]})",
            "-" if m.success is None else yes(m.success),
        ]
        for m in means
    ]


def g1_success(means: Sequence[LayoutMeans], seeds: int) -> bool | None:
    """G1 in a cell: ``camal`` at least the baseline on every layout, with ``seeds`` seeds of each
    evaluated everywhere; None until they are."""
    if any(m.seeds != (seeds, seeds) or m.success is None for m in means):
        return None
    return all(m.success for m in means)


@dataclass(frozen=True)
class CellResult:
    """One cell's endpoints: the five tested ones, L1 and L2, and G1 where the env has unseen
    layouts."""

    runs: Mapping[str, Sequence[RunResult]]
    rows: list[EndpointResult]
    learning: Learning
    layouts: list[LayoutMeans]

    def successes(self) -> dict[str, bool | None]:
        """Success per endpoint name (``F1 or F2`` too; ``G1`` None until every seed is evaluated
        on every layout, absent where there are no unseen layouts)."""
        flags: dict[str, bool | None] = {row.endpoint.name: row.success for row in self.rows}
        flags["F1 or F2"] = bool(flags["F1"] or flags["F2"])
        flags["L1"], flags["L2"] = self.learning.l1, self.learning.l2
        if self.layouts:
            flags["G1"] = g1_success(self.layouts, min(len(rs) for rs in self.runs.values()))
        return flags


def cell_result(
    runs: Mapping[str, Sequence[RunResult]],
    env: str,
    unseen_return: Callable[[Path, str, int], float] = unseen_return,
) -> CellResult:
    """The endpoints of a cell trained on ``env`` from its runs, ``runs[method]``."""
    values = {
        method: {e.metric: np.array([metric_value(r.metrics, e.metric) for r in results]) for e in ENDPOINTS}
        for method, results in runs.items()
    }
    threshold = solved_threshold(env)
    firsts = {m: np.array([first_solved(r.evaluations, threshold) for r in rs]) for m, rs in runs.items()}
    layouts = layout_means(runs, unseen_return, UNSEEN.get(env, ()))
    return CellResult(runs, endpoint_rows(values), Learning(firsts), layouts)


def cell_report(cell: CellResult) -> list[str]:
    """The markdown of one cell: the five tested endpoints, L1 and L2, and G1 where evaluated."""
    seeds = ", ".join(f"{m} {sorted(r.seed for r in rs)}" for m, rs in cell.runs.items())
    lines = [f"Seeds: {seeds}.", "", *endpoint_table(cell.rows), ""]
    lines += markdown_table(
        ["#", "endpoint", "values", "ratio", "target", "success"], learning_rows(cell.learning)
    )
    if cell.layouts:
        lines += ["", "G1, held-out return on unseen layouts (mean over the seeds evaluated):", ""]
        lines += markdown_table(
            ["layout", "camal (seeds)", "none (seeds)", "camal >= none"], generalisation_rows(cell.layouts)
        )
    return lines


@dataclass(frozen=True)
class Target:
    """One line of the issue's targets, judged across the pre-registered cells."""

    number: int
    endpoint: str
    """The endpoint name of :meth:`CellResult.successes` that decides a cell."""
    text: str
    needed: int | None = None
    """Cells that must succeed; None: every cell the target applies to."""
    envs: tuple[str, ...] | None = None
    """The training envs of the cells it applies to; None: every cell."""

    def cells(self) -> list[tuple[str, str]]:
        return [cell for cell in CELLS if self.envs is None or cell[0] in self.envs]


CELLS = (
    (presets.DOORKEY, "ppo"),
    (presets.DOORKEY, "dqn"),
    (presets.LAVA, "ppo"),
    (presets.VIZDOOM_BASIC, "ppo"),
)
"""The four pre-registered cells, (training env, algorithm)."""
TARGETS = (
    Target(1, "A1", "Grad-CAM EPG at least `energy`'s"),
    Target(1, "A2", "perturbation EPG above the baseline's, Holm p < 0.05", needed=3),
    Target(2, "F1 or F2", "deletion AUC or occlusion ratio at least 35% better than `energy`'s", needed=3),
    Target(2, "F3", "behaviour ratio above the baseline's, Holm p < 0.05"),
    Target(3, "L1", "median steps to solve at most 1.10 x the baseline's"),
    Target(3, "L2", "seeds solved at least `energy`'s", envs=(presets.LAVA,)),
    Target(4, "G1", "held-out return at least the baseline's on every unseen layout", envs=tuple(UNSEEN)),
)
"""The issue's targets 1-4 as PREREGISTRATION.md reads them per cell. The issue gives F3 (its
"Behaviour log ratio above the baseline's") no number of cells; it is asked of every cell here."""


def cell_name(cell: tuple[str, str]) -> str:
    """``("MiniGrid-DoorKey-5x5-v0", "ppo")`` -> ``"DoorKey-5x5 PPO"``."""
    env, algo = cell
    return f"{env.removeprefix('MiniGrid-').rsplit('-v', 1)[0]} {algo.upper()}"


def target_verdict(
    target: Target, successes: Mapping[tuple[str, str], Mapping[str, bool | None]]
) -> list[str]:
    """One row of the targets table from the complete cells' successes: the cells meeting the
    target and missing it, and ``met``, ``missed`` (no longer reachable) or ``open``."""
    cells = target.cells()
    needed = len(cells) if target.needed is None else target.needed
    decided = {c: successes[c].get(target.endpoint) for c in cells if c in successes}
    met = [c for c, ok in decided.items() if ok is True]
    missed = [c for c, ok in decided.items() if ok is False]
    verdict = "met" if len(met) >= needed else "missed" if len(cells) - len(missed) < needed else "open"
    return [
        str(target.number),
        f"{target.endpoint}: {target.text}",
        f"{needed} of {len(cells)}",
        ", ".join(map(cell_name, met)) or "-",
        ", ".join(map(cell_name, missed)) or "-",
        verdict,
    ]


def targets_table(successes: Mapping[tuple[str, str], Mapping[str, bool | None]]) -> list[str]:
    """The issue's targets across the cells (:data:`TARGETS`), from the complete cells."""
    return markdown_table(
        ["target", "endpoint", "cells needed", "met in", "missed in", "verdict"],
        [target_verdict(t, successes) for t in TARGETS],
    )


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
    complete: dict[tuple[str, str], dict[str, bool | None]] = {}
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
        result = cell_result(runs, env)
        print("\n".join(cell_report(result)))
        if min(counts.values()) >= 5:
            complete[(env, algo)] = result.successes()
    print("\n## Targets across the four cells (complete cells only)\n")
    print("\n".join(targets_table(complete)))


if __name__ == "__main__":
    main()
