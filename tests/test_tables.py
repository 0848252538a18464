"""The comparison table as files (camal_rl.tables): markdown and CSV of the synthetic sweep of
test_statistics_comparison.py, with numbers checked by hand."""

from __future__ import annotations

import csv
import math

import pytest

from camal_rl.statistics import COLUMNS, comparison_table, load_results
from camal_rl.tables import ONE_SEED_LINE, format_markdown, format_p, quote_p, write_csv, write_markdown
from tests.synthetic_runs import metrics_report, write_run
from tests.test_statistics_comparison import METRICS, write_sweep


def test_markdown_and_csv(tmp_path):
    write_sweep(tmp_path / "runs")
    rows = comparison_table(load_results([tmp_path / "runs"]), METRICS)
    text = write_markdown(rows, tmp_path / "table.md").read_text()
    assert text == format_markdown(rows)
    lines = text.splitlines()
    assert lines[0] == "### MiniGrid-DoorKey-5x5-v0"
    assert lines[2] == "| agent | seeds | return (IQM) ↑ | gradcam/epg ↑ | gradcam/deletion_auc ↓ |"
    # one row per agent variant, baseline first; 3 significant digits of the column's largest value
    assert [line.split("|")[1].strip() for line in lines[4:7]] == ["ppo-none", "ppo-camal", "ppo-energy"]
    (none,) = [line for line in lines if line.startswith("| ppo-none |")]
    assert none.startswith("| ppo-none | 3 | 0.200 [")
    (camal,) = [line for line in lines if line.startswith("| ppo-camal |")]
    assert camal.startswith("| ppo-camal | 4 | 0.600 [0.400, 0.900] (n=3) |")
    assert "0.700 [" in camal
    assert "(n=3)" in camal
    (comparison,) = [line for line in lines if line.startswith("| ppo-camal vs ppo-none |")]
    cells = [c.strip() for c in comparison.strip("|").split("|")]
    assert cells[2].startswith("+133.3% [")
    # every pair of seeds is an improvement; Holm over 8 Welch tests: 8 * 0.00805 = 0.0644, over
    # 9 Mann-Whitney tests 9 * 0.1 = 0.9; not bold (raw p 0.00805 would have been, in Welch)
    assert cells[2].endswith("; P(better) 1.00 [1.00, 1.00]; p 0.00805 / 0.1 (adj. 0.0644 / 0.9)")
    assert cells[3].startswith("+43.8% [")
    assert "**" not in comparison
    (camal_energy,) = [line for line in lines if line.startswith("| ppo-camal vs ppo-energy |")]
    assert "; P(better) 0.94 [" in camal_energy  # 8.5 / 9 pairs
    assert "p n/a / 0.1 (adj. n/a / 0.9)" in camal_energy  # deletion AUC: both constant, no Welch t
    assert (
        "adj.: Holm (1979) over this table's 8 Welch and 9 Mann-Whitney tests, each kind a family; "
        "**bold**: both adjusted p < 0.05." in lines
    )
    assert any(line.startswith("- Lower is better (↓): deletion_auc, sufficiency@k.") for line in lines)
    (higher,) = [line for line in lines if "Higher is better" in line]
    for name in ("insertion_auc", "comprehensiveness@k", "epg", "iou", "pointing_game", "roc_auc", "return"):
        assert name in higher

    with write_csv(rows, tmp_path / "table.csv").open() as f:
        reader = csv.DictReader(f)
        read = list(reader)
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert len(read) == len(rows)
    csv_row = next(
        r for r in read if (r["label"], r["metric"], r["versus"]) == ("ppo-camal", "return", "ppo-none")
    )
    assert float(csv_row["mean"]) == pytest.approx(0.6)
    assert float(csv_row["mwu_p"]) == pytest.approx(0.1)
    assert float(csv_row["mwu_p_adj"]) == pytest.approx(0.9)
    assert float(csv_row["prob_improvement"]) == 1.0
    assert csv_row["p_adj_method"] == "holm"
    (summary_row,) = [r for r in read if (r["label"], r["metric"], r["versus"]) == ("ppo-none", "return", "")]
    assert [summary_row[c] for c in ("welch_p_adj", "prob_improvement", "p_adj_method")] == ["nan", "nan", ""]
    assert format_markdown([]) == "No results.\n"


