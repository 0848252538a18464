"""Performance profiles: the per-seed distribution of a score (Agarwal et al., "Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS 2021; rliable's score distributions).

For each threshold ``tau`` the profile is the share of seeds whose score exceeds it,
``P(X > tau)``, drawn against ``tau`` with a 95% percentile-bootstrap band over seeds. Where a
bar chart shows one estimate per agent, a profile shows every seed: all-or-nothing outcomes (2 of
5 seeds solve the task, 3 stay at 0) read as a step, not as a mean of 0.4 that no seed scored.
``camal-rl plot`` and ``camal-rl compare`` draw them beside the learning curves and bar charts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from camal_rl.errors import InputError
from camal_rl.statistics import (
    RunResult,
    Values,
    defined,
    group_results,
    metric_name,
    metric_values,
    percentile_bootstrap,
)

DEFAULT_PROFILE_METRICS = ("return", "gradcam/epg")
"""Profiles ``camal-rl plot`` draws without ``--profiles``: those some ``metrics.json`` holds."""


def share_above(values: Values, taus: Values) -> np.ndarray:
    """``P(X > tau)`` for each ``tau``: the share of the defined values strictly above it
    (rliable's ``score_distributions``); ``nan`` everywhere when no value is defined.

    :param values: 1-D scores, one per seed (``nan`` dropped).
    :param taus: 1-D thresholds.
    :return: (T,) shares in [0, 1], non-increasing in ``tau`` for increasing ``taus``.
    """
    x = defined(values)
    thresholds = np.asarray(taus, dtype=np.float64)
    if x.size == 0:
        return np.full(thresholds.shape, np.nan)
    return np.asarray((x[None, :] > thresholds[:, None]).mean(axis=1))


def _share_above_statistic(taus: np.ndarray) -> Callable[..., np.ndarray]:
    """:func:`share_above` of each resample, vectorised for :func:`percentile_bootstrap`:
    (R, n) resamples -> (T, R)."""

    def statistic(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        x = np.moveaxis(sample, axis, -1)
        return np.moveaxis((x[..., None, :] > taus[:, None]).mean(axis=-1), -1, 0)

    return statistic


@dataclass(frozen=True)
class Profile:
    """One agent variant's performance profile of one metric."""

    env: str
    algo: str
    label: str
    metric: str
    taus: np.ndarray
    """(T,) thresholds, shared by the variants of the env."""
    share: np.ndarray
    """(T,) share of seeds above each threshold."""
    ci_low: np.ndarray
    """(T,) lower bound of the bootstrap band over seeds (``nan`` for fewer than 2 seeds)."""
    ci_high: np.ndarray
    """(T,) upper bound."""
    values: np.ndarray
    """The defined per-seed values."""


def profile_data(
    results: Sequence[RunResult],
    metric: str,
    *,
    points: int = 201,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: int = 0,
) -> list[Profile]:
    """Performance profiles of ``metric`` (a ``metrics.json`` metric, e.g. ``return``,
    ``gradcam/epg``) per agent variant; variants with no value are left out.

    Thresholds: ``points`` evenly spaced from the lowest to the highest value of any variant of
    the env (widened by 0.5 each way when all values are equal), plus 5% of that range each way,
    so every step of every profile shows, from 1 below all seeds to 0 above them. The band of
    each variant resamples its seeds with replacement
    (:func:`~camal_rl.statistics.percentile_bootstrap`), one set of resamples for all
    thresholds.

    :param results: runs (:func:`camal_rl.statistics.load_results`).
    :param metric: the metric.
    :param points: thresholds per env, >= 2.
    :param confidence: coverage of the bands.
    :param n_resamples: bootstrap resamples.
    :param rng: bootstrap seed.
    :return: profiles sorted by (env, algo, label), the baseline first.
    """
    if points < 2:
        raise InputError(f"points must be >= 2, got {points}")
    name = metric_name(metric)
    variants = [(key, defined(metric_values(runs, metric))) for key, runs in group_results(results).items()]
    variants = [(key, values) for key, values in variants if values.size]
    profiles = []
    for env in dict.fromkeys(key[0] for key, _ in variants):
        pooled = np.concatenate([values for key, values in variants if key[0] == env])
        low, high = float(pooled.min()), float(pooled.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        margin = 0.05 * (high - low)
        taus = np.linspace(low - margin, high + margin, points)
        for (variant_env, algo, label), values in variants:
            if variant_env != env:
                continue
            band_low = band_high = np.full(points, np.nan)
            if values.size >= 2:
                band_low, band_high = percentile_bootstrap(
                    (values,),
                    _share_above_statistic(taus),
                    confidence=confidence,
                    n_resamples=n_resamples,
                    rng=rng,
                )
            profiles.append(
                Profile(env, algo, label, name, taus, share_above(values, taus), band_low, band_high, values)
            )
    return profiles


def draw_profiles(profiles: Sequence[Profile], out_path: Path) -> Path:
    """Draw :func:`profile_data` profiles: one subplot per env, a step line per variant with its
    bootstrap band, ``n`` seeds in the legend.

    :param profiles: from :func:`profile_data` (one metric).
    :param out_path: the PNG to write.
    :return: ``out_path``.
    """
    from camal_rl.figures import label_order, save_png, subplot_grid, variant_colours

    if not profiles:
        raise InputError(f"no performance-profile data to draw into {out_path}")
    metric = profiles[0].metric
    envs = list(dict.fromkeys(p.env for p in profiles))
    colours = variant_colours(p.label for p in profiles)
    fig, axes = subplot_grid(len(envs))
    for ax, env in zip(axes, envs, strict=True):
        for profile in sorted((p for p in profiles if p.env == env), key=lambda p: label_order(p.label)):
            colour = colours[profile.label]
            label = f"{profile.label} (n={profile.values.size})"
            ax.step(profile.taus, profile.share, where="post", color=colour, lw=1.8, label=label)
            if np.isfinite(profile.ci_low).any():
                ax.fill_between(
                    profile.taus, profile.ci_low, profile.ci_high, step="post", color=colour, alpha=0.2, lw=0
                )
        ax.set_title(env, fontsize=10)
        ax.set_xlabel(f"{metric} threshold τ")
        ax.set_ylabel(f"share of seeds with {metric} > τ")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(
        f"performance profiles of {metric} (Agarwal et al. 2021)\nbands: 95% bootstrap CI over seeds",
        fontsize=9,
    )
    return save_png(fig, out_path)


def profile_file(metric: str) -> str:
    """``profile_return.png`` for ``return``, ``profile_gradcam_epg.png`` for ``gradcam/epg``."""
    return f"profile_{metric_name(metric).replace('/', '_').replace('@', '_at_').replace(':', '_')}.png"
