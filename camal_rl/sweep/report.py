"""The report of a sweep, from the run directories alone: returns as IQM with 95% bootstrap CIs,
attention metrics as means with CIs, each variant tested against the baseline (and CAMAL against
energy) with Welch's t-test and the Mann-Whitney U test; ``OUT/comparison.md``,
``comparison.csv`` and ``OUT/plots/``. The tables hold only the runs trained and evaluated as the
sweep asks; a note heading ``comparison.md`` names the others and why, and the variants whose
saliency maps are mostly flat.
"""

from __future__ import annotations

import difflib
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camal_rl.evaluation import flat_note
from camal_rl.sweep.plan import Job, SweepConfig, run_needs

if TYPE_CHECKING:
    from camal_rl.statistics import RunResult


def report_sweep(cfg: SweepConfig, jobs: Sequence[Job]) -> dict[str, Path]:
    """Tables and plots of the jobs that are done (:attr:`RunNeeds.done`), headed by a note on the
    others (:func:`partial_note`); prints the note and the files written.

    :return: the tables and plots written, by name.
    """
    reasons = {run.run_dir: run_needs(run, evaluation).reason for run, evaluation in jobs}
    complete = [path for path, reason in reasons.items() if not reason]
    partial = partial_note(reasons, cfg.out)
    if partial:
        print(partial)
    written = aggregate_sweep(cfg, complete, note=partial)
    for path in written.values():
        print(f"wrote {path}")
    return written


def partial_note(reasons: Mapping[Path, str], out: Path) -> str | None:
    """None when every run is done, else which runs are not and why (lines of markdown); ``reasons``
    maps each run directory under ``out`` to what it still needs (:attr:`RunNeeds.reason`)."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in reasons.items():
        if reason:
            by_reason.setdefault(reason, []).append(str(path.relative_to(out)))
    if not by_reason:
        return None
    done = len(reasons) - sum(len(paths) for paths in by_reason.values())
    lines = (f"- {why}: {', '.join(paths)}" for why, paths in by_reason.items())
    return "\n".join((f"Partial sweep: {done} of {len(reasons)} runs done; not in the tables:", *lines))


def flat_notes(results: Sequence[RunResult], methods: Iterable[str]) -> str:
    """A line per agent variant and saliency method whose maps are mostly flat (mean
    ``flat_share`` over the runs that report it, :func:`~camal_rl.evaluation.flat_note`; how many
    of the variant's runs those are when not all), or ''."""
    from camal_rl.statistics import group_results, metric_values

    lines = []
    for (env, _, label), runs in group_results(results).items():
        for method in methods:
            shares = [v for v in metric_values(runs, f"{method}/flat_share") if math.isfinite(v)]
            note = flat_note(method, statistics.fmean(shares)) if shares else None
            if note and len(shares) < len(runs):
                note += (
                    f"; from {len(shares)} of its {len(runs)} runs, the others evaluated before "
                    "camal-rl recorded flat_share (evaluate them again to count them)"
                )
            lines += [f"- {label} on {env}: {note}"] if note else []
    return "\n".join(lines)


def aggregate_sweep(
    cfg: SweepConfig, paths: Iterable[Path] | None = None, *, note: str | None = None
) -> dict[str, Path]:
    """Tables and plots of the runs under ``cfg.out`` (or ``paths``), from their files alone;
    ``note`` (e.g. which runs are not complete) heads ``comparison.md``."""
    from camal_rl.plots import DEFAULT_BAR_METRICS, write_plots
    from camal_rl.statistics import available_metrics, comparison_table, load_results, metric_name
    from camal_rl.tables import write_csv, write_markdown

    paths = list(paths) if paths is not None else [cfg.out]
    results = load_results(paths) if paths else []
    evaluated = [r for r in results if r.metrics is not None]
    written: dict[str, Path] = {}
    rows: list[dict[str, Any]] = []
    if evaluated:
        present = available_metrics(evaluated)
        wanted = [metric_name(m) for m in cfg.table_metrics()]
        metrics = [m for m in wanted if m in present]
        missing = [m for m in wanted if m not in present] if cfg.metrics else []
        if missing:
            close = {m: difflib.get_close_matches(m, present, n=1, cutoff=0.6) for m in missing}
            named = ", ".join(f"{m} (did you mean {close[m][0]}?)" if close[m] else m for m in missing)
            print(
                f"--metrics {named}: in no evaluated run's metrics.json, left out of the tables; "
                f"the runs have {', '.join(present)}"
            )
        available = set(present)
        pairs = [tuple(p.split(":", 1)) for p in cfg.pairs if ":" in p]
        names = {r.method for r in evaluated} | {r.label for r in evaluated}
        baseline = cfg.baseline if cfg.baseline in names else None
        pairs = [p for p in pairs if p[0] in names and p[1] in names]
        rows = comparison_table(
            evaluated,
            metrics,
            baseline=baseline,
            pairs=pairs,  # type: ignore[arg-type]
            correction=cfg.correction,
        )
        written["csv"] = write_csv(rows, cfg.out / "comparison.csv")
    flat = flat_notes(evaluated, cfg.evaluation.saliency)
    if flat:
        print(flat)
        note = f"{note}\n\n{flat}" if note else flat
    if evaluated or note:
        title = f"camal-rl compare: {cfg.out}"
        written["markdown"] = write_markdown(rows, cfg.out / "comparison.md", title=title, note=note)
    bars = None  # the plots' defaults, and the EPG of every saliency method the sweep scores
    if evaluated:
        bar_metrics = (*DEFAULT_BAR_METRICS, *(f"{method}/epg" for method in cfg.evaluation.saliency))
        bars = [m for m in dict.fromkeys(bar_metrics) if m in available]
    plots = write_plots(results, cfg.out / "plots", metrics=bars) if results else []
    written.update({p.stem: p for p in plots})
    return written
