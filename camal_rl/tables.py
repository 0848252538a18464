"""The comparison table of ``camal-rl compare`` as files: CSV (one tidy row per
:func:`camal_rl.statistics.comparison_table` row) and markdown (per env, a table of agent variants, a
table of comparisons, and a legend of what the numbers are); and :func:`quote_p`, the p-values of
two sets of per-seed values as the tables print them, for a text that quotes one. The numbers
come from :mod:`camal_rl.statistics`; this module only formats them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.statistics import (
    COLUMNS,
    CORRECTIONS,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    Values,
    mann_whitney_u,
    welch_t_test,
)

SIGNIFICANCE = 0.05
"""A comparison is bold when both its adjusted p-values (Welch, Mann-Whitney) are below this."""


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write :func:`~camal_rl.statistics.comparison_table` rows as CSV, one row each, columns
    :data:`~camal_rl.statistics.COLUMNS` (then any others); ``nan`` is written as ``nan``.

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
    """:func:`~camal_rl.statistics.comparison_table` rows as markdown: per env, a table of agent
    variants (one row each, metrics as columns, cells ``estimate [95% CI]``), a table of
    comparisons (cells: percent improvement [CI], probability of improvement [CI], the Welch /
    Mann-Whitney p-values and the same adjusted for the table's multiplicity, 3 significant
    digits; bold when both adjusted p-values are below :data:`SIGNIFICANCE`) with a line naming
    the correction and the family, and a legend of what the numbers are and which direction is
    better.
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
            lines += ["", _family_line(comparisons) if any(map(_has_spread, comparisons)) else ONE_SEED_LINE]
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
    return [
        [name, *(_comparison_cell(by_metric[m]) if m in by_metric else "n/a" for m in metrics)]
        for name, by_metric in table.items()
    ]


ONE_SEED_LINE = (
    "One seed per agent: the percent difference alone, with no interval or test (run two seeds or "
    "more, `--seeds 0 1 2 3 4`, for those)."
)


def _has_spread(row: Mapping[str, Any]) -> bool:
    """Whether a comparison has two seeds or more on each side (what a CI or a test needs)."""
    return int(row["n"]) >= 2 and int(row["versus_n"]) >= 2


def _comparison_cell(row: Mapping[str, Any]) -> str:
    """``+12.3% [lo, hi]; P(better) 0.80 [lo, hi]; p WELCH / MWU (adj. WELCH / MWU)``, bold when
    both adjusted p-values are below :data:`SIGNIFICANCE`; with one seed on a side, only what one
    seed supports: the percent difference (``+12.3%``)."""
    gain = "n/a"
    if math.isfinite(row["improvement_pct"]):
        gain = f"{row['improvement_pct']:+.1f}%"
        if math.isfinite(row["improvement_low"]):
            gain += f" [{row['improvement_low']:+.1f}, {row['improvement_high']:+.1f}]"
    if not _has_spread(row):
        return gain
    chance = _fmt(row["prob_improvement"], 2)
    if math.isfinite(row["prob_improvement_low"]):
        chance += f" [{row['prob_improvement_low']:.2f}, {row['prob_improvement_high']:.2f}]"
    welch, mwu = row["welch_p_adj"], row["mwu_p_adj"]
    text = (
        f"{gain}; P(better) {chance}; p {format_p(row['welch_p'])} / {format_p(row['mwu_p'])} "
        f"(adj. {format_p(welch)} / {format_p(mwu)})"
    )
    return f"**{text}**" if welch < SIGNIFICANCE and mwu < SIGNIFICANCE else text


def _family_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """Which correction adjusted the p-values of one comparison table, over how many tests."""
    methods = sorted({str(r["p_adj_method"]) for r in rows})
    correction = " and ".join(CORRECTIONS.get(m, m) for m in methods)
    n_welch = sum(math.isfinite(r["welch_p"]) for r in rows)
    n_mwu = sum(math.isfinite(r["mwu_p"]) for r in rows)
    return (
        f"adj.: {correction} over this table's {n_welch} Welch and {n_mwu} Mann-Whitney tests, "
        f"each kind a family; **bold**: both adjusted p < {SIGNIFICANCE:g}."
    )


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
        "independently]; P(better): probability of improvement, the share of pairs of seeds "
        "(one of each variant) where the first's is better, ties one half, above 0.5 = better "
        f"(Agarwal et al. 2021) [{confidence} bootstrap CI, the same resampling]; p: two-sided "
        "Welch t-test (Welch 1947) / Mann-Whitney U test (Mann & Whitney 1947; exact for small "
        "samples, by permutation with ties) on per-seed values; adj.: the same p-values adjusted "
        "for multiple testing over the table (every comparison and metric in it; the Welch and the "
        "Mann-Whitney tests each a family), as the line under it says; bold: both adjusted p-values "
        f"below {SIGNIFICANCE:g}; n/a: undefined (fewer than 2 seeds, or no spread), not counted "
        "in the family.",
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


def format_p(value: float) -> str:
    """A p-value as the tables print it: 3 significant digits, ``n/a`` for ``nan``."""
    return f"{value:.3g}" if math.isfinite(value) else "n/a"


def quote_p(a: Values, b: Values) -> str:
    """The two-sided p-values of per-seed values ``a`` against ``b`` as a comparison cell prints
    them, ``"p WELCH / MANN-WHITNEY"`` (:func:`~camal_rl.statistics.welch_t_test`,
    :func:`~camal_rl.statistics.mann_whitney_u`: exact for small samples, by permutation with ties),
    for a text that quotes a test: 3 v 3 fully separated gives ``"p 0.00805 / 0.1"`` for
    ``[0.6, 0.7, 0.8]`` vs ``[0.2, 0.3, 0.4]``. Unadjusted: a text that quotes several tests says
    so, or adjusts them (:func:`camal_rl.statistics.adjust_p_values`).

    :param a: per-seed values of one variant (``nan``: no value).
    :param b: per-seed values of the other.
    """
    return f"p {format_p(welch_t_test(a, b).p_value)} / {format_p(mann_whitney_u(a, b).p_value)}"
