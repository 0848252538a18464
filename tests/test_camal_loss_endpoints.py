"""experiments/camal_loss/endpoints.py: the pre-registered endpoints, on per-seed values whose
tests, corrections and success rules are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.camal_loss.endpoints import (
    ENDPOINTS,
    endpoint_rows,
    first_solved,
    learning_rows,
    median_steps,
    solved_threshold,
    steps,
)


def values(camal: list[float], none: list[float], energy: list[float]) -> dict[str, dict[str, np.ndarray]]:
    """The same per-seed values for every endpoint metric."""
    return {
        method: {e.metric: np.array(v, dtype=float) for e in ENDPOINTS}
        for method, v in (("camal", camal), ("none", none), ("energy", energy))
    }


def test_first_solved_is_the_first_evaluation_at_the_threshold_and_inf_when_none_reaches_it() -> None:
    rows = [
        {"step": 10_000, "return_mean": 0.5},
        {"step": 20_000, "return_mean": 0.9},
        {"step": 30_000, "return_mean": 0.95},
    ]
    assert first_solved(rows, 0.9) == 20_000
    assert first_solved(rows, 0.96) == math.inf
    assert first_solved([], 0.9) == math.inf
    assert solved_threshold("VizdoomBasic-v0") == 75.0
    assert solved_threshold("MiniGrid-DoorKey-5x5-v0") == 0.9


def test_a_separated_five_v_five_survives_holm_over_five_endpoints() -> None:
    # camal above none on every seed: exact two-sided Mann-Whitney p = 2 / C(10, 5) = 2 / 252.
    # All five endpoints get that p-value, so Holm multiplies the smallest by 5, the next by 4, ...
    # and the step-down maximum makes every adjusted p equal 5 * 2/252 = 0.0397 < 0.05.
    rows = endpoint_rows(values([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))
    for row in rows:
        assert row.mwu == pytest.approx(2 / 252)
        assert row.mwu_holm == pytest.approx(10 / 252)
    by_name = {row.endpoint.name: row for row in rows}
    assert by_name["A1"].success  # mean 8 >= 3
    assert by_name["A2"].success  # higher, Holm p 0.0397
    assert by_name["F3"].success
    # F1: deletion AUC is lower-is-better, so camal's higher values are 100 * (8 - 3) / 3 = 167% worse
    assert by_name["F1"].improvement.estimate == pytest.approx(-500 / 3)
    assert not by_name["F1"].success
    assert by_name["F1"].poi.estimate == 0.0
    # F2: 167% better, bootstrap interval above 0 (the groups never overlap)
    assert by_name["F2"].improvement.estimate == pytest.approx(500 / 3)
    assert by_name["F2"].success
    assert by_name["F2"].poi.estimate == 1.0


def test_one_overlapping_pair_is_not_significant_after_holm() -> None:
    # camal [5, 7, 8, 9, 10] v none [1, 2, 3, 4, 6]: U = 24 of 25; U >= 24 in 2 of the C(10, 5) = 252
    # splits, so the exact two-sided p = 2 * 2/252 = 0.0159 raw and 5 * 0.0159 = 0.0794 after Holm
    # (all five endpoints share it): A2 fails though its raw p is below 0.05.
    rows = endpoint_rows(values([5, 7, 8, 9, 10], [1, 2, 3, 4, 6], [1, 2, 3, 4, 6]))
    a2 = next(row for row in rows if row.endpoint.name == "A2")
    assert a2.mwu == pytest.approx(4 / 252)
    assert a2.mwu_holm == pytest.approx(20 / 252)
    assert not a2.success


def test_a_percent_gain_under_35_fails_even_when_its_interval_excludes_zero() -> None:
    # occlusion ratio camal 1.3 on every seed v energy 1.0 (+ small spread): +30%, interval > 0
    camal, energy = [1.29, 1.3, 1.3, 1.3, 1.31], [0.99, 1.0, 1.0, 1.0, 1.01]
    rows = endpoint_rows(values(camal, energy, energy))
    f2 = next(row for row in rows if row.endpoint.name == "F2")
    assert f2.improvement.estimate == pytest.approx(30.0)
    assert f2.improvement.ci_low > 0
    assert not f2.success


def test_learning_speed_counts_seeds_that_never_solve_as_later_than_the_budget() -> None:
    inf = math.inf
    firsts = {
        "none": np.array([100e3, 100e3, 80e3, inf, 120e3]),  # median 100k
        "camal": np.array([110e3, 110e3, 130e3, 90e3, inf]),  # median 110k: ratio 1.10, passes
        "energy": np.array([inf, inf, 80e3, 90e3, 100e3]),
    }
    l1, l2 = learning_rows(firsts)
    assert median_steps(firsts["camal"]) == 110e3
    assert l1[3] == "1.10"
    assert l1[-1] == "yes"
    assert l2[2] == "4/5 v 3/5"
    assert l2[-1] == "yes"
    firsts["camal"] = np.array([110e3, 120e3, 130e3, inf, inf])  # median 130k: 1.30, fails
    assert learning_rows(firsts)[0][-1] == "no"
    firsts["none"] = np.array(
        [inf, inf, inf, 100e3, 100e3]
    )  # baseline median never: camal's finite one passes
    assert learning_rows(firsts)[0][-1] == "yes"
    firsts["camal"] = np.array([inf, inf, inf, 100e3, 100e3])  # both never: fails (nothing solved)
    assert learning_rows(firsts)[0][-1] == "no"
    assert steps(math.inf) == "never"
    assert steps(110e3) == "110k"
