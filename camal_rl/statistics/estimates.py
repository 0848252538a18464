"""Estimates from values: the interquartile mean and percentile-bootstrap confidence intervals of
rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice",
NeurIPS 2021), computed by scipy (``scipy.stats.trim_mean``, ``scipy.stats.bootstrap``), and the
aggregation of per-step metric values of docs/design.md: per step -> per episode -> per seed.

Per-step values are ``nan`` where the metric is undefined (an empty mask: no relevant object in
view). Every helper here drops ``nan`` values before computing anything, and reports
**coverage**, the share of values that were defined, beside the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.stats import DegenerateDataWarning, bootstrap, trim_mean
from torch import Tensor

from camal_rl.errors import InputError

Values = np.ndarray | Tensor | Sequence[float]
"""1-D values: a numpy array, a tensor or a list."""

Statistic = Literal["mean", "iqm"]


def iqm(values: Values) -> float:
    """Interquartile mean (rliable; Agarwal et al., NeurIPS 2021): the mean of the middle 50% of
    the sorted values, ``scipy.stats.trim_mean(x, 0.25)`` (which trims ``floor(n / 4)`` values
    from each end). ``nan`` values are dropped first; no value left gives ``nan``.

    :param values: 1-D values.
    """
    x = defined(values)
    return float(trim_mean(x, 0.25)) if x.size else float("nan")


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis))


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(trim_mean(x, 0.25, axis=axis))


_STATISTICS: dict[str, Callable[..., np.ndarray]] = {"mean": _mean, "iqm": _iqm}
""":data:`Statistic` names -> vectorised ``statistic(x, axis)``."""


def bootstrap_ci(
    values: Values,
    *,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval (Efron & Tibshirani 1993; the interval rliable
    reports), by :func:`percentile_bootstrap`: resample the values with replacement
    ``n_resamples`` times and take the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the statistic.

    ``nan`` values are dropped first. No value left: ``(nan, nan, nan)``. One value: the value and
    ``nan`` bounds, since one value has no spread to resample and a zero-width interval would
    claim certainty.

    :param values: 1-D values (e.g. one per episode, or one per seed).
    :param statistic: ``"mean"`` or ``"iqm"`` (:func:`iqm`).
    :param confidence: coverage of the interval, in (0, 1).
    :param n_resamples: bootstrap resamples.
    :param rng: generator or seed; ``None`` seeds with 0, so equal values give equal intervals.
    :return: ``(point, low, high)``: the statistic on the values and the interval bounds.
    """
    if statistic not in _STATISTICS:
        raise InputError(f"statistic must be 'mean' or 'iqm', got {statistic!r}")
    check_bootstrap(confidence, n_resamples)
    x = defined(values)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = _STATISTICS[statistic](x, axis=-1)
    if x.size == 1:
        return float(point), float("nan"), float("nan")
    low, high = percentile_bootstrap(
        (x,), _STATISTICS[statistic], confidence=confidence, n_resamples=n_resamples, rng=rng
    )
    return float(point), float(low), float(high)