def write_separated(root, metrics=3):
    """5 seeds of a baseline below 3 variants on every metric: each test's p is its floor,
    Mann-Whitney 2 / 252 = 0.0079."""
    for rank, method in enumerate(("none", "camal", "energy", "rrr")):
        for seed in range(5):
            value = 0.1 + 0.2 * rank + 0.01 * seed
            saliency = {"gradcam": {"epg": [value], "deletion_auc": [1 - value]}}
            write_run(root, method=method, seed=seed, metrics=metrics_report([value], saliency=saliency))


def test_bold_marks_only_what_survives_the_correction(tmp_path):
    write_separated(tmp_path)
    results = load_results([tmp_path])
    # 3 comparisons against the baseline, 1 metric: Holm gives 3 * 2 / 252 = 0.0238 < 0.05, bold
    lines = format_markdown(comparison_table(results, ["return"], pairs=())).splitlines()
    (camal,) = [line for line in lines if line.startswith("| ppo-camal vs ppo-none |")]
    cell = camal.split("|")[2].strip()
    assert cell.startswith("**+166.7% [")  # (0.32 - 0.12) / 0.12
    # camal's Welch p is the largest of the three (energy and rrr lie further off): Holm's 1 x p
    assert cell.endswith("; p 4.07e-08 / 0.00794 (adj. 4.07e-08 / 0.0238)**")
    assert "P(better) 1.00 [1.00, 1.00]" in cell
    # 3 metrics: 9 tests, 9 * 2 / 252 = 0.0714: nothing survives, though every raw p is 0.0079
    rows = comparison_table(results, METRICS, pairs=())
    assert all(r["mwu_p"] == pytest.approx(2 / 252) for r in rows if r["versus"])
    assert all(r["mwu_p_adj"] == pytest.approx(9 * 2 / 252) for r in rows if r["versus"])
    assert "**+" not in format_markdown(rows)
    # Benjamini-Hochberg keeps them: every p is the smallest, m / m * p = 0.0079
    bh = comparison_table(results, METRICS, pairs=(), correction="bh")
    text = format_markdown(bh)
    assert text.count("**+") == 9
    assert "adj.: Benjamini-Hochberg (1995) over this table's 9 Welch and 9 Mann-Whitney tests" in text


def test_quote_p_is_the_tables_p():
    # 3 v 3 (the Welch p as in test_statistics_significance: 4 degrees of freedom, 0.00805); exact U floor 0.1
    assert quote_p([0.6, 0.7, 0.8], [0.2, 0.3, 0.4]) == "p 0.00805 / 0.1"
    assert quote_p([1, 1, 1], [2, 2, 2]) == "p n/a / 0.1"  # ties: exact by permutation
    assert quote_p(range(5), range(5, 10)).endswith(" / 0.00794")  # 2 / 252
    assert (format_p(0.012345), format_p(math.nan)) == ("0.0123", "n/a")


def test_one_seed_per_agent_shows_the_difference_alone(tmp_path):
    # the demo's sweep: one seed of each; returns 0.8 v 0.5 -> +60.0%, with no CI, P(better) or test
    write_run(tmp_path, method="none", seed=0, metrics=metrics_report([0.5]))
    write_run(tmp_path, method="camal", seed=0, metrics=metrics_report([0.8]))
    lines = format_markdown(comparison_table(load_results([tmp_path]), ["return"], pairs=())).splitlines()
    (camal,) = [line for line in lines if line.startswith("| ppo-camal vs ppo-none |")]
    assert camal == "| ppo-camal vs ppo-none | +60.0% |"
    # a baseline mean of 0 has no percent difference: n/a alone, still no test
    write_run(tmp_path / "zero", method="none", seed=0, metrics=metrics_report([0.0]))
    write_run(tmp_path / "zero", method="camal", seed=0, metrics=metrics_report([0.8]))
    zero = format_markdown(comparison_table(load_results([tmp_path / "zero"]), ["return"], pairs=()))
    assert "| ppo-camal vs ppo-none | n/a |" in zero.splitlines()
    assert ONE_SEED_LINE in lines
    assert not any(line.startswith("adj.:") for line in lines)
    (agent,) = [line for line in lines if line.startswith("| ppo-camal | 1 |")]
    assert agent == "| ppo-camal | 1 | 0.800 |"  # no interval from one seed
