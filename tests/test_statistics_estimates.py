"""Estimates (camal_rl.statistics.estimates): IQM, bootstrap CIs, per-episode means and coverage,
by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import trim_mean

from camal_rl.errors import InputError
from camal_rl.statistics import Summary, bootstrap_ci, episode_means, iqm, summarize, summarize_steps


def test_iqm_by_hand():
    assert iqm(np.arange(1.0, 9.0)) == 4.5  # middle 50% of 1..8 = 3, 4, 5, 6
    assert iqm([1.0, 2.0, 3.0, 4.0, 100.0]) == 3.0  # floor(5 / 4) = 1 trimmed per end
    assert iqm([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0, np.nan]) == 4.5  # nan dropped, unsorted ok
    assert math.isnan(iqm([np.nan]))
    assert math.isnan(iqm([]))


def test_bootstrap_ci_two_values_by_hand():
    # resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4:
    # the 2.5% and 97.5% quantiles are 0 and 1
    assert bootstrap_ci([0.0, 1.0], rng=0) == (0.5, 0.0, 1.0)


def _hand_written_bootstrap(values, statistic, confidence, n_resamples, seed):
    """The percentile bootstrap camal-rl computed by hand before it called scipy.stats.bootstrap:
    one (n_resamples, n) draw of indices, the statistic of each row, numpy's linear quantiles."""
    x = np.asarray(values, dtype=np.float64)
    resampled = x[np.random.default_rng(seed).integers(0, x.size, size=(n_resamples, x.size))]
    stat = resampled.mean(axis=1) if statistic == "mean" else trim_mean(resampled, 0.25, axis=1)
    return tuple(np.quantile(stat, [(1 - confidence) / 2, (1 + confidence) / 2]))


def test_bootstrap_ci_pinned_numbers():
    # five values, every resampled mean a multiple of 0.1 / 5 = 0.02; the 2.5% and 97.5% quantiles
    # of 2000 seeded resamples (seed 0), the same before and after the move to scipy.stats.bootstrap
    values = [0.3, 0.9, 0.5, 0.7, 0.1]
    assert bootstrap_ci(values) == pytest.approx((0.5, 0.26, 0.74), abs=1e-12)
    # IQM of 5 values: the mean of the middle 3 (floor(5 / 4) = 1 trimmed per end), multiples of 1/30
    assert bootstrap_ci(values, statistic="iqm") == pytest.approx((0.5, 5 / 30, 23 / 30), abs=1e-12)


@pytest.mark.parametrize("statistic", ["mean", "iqm"])
@pytest.mark.parametrize("confidence", [0.95, 0.5])
def test_bootstrap_ci_equals_the_hand_written_bootstrap(statistic, confidence):
    """scipy.stats.bootstrap draws the same indices from the same seed (one (R, n) integers call):
    the bounds agree to rounding (scipy's quantile interpolates in a different order)."""
    for seed in range(5):
        values = np.random.default_rng(100 + seed).normal(size=7 + 9 * seed)
        _, low, high = bootstrap_ci(values, statistic=statistic, confidence=confidence, rng=seed)
        expected = _hand_written_bootstrap(values, statistic, confidence, 2000, seed)
        np.testing.assert_allclose((low, high), expected, rtol=1e-12, atol=1e-12)


def test_bootstrap_ci_contains_point_and_is_deterministic():
    values = np.random.default_rng(3).normal(size=50)
    point, low, high = bootstrap_ci(values, rng=np.random.default_rng(7))
    assert point == pytest.approx(values.mean())
    assert low < point < high
    assert bootstrap_ci(values, rng=np.random.default_rng(7)) == (point, low, high)
    assert bootstrap_ci(values) == bootstrap_ci(values)  # rng=None is seeded too
    narrower = bootstrap_ci(values, confidence=0.5, rng=7)
    assert low < narrower[1] < narrower[2] < high
    point_iqm, low_iqm, high_iqm = bootstrap_ci(values, statistic="iqm", rng=7)
    assert point_iqm == pytest.approx(iqm(values))
    assert low_iqm < point_iqm < high_iqm


def test_bootstrap_ci_degenerate_sizes():
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    point, low, high = bootstrap_ci([3.0, np.nan])
    assert point == 3.0
    assert math.isnan(low)
    assert math.isnan(high)
    assert all(math.isnan(v) for v in bootstrap_ci([np.nan]))
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_episode_means_and_coverage():
    values = [1.0, np.nan, 3.0, 2.0, np.nan, np.nan]
    means, coverage = episode_means(values, [7, 7, 7, 3, 3, 9])
    # sorted ids 3, 7, 9: episode 3 -> 2; episode 7 -> mean(1, 3); episode 9 has no defined step
    np.testing.assert_array_equal(means[:2], [2.0, 2.0])
    assert math.isnan(means[2])
    assert coverage == 0.5  # 3 of 6 steps had a non-empty mask


def test_summarize_drops_nan_and_reports_coverage():
    summary = summarize([1.0, 2.0, 3.0, 4.0, np.nan], rng=0)
    assert isinstance(summary, Summary)
    assert (summary.mean, summary.iqm, summary.n, summary.coverage) == (2.5, 2.5, 4, 0.8)
    assert summary.ci_low <= 2.5 <= summary.ci_high
    assert summary.to_dict()["coverage"] == 0.8
    assert summarize(torch.tensor([1.0, 3.0]), coverage=0.25).coverage == 0.25


def test_summarize_steps_episode_then_seed():
    #            seed 0: episode 0 -> 2, episode 1 -> 4        seed 1: episode 0 -> 1, episode 1 -> none
    values = [1.0, 3.0, np.nan, 4.0, 1.0, np.nan, np.nan, np.nan]
    episodes = [0, 0, 1, 1, 0, 0, 1, 1]
    seeds = [0, 0, 0, 0, 1, 1, 1, 1]
    by_seed = summarize_steps(values, episodes, seeds)
    assert (by_seed.mean, by_seed.n, by_seed.coverage) == (2.0, 2, 0.5)  # seeds: 3 and 1
    by_episode = summarize_steps(values[:4], episodes[:4])
    assert (by_episode.mean, by_episode.n, by_episode.coverage) == (3.0, 2, 0.75)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_one_resample_is_quiet():
    """Training's periodic evaluation reads the means alone and asks for one resample: scipy's
    standard error of one resample must not print numpy's warnings at every evaluation."""
    summary = summarize_steps([1.0, 3.0, 4.0, 2.0], [0, 0, 1, 1], n_resamples=1)
    assert (summary.mean, summary.n) == (2.5, 2)  # episodes: 2 and 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([1.0], statistic="median"), "statistic"),
        (lambda: bootstrap_ci([1.0], confidence=95), "confidence"),
        (lambda: bootstrap_ci([1.0], n_resamples=0), "n_resamples"),
        (lambda: episode_means([1.0, 2.0], [0]), "one id per step"),
        (lambda: iqm(np.ones((2, 2))), "one-dimensional"),
        (lambda: summarize_steps([1.0], [0], [0, 1]), "one id per step"),
    ],
)
def test_bad_inputs_raise(call, message):
    with pytest.raises(InputError, match=message):
        call()