def percentile_bootstrap(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of a statistic of one or more samples, by
    :func:`scipy.stats.bootstrap` with ``method="percentile"``: each sample is resampled with
    replacement, independently of the others (rliable's stratified bootstrap, with the samples
    as strata), ``n_resamples`` times in one batch, and the bounds are the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (linear interpolation) of
    the resampled statistic.

    A resample whose statistic is ``nan`` (a ratio over a zero mean) makes both bounds ``nan``.
    A statistic with several values (a curve) gets a band from the same resamples for each.

    :param samples: 1-D float arrays of at least two values each, ``nan`` already dropped.
    :param statistic: ``statistic(*resamples, axis=-1)``, vectorised: each resample is an
        (n_resamples, n_i) array; returns (n_resamples,), or (..., n_resamples) for several
        values.
    :param confidence: coverage of the interval, in (0, 1).
    :param n_resamples: bootstrap resamples.
    :param rng: generator or seed; ``None`` seeds with 0, so equal values give equal intervals.
    :return: ``(low, high)``, arrays of the statistic's shape (0-d for one value).
    """
    generator = np.random.default_rng(0 if rng is None else rng)
    with warnings.catch_warnings():
        # nan bounds are the documented answer to a nan resample; scipy's warning about them
        # speaks of the BCa interval, which this is not
        warnings.simplefilter("ignore", DegenerateDataWarning)
        if n_resamples < 2:
            # scipy's standard error of the resampled statistic, which this does not report, has
            # no degrees of freedom on one resample: numpy would warn twice (training's periodic
            # evaluation asks for one, since it reads the means alone)
            warnings.filterwarnings("ignore", "Degrees of freedom <= 0", RuntimeWarning)
            warnings.filterwarnings("ignore", "invalid value encountered in (scalar )?divide", RuntimeWarning)
        result = bootstrap(
            tuple(samples),
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            paired=False,
            rng=generator,
        )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def check_bootstrap(confidence: float, n_resamples: int) -> None:
    """:raises InputError: ``confidence`` outside (0, 1) or ``n_resamples`` not a positive integer."""
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must lie in (0, 1), e.g. 0.95; got {confidence}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise InputError(f"n_resamples must be a positive integer, got {n_resamples!r}")


def episode_means(step_values: Values, episode_ids: Values) -> tuple[np.ndarray, float]:
    """Per-episode means of per-step values, ``nan`` steps dropped.

    :param step_values: (N,) one value per step, ``nan`` where undefined (empty mask).
    :param episode_ids: (N,) the episode of each step (any sortable ids).
    :return: episode values, one per distinct id in sorted order (``np.unique``), ``nan`` for an
        episode with no defined step; and coverage, the share of the N steps that were defined.
    """
    values = _one_dim(step_values, "step_values").astype(np.float64)
    ids = _one_dim(episode_ids, "episode_ids")
    if ids.shape != values.shape:
        raise InputError(
            f"episode_ids must give one id per step: {values.shape[0]} values but {ids.shape[0]} ids"
        )
    if values.size == 0:
        return np.empty(0), float("nan")
    _, episode = np.unique(ids, return_inverse=True)
    is_defined = ~np.isnan(values)
    n_episodes = int(episode.max()) + 1
    sums = np.bincount(episode[is_defined], weights=values[is_defined], minlength=n_episodes)
    counts = np.bincount(episode[is_defined], minlength=n_episodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means, float(is_defined.mean())


@dataclass(frozen=True)
class Summary:
    """Summary of one metric over a set of values (episodes, or seeds)."""

    mean: float
    """Mean of the defined values."""
    iqm: float
    """Interquartile mean of the defined values."""
    ci_low: float
    """Lower bound of the bootstrap confidence interval of the mean."""
    ci_high: float
    """Upper bound of the bootstrap confidence interval of the mean."""
    n: int
    """Number of defined values the summary rests on."""
    coverage: float
    """Share of the underlying steps with a defined value (non-empty mask)."""

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(
    values: Values,
    *,
    coverage: float | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> Summary:
    """Mean, IQM and bootstrap CI of the mean of ``values``, ``nan`` values dropped.

    :param values: 1-D values, ``nan`` where undefined.
    :param coverage: the step coverage to report (e.g. from :func:`episode_means`); default the
        share of ``values`` that are defined.
    :param confidence: coverage of the interval.
    :param n_resamples: bootstrap resamples.
    :param rng: generator or seed for the bootstrap (``None``: seed 0).
    """
    x = _one_dim(values, "values").astype(np.float64)
    if coverage is None:
        coverage = float((~np.isnan(x)).mean()) if x.size else float("nan")
    mean, low, high = bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, rng=rng)
    return Summary(
        mean=mean, iqm=iqm(x), ci_low=low, ci_high=high, n=int((~np.isnan(x)).sum()), coverage=coverage
    )


def summarize_steps(
    step_values: Values,
    episode_ids: Values,
    seed_ids: Values | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> Summary:
    """The whole chain of docs/design.md: per step -> per episode (mean of defined steps) -> per seed
    (mean of its episodes) -> summary over seeds. Without ``seed_ids`` the summary is over
    episodes. Episodes with no defined step and seeds with no defined episode are dropped.

    :param step_values: (N,) per-step values, ``nan`` where undefined.
    :param episode_ids: (N,) episode of each step; ids need only be unique within a seed.
    :param seed_ids: (N,) seed of each step, or ``None`` for a single seed.
    :return: the :class:`Summary`; ``n`` counts seeds (or episodes), ``coverage`` steps.
    """
    values = _one_dim(step_values, "step_values").astype(np.float64)
    episodes = _one_dim(episode_ids, "episode_ids")
    if seed_ids is None:
        per_episode, coverage = episode_means(values, episodes)
        return summarize(
            per_episode, coverage=coverage, confidence=confidence, n_resamples=n_resamples, rng=rng
        )
    seeds = _one_dim(seed_ids, "seed_ids")
    if seeds.shape != values.shape:
        raise InputError(
            f"seed_ids must give one id per step: {values.shape[0]} values but {seeds.shape[0]} ids"
        )
    per_seed = [
        mean_or_nan(episode_means(values[seeds == seed], episodes[seeds == seed])[0])
        for seed in np.unique(seeds)
    ]
    coverage = float((~np.isnan(values)).mean()) if values.size else float("nan")
    return summarize(
        np.array(per_seed), coverage=coverage, confidence=confidence, n_resamples=n_resamples, rng=rng
    )


def mean_or_nan(values: Values) -> float:
    """Mean of the values that are not ``nan`` (``nan`` when there are none, without a warning)."""
    x = defined(values)
    return float(x.mean()) if x.size else float("nan")


def defined(values: Values) -> np.ndarray:
    """1-D float64 values with ``nan`` dropped; an :class:`InputError` for any other shape."""
    x = _one_dim(values, "values").astype(np.float64)
    return x[~np.isnan(x)]


def _one_dim(values: Values, name: str) -> np.ndarray:
    x = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if x.ndim != 1:
        raise InputError(
            f"{name} must be one-dimensional (one value per step / episode / seed), got shape {x.shape}"
        )
    return x
