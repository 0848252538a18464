"""Significance tests over seeds and multiplicity corrections (camal_rl.statistics.significance),
with numbers checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from camal_rl.errors import InputError
from camal_rl.statistics import (
    adjust_p_values,
    holm,
    mann_whitney_u,
    percent_improvement,
    probability_of_improvement,
    welch_t_test,
)


def test_welch_t_test_by_hand():
    # a: mean 3, variance 2.5; b: mean 6, variance 10; n = 5 each
    # t = (3 - 6) / sqrt(2.5 / 5 + 10 / 5) = -3 / sqrt(2.5) = -1.8973666
    # df = (0.5 + 2) ** 2 / (0.5 ** 2 / 4 + 2 ** 2 / 4) = 6.25 / 1.0625 = 5.8823529 (Welch-Satterthwaite)
    result = welch_t_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert result.statistic == pytest.approx(-3 / math.sqrt(2.5))
    assert result.df == pytest.approx(6.25 / 1.0625)
    assert result.p_value == pytest.approx(2 * sps.t.sf(3 / math.sqrt(2.5), 6.25 / 1.0625))
    assert result.p_value == pytest.approx(0.10753, abs=1e-5)
    assert (result.n_a, result.n_b, result.note) == (5, 5, "")


def test_welch_p_value_against_closed_form_for_four_degrees_of_freedom():
    # equal variances 0.01, n = 3: t = 0.4 / sqrt(0.02 / 3) = sqrt(24), df = 4 exactly.
    # For 4 degrees of freedom P(|T| > t) = 1 - sqrt(x) * (1 + (1 - x) / 2), x = t^2 / (t^2 + 4) = 6 / 7
    result = welch_t_test([0.6, 0.7, 0.8], [0.2, 0.3, 0.4])
    x = 6 / 7
    assert result.statistic == pytest.approx(math.sqrt(24))
    assert result.df == pytest.approx(4.0)
    assert result.p_value == pytest.approx(1 - math.sqrt(x) * (1 + (1 - x) / 2))  # 0.00805


@pytest.mark.parametrize(
    ("a", "b", "u", "p", "method"),
    [
        # fully separated 3 vs 3: U = 0, exact two-sided p = 2 / C(6, 3) = 2 / 20
        ([1, 2, 3], [4, 5, 6], 0.0, 0.1, "exact"),
        ([4, 5, 6], [1, 2, 3], 9.0, 0.1, "exact"),
        # one pair out of order: U = 1; P(U <= 1) = 2 / 20, two-sided 0.2
        ([1, 2, 4], [3, 5, 6], 1.0, 0.2, "exact"),
        # ties: the exact permutation p is 2 / 20 (scipy's normal approximation would say 0.047)
        ([1, 1, 1], [2, 2, 2], 0.0, 0.1, "permutation"),
        # a = {1, 1, 2}: U = 0.5 (the 2 ties one 2 of b); as extreme: a gets either 2 (U = 0.5) or
        # the mirror image (U = 8.5): 4 of 20 splits
        ([1, 1, 2], [2, 3, 3], 0.5, 0.2, "permutation"),
        # 5 v 5 fully separated: 2 / C(10, 5) = 2 / 252 = 0.0079, the smallest p 5 seeds can give
        ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 0.0, 2 / 252, "exact"),
        ([1, 1, 1, 1, 1], [2, 2, 2, 2, 2], 0.0, 2 / 252, "permutation"),
        # 5 v 5, one pair out of order: P(U <= 1) = 2 / 252, two-sided 4 / 252
        ([0, 1, 2, 3, 5], [4, 6, 7, 8, 9], 1.0, 4 / 252, "exact"),
    ],
)
def test_mann_whitney_u_by_hand(a, b, u, p, method):
    result = mann_whitney_u(a, b)
    assert result.statistic == pytest.approx(u)
    assert result.p_value == pytest.approx(p)
    assert result.method == method


def test_degenerate_inputs_give_nan_with_a_reason():
    for test in (welch_t_test, mann_whitney_u):
        one = test([1.0], [2.0, 3.0])
        assert math.isnan(one.p_value)
        assert "at least 2 seeds" in one.note
        same = test([0.5, 0.5], [0.5, 0.5, 0.5])
        assert math.isnan(same.statistic)
        assert math.isnan(same.p_value)
        assert "all values are equal" in same.note
    constant = welch_t_test([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert math.isnan(constant.p_value)
    assert "zero variance" in constant.note
    assert mann_whitney_u([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]).p_value == pytest.approx(0.1)
    # nan values (seeds without the metric) are dropped
    with_nan = welch_t_test([1, 2, 3, 4, 5, np.nan], [2, 4, 6, 8, 10])
    assert with_nan.n_a == 5
    assert with_nan.statistic == pytest.approx(-3 / math.sqrt(2.5))


def test_mann_whitney_floor_is_exact_where_the_normal_approximation_is_not():
    """3 v 3 fully separated: the exact two-sided floor is 2 / 20 = 0.1, with ties too (by
    permutation); scipy's normal approximation (with continuity correction) says 0.081."""
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(0.1)
    approximate = sps.mannwhitneyu([1, 2, 3], [4, 5, 6], method="asymptotic").pvalue
    assert approximate == pytest.approx(0.081, abs=1e-3)
    assert mann_whitney_u([1, 1, 2], [3, 4, 4]).p_value == pytest.approx(0.1)


@pytest.mark.parametrize(
    "test", [welch_t_test, mann_whitney_u, percent_improvement, probability_of_improvement]
)
def test_two_sample_tests_take_one_value_per_seed(test):
    with pytest.raises(InputError, match=r"one-dimensional .*got shape \(2, 2\)"):
        test([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0])


# m = 4 defined p-values (the nan does not count); sorted: 0.005, 0.01, 0.03, 0.04
P = [0.01, 0.04, 0.03, np.nan, 0.005]


def test_holm_by_hand():
    # (m - j + 1) * p_(j) = 4 * 0.005, 3 * 0.01, 2 * 0.03, 1 * 0.04 = 0.02, 0.03, 0.06, 0.04;
    # the running maximum keeps the order: 0.02, 0.03, 0.06, 0.06
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, np.nan, 0.02], nan_ok=True)
    assert adjust_p_values(P) == pytest.approx(holm(P), nan_ok=True)  # Holm is the default
    # capped at 1; equal p-values get equal adjusted values: 2 * 0.5, then max(1, 0.5)
    assert holm([0.5, 0.5]) == pytest.approx([1.0, 1.0])
    assert holm([0.02]) == pytest.approx([0.02])  # a family of one: unadjusted


def test_benjamini_hochberg_by_hand():
    # m / rank * p_(rank) = 4 * 0.005, 2 * 0.01, 4 / 3 * 0.03, 1 * 0.04 = 0.02, 0.02, 0.04, 0.04;
    # the running minimum from the largest keeps them
    assert adjust_p_values(P, "bh") == pytest.approx([0.02, 0.04, 0.04, np.nan, 0.02], nan_ok=True)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_undefined_tests_stay_undefined(method):
    assert np.isnan(adjust_p_values([np.nan, np.nan], method)).all()
    assert adjust_p_values([], method).shape == (0,)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="correction must be one of holm, bh, got 'bonferroni'"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"one-dimensional .*got shape \(1, 2\)"):
        holm([[0.1, 0.2]])
