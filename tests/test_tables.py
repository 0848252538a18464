"""The comparison table as files (camal_rl.tables): markdown and CSV of the synthetic sweep of
test_stats.py, with numbers checked by hand."""

from __future__ import annotations

import csv

import pytest

from camal_rl.results import load_results
from camal_rl.stats import COLUMNS, comparison_table
from camal_rl.tables import format_markdown, write_csv, write_markdown
from tests.test_stats import METRICS, write_sweep


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
    assert cells[2].endswith("; p 0.00805 / 0.1")
    assert cells[3].startswith("+43.8% [")
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
    assert format_markdown([]) == "No results.\n"
