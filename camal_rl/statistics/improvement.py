"""How much better one agent variant is than another over seeds, each estimate with a
percentile-bootstrap interval that resamples the seeds of each variant independently (stratified
by variant, as rliable's stratified bootstrap resamples runs within each task; Agarwal et al.,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021).

- Percent improvement: the difference of means in percent of the reference's mean.
- Probability of improvement (Agarwal et al. 2021): the chance that a seed of one variant beats a
  seed of the other.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from camal_rl.statistics.estimates import Values, check_bootstrap, defined, percentile_bootstrap


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
    (:func:`~camal_rl.statistics.estimates.percentile_bootstrap`: ``scipy.stats.bootstrap``).

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
