"""Statistics behind ``camal-rl compare``: tests between agent variants over seeds, percent
improvements with bootstrap intervals, and the comparison table (written as markdown and CSV by
:mod:`camal_rl.tables`).

The seed is the unit of replication: every test compares the per-seed values of two variants
(:func:`camal_rl.results.metric_values`).

- Welch's t-test (Welch, "The generalization of 'Student's' problem when several different
  population variances are involved", Biometrika 1947): difference of means without assuming
  equal variances, ``scipy.stats.ttest_ind(equal_var=False)``, two-sided.
- Mann-Whitney U test (Mann & Whitney, "On a test of whether one of two random variables is
  stochastically larger than the other", Ann. Math. Statist. 1947): rank-based, no normality
  assumption, ``scipy.stats.mannwhitneyu``, two-sided.
- Percent improvement with a percentile-bootstrap interval that resamples the seeds of each group
  independently (stratified by group, as rliable's stratified bootstrap resamples runs within each
  task; Agarwal et al., NeurIPS 2021).
- Probability of improvement (Agarwal et al. 2021): the chance that a seed of one variant beats a
  seed of the other, with the same bootstrap interval.
- Multiplicity: each table's Welch p-values, and separately its Mann-Whitney p-values, are adjusted
  for the number of tests, by Holm's method or Benjamini-Hochberg's (:mod:`camal_rl.multiplicity`).

Returns are summarised by the interquartile mean, attention metrics by the mean
(:func:`camal_rl.results.summary_statistic`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
from scipy import stats as sps

from camal_rl.config import Method
from camal_rl.errors import InputError
from camal_rl.metrics.aggregate import Values, check_bootstrap, defined, percentile_bootstrap
from camal_rl.multiplicity import CORRECTIONS, Correction, adjust_p_values
from camal_rl.results import (
    RunResult,
    aggregate,
    check_metrics,
    group_results,
    metric_name,
    metric_values,
    parse_metric,
)

LOWER_IS_BETTER = frozenset({"deletion_auc", "sufficiency"})
"""Metrics where a lower value is better (``sufficiency@k`` by its name before ``@``)."""
HIGHER_IS_BETTER = frozenset(
    {
        "return",
        "success_rate",
        "epg",
        "iou",
        "pointing_game",
        "roc_auc",
        "insertion_auc",
        "comprehensiveness",
        "occlusion_kl_ratio",
        "occlusion_kl_log_ratio",
        "behaviour_ratio",
        "behaviour_log_ratio",
    }
)
"""Metrics where a higher value is better (``comprehensiveness@k`` by its name before ``@``)."""
MAX_EXACT_SPLITS = 20_000
"""Mann-Whitney U with ties: exact permutation p-value up to this many splits of the pooled
values (``comb(n_a + n_b, n_a)``; 8 vs 8 seeds is 12870), the normal approximation above."""
COLUMNS = (
    "env",
    "algo",
    "label",
    "method",
    "coef",
    "metric",
    "better",
    "n_runs",
    "n",
    "seeds",
    "mean",
    "iqm",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "versus",
    "versus_n",
    "versus_mean",
    "welch_t",
    "welch_df",
    "welch_p",
    "welch_p_adj",
    "mwu_u",
    "mwu_p",
    "mwu_p_adj",
    "mwu_method",
    "p_adj_method",
    "improvement_pct",
    "improvement_low",
    "improvement_high",
    "prob_improvement",
    "prob_improvement_low",
    "prob_improvement_high",
    "note",
)
"""Columns of :func:`comparison_table` rows, in CSV order."""


@dataclass(frozen=True)
class TestResult:
    """A two-sample test of ``a`` against ``b``."""

    statistic: float
    """Welch's t, or Mann-Whitney's U of ``a`` (pairs with a > b, ties counting one half)."""
    p_value: float
    """Two-sided p-value; ``nan`` when the test is undefined (``note`` says why)."""
    n_a: int
    """Defined values of ``a``."""
    n_b: int
    """Defined values of ``b``."""
    df: float = math.nan
    """Welch-Satterthwaite degrees of freedom (Welch only)."""
    method: str = ""
    """How the p-value was computed: ``welch``; ``exact``, ``permutation`` or ``asymptotic`` (U)."""
    note: str = ""
    """Why the result is ``nan``; empty when it is defined."""


@dataclass(frozen=True)
class BootstrapEstimate:
    """A comparison of ``a`` with ``b`` over seeds, with its percentile-bootstrap interval."""

    estimate: float
    """The point estimate (see the subclass)."""
    ci_low: float
    """Lower bound of the percentile-bootstrap interval."""
    ci_high: float
    """Upper bound of the percentile-bootstrap interval."""
    n_a: int
    n_b: int
    note: str = ""
    """Why the estimate or interval is ``nan``; empty otherwise."""


@dataclass(frozen=True)
class Improvement(BootstrapEstimate):
    """Percent improvement of ``a`` over ``b``: ``estimate`` is
    ``100 * (mean(a) - mean(b)) / |mean(b)|``, negated when lower is better."""


@dataclass(frozen=True)
class ProbabilityOfImprovement(BootstrapEstimate):
    """Probability that a seed of ``a`` is better than a seed of ``b``, with its bootstrap
    interval: ``estimate`` is the share of the ``(a, b)`` pairs of seeds where ``a`` is better,
    ties counting one half."""


def _degenerate(a: np.ndarray, b: np.ndarray) -> str:
    """Why no test is possible on ``a`` and ``b``, or ``""``."""
    if a.size < 2 or b.size < 2:
        return f"needs at least 2 seeds per group, got {a.size} and {b.size}"
    if np.all(np.concatenate([a, b]) == a[0]):
        return "all values are equal: nothing to test"
    return ""


def welch_t_test(a: Values, b: Values) -> TestResult:
    """Welch's unequal-variances t-test of ``mean(a) == mean(b)``, two-sided (Welch 1947).

    ``nan`` values (seeds without the metric) are dropped. The result is ``nan`` with a ``note``
    when either group has fewer than 2 values (no variance estimate), when all values are equal,
    and when both groups are constant but differ (``t`` is infinite; scipy would
    return ``p = 0``, which no finite sample can support: see the Mann-Whitney U test instead).

    :param a: per-seed values of the first variant.
    :param b: per-seed values of the second variant.
    """
    x, y = defined(a), defined(b)
    note = _degenerate(x, y)
    constant = [bool(np.all(v == v[0])) for v in (x, y) if v.size]
    if not note and all(constant):
        note = "zero variance in both groups: Welch's t is undefined (see the Mann-Whitney U test)"
    if note:
        return TestResult(math.nan, math.nan, x.size, y.size, method="welch", note=note)
    with warnings.catch_warnings():
        if any(constant):
            # a constant group's variance comes out as ~1e-33, not 0, and scipy warns of
            # "precision loss"; the result is right (that group adds nothing to the standard error)
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = sps.ttest_ind(x, y, equal_var=False)
    return TestResult(
        float(result.statistic), float(result.pvalue), x.size, y.size, df=float(result.df), method="welch"
    )


def mann_whitney_u(a: Values, b: Values) -> TestResult:
    """Mann-Whitney U test of ``a`` and ``b`` coming from one distribution, two-sided
    (Mann & Whitney 1947).

    The p-value is exact for small samples: the exact U distribution without ties when a group
    has at most 8 values (scipy's ``"auto"`` rule), the exact permutation distribution when there
    are ties and at most :data:`MAX_EXACT_SPLITS` splits (scipy's ``"auto"`` would use the normal
    approximation, which is far too small for a few seeds: 0.047 instead of 0.1 for
    ``[1, 1, 1]`` vs ``[2, 2, 2]``), else the tie-corrected normal approximation.
    ``nan`` values are dropped; the result is ``nan`` with a ``note`` when a group has fewer
    than 2 values or all values are equal.

    :param a: per-seed values of the first variant.
    :param b: per-seed values of the second variant.
    """
    x, y = defined(a), defined(b)
    note = _degenerate(x, y)
    if note:
        return TestResult(math.nan, math.nan, x.size, y.size, note=note)
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    method: Any
    if not ties and min(x.size, y.size) <= 8:
        name, method = "exact", "exact"
    elif ties and math.comb(x.size + y.size, x.size) <= MAX_EXACT_SPLITS:
        name, method = "permutation", sps.PermutationMethod(n_resamples=np.inf)
    else:
        name, method = "asymptotic", "asymptotic"
    result = sps.mannwhitneyu(x, y, alternative="two-sided", method=method)
    return TestResult(float(result.statistic), float(result.pvalue), x.size, y.size, method=name)


def percent_improvement(
    a: Values,
    b: Values,
    *,
    lower_is_better: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> Improvement:
    """How much better ``a`` is than ``b``, in percent of ``b``:
    ``100 * (mean(a) - mean(b)) / |mean(b)|``, negated when lower is better, so a positive value
    always means ``a`` is better. The interval is a percentile bootstrap that resamples the seeds
    of ``a`` and of ``b`` independently, each with replacement
    (:func:`camal_rl.metrics.aggregate.percentile_bootstrap`: ``scipy.stats.bootstrap``).

    The ratio needs a denominator away from zero: it suits metrics of one sign (attention metrics
    in [0, 1], positive returns); for returns near zero read the difference of means instead.
    ``nan`` values are dropped. ``mean(b) == 0`` gives ``nan``; fewer than 2 values in a group,
    or a resample with ``mean(b) == 0``, give ``nan`` bounds; ``note`` says which.

    :param a: per-seed values of the variant (e.g. CAMAL).
    :param b: per-seed values of the reference (e.g. energy).
    :param lower_is_better: the metric improves downwards (deletion AUC, sufficiency).
    :param confidence: coverage of the interval, in (0, 1).
    :param n_resamples: bootstrap resamples.
    :param rng: generator or seed (``None``: seed 0, so equal inputs give equal intervals).
    """
    check_bootstrap(confidence, n_resamples)
    x, y = defined(a), defined(b)
    sign = -1.0 if lower_is_better else 1.0
    if x.size == 0 or y.size == 0:
        return Improvement(math.nan, math.nan, math.nan, x.size, y.size, "a group has no values")
    if y.mean() == 0:
        return Improvement(
            math.nan, math.nan, math.nan, x.size, y.size, "the reference mean is 0: no percent change"
        )
    estimate = sign * 100.0 * (x.mean() - y.mean()) / abs(y.mean())
    if x.size < 2 or y.size < 2:
        note = f"needs at least 2 seeds per group for an interval, got {x.size} and {y.size}"
        return Improvement(float(estimate), math.nan, math.nan, x.size, y.size, note)

    def ratio(resampled_a: np.ndarray, resampled_b: np.ndarray, axis: int = -1) -> np.ndarray:
        mean_a, mean_b = resampled_a.mean(axis=axis), resampled_b.mean(axis=axis)
        safe_b = np.where(mean_b == 0, np.nan, mean_b)  # no percent change of a zero mean: nan
        return np.asarray(sign * 100.0 * (mean_a - safe_b) / np.abs(safe_b))

    low, high = percentile_bootstrap((x, y), ratio, confidence=confidence, n_resamples=n_resamples, rng=rng)
    if np.isnan(low):
        note = "some resamples of the reference have mean 0: no interval"
        return Improvement(float(estimate), math.nan, math.nan, x.size, y.size, note)
    return Improvement(float(estimate), float(low), float(high), x.size, y.size)


def probability_of_improvement(
    a: Values,
    b: Values,
    *,
    lower_is_better: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> ProbabilityOfImprovement:
    """Probability of improvement (rliable; Agarwal et al., "Deep Reinforcement Learning at the
    Edge of the Statistical Precipice", NeurIPS 2021): ``P(X > Y)`` for a seed ``X`` of ``a`` and a
    seed ``Y`` of ``b``, the mean over all pairs of 1 if ``x > y``, 1/2 if ``x == y``, 0 otherwise:
    Mann-Whitney's ``U / (n_a * n_b)``. With ``lower_is_better`` it is ``P(X < Y)`` (ties one
    half), so above 0.5 always means ``a`` tends to be better. The interval is a percentile
    bootstrap that resamples the seeds of ``a`` and of ``b`` independently, each with replacement
    (as :func:`percent_improvement`).

    ``nan`` values are dropped. An empty group gives ``nan``; fewer than 2 values in a group give
    ``nan`` bounds; ``note`` says which.

    :param a: per-seed values of the variant (e.g. CAMAL).
    :param b: per-seed values of the reference (e.g. energy).
    :param lower_is_better: the metric improves downwards (deletion AUC, sufficiency).
    :param confidence: coverage of the interval, in (0, 1).
    :param n_resamples: bootstrap resamples.
    :param rng: generator or seed (``None``: seed 0, so equal inputs give equal intervals).
    """
    check_bootstrap(confidence, n_resamples)
    x, y = defined(a), defined(b)
    if x.size == 0 or y.size == 0:
        return ProbabilityOfImprovement(math.nan, math.nan, math.nan, x.size, y.size, "a group has no values")
    share_better = functools.partial(_share_better, lower_is_better=lower_is_better)
    estimate = float(share_better(x, y))
    if x.size < 2 or y.size < 2:
        note = f"needs at least 2 seeds per group for an interval, got {x.size} and {y.size}"
        return ProbabilityOfImprovement(estimate, math.nan, math.nan, x.size, y.size, note)
    low, high = percentile_bootstrap(
        (x, y), share_better, confidence=confidence, n_resamples=n_resamples, rng=rng
    )
    return ProbabilityOfImprovement(estimate, float(low), float(high), x.size, y.size)


def _share_better(a: np.ndarray, b: np.ndarray, *, lower_is_better: bool, axis: int = -1) -> np.ndarray:
    """Mean over all pairs ``(x, y)`` of 1 if ``x`` beats ``y``, 1/2 for a tie, 0 otherwise, along
    ``axis`` of ``a`` and ``b`` (their other axes broadcast: a batch of bootstrap resamples)."""
    x = np.moveaxis(a, axis, -1)[..., :, None]
    y = np.moveaxis(b, axis, -1)[..., None, :]
    wins = x < y if lower_is_better else x > y
    return np.asarray((wins + 0.5 * (x == y)).mean(axis=(-2, -1)))


def better_direction(metric: str | Sequence[str]) -> str:
    """``"higher"``, ``"lower"`` or ``""`` (no agreed direction, e.g. episode length) for a metric,
    by its last name without ``@k``."""
    name = parse_metric(metric)[-1].split("@")[0]
    if name in LOWER_IS_BETTER:
        return "lower"
    if name in HIGHER_IS_BETTER:
        return "higher"
    return ""


def _matches(result: RunResult, name: str) -> bool:
    return name in (result.method, result.label)


def _check_names(results: Sequence[RunResult], names: Iterable[str]) -> None:
    known = set(get_args(Method)) | {r.label for r in results}
    for name in names:
        if name not in known:
            raise InputError(
                f"{name!r} is neither a method ({', '.join(get_args(Method))}) nor a label of these runs "
                f"({', '.join(sorted({r.label for r in results}))})"
            )


def comparison_table(
    results: Sequence[RunResult],
    metrics: Iterable[str | Sequence[str]],
    baseline: str | None = "none",
    pairs: Iterable[tuple[str, str]] = (("camal", "energy"),),
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: int = 0,
    correction: Correction = "holm",
) -> list[dict[str, Any]]:
    """Summaries over seeds and tests between agent variants, as tidy rows (:data:`COLUMNS`).

    For each agent variant ``(env, algo, label)`` and metric there is one **summary row**
    (``versus == ""``): ``n`` seeds with a value, ``mean``, ``iqm``, and ``estimate`` with its
    bootstrap interval ``ci_low``/``ci_high`` (:func:`camal_rl.results.aggregate`: the IQM for
    returns, the mean for other metrics). Then one **comparison row** per reference it is tested
    against, in the same env and algorithm: the same summary, plus ``versus`` (the reference's
    label), ``welch_t/df/p`` (:func:`welch_t_test`), ``mwu_u/p/method`` (:func:`mann_whitney_u`),
    ``improvement_pct/low/high`` (:func:`percent_improvement`, positive = better in the
    metric's direction, plain percent difference where it has none) and
    ``prob_improvement/_low/_high`` (:func:`probability_of_improvement`, above 0.5 = better).
    ``note`` collects why a value is ``nan``.

    ``welch_p_adj`` and ``mwu_p_adj`` are the p-values adjusted for multiplicity
    (:func:`adjust_p_values`, the method in ``p_adj_method``) over the family of one env's
    comparison rows (one markdown comparison table: every variant against its references, over
    every metric), the Welch tests and the Mann-Whitney tests each a family of their own;
    undefined (``nan``) tests stay ``nan`` and do not count.

    :param results: runs (:func:`camal_rl.results.load_results`).
    :param metrics: metric names or paths (:func:`camal_rl.results.parse_metric`).
    :param baseline: method or label every other variant is tested against (None: no baseline).
    :param pairs: further ``(variant, reference)`` tests, each a method or label; every variant
        matching the first is tested against every one matching the second.
    :param confidence: coverage of the bootstrap intervals.
    :param n_resamples: bootstrap resamples.
    :param rng: seed of every bootstrap.
    :param correction: multiplicity correction, ``"holm"`` or ``"bh"`` (Benjamini-Hochberg).
    :raises InputError: a metric is in no ``metrics.json``, a name is neither a method nor a
        label of the runs, or ``correction`` is unknown.
    """
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    metrics = [parse_metric(m) for m in metrics]
    pairs = list(pairs)
    check_metrics(results, metrics)
    _check_names(results, ([baseline] if baseline is not None else []) + [n for pair in pairs for n in pair])
    groups = group_results(results)
    summaries = {
        (row["env"], row["algo"], row["label"], row["metric"]): row
        for row in aggregate(results, metrics, confidence=confidence, n_resamples=n_resamples, rng=rng)
    }
    tests = ([(None, baseline)] if baseline is not None else []) + [(a, b) for a, b in pairs]
    rows: list[dict[str, Any]] = []
    for (env, algo, label), runs in groups.items():
        references: dict[str, list[RunResult]] = {}
        for first, second in tests:
            if first is not None and not _matches(runs[0], first):
                continue
            if first is None and _matches(runs[0], second):
                continue
            for (env2, algo2, label2), others in groups.items():
                if (env2, algo2) == (env, algo) and label2 != label and _matches(others[0], second):
                    references.setdefault(label2, others)
        for metric in metrics:
            name = metric_name(metric)
            summary = {
                **_empty_row(),
                **summaries[(env, algo, label, name)],
                "better": better_direction(metric),
            }
            rows.append(summary)
            values = metric_values(runs, metric)
            for reference, others in references.items():
                ref_values = metric_values(others, metric)
                welch = welch_t_test(values, ref_values)
                mwu = mann_whitney_u(values, ref_values)
                gain, chance = (
                    estimate(
                        values,
                        ref_values,
                        lower_is_better=summary["better"] == "lower",
                        confidence=confidence,
                        n_resamples=n_resamples,
                        rng=rng,
                    )
                    for estimate in (percent_improvement, probability_of_improvement)
                )
                notes = [f"Welch: {welch.note}" if welch.note else "", f"U: {mwu.note}" if mwu.note else ""]
                notes.append(f"improvement: {gain.note}" if gain.note else "")
                notes.append(f"probability of improvement: {chance.note}" if chance.note else "")
                rows.append(
                    {
                        **summary,
                        "versus": reference,
                        "versus_n": welch.n_b,
                        "versus_mean": float(np.nanmean(ref_values)) if welch.n_b else math.nan,
                        "welch_t": welch.statistic,
                        "welch_df": welch.df,
                        "welch_p": welch.p_value,
                        "mwu_u": mwu.statistic,
                        "mwu_p": mwu.p_value,
                        "mwu_method": mwu.method,
                        "improvement_pct": gain.estimate,
                        "improvement_low": gain.ci_low,
                        "improvement_high": gain.ci_high,
                        "prob_improvement": chance.estimate,
                        "prob_improvement_low": chance.ci_low,
                        "prob_improvement_high": chance.ci_high,
                        "note": "; ".join(n for n in notes if n),
                    }
                )
    _adjust_per_env(rows, correction)
    return rows


def _adjust_per_env(rows: Sequence[dict[str, Any]], correction: Correction) -> None:
    """Fill ``welch_p_adj``, ``mwu_p_adj`` and ``p_adj_method`` of the comparison rows, each env's
    Welch and Mann-Whitney p-values a family of their own."""
    for env in dict.fromkeys(row["env"] for row in rows):
        family = [row for row in rows if row["env"] == env and row["versus"]]
        for column in ("welch_p", "mwu_p"):
            adjusted = adjust_p_values([row[column] for row in family], correction)
            for row, value in zip(family, adjusted, strict=True):
                row[f"{column}_adj"] = float(value)
                row["p_adj_method"] = correction


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
    row.update(versus="", mwu_method="", p_adj_method="", note="", better="")
    return row
