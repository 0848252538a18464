"""Tests between agent variants and the comparison table (camal_rl.stats), with numbers checked by
hand. The table's markdown and CSV files are tested in test_tables.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from camal_rl.errors import InputError
from camal_rl.results import load_results
from camal_rl.stats import (
    COLUMNS,
    better_direction,
    comparison_table,
    mann_whitney_u,
    percent_improvement,
    probability_of_improvement,
    welch_t_test,
)
from tests.synthetic_runs import metrics_report, write_run


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


def test_mann_whitney_floor_is_exact_where_the_normal_approximation_is_not():
    """3 v 3 fully separated: the exact two-sided floor is 2 / 20 = 0.1, with ties too (by
    permutation); scipy's normal approximation (with continuity correction) says 0.081."""
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]).p_value == pytest.approx(0.1)
    approximate = sps.mannwhitneyu([1, 2, 3], [4, 5, 6], method="asymptotic").pvalue
    assert approximate == pytest.approx(0.081, abs=1e-3)
    assert mann_whitney_u([1, 1, 2], [3, 4, 4]).p_value == pytest.approx(0.1)


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


@pytest.mark.parametrize(
    "test", [welch_t_test, mann_whitney_u, percent_improvement, probability_of_improvement]
)
def test_two_sample_tests_take_one_value_per_seed(test):
    with pytest.raises(InputError, match=r"one-dimensional .*got shape \(2, 2\)"):
        test([[1.0, 2.0], [3.0, 4.0]], [1.0, 2.0])


def test_better_direction():
    assert better_direction("return") == "higher"
    assert better_direction("gradcam/deletion_auc") == "lower"
    assert better_direction("perturbation/sufficiency@10") == "lower"
    assert better_direction("gradcam/comprehensiveness@20") == "higher"
    assert better_direction("distractors/return") == "higher"
    assert better_direction("length") == ""


# per seed (one episode each): return, Grad-CAM EPG, Grad-CAM deletion AUC
SWEEP = {
    "none": [(0.1, 0.2, 0.5), (0.2, 0.3, 0.5), (0.3, 0.4, 0.6)],
    "camal": [(0.4, 0.6, 0.3), (0.5, 0.7, 0.3), (0.9, 0.8, 0.3)],
    "energy": [(0.3, 0.5, 0.4), (0.35, 0.55, 0.4), (0.4, 0.6, 0.4)],
}
METRICS = ["return", "gradcam/epg", "gradcam/deletion_auc"]


def write_sweep(root):
    for method, seeds in SWEEP.items():
        for seed, (ret, epg, deletion) in enumerate(seeds):
            report = metrics_report([ret], saliency={"gradcam": {"epg": [epg], "deletion_auc": [deletion]}})
            write_run(root, method=method, seed=seed, metrics=report)
    write_run(root, method="camal", seed=3, state="running")  # not evaluated yet


def row_of(rows, label, metric, versus=""):
    (row,) = [r for r in rows if (r["label"], r["metric"], r["versus"]) == (label, metric, versus)]
    return row


