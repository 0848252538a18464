"""The comparison behind ``camal-rl compare``: per-seed values of each agent variant summarised
over seeds, and each variant tested against its references, as tidy rows (written as markdown and
CSV by :mod:`camal_rl.tables`).

The seed is the unit of replication. Returns are summarised by the interquartile mean
(rliable's estimator; Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021), attention metrics by the mean (:func:`summary_statistic`), each with a
percentile-bootstrap interval over seeds. A comparison row holds the tests of
:mod:`~camal_rl.statistics.significance` (Welch, Mann-Whitney, their p-values adjusted for the
number of tests in the table) and the estimates of :mod:`~camal_rl.statistics.improvement`
(percent improvement, probability of improvement).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_args

import numpy as np

from camal_rl.config import Method
from camal_rl.errors import InputError
from camal_rl.statistics.estimates import Statistic, bootstrap_ci, iqm
from camal_rl.statistics.improvement import percent_improvement, probability_of_improvement
from camal_rl.statistics.runs import (
    GroupKey,
    RunResult,
    check_metrics,
    group_results,
    metric_name,
    metric_values,
    parse_metric,
)
from camal_rl.statistics.significance import (
    CORRECTIONS,
    Correction,
    adjust_p_values,
    mann_whitney_u,
    welch_t_test,
)

IQM_METRICS = frozenset({"return"})
"""Metrics summarised by the IQM over seeds (rliable's estimator for returns); every other
metric by the mean (attention metrics are bounded and already averaged over steps and episodes)."""
LOWER_IS_BETTER = frozenset({"deletion_auc", "sufficiency"})
"""Metrics where a lower value is better (``sufficiency@k`` by its name before ``@``)."""
HIGHER_IS_BETTER = frozenset(
    {
        "return",
        "success_rate",
        "epg",
        "iou",
        "pointing_game",
        "roc_auc",
        "insertion_auc",
        "comprehensiveness",
        "occlusion_kl_ratio",
        "occlusion_kl_log_ratio",
        "behaviour_ratio",
        "behaviour_log_ratio",
    }
)
"""Metrics where a higher value is better (``comprehensiveness@k`` by its name before ``@``)."""
COLUMNS = (
    "env",
    "algo",
    "label",
    "method",
    "coef",
    "metric",
    "better",
    "n_runs",
    "n",
    "seeds",
    "mean",
    "iqm",
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "versus",
    "versus_n",
    "versus_mean",
    "welch_t",
    "welch_df",
    "welch_p",
    "welch_p_adj",
    "mwu_u",
    "mwu_p",
    "mwu_p_adj",
    "mwu_method",
    "p_adj_method",
    "improvement_pct",
    "improvement_low",
    "improvement_high",
    "prob_improvement",
    "prob_improvement_low",
    "prob_improvement_high",
    "note",
)
"""Columns of :func:`comparison_table` rows, in CSV order."""


def summary_statistic(metric: str | Sequence[str]) -> Statistic:
    """``"iqm"`` for returns (rliable's recommendation), ``"mean"`` for every other metric."""
    return "iqm" if parse_metric(metric)[-1] in IQM_METRICS else "mean"


def aggregate(
    results: Sequence[RunResult],
    metrics: Iterable[str | Sequence[str]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: int = 0,
) -> list[dict[str, Any]]:
    """Summary over seeds of each metric per agent variant ``(env, algo, label)``.

    :param results: runs (:func:`~camal_rl.statistics.load_results`).
    :param metrics: metric names or paths (:func:`~camal_rl.statistics.parse_metric`).
    :param confidence: coverage of the bootstrap intervals.
    :param n_resamples: bootstrap resamples.
    :param rng: seed of the bootstrap (the same for every cell, so reruns give equal tables).
    :return: one row per (variant, metric): ``env, algo, label, method, coef, metric, n_runs``,
        ``n`` (seeds with a defined value), ``seeds``, ``mean``, ``iqm``, ``statistic`` (``iqm`` for
        returns, else ``mean``), ``estimate`` (that statistic) and ``ci_low``/``ci_high``, its
        percentile-bootstrap interval over seeds (``nan`` with fewer than two seeds).
    """
    metrics = list(metrics)
    rows = []
    for (env, algo, label), runs in group_results(results).items():
        for metric in metrics:
            values = metric_values(runs, metric)
            defined = ~np.isnan(values)
            statistic = summary_statistic(metric)
            estimate, low, high = bootstrap_ci(
                values, statistic=statistic, confidence=confidence, n_resamples=n_resamples, rng=rng
            )
            rows.append(
                {
                    "env": env,
                    "algo": algo,
                    "label": label,
                    "method": runs[0].method,
                    "coef": runs[0].coef,
                    "metric": metric_name(metric),
                    "n_runs": len(runs),
                    "n": int(defined.sum()),
                    "seeds": " ".join(str(r.seed) for r, ok in zip(runs, defined, strict=True) if ok),
                    "mean": float(values[defined].mean()) if defined.any() else math.nan,
                    "iqm": iqm(values),
                    "statistic": statistic,
                    "estimate": estimate,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return rows


def better_direction(metric: str | Sequence[str]) -> str:
    """``"higher"``, ``"lower"`` or ``""`` (no agreed direction, e.g. episode length) for a metric,
    by its last name without ``@k``."""
    name = parse_metric(metric)[-1].split("@")[0]
    if name in LOWER_IS_BETTER:
        return "lower"
    if name in HIGHER_IS_BETTER:
        return "higher"
    return ""


def _matches(result: RunResult, name: str) -> bool:
    return name in (result.method, result.label)


def _check_names(results: Sequence[RunResult], names: Iterable[str]) -> None:
    known = set(get_args(Method)) | {r.label for r in results}
    for name in names:
        if name not in known:
            raise InputError(
                f"{name!r} is neither a method ({', '.join(get_args(Method))}) nor a label of these runs "
                f"({', '.join(sorted({r.label for r in results}))})"
            )


def comparison_table(
    results: Sequence[RunResult],
    metrics: Iterable[str | Sequence[str]],
    baseline: str | None = "none",
    pairs: Iterable[tuple[str, str]] = (("camal", "energy"),),
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: int = 0,
    correction: Correction = "holm",
) -> list[dict[str, Any]]:
    """Summaries over seeds and tests between agent variants, as tidy rows (:data:`COLUMNS`).

    For each agent variant ``(env, algo, label)`` and metric there is one **summary row**
    (``versus == ""``): ``n`` seeds with a value, ``mean``, ``iqm``, and ``estimate`` with its
    bootstrap interval ``ci_low``/``ci_high`` (:func:`aggregate`: the IQM for
    returns, the mean for other metrics). Then one **comparison row** per reference it is tested
    against, in the same env and algorithm: the same summary, plus ``versus`` (the reference's
    label), ``welch_t/df/p`` (:func:`welch_t_test`), ``mwu_u/p/method`` (:func:`mann_whitney_u`),
    ``improvement_pct/low/high`` (:func:`percent_improvement`, positive = better in the
    metric's direction, plain percent difference where it has none) and
    ``prob_improvement/_low/_high`` (:func:`probability_of_improvement`, above 0.5 = better).
    ``note`` collects why a value is ``nan``.

    ``welch_p_adj`` and ``mwu_p_adj`` are the p-values adjusted for multiplicity
    (:func:`adjust_p_values`, the method in ``p_adj_method``) over the family of one env's
    comparison rows (one markdown comparison table: every variant against its references, over
    every metric), the Welch tests and the Mann-Whitney tests each a family of their own;
    undefined (``nan``) tests stay ``nan`` and do not count.

    :param results: runs (:func:`~camal_rl.statistics.load_results`).
    :param metrics: metric names or paths (:func:`~camal_rl.statistics.parse_metric`).
    :param baseline: method or label every other variant is tested against (None: no baseline).
    :param pairs: further ``(variant, reference)`` tests, each a method or label; every variant
        matching the first is tested against every one matching the second.
    :param confidence: coverage of the bootstrap intervals.
    :param n_resamples: bootstrap resamples.
    :param rng: seed of every bootstrap.
    :param correction: multiplicity correction, ``"holm"`` or ``"bh"`` (Benjamini-Hochberg).
    :raises InputError: a metric is in no ``metrics.json``, a name is neither a method nor a
        label of the runs, or ``correction`` is unknown.
    """
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    metrics = [parse_metric(m) for m in metrics]
    pairs = list(pairs)
    check_metrics(results, metrics)
    _check_names(results, ([baseline] if baseline is not None else []) + [n for pair in pairs for n in pair])
    tests = ([(None, baseline)] if baseline is not None else []) + [(a, b) for a, b in pairs]
    summaries = {
        (row["env"], row["algo"], row["label"], row["metric"]): row
        for row in aggregate(results, metrics, confidence=confidence, n_resamples=n_resamples, rng=rng)
    }
    groups = group_results(results)
    compare = functools.partial(_comparison, confidence=confidence, n_resamples=n_resamples, rng=rng)
    rows = [row for key in groups for row in _variant_rows(groups, key, metrics, tests, summaries, compare)]
    _adjust_per_env(rows, correction)
    return rows


def _variant_rows(
    groups: Mapping[GroupKey, list[RunResult]],
    key: GroupKey,
    metrics: Sequence[str | Sequence[str]],
    tests: Sequence[tuple[str | None, str]],
    summaries: Mapping[tuple[str, str, str, str], Mapping[str, Any]],
    compare: Callable[..., dict[str, Any]],
) -> list[dict[str, Any]]:
    """The rows of the agent variant ``key``: per metric its summary row, then one comparison row
    (``compare``: :func:`_comparison`) per reference (:func:`_references`)."""
    runs = groups[key]
    references = _references(groups, key, tests)
    rows = []
    for metric in metrics:
        summary = {
            **_empty_row(),
            **summaries[(*key, metric_name(metric))],
            "better": better_direction(metric),
        }
        rows.append(summary)
        values = metric_values(runs, metric)
        for reference, others in references.items():
            rows.append(compare(summary, reference, values, metric_values(others, metric)))
    return rows


def _references(
    groups: Mapping[GroupKey, list[RunResult]], key: GroupKey, tests: Sequence[tuple[str | None, str]]
) -> dict[str, list[RunResult]]:
    """The variants the variant ``key`` is tested against, by label: for each test
    ``(first, second)``, every variant of its env and algorithm matching ``second`` when it matches
    ``first`` (``None``: any variant but ``second`` itself, the baseline test)."""
    env, algo, label = key
    variant = groups[key][0]
    references: dict[str, list[RunResult]] = {}
    for first, second in tests:
        if first is not None and not _matches(variant, first):
            continue
        if first is None and _matches(variant, second):
            continue
        for (env2, algo2, label2), others in groups.items():
            if (env2, algo2) == (env, algo) and label2 != label and _matches(others[0], second):
                references.setdefault(label2, others)
    return references


def _comparison(
    summary: Mapping[str, Any],
    reference: str,
    values: np.ndarray,
    ref_values: np.ndarray,
    *,
    confidence: float,
    n_resamples: int,
    rng: int,
) -> dict[str, Any]:
    """The comparison row of one variant's per-seed ``values`` against those of the variant labelled
    ``reference``: its ``summary`` row with the tests and estimates filled in."""
    welch = welch_t_test(values, ref_values)
    mwu = mann_whitney_u(values, ref_values)
    gain, chance = (
        estimate(
            values,
            ref_values,
            lower_is_better=summary["better"] == "lower",
            confidence=confidence,
            n_resamples=n_resamples,
            rng=rng,
        )
        for estimate in (percent_improvement, probability_of_improvement)
    )
    notes = [f"Welch: {welch.note}" if welch.note else "", f"U: {mwu.note}" if mwu.note else ""]
    notes.append(f"improvement: {gain.note}" if gain.note else "")
    notes.append(f"probability of improvement: {chance.note}" if chance.note else "")
    return {
        **summary,
        "versus": reference,
        "versus_n": welch.n_b,
        "versus_mean": float(np.nanmean(ref_values)) if welch.n_b else math.nan,
        "welch_t": welch.statistic,
        "welch_df": welch.df,
        "welch_p": welch.p_value,
        "mwu_u": mwu.statistic,
        "mwu_p": mwu.p_value,
        "mwu_method": mwu.method,
        "improvement_pct": gain.estimate,
        "improvement_low": gain.ci_low,
        "improvement_high": gain.ci_high,
        "prob_improvement": chance.estimate,
        "prob_improvement_low": chance.ci_low,
        "prob_improvement_high": chance.ci_high,
        "note": "; ".join(n for n in notes if n),
    }


def _adjust_per_env(rows: Sequence[dict[str, Any]], correction: Correction) -> None:
    """Fill ``welch_p_adj``, ``mwu_p_adj`` and ``p_adj_method`` of the comparison rows, each env's
    Welch and Mann-Whitney p-values a family of their own."""
    for env in dict.fromkeys(row["env"] for row in rows):
        family = [row for row in rows if row["env"] == env and row["versus"]]
        for column in ("welch_p", "mwu_p"):
            adjusted = adjust_p_values([row[column] for row in family], correction)
            for row, value in zip(family, adjusted, strict=True):
                row[f"{column}_adj"] = float(value)
                row["p_adj_method"] = correction


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
    row.update(versus="", mwu_method="", p_adj_method="", note="", better="")
    return row
