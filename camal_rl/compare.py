"""``camal-rl compare``: a sweep of (env x method x seed) runs, trained and evaluated in parallel,
then compared from the files alone.

Every run is an ordinary run directory under ``OUT/<env>/<label>/seed<k>``. A run that is already
trained and evaluated is skipped; an unfinished one (crash, Ctrl-C, machine gone) is resumed, so
the same command continues a sweep. The sweep itself lives in :mod:`camal_rl.sweep`: its plan
(:class:`SweepConfig`), its executors (a local process pool, or Ray tasks) and its report (tables,
plots, notes); this module is the command.
"""

from __future__ import annotations

from pathlib import Path

from camal_rl.errors import InputError
from camal_rl.sweep import (
    DEFAULT_METHODS,
    RunOutcome,
    SweepConfig,
    aggregate_sweep,
    check_same_training,
    check_sweep,
    evaluation_seconds,
    flat_notes,
    format_duration,
    parse_variant,
    partial_note,
    progress_line,
    report_sweep,
    require_some_runs,
    run_one,
    run_sweep,
    sweep_estimate,
)

__all__ = [
    "DEFAULT_METHODS",
    "RunOutcome",
    "SweepConfig",
    "aggregate_sweep",
    "compare",
    "evaluation_seconds",
    "flat_notes",
    "format_duration",
    "parse_variant",
    "partial_note",
    "progress_line",
    "require_some_runs",
    "run_one",
    "sweep_estimate",
]


def compare(cfg: SweepConfig) -> dict[str, Path]:
    """``camal-rl compare``: run the sweep (unless ``aggregate_only``), then aggregate it.

    The command line loads ``--preset NAME`` before parsing the other options; from Python, start
    from ``camal_rl.config.from_preset(NAME, SweepConfig, ...)``.

    :return: the tables and plots written, by name.
    :raises InputError: bad options; also when some runs failed (after aggregating the others).
    """
    runs = check_sweep(cfg)
    jobs = cfg.jobs()
    if cfg.aggregate_only:
        require_some_runs(runs, cfg.out, "--aggregate-only", "--preset, --envs, --algo, --methods, --seeds")
        failed: list[RunOutcome] = []
    else:
        check_same_training(runs, cfg.out)
        failed = [outcome for outcome in run_sweep(cfg, jobs) if outcome.state == "failed"]
    written = report_sweep(cfg, jobs)
    if failed:
        raise InputError(
            f"{len(failed)} of {len(runs)} runs failed ({'; '.join(o.error for o in failed[:3])}); "
            "the <run>.log file beside each holds its traceback. Run the same command again to resume them."
        )
    return written
