"""The per-seed aggregation and the comparison table (camal_rl.statistics.comparison), with numbers
checked by hand. The table's markdown and CSV files are tested in test_tables.py."""

from __future__ import annotations

import math

import pytest

from camal_rl.errors import InputError
from camal_rl.statistics import COLUMNS, aggregate, better_direction, comparison_table, load_results
from tests.synthetic_runs import metrics_report, write_run


def test_aggregate_over_seeds(tmp_path):
    per_seed_return = [0.1, 0.2, 0.4, 0.9]
    for seed, value in enumerate(per_seed_return):
        report = metrics_report([value], saliency={"gradcam": {"epg": [value / 2]}})
        write_run(tmp_path, seed=seed, metrics=report)
    write_run(
        tmp_path, method="none", seed=0, metrics=metrics_report([0.3], saliency={"gradcam": {"epg": [0.1]}})
    )
    rows = aggregate(load_results([tmp_path]), ["return", "gradcam/epg"])

    # the baseline first
    assert [(r["label"], r["metric"]) for r in rows] == [
        ("ppo-none", "return"),
        ("ppo-none", "gradcam/epg"),
        ("ppo-camal", "return"),
        ("ppo-camal", "gradcam/epg"),
    ]
    none_ret, _, ret, epg = rows
    # mean 1.6 / 4 = 0.4; IQM drops floor(4 / 4) = 1 value at each end: (0.2 + 0.4) / 2 = 0.3
    assert ret["n"] == ret["n_runs"] == 4
    assert ret["seeds"] == "0 1 2 3"
    assert ret["mean"] == pytest.approx(0.4)
    assert ret["iqm"] == pytest.approx(0.3)
    assert ret["statistic"] == "iqm"
    assert ret["estimate"] == pytest.approx(0.3)
    assert 0.1 <= ret["ci_low"] < 0.3 < ret["ci_high"] <= 0.9
    assert epg["statistic"] == "mean"
    assert epg["estimate"] == pytest.approx(0.2)
    # one seed: the value, no interval
    assert none_ret["n"] == 1
    assert none_ret["estimate"] == pytest.approx(0.3)
    assert math.isnan(none_ret["ci_low"])


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
