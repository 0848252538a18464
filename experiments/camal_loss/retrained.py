"""Retrained runs against the study's: does a confirmatory cell's run, trained again with the
seed and settings of a study run whose model is gone, log the same periodic evaluations?

For every run of the confirmatory sweep folder that has a counterpart at the same place in the
study's sweep folder (``<env>/<variant>/seed<N>``; ``--methods`` picks which, by default the
``none`` and ``energy`` runs that the pre-registration reuses), one row: how many of its
``evaluations.csv`` rows equal the study run's at the same step in every column both have but
the wall time, the steps up to which every row is equal, the first step at which a greedy evaluation
reaches the solved return in each (0.9 on MiniGrid, 75 on ViZDoom), and the steps of the saved
models from which each was resumed (:func:`resumes`). A run resumed without its replay
buffer or with its envs restarted is not the uninterrupted run, so rows after a resume may
differ.

    python experiments/camal_loss/retrained.py experiments/camal_loss/runs/doorkey-dqn \\
        experiments/camal_study/runs/doorkey-dqn
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.runlogs import rows_with
from camal_rl.statistics import load_results, variant_order
from camal_rl.tables import markdown_table
from experiments.camal_loss.endpoints import first_solved, solved_threshold, steps

IGNORED = ("wall_time_s", "evaluation_seconds")
"""Columns and metrics.json fields that differ between identical runs (time taken)."""
RESUMING = re.compile(r"^resuming .* at (\d+) steps$", re.MULTILINE)
"""What ``camal-rl train --resume`` prints (:func:`camal_rl.train.train`), in the sweep's log."""
REUSED = ("none", "energy")
"""The methods whose study runs the pre-registration reuses and trains again."""


def same(x: float, y: float) -> bool:
    """Equal, nan equal to nan (a metric undefined in both)."""
    return x == y or (math.isnan(x) and math.isnan(y))


def same_row(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Every column both rows have, but :data:`IGNORED`, holds the same value in each (nan = nan).
    A column that one lacks is left out: later versions log more (``flat_share``)."""
    return all(same(a[key], b[key]) for key in (set(a) & set(b)) - set(IGNORED))


def resumes(run: Path) -> list[int]:
    """The step of the saved model each later session of ``run`` resumed from: the ``resuming ...
    at N steps`` lines of the sweep's log beside it, else (no log: trained by hand) the first
    logged step of each ``progress.N.csv``, one logger interval after the resume at most."""
    log = RunDir(run).sweep_log
    if log.exists():
        return [int(m) for m in RESUMING.findall(log.read_text(errors="replace"))]
    starts = []
    for path in RunDir(run).progress_files()[1:]:
        rows = rows_with(path, "time/total_timesteps")
        if rows:
            starts.append(int(float(rows[0]["time/total_timesteps"])))
    return starts


def compare_rows(
    ours: Sequence[Mapping[str, float]], theirs: Sequence[Mapping[str, float]]
) -> tuple[int, int, float]:
    """(rows of ``ours`` equal to ``theirs``'s row at the same step, how many rows ``ours`` has,
    the last step of the leading run of equal rows: -1 when the first row differs)."""
    by_step = {row["step"]: row for row in theirs}
    equal = 0
    prefix: float = -1
    leading = True
    for row in ours:
        other = by_step.get(row["step"])
        same = other is not None and same_row(row, other)
        equal += same
        leading = leading and same
        if leading:
            prefix = row["step"]
    return equal, len(ours), prefix


def numbers(report: Any, path: str = "") -> dict[str, float]:
    """Every number of a ``metrics.json`` by its path (``variants/train/return/mean``), lists
    by index; booleans and :data:`IGNORED` fields left out."""
    if isinstance(report, Mapping):
        items: Iterable[tuple[Any, Any]] = report.items()
    elif isinstance(report, list):
        items = enumerate(report)
    else:
        is_number = isinstance(report, int | float) and not isinstance(report, bool)
        return {path: float(report)} if is_number else {}
    return {
        key: value
        for name, child in items
        if name not in IGNORED
        for key, value in numbers(child, f"{path}/{name}" if path else str(name)).items()
    }


def compare_metrics(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> tuple[int, int, float]:
    """(numbers of ``ours`` equal to ``theirs``'s at the same path, how many paths both have,
    the largest difference among the others relative to the larger magnitude of the two: 0 when
    all are equal, 1 or more when a sign or a zero differs)."""
    a, b = numbers(ours), numbers(theirs)
    shared = [key for key in a if key in b]
    unequal = [key for key in shared if not same(a[key], b[key])]
    largest = max((abs(a[k] - b[k]) / max(abs(a[k]), abs(b[k])) for k in unequal), default=0.0)
    return len(shared) - len(unequal), len(shared), largest


def table(sweep: Path, study: Path, methods: Sequence[str]) -> list[str]:
    """One row per run of ``sweep`` whose counterpart exists under ``study`` (see the module)."""
    header = [
        "run",
        "rows equal to the study's",
        "equal up to step",
        "first eval solved (retrained / study)",
        "metrics.json numbers equal (largest relative difference)",
        "retrained: resumed from step",
        "study: resumed from step",
    ]
    rows = []
    results = [r for r in load_results([sweep], complete_only=True) if r.method in methods]
    for result in sorted(results, key=lambda r: (variant_order(r), r.seed)):
        twin = study / result.path.relative_to(sweep)
        if not RunDir(twin).exists():
            continue
        theirs = RunDir(twin).read_evaluations()
        equal, total, prefix = compare_rows(result.evaluations, theirs)
        solved = solved_threshold(result.env)
        firsts = (first_solved(result.evaluations, solved), first_solved(theirs, solved))
        same, shared, largest = compare_metrics(result.metrics or {}, RunDir(twin).read_metrics() or {})
        rows.append(
            [
                f"`{result.label}` seed {result.seed}",
                f"{equal} of {total}",
                "none" if prefix < 0 else steps(prefix),
                " / ".join(map(steps, firsts)),
                f"{same} of {shared} ({largest:.1g})",
                ", ".join(f"{s:,}" for s in resumes(result.path)) or "never",
                ", ".join(f"{s:,}" for s in resumes(twin)) or "never",
            ]
        )
    if not rows:
        raise InputError(
            f"no complete run of {', '.join(methods)} under {sweep} has a counterpart under {study}; "
            "pass the confirmatory sweep folder first and the study's second"
        )
    return markdown_table(header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the confirmatory sweep folder (runs trained again)")
    parser.add_argument("study", type=Path, help="the study's sweep folder of the same cell")
    parser.add_argument(
        "--methods", nargs="+", default=list(REUSED), help="methods to compare (none, energy)"
    )
    args = parser.parse_args(argv)
    try:
        print("\n".join(table(args.sweep, args.study, args.methods)))
    except InputError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