def test_comparison_table_on_a_synthetic_sweep(tmp_path):
    write_sweep(tmp_path)
    rows = comparison_table(load_results([tmp_path]), METRICS)

    # 3 variants x 3 metrics summaries; camal vs none, energy vs none, camal vs energy x 3 metrics
    assert len(rows) == 9 + 9
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert {(r["label"], r["versus"]) for r in rows if r["versus"]} == {
        ("ppo-camal", "ppo-none"),
        ("ppo-energy", "ppo-none"),
        ("ppo-camal", "ppo-energy"),
    }
    none = row_of(rows, "ppo-none", "return")
    assert (none["n"], none["mean"], none["statistic"]) == (3, pytest.approx(0.2), "iqm")
    assert none["iqm"] == pytest.approx(0.2)  # IQM of 3 values trims none: the mean
    camal = row_of(rows, "ppo-camal", "gradcam/epg")
    assert (camal["n_runs"], camal["n"], camal["seeds"]) == (4, 3, "0 1 2")
    assert camal["estimate"] == pytest.approx(0.7)
    assert camal["statistic"] == "mean"

    vs_none = row_of(rows, "ppo-camal", "gradcam/epg", "ppo-none")
    assert vs_none["welch_t"] == pytest.approx(math.sqrt(24))
    assert vs_none["welch_df"] == pytest.approx(4.0)
    assert vs_none["welch_p"] == pytest.approx(1 - math.sqrt(6 / 7) * (1 + 1 / 14))
    assert (vs_none["mwu_u"], vs_none["mwu_p"]) == (9.0, pytest.approx(0.1))
    assert vs_none["improvement_pct"] == pytest.approx(100 * (0.7 - 0.3) / 0.3)
    assert vs_none["versus_n"] == 3
    assert vs_none["versus_mean"] == pytest.approx(0.3)
    assert vs_none["better"] == "higher"
    assert vs_none["estimate"] == camal["estimate"]

    # deletion AUC, lower is better: camal 0.3 vs energy 0.4 is +25 %; both constant: no Welch t
    deletion = row_of(rows, "ppo-camal", "gradcam/deletion_auc", "ppo-energy")
    assert deletion["better"] == "lower"
    assert deletion["improvement_pct"] == pytest.approx(25.0)
    assert deletion["improvement_low"] == pytest.approx(25.0) == deletion["improvement_high"]
    assert math.isnan(deletion["welch_p"])
    assert "zero variance" in deletion["note"]
    assert deletion["mwu_p"] == pytest.approx(0.1)
    assert deletion["mwu_method"] == "permutation"
    # vs the baseline 0.5333: -100 * (0.3 - 1.6 / 3) / (1.6 / 3) = +43.75 %
    assert row_of(rows, "ppo-camal", "gradcam/deletion_auc", "ppo-none")["improvement_pct"] == pytest.approx(
        43.75
    )

    # probability of improvement: EPG 0.6..0.8 above 0.2..0.4 in all 9 pairs; returns of camal
    # (0.4, 0.5, 0.9) against energy (0.3, 0.35, 0.4): 8 wins and one tie (0.4) of 9 pairs
    chance = [vs_none[f"prob_improvement{end}"] for end in ("", "_low", "_high")]
    assert chance == [1.0, 1.0, 1.0]
    assert row_of(rows, "ppo-camal", "return", "ppo-energy")["prob_improvement"] == pytest.approx(8.5 / 9)
    for row in (r for r in rows if r["versus"]):  # U / 9, or 1 - U / 9 where lower is better
        share = row["mwu_u"] / 9
        assert row["prob_improvement"] == pytest.approx(1 - share if row["better"] == "lower" else share)

    # Holm over the table's comparisons: 8 defined Welch tests (camal vs energy's deletion AUC is
    # not), the smallest 0.00805 -> 8 * 0.00805 = 0.0644; 9 Mann-Whitney tests, six at p = 0.1 and
    # three at 0.2: 9 * 0.1 = 0.9 for the first, every later one at least that (running maximum)
    comparisons = [r for r in rows if r["versus"]]
    assert vs_none["welch_p_adj"] == pytest.approx(8 * vs_none["welch_p"])
    assert math.isnan(deletion["welch_p_adj"])
    assert sorted(r["mwu_p"] for r in comparisons) == pytest.approx([0.1] * 6 + [0.2] * 3)
    assert all(r["mwu_p_adj"] == pytest.approx(0.9) for r in comparisons)
    assert {r["p_adj_method"] for r in rows} == {"", "holm"}
    assert all(math.isnan(r["welch_p_adj"]) for r in rows if not r["versus"])


def test_comparison_table_benjamini_hochberg_and_one_family_per_env(tmp_path):
    write_sweep(tmp_path / "first")
    results = load_results([tmp_path / "first"])
    # Benjamini-Hochberg on the 9 Mann-Whitney p-values (0.1 x 6, 0.2 x 3): m / rank * p is
    # 9 / 6 * 0.1 = 0.15 at rank 6 and 9 / 9 * 0.2 = 0.2 at rank 9 (ranks 7, 8 give more); the
    # running minimum from the top gives 0.15 to every 0.1 and 0.2 to every 0.2
    rows = comparison_table(results, METRICS, correction="bh")
    for row in (r for r in rows if r["versus"]):
        assert row["mwu_p_adj"] == pytest.approx(0.15 if row["mwu_p"] == pytest.approx(0.1) else 0.2)
        assert row["p_adj_method"] == "bh"
    with pytest.raises(InputError, match="correction must be one of holm, bh"):
        comparison_table(results, METRICS, correction="bonferroni")  # type: ignore[arg-type]
    # a second env's comparisons are a family of their own: the first env's adjusted values stay
    alone = comparison_table(results, METRICS)
    other = tmp_path / "other"
    for method, seeds in SWEEP.items():
        for seed, (ret, epg, deletion) in enumerate(seeds):
            report = metrics_report([ret], saliency={"gradcam": {"epg": [epg], "deletion_auc": [deletion]}})
            write_run(other, env="MiniGrid-DoorKey-6x6-v0", method=method, seed=seed, metrics=report)
    both = comparison_table(load_results([tmp_path / "first", other]), METRICS)
    assert {r["env"] for r in both} == {"MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-6x6-v0"}
    first = [r for r in both if r["env"] == "MiniGrid-DoorKey-5x5-v0"]
    assert len(first) == len(alone)
    for a, b in zip(alone, first, strict=True):
        assert a["welch_p_adj"] == pytest.approx(b["welch_p_adj"], nan_ok=True)
        assert a["mwu_p_adj"] == pytest.approx(b["mwu_p_adj"], nan_ok=True)


def test_comparison_table_names_are_checked(tmp_path):
    write_sweep(tmp_path)
    results = load_results([tmp_path])
    with pytest.raises(InputError, match="'nnone' is neither a method"):
        comparison_table(results, METRICS, baseline="nnone")
    with pytest.raises(InputError, match="gradcam/epgg"):
        comparison_table(results, ["gradcam/epgg"])
    # labels work as names, and a known method with no runs gives no comparison
    rows = comparison_table(results, ["return"], baseline="ppo-energy", pairs=[("camal", "rrr")])
    assert {(r["label"], r["versus"]) for r in rows if r["versus"]} == {
        ("ppo-camal", "ppo-energy"),
        ("ppo-none", "ppo-energy"),
    }
