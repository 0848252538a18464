"""A sweep of (env x method x seed) runs, trained and evaluated in parallel, then compared from the
files alone (``camal-rl compare``, :func:`camal_rl.compare.compare`; ``camal-rl tune``).

- :mod:`~camal_rl.sweep.plan`: :class:`SweepConfig` (its option groups :class:`TrainingSettings`,
  :class:`~camal_rl.settings.EvaluationSettings` and :class:`ExecutionSettings`, which ``tune``
  nests too), the runs it is made of, the checks before any run;
- :mod:`~camal_rl.sweep.executors`: the process pool and Ray, signals, progress and the estimate;
- :mod:`~camal_rl.sweep.report`: the tables, plots and notes.

Every run is an ordinary run directory; what it still needs is asked of it
(:meth:`camal_rl.rundir.RunDir.needs`), so the same command continues a sweep.
"""

from camal_rl.sweep.executors import (
    RunOutcome,
    evaluation_seconds,
    format_duration,
    progress_line,
    run_one,
    run_process_pool,
    run_ray,
    run_sweep,
    sweep_estimate,
)
from camal_rl.sweep.plan import (
    DEFAULT_EXECUTION,
    DEFAULT_METHODS,
    DEFAULT_TRAINING,
    SWEEP_EVALUATION,
    ExecutionSettings,
    Job,
    SweepConfig,
    TrainingSettings,
    check_same_training,
    check_sweep,
    check_table_options,
    parse_variant,
    require_some_runs,
    run_needs,
)
from camal_rl.sweep.report import aggregate_sweep, flat_notes, partial_note, report_sweep

__all__ = [
    "DEFAULT_EXECUTION",
    "DEFAULT_METHODS",
    "DEFAULT_TRAINING",
    "SWEEP_EVALUATION",
    "ExecutionSettings",
    "Job",
    "RunOutcome",
    "SweepConfig",
    "TrainingSettings",
    "aggregate_sweep",
    "check_same_training",
    "check_sweep",
    "check_table_options",
    "evaluation_seconds",
    "flat_notes",
    "format_duration",
    "parse_variant",
    "partial_note",
    "progress_line",
    "report_sweep",
    "require_some_runs",
    "run_needs",
    "run_one",
    "run_process_pool",
    "run_ray",
    "run_sweep",
    "sweep_estimate",
]
