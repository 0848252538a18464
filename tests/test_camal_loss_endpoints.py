"""experiments/camal_loss/endpoints.py: the pre-registered endpoints, on per-seed values whose
tests, corrections and success rules are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camal_rl import presets
from experiments.camal_loss.endpoints import (
    CELLS,
    ENDPOINTS,
    TARGETS,
    CellResult,
    LayoutMeans,
    Learning,
    cell_name,
    endpoint_rows,
    endpoint_table,
    first_solved,
    g1_success,
    learning_rows,
    median_steps,
    solved_threshold,
    steps,
    target_verdict,
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
    a2 = next(line for line in endpoint_table(rows) if line.startswith("| A2 "))
    assert "| 0.00794 (**0.0397**) |" in a2  # raw p not bold, the Holm p that survives bold


def test_a_holm_p_at_or_above_alpha_is_not_bold() -> None:
    # camal [5, 7, 8, 9, 10] v [1, 2, 3, 4, 6]: Mann-Whitney Holm p 20/252 = 0.0794 (next test),
    # not bold; Welch's Holm p 0.0269 survives and is bold
    rows = endpoint_rows(values([5, 7, 8, 9, 10], [1, 2, 3, 4, 6], [1, 2, 3, 4, 6]))
    a2 = next(line for line in endpoint_table(rows) if line.startswith("| A2 "))
    assert "| 0.0159 (0.0794) | 0.00538 (**0.0269**) |" in a2


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
    l1, l2 = learning_rows(Learning(firsts))
    assert median_steps(firsts["camal"]) == 110e3
    assert l1[3] == "1.10"
    assert l1[-1] == "yes"
    assert l2[2] == "4/5 v 3/5"
    assert l2[-1] == "yes"
    firsts["camal"] = np.array([110e3, 120e3, 130e3, inf, inf])  # median 130k: 1.30, fails
    assert learning_rows(Learning(firsts))[0][-1] == "no"
    firsts["none"] = np.array(
        [inf, inf, inf, 100e3, 100e3]
    )  # baseline median never: camal's finite one passes
    assert learning_rows(Learning(firsts))[0][-1] == "yes"
    firsts["camal"] = np.array([inf, inf, inf, 100e3, 100e3])  # both never: fails (nothing solved)
    assert learning_rows(Learning(firsts))[0][-1] == "no"
    assert steps(math.inf) == "never"
    assert steps(110e3) == "110k"


def test_g1_needs_every_seed_on_every_layout_and_camal_at_least_none_on_each() -> None:
    layouts = [LayoutMeans("doorkey-6x6", 0.42, 0.41, (5, 5)), LayoutMeans("doorkey-8x8", 0.09, 0.01, (5, 5))]
    assert g1_success(layouts, seeds=5) is True
    tie = LayoutMeans("distractors-1", 0.5, 0.5, (5, 5))  # "at least": a tie passes
    assert g1_success([*layouts, tie], seeds=5) is True
    below = LayoutMeans("distractors-1", 0.863, 0.921, (5, 5))
    assert g1_success([*layouts, below], seeds=5) is False
    unevaluated = LayoutMeans("distractors-1", 0.9, 0.5, (4, 5))  # one camal seed not evaluated yet
    assert g1_success([*layouts, unevaluated], seeds=5) is None
    assert LayoutMeans("x", math.nan, 0.5, (0, 5)).success is None


def test_targets_are_met_missed_or_open_by_counting_cells() -> None:
    doorkey_ppo, doorkey_dqn, lava, vizdoom = CELLS
    assert [cell_name(c) for c in CELLS] == [
        "DoorKey-5x5 PPO",
        "DoorKey-5x5 DQN",
        "LavaCrossingS9N1 PPO",
        "VizdoomBasic PPO",
    ]
    by_endpoint = {t.endpoint: t for t in TARGETS}
    a1, a2, g1, l2 = by_endpoint["A1"], by_endpoint["A2"], by_endpoint["G1"], by_endpoint["L2"]
    # A1, every cell: one cell failing settles it, whatever the others do
    assert target_verdict(a1, {doorkey_ppo: {"A1": False}})[-1] == "missed"
    row = target_verdict(a1, {doorkey_ppo: {"A1": True}, doorkey_dqn: {"A1": True}, lava: {"A1": True}})
    assert row[2:] == ["4 of 4", "DoorKey-5x5 PPO, DoorKey-5x5 DQN, LavaCrossingS9N1 PPO", "-", "open"]
    assert target_verdict(a1, {key: {"A1": True} for key in CELLS})[-1] == "met"
    # A2, 3 of 4: one failure leaves it open; two make 3 successes unreachable; three successes meet it
    assert target_verdict(a2, {doorkey_ppo: {"A2": True}, doorkey_dqn: {"A2": False}})[-1] == "open"
    assert target_verdict(a2, {doorkey_ppo: {"A2": False}, doorkey_dqn: {"A2": False}})[-1] == "missed"
    three = {doorkey_ppo: {"A2": True}, doorkey_dqn: {"A2": False}, lava: {"A2": True}, vizdoom: {"A2": True}}
    assert target_verdict(a2, three)[-1] == "met"
    # L2 is read on LavaCrossing only; G1 on the three MiniGrid cells, open while a cell's G1 is None
    assert l2.cells() == [lava]
    assert target_verdict(l2, {doorkey_ppo: {"L2": False}})[-1] == "open"
    assert g1.cells() == [doorkey_ppo, doorkey_dqn, lava]
    assert vizdoom[0] == presets.VIZDOOM_BASIC
    row = target_verdict(g1, {doorkey_ppo: {"G1": True}, doorkey_dqn: {"G1": None}, vizdoom: {}})
    assert row[2:] == ["3 of 3", "DoorKey-5x5 PPO", "-", "open"]


def test_a_cells_successes_join_f1_or_f2_and_add_g1_only_where_there_are_unseen_layouts() -> None:
    # the separated 5 v 5 of the Holm test above: A1, A2, F2, F3 succeed, F1 (lower is better) fails
    rows = endpoint_rows(values([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))
    firsts = {m: np.array([100e3] * 5) for m in ("none", "camal", "energy")}  # ratio 1.00, 5 v 5 solved
    runs: dict[str, list] = {m: [None] * 5 for m in firsts}
    cell = CellResult(runs, rows, Learning(firsts), [])
    assert cell.successes() == {
        "A1": True,
        "A2": True,
        "F1": False,
        "F2": True,
        "F3": True,
        "F1 or F2": True,
        "L1": True,
        "L2": True,
    }
    layouts = [LayoutMeans("doorkey-6x6", 0.2, 0.3, (5, 5))]
    assert CellResult(runs, rows, Learning(firsts), layouts).successes()["G1"] is False
