"""The comparison table of ``camal-rl compare`` as files: CSV (one tidy row per
:func:`camal_rl.stats.comparison_table` row) and markdown (per env, a table of agent variants, a
table of comparisons, and a legend of what the numbers are).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.stats import COLUMNS, HIGHER_IS_BETTER, LOWER_IS_BETTER


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write :func:`~camal_rl.stats.comparison_table` rows as CSV, one row each, columns
    :data:`~camal_rl.stats.COLUMNS` (then any others); ``nan`` is written as ``nan``.

    :return: ``path``.
    """
    columns = list(COLUMNS) + [k for row in rows for k in row if k not in COLUMNS]
    columns = list(dict.fromkeys(columns))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path


def write_markdown(
    rows: Sequence[Mapping[str, Any]], path: Path, *, title: str | None = None, note: str | None = None
) -> Path:
    """Write :func:`format_markdown` to ``path``, under ``title`` and ``note`` (a paragraph).

    :return: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"# {title}\n\n" if title else "") + (f"{note}\n\n" if note else "")
    path.write_text(head + format_markdown(rows))
    return path


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`~camal_rl.stats.comparison_table` rows as markdown: per env, a table of agent
    variants (one row each, metrics as columns, cells ``estimate [95% CI]``), a table of
    comparisons (cells: percent improvement [CI] and the Welch / Mann-Whitney p-values, 3
    significant digits), and a legend of what the numbers are and which direction is better.
    """
    if not rows:
        return "No results.\n"
    confidence = "95%"
    metrics = list(dict.fromkeys(str(r["metric"]) for r in rows))
    better = {str(r["metric"]): str(r.get("better", "")) for r in rows}
    arrows = {"higher": " ↑", "lower": " ↓", "": ""}
    iqm_metrics = {str(r["metric"]) for r in rows if r["statistic"] == "iqm"}
    headers = [f"{m}{' (IQM)' if m in iqm_metrics else ''}{arrows[better[m]]}" for m in metrics]
    lines: list[str] = []
    for env in dict.fromkeys(str(r["env"]) for r in rows):
        env_rows = [r for r in rows if r["env"] == env]
        summaries = [r for r in env_rows if not r["versus"]]
        lines += [f"### {env}", ""]
        lines += markdown_table(["agent", "seeds", *headers], _summary_cells(summaries, metrics))
        comparisons = [r for r in env_rows if r["versus"]]
        if comparisons:
            lines.append("")
            lines += markdown_table(["comparison", *metrics], _comparison_cells(comparisons, metrics))
        lines.append("")
    lines += _legend(metrics, better, confidence)
    return "\n".join(lines) + "\n"


def _summary_cells(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[list[str]]:
    decimals = {m: _decimals([r["estimate"] for r in rows if r["metric"] == m]) for m in metrics}
    table: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        table.setdefault(str(row["label"]), {})[str(row["metric"])] = row
    cells = []
    for label, by_metric in table.items():
        n_runs = max(int(r["n_runs"]) for r in by_metric.values())
        line = [label, str(n_runs)]
        for metric in metrics:
            cell_row = by_metric.get(metric)
            if cell_row is None or cell_row["n"] == 0:
                line.append("n/a")
                continue
            d = decimals[metric]
            cell = _fmt(cell_row["estimate"], d)
            if math.isfinite(cell_row["ci_low"]):
                cell += f" [{_fmt(cell_row['ci_low'], d)}, {_fmt(cell_row['ci_high'], d)}]"
            if cell_row["n"] < n_runs:
                cell += f" (n={cell_row['n']})"
            line.append(cell)
        cells.append(line)
    return cells


def _comparison_cells(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[list[str]]:
    table: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        table.setdefault(f"{row['label']} vs {row['versus']}", {})[str(row["metric"])] = row
    cells = []
    for name, by_metric in table.items():
        line = [name]
        for metric in metrics:
            cell_row = by_metric.get(metric)
            if cell_row is None:
                line.append("n/a")
                continue
            gain = "n/a"
            if math.isfinite(cell_row["improvement_pct"]):
                gain = f"{cell_row['improvement_pct']:+.1f}%"
                if math.isfinite(cell_row["improvement_low"]):
                    gain += f" [{cell_row['improvement_low']:+.1f}, {cell_row['improvement_high']:+.1f}]"
            line.append(f"{gain}; p {_p(cell_row['welch_p'])} / {_p(cell_row['mwu_p'])}")
        cells.append(line)
    return cells


def _legend(metrics: Sequence[str], better: Mapping[str, str], confidence: str) -> list[str]:
    lower = sorted(LOWER_IS_BETTER)
    higher = sorted(HIGHER_IS_BETTER)
    unknown = sorted({m.split("/")[-1] for m in metrics if not better[m]})
    lines = [
        f"- Agent tables: estimate over seeds [{confidence} percentile-bootstrap CI over seeds]; "
        "returns by the interquartile mean (IQM), other metrics by the mean of per-seed means "
        "(Agarwal et al. 2021). (n=k): only k seeds have the metric.",
        "- Comparison tables: improvement of the first variant over the second in percent of the "
        f"second's mean, positive = better [{confidence} bootstrap CI, seeds of each resampled "
        "independently]; p: two-sided Welch t-test (Welch 1947) / Mann-Whitney U test "
        "(Mann & Whitney 1947) on per-seed values; n/a: undefined (fewer than 2 seeds, or no spread).",
        f"- Lower is better (↓): {', '.join(n + ('@k' if n == 'sufficiency' else '') for n in lower)}. "
        f"Higher is better (↑): "
        f"{', '.join(n + ('@k' if n == 'comprehensiveness' else '') for n in higher)}.",
    ]
    if unknown:
        lines.append(f"- No better direction (plain percent difference): {', '.join(unknown)}.")
    return lines


def markdown_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a markdown table: the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":--"] + ["--:"] * (len(header) - 1)) + "|"]
    return lines + ["| " + " | ".join(line) + " |" for line in cells]


def _decimals(values: Iterable[float]) -> int:
    """Decimals that show 3 significant digits of the largest finite magnitude (0 to 4)."""
    finite = [abs(v) for v in values if isinstance(v, int | float) and math.isfinite(v) and v != 0]
    if not finite:
        return 3
    return int(np.clip(2 - math.floor(math.log10(max(finite))), 0, 4))


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else "n/a"


def _p(value: float) -> str:
    """A p-value with 3 significant digits."""
    return f"{value:.3g}" if math.isfinite(value) else "n/a"
