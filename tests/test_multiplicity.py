"""Multiplicity corrections (camal_rl.multiplicity), with numbers checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from camal_rl.errors import InputError
from camal_rl.multiplicity import adjust_p_values, holm

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
