"""Percent improvement and probability of improvement over seeds, with their bootstrap intervals
(camal_rl.statistics.improvement), with numbers checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camal_rl.errors import InputError
from camal_rl.statistics import mann_whitney_u, percent_improvement, probability_of_improvement


def test_percent_improvement_by_hand():
    # 100 * (0.6 - 0.4) / 0.4 = +50 %
    gain = percent_improvement([0.5, 0.6, 0.7], [0.3, 0.4, 0.5], rng=0)
    assert gain.estimate == pytest.approx(50.0)
    # each resampled mean lies in [0.5, 0.7] and [0.3, 0.5]: ratios within [0, 133.3]
    assert 0.0 <= gain.ci_low < 50.0 < gain.ci_high <= 100 * 0.4 / 0.3
    assert percent_improvement([0.5, 0.6, 0.7], [0.3, 0.4, 0.5], rng=0) == gain  # seeded
    # pinned (the same before and after the move to scipy.stats.bootstrap): 2.5% quantile at
    # means 0.5 v 13/30, 100 * (1/15) / (13/30) = 200/13 %; 97.5% at 0.6 v 0.3
    assert (gain.ci_low, gain.ci_high) == pytest.approx((200 / 13, 100.0), abs=1e-9)
    # lower is better: 100 * (0.3 - 0.4) / 0.4 = -25 %, reported as +25 % (an improvement)
    lower = percent_improvement([0.2, 0.3, 0.4], [0.4, 0.4, 0.4], lower_is_better=True)
    assert lower.estimate == pytest.approx(25.0)
    # constant groups: every resample gives the same ratio
    flat = percent_improvement([0.6] * 3, [0.4] * 3)
    assert (flat.estimate, flat.ci_low, flat.ci_high) == pytest.approx((50.0, 50.0, 50.0))
    # a negative reference: -1 is 50 % better than -2, in percent of |-2|
    assert percent_improvement([-1.0, -1.0], [-2.0, -2.0]).estimate == pytest.approx(50.0)


def test_percent_improvement_degenerate():
    zero = percent_improvement([1.0, 2.0], [0.0, 0.0])
    assert math.isnan(zero.estimate)
    assert "mean is 0" in zero.note
    single = percent_improvement([0.6], [0.4, 0.4])
    assert single.estimate == pytest.approx(50.0)
    assert math.isnan(single.ci_low)
    assert "at least 2" in single.note
    crossing = percent_improvement([1.0, 1.0], [0.0, 1.0])
    assert crossing.estimate == pytest.approx(100.0)
    assert math.isnan(crossing.ci_high)
    assert "mean 0" in crossing.note
    with pytest.raises(InputError, match="confidence"):
        percent_improvement([1.0], [1.0], confidence=95)


def test_probability_of_improvement_by_hand():
    # pairs (x, y): (1, 0) 1, (1, 2) 0, (1, 5) 0, (2, 0) 1, (2, 2) 1/2, (2, 5) 0, (3, 0) 1, (3, 2) 1,
    # (3, 5) 0: 4.5 / 9 = 0.5, which is Mann-Whitney's U / (3 * 3)
    chance = probability_of_improvement([1, 2, 3], [0, 2, 5])
    assert chance.estimate == pytest.approx(0.5)
    assert mann_whitney_u([1, 2, 3], [0, 2, 5]).statistic == pytest.approx(4.5)
    # [1, 2, 4] vs [3, 5, 6]: only 4 > 3 of 9 pairs: 1 / 9; lower is better: the other 8 / 9
    assert probability_of_improvement([1, 2, 4], [3, 5, 6]).estimate == pytest.approx(1 / 9)
    assert probability_of_improvement([1, 2, 4], [3, 5, 6], lower_is_better=True).estimate == pytest.approx(
        8 / 9
    )
    # separated groups: every resample is separated too, so the interval is [1, 1]
    separated = probability_of_improvement([3, 4], [1, 2])
    assert (separated.estimate, separated.ci_low, separated.ci_high) == (1.0, 1.0, 1.0)
    # [1, 3] vs [2, 2]: a resample scores the share of 3s it drew from a: 0, 1/2 or 1 with
    # chances 1/4, 1/2, 1/4, so the 95% percentile interval is [0, 1]
    spread = probability_of_improvement([1, 3], [2, 2], rng=0)
    assert (spread.estimate, spread.ci_low, spread.ci_high, spread.note) == (0.5, 0.0, 1.0, "")
    assert probability_of_improvement([1, 3], [2, 2], rng=0) == spread  # seeded
    assert probability_of_improvement([1, 3, np.nan], [2, 2]).n_a == 2  # nan dropped
    # pinned (seed 0; the same before and after the move to scipy.stats.bootstrap)
    pinned = probability_of_improvement([0.1, 0.4, 0.35, 0.8, 0.5], [0.2, 0.3, 0.1, 0.25, 0.05])
    assert (pinned.estimate, pinned.ci_low, pinned.ci_high) == pytest.approx((0.86, 0.52, 1.0))


def test_probability_of_improvement_degenerate():
    empty = probability_of_improvement([np.nan], [1.0, 2.0])
    assert math.isnan(empty.estimate)
    assert empty.note == "a group has no values"
    single = probability_of_improvement([3.0], [1.0, 4.0])
    assert single.estimate == pytest.approx(0.5)
    assert math.isnan(single.ci_low)
    assert math.isnan(single.ci_high)
    assert "at least 2 seeds" in single.note
    with pytest.raises(InputError, match="n_resamples"):
        probability_of_improvement([1.0, 2.0], [1.0, 2.0], n_resamples=0)
