"""Aggregation and statistics, all in one place (docs/design.md, "Attention metrics";
docs/metrics.md, "Aggregation" and "Statistics"): from per-step metric values to the comparison table
of ``camal-rl compare``. The per-sample metrics they summarise live in :mod:`camal_rl.metrics`.

- :mod:`~camal_rl.statistics.estimates`: the interquartile mean and percentile-bootstrap
  confidence intervals (rliable; Agarwal et al., NeurIPS 2021), and per step -> per episode ->
  per seed summaries with coverage.
- :mod:`~camal_rl.statistics.runs`: run directories read into records, and each run's (seed's)
  value of a metric.
- :mod:`~camal_rl.statistics.significance`: Welch's t-test and the Mann-Whitney U test over
  seeds, and the correction of their p-values for multiple testing (Holm, Benjamini-Hochberg).
- :mod:`~camal_rl.statistics.improvement`: percent improvement and probability of improvement,
  with stratified bootstrap intervals.
- :mod:`~camal_rl.statistics.comparison`: per-seed aggregation of each agent variant and the
  comparison table (written as markdown and CSV by :mod:`camal_rl.tables`).

Every helper drops ``nan`` values (a metric undefined on an empty mask, a seed without the
metric) before computing anything and reports how many values it rests on.
"""

from camal_rl.statistics.comparison import (
    COLUMNS,
    HIGHER_IS_BETTER,
    IQM_METRICS,
    LOWER_IS_BETTER,
    aggregate,
    better_direction,
    comparison_table,
    summary_statistic,
)
from camal_rl.statistics.estimates import (
    Statistic,
    Summary,
    Values,
    bootstrap_ci,
    check_bootstrap,
    defined,
    episode_means,
    iqm,
    mean_or_nan,
    percentile_bootstrap,
    summarize,
    summarize_steps,
)
from camal_rl.statistics.improvement import (
    BootstrapEstimate,
    Improvement,
    ProbabilityOfImprovement,
    percent_improvement,
    probability_of_improvement,
)
from camal_rl.statistics.runs import (
    METHOD_ORDER,
    VARIANTS,
    GroupKey,
    MetricPath,
    MonitorEpisodes,
    RunResult,
    available_metrics,
    check_metrics,
    find_runs,
    group_results,
    load_results,
    metric_name,
    metric_value,
    metric_values,
    parse_metric,
    read_monitor,
    read_run,
    state_counts,
    variant_order,
)
from camal_rl.statistics.significance import (
    CORRECTIONS,
    MAX_EXACT_SPLITS,
    Correction,
    TestResult,
    adjust_p_values,
    holm,
    mann_whitney_u,
    welch_t_test,
)

__all__ = [
    "COLUMNS",
    "CORRECTIONS",
    "HIGHER_IS_BETTER",
    "IQM_METRICS",
    "LOWER_IS_BETTER",
    "MAX_EXACT_SPLITS",
    "METHOD_ORDER",
    "VARIANTS",
    "BootstrapEstimate",
    "Correction",
    "GroupKey",
    "Improvement",
    "MetricPath",
    "MonitorEpisodes",
    "ProbabilityOfImprovement",
    "RunResult",
    "Statistic",
    "Summary",
    "TestResult",
    "Values",
    "adjust_p_values",
    "aggregate",
    "available_metrics",
    "better_direction",
    "bootstrap_ci",
    "check_bootstrap",
    "check_metrics",
    "comparison_table",
    "defined",
    "episode_means",
    "find_runs",
    "group_results",
    "holm",
    "iqm",
    "load_results",
    "mann_whitney_u",
    "mean_or_nan",
    "metric_name",
    "metric_value",
    "metric_values",
    "parse_metric",
    "percent_improvement",
    "percentile_bootstrap",
    "probability_of_improvement",
    "read_monitor",
    "read_run",
    "state_counts",
    "summarize",
    "summarize_steps",
    "summary_statistic",
    "variant_order",
    "welch_t_test",
]
