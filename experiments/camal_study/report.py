"""The study's headline tables, from the run directories alone.

For every finished cell (a sweep folder under experiments/camal_study/runs): per agent variant,
the seeds evaluated, return IQM and the main attention metrics (estimate [95% CI] over seeds),
each variant's p-values against the baseline (Welch / Mann-Whitney U), CAMAL's faithfulness
improvement over energy in percent with its CI, and the training speed relative to the baseline
(env steps per wall-clock second over the whole training, periodic evaluations included).

Run: ``python experiments/camal_study/report.py [--min-return R] [--merge] [--per-seed] [CELL ...]``
(default: every cell but tune; ``--min-return`` adds the same tables over the seeds that reached
return R; ``--merge`` reports the folders given as one cell, e.g. a cell with a post-hoc sweep
beside it; ``--per-seed`` prints instead one row per run: its metrics, when it learnt, its speed).
``--tables FILE`` writes the study's tables file instead (every cell of :data:`STUDY_TABLES`:
experiments/camal_study/TABLES.md, which RESULTS.md quotes).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from camal_rl.rundir import RunDir
from camal_rl.statistics import RunResult, comparison_table, load_results, mean_or_nan, metric_value

RUNS = Path("experiments/camal_study/runs")
HEADLINE = (
    "return",
    "gradcam/epg",
    "gradcam/iou",
    "perturbation/epg",
    "gradcam/deletion_auc",
    "gradcam/insertion_auc",
    "gradcam/occlusion_kl_log_ratio",
    "behaviour/behaviour_log_ratio",
    "distractors/return",
)
FAITHFULNESS = ("gradcam/deletion_auc", "gradcam/insertion_auc", "gradcam/occlusion_kl_log_ratio")
SALIENCY_METRICS = ("epg", "iou", "pointing_game", "deletion_auc", "insertion_auc", "occlusion_kl_log_ratio")
FULL = (
    "return",
    *(f"{saliency}/{m}" for saliency in ("gradcam", "perturbation") for m in SALIENCY_METRICS),
    "behaviour/behaviour_log_ratio",
    "distractors/return",
)


PAIRS = (("camal", "energy"), ("camal-v1", "energy"))
"""CAMAL against energy: the study trained the loss now called ``camal-v1``."""

STUDY_TABLES: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    ("DoorKey-5x5 (partial view), PPO", ("doorkey-ppo",), 0.5),
    ("DoorKey-5x5 (partial view), DQN", ("doorkey-dqn",), None),
    ("LavaCrossingS9N1 (partial view), PPO", ("lava-ppo",), None),
    ("LavaCrossingS9N1, PPO, and CAMAL at 0.1 (post hoc)", ("lava-ppo", "lava-diagnostic"), None),
    ("ViZDoom basic, PPO", ("vizdoom-ppo",), None),
    ("ViZDoom basic, PPO, unscaled rewards, 100k (no agent learnt)", ("vizdoom-ppo-gpu-unscaled",), None),
)
"""The sections of the tables file (``--tables``): title, sweep folders reported as one cell, and
the return above which a secondary table keeps only the seeds that solve the task (None: none)."""

TABLES_HEADER = """# The study's tables

Written from the run directories by `python experiments/camal_study/report.py --tables
experiments/camal_study/TABLES.md`; do not edit by hand. What they show, and the verdicts:
[RESULTS.md](RESULTS.md).

- Agents are labelled `<algo>-<method>[-c<coef>]`: `camal-v1` is the loss this study trained as
  CAMAL (since redesigned, docs/camal_loss.md), `none` the baseline.
- Estimate [95% percentile-bootstrap CI] over seeds: the IQM for returns, the mean otherwise.
- p-values: Welch's t-test / Mann-Whitney U test on per-seed values, two-sided, the latter exact
  (its smallest value is 0.0079 for 5 v 5 seeds and 0.1 for 3 v 3); not corrected for multiple
  tests. `n/a`: undefined (identical values).
- "first return >= X": the first periodic greedy evaluation (10 episodes every 10k steps) whose
  mean return reaches X. "train fps": env steps per wall-clock second over the whole training, on
  a machine shared with other runs: not a measure of a loss's cost.
"""

LEARNED = 0.5
"""Return a periodic evaluation must reach for a run to count as having learnt the task (MiniGrid
scores about 0.96 when it solves it, 0 when it does not)."""
LEARNED_BY_ENV = {"VizdoomBasic-v1": 50.0}
"""Other envs' thresholds: ViZDoom basic scores -300 without a kill, about +80 for a kill within
a few steps (101 for the kill, -1 a tic, -5 a missed shot)."""


def learnt_threshold(env: str) -> float:
    """:data:`LEARNED`, or the env's own threshold (:data:`LEARNED_BY_ENV`)."""
    return LEARNED_BY_ENV.get(env, LEARNED)


def learnt_at(result: RunResult, threshold: float = LEARNED) -> int | None:
    """The first periodic evaluation step (``evaluations.csv``) whose mean return reaches
    ``threshold``; None when none does."""
    for row in result.evaluations:
        if row.get("return_mean", math.nan) >= threshold:
            return int(row["step"])
    return None


def learnt_at_cell(results: Sequence[RunResult]) -> str:
    """One variant's :func:`learnt_at` steps, seed by seed, in thousands (``60k, 80k, never``);
    ``-`` when no run has periodic evaluations."""
    if not any(r.evaluations for r in results):
        return "-"
    steps = [learnt_at(r, learnt_threshold(r.env)) for r in sorted(results, key=lambda r: r.seed)]
    return ", ".join(learnt_text(s) for s in steps)


def learnt_text(step: int | None) -> str:
    """A :func:`learnt_at` step in thousands (``60k``), or ``never``."""
    return "never" if step is None else f"{step / 1000:g}k"


def training_fps(result: RunResult) -> float:
    """Env steps per second of wall time over the whole training, all sessions together (nan if
    not logged; :meth:`camal_rl.rundir.RunDir.training_time`)."""
    steps, seconds = RunDir(result.path).training_time()
    return steps / seconds if seconds > 0 else math.nan


def inference_cost(
    results: Sequence[RunResult], repeats: int = 100, batch: int = 8
) -> dict[str, tuple[int, float]]:
    """Per variant: parameter count and the median time of ``predict`` on image-only observations.

    One trained model per variant (its lowest seed), all timed alternately on the same images of
    the cell's environment, so that the machine's load falls on every variant alike.
    """
    from camal_rl.envs import make_masked_env
    from camal_rl.loading import load_agent

    models: dict[str, Any] = {}
    for result in sorted(results, key=lambda r: (r.label, r.seed)):
        if result.label not in models and (result.path / "model.zip").exists():
            models[result.label] = load_agent(result.path, device="cpu")
    if not models:
        return {}
    first = next(iter(models.values()))
    env = make_masked_env(first.env_id, **first.env_kwargs)
    images = np.stack([env.reset(seed=i)[0]["image"] for i in range(batch)])
    env.close()
    torch.set_num_threads(1)  # one core per call, as in experiments/bench_agents.py
    for agent in models.values():  # warm-up
        agent.model.predict({"image": images}, deterministic=True)
    times: dict[str, list[float]] = {label: [] for label in models}
    for r in range(repeats):
        for label in sorted(models, reverse=r % 2 == 1):
            start = time.process_time()  # CPU time: robust to the machine's other load
            models[label].model.predict({"image": images}, deterministic=True)
            times[label].append(time.process_time() - start)
    return {
        label: (sum(p.numel() for p in agent.model.policy.parameters()), statistics.median(times[label]))
        for label, agent in models.items()
    }


def cell(value: Mapping[str, Any], digits: int = 3) -> str:
    if not math.isfinite(value["estimate"]):
        return "-"
    ci = (
        ""
        if not math.isfinite(value["ci_low"])
        else f" [{value['ci_low']:.{digits}f}, {value['ci_high']:.{digits}f}]"
    )
    return f"{value['estimate']:.{digits}f}{ci}"


def p_value(row: Mapping[str, Any]) -> str:
    welch, mwu = row["welch_p"], row["mwu_p"]
    if not (math.isfinite(welch) or math.isfinite(mwu)):
        return "n/a"
    return f"{welch:.2g} / {mwu:.2g}"


def p_value_table(
    versus: Mapping[tuple[str, str, str], Mapping[str, Any]], metrics: Sequence[str]
) -> list[str]:
    """Markdown table of the p-values (:func:`p_value`) of every comparison, one row each, one
    column per metric; ``versus``: :func:`camal_rl.statistics.comparison_table`'s comparison rows by
    (label, reference, metric)."""
    lines = ["| comparison | " + " | ".join(metrics) + " |", "|:--|" + "--:|" * len(metrics)]
    for label, other in dict.fromkeys(key[:2] for key in versus):
        cells = [p_value(versus[(label, other, m)]) if (label, other, m) in versus else "-" for m in metrics]
        lines.append(f"| {label} vs {other} | " + " | ".join(cells) + " |")
    return lines


def evaluated_runs(paths: Path | Sequence[Path]) -> tuple[list[RunResult], str]:
    """The evaluated runs under ``paths`` (one sweep folder, or several that report as one cell),
    and the title of their tables (``### <folder> + <folder>``)."""
    paths = [paths] if isinstance(paths, Path) else list(paths)
    results = [r for r in load_results(paths) if r.metrics is not None]
    return results, "### " + " + ".join(path.name for path in paths)


def report_cell(paths: Path | Sequence[Path], min_return: float | None = None) -> str:
    """Markdown tables of one cell: the runs under ``paths`` (one sweep folder, or several that
    report as one cell).

    :param min_return: keep only the seeds whose evaluation return is at least this (a secondary,
        post-hoc analysis of the seeds that learned: the attention and faithfulness metrics of an
        agent that never solves the task describe a different policy); the full and inference
        tables are then left out.
    """
    results, title = evaluated_runs(paths)
    if min_return is not None:
        title += f" (seeds with return >= {min_return:g} only)"
        results = [r for r in results if _value(r, "return") >= min_return]
    if not results:
        return f"{title}\n\nno evaluated run yet\n"
    available = [m for m in FULL if any(not math.isnan(_value(r, m)) for r in results)]
    rows = comparison_table(results, available, baseline="none", pairs=PAIRS)
    metrics = [m for m in HEADLINE if m in available]
    labels = list(dict.fromkeys(row["label"] for row in rows))
    base = next((row["label"] for row in rows if row["method"] == "none"), "")
    summary = {(row["label"], row["metric"]): row for row in rows if not row["versus"]}
    versus = {(row["label"], row["versus"], row["metric"]): row for row in rows if row["versus"]}
    fps = {label: mean_or_nan([training_fps(r) for r in results if r.label == label]) for label in labels}
    base_fps = fps.get(base, math.nan)
    lines = [title, ""]
    lines.append(
        "| agent | seeds | "
        + " | ".join(metrics)
        + f" | first return >= {learnt_threshold(results[0].env):g} (seed by seed) | train fps / baseline |"
    )
    lines.append("|:--|--:|" + "--:|" * len(metrics) + ":--|--:|")
    for label in labels:
        n = summary[(label, metrics[0])]["n"]
        cells = [cell(summary[(label, m)]) for m in metrics]
        learnt = learnt_at_cell([r for r in results if r.label == label])
        speed = f"{fps[label] / base_fps:.2f}".replace("nan", "-")
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + f" | {learnt} | {speed} |")
    lines += ["", "p-values (Welch / Mann-Whitney U) against the baseline, and CAMAL against energy:", ""]
    lines += p_value_table(versus, metrics)
    gains = [
        (key[0], key[1], m, versus[key])
        for m in FAITHFULNESS
        for key in versus
        if key[2] == m and "camal" in key[0] and "energy" in key[1]
    ]
    several_pairs = len({(label, other) for label, other, _, _ in gains}) > 1
    if gains:
        lines += [
            "",
            "Faithfulness of CAMAL over energy (percent of energy's mean, positive = better, 95% CI):",
            "",
        ]
        for label, other, metric, row in gains:
            name = f"{label} vs {other}, {metric}" if several_pairs else metric
            low, high = row["improvement_low"], row["improvement_high"]
            lines.append(f"- {name}: {row['improvement_pct']:+.1f}% [{low:+.1f}, {high:+.1f}]")
    if min_return is None:
        lines += ["", *full_table(rows, available, labels, base), "", *inference_lines(results, base)]
    return "\n".join(lines) + "\n"


def seed_table(paths: Path | Sequence[Path]) -> str:
    """Markdown table of every evaluated run of a cell, one row per (variant, seed): the headline
    metrics (each the run's mean over its held-out episodes), the first periodic evaluation step
    whose return reaches the env's threshold, and the run's training env steps/s."""
    results, title = evaluated_runs(paths)
    results.sort(key=lambda r: (r.method != "none", r.label, r.seed))
    title += ", seed by seed"
    if not results:
        return f"{title}\n\nno evaluated run yet\n"
    metrics = [m for m in HEADLINE if any(not math.isnan(_value(r, m)) for r in results)]
    threshold = learnt_threshold(results[0].env)
    lines = [
        title,
        "",
        "| agent | seed | " + " | ".join(metrics) + f" | first return >= {threshold:g} | train fps |",
        "|:--|--:|" + "--:|" * len(metrics) + "--:|--:|",
    ]
    for r in results:
        values = [f"{_value(r, m):.3f}".replace("nan", "-") for m in metrics]
        learnt = learnt_text(learnt_at(r, threshold)) if r.evaluations else "-"
        fps = f"{training_fps(r):.1f}".replace("nan", "-")
        lines.append(f"| {r.label} | {r.seed} | " + " | ".join(values) + f" | {learnt} | {fps} |")
    return "\n".join(lines) + "\n"


def full_table(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], labels: Sequence[str], base: str
) -> list[str]:
    """Every metric (rows) per variant (columns), estimate [95% CI]; * marks p < 0.05 against
    the baseline ``base`` in both tests. ``rows``: :func:`camal_rl.statistics.comparison_table`'s."""
    summary = {(row["label"], row["metric"]): row for row in rows if not row["versus"]}
    significant = {
        (row["label"], row["metric"])
        for row in rows
        if row["versus"] == base and row["welch_p"] < 0.05 and row["mwu_p"] < 0.05
    }
    lines = [
        "All metrics (estimate [95% CI] over seeds; * = p < 0.05 against the baseline in both tests):",
        "",
        "| metric | " + " | ".join(labels) + " |",
        "|:--|" + "--:|" * len(labels),
    ]
    for metric in metrics:
        cells = [
            cell(summary[(label, metric)]) + (" *" if (label, metric) in significant else "")
            for label in labels
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return lines


def inference_lines(results: Sequence[RunResult], base: str) -> list[str]:
    """Parameter count and predict() time of each variant relative to the baseline ``base``."""
    cost = inference_cost(results)
    if base not in cost:
        return []
    base_params, base_time = cost[base]
    parts = [
        f"{label}: parameters x{params / base_params:.2f}, predict() time x{seconds / base_time:.2f}"
        for label, (params, seconds) in cost.items()
        if label != base
    ]
    if not parts:
        return []
    return [
        "Inference cost against the baseline (one model per variant, predict() on 8 observations, "
        "median CPU time of 100 alternating calls): " + "; ".join(parts) + "."
    ]


def tables_file(runs: Path = RUNS) -> str:
    """The study's tables file: for every section of :data:`STUDY_TABLES`, the cell's tables
    (:func:`report_cell`), the same over the seeds that solve the task where the section says so,
    and its runs seed by seed (:func:`seed_table`)."""
    parts = [TABLES_HEADER]
    for title, folders, min_return in STUDY_TABLES:
        paths = [runs / folder for folder in folders]
        parts += [f"## {title}\n", report_cell(paths)]
        if min_return is not None:
            parts.append(report_cell(paths, min_return))
        parts.append(seed_table(paths))
    return "\n".join(parts)


def _value(result: RunResult, metric: str) -> float:
    return metric_value(result.metrics, metric)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="The study's headline tables, from the run directories.")
    parser.add_argument("cells", nargs="*", type=Path, help="sweep folders (default: every cell but tune)")
    parser.add_argument(
        "--min-return", type=float, default=None, help="also report the seeds with at least this return"
    )
    parser.add_argument("--merge", action="store_true", help="report the folders given as one cell")
    parser.add_argument("--per-seed", action="store_true", help="only a table of every run, seed by seed")
    parser.add_argument("--tables", type=Path, default=None, help="write the study's tables file here")
    args = parser.parse_args(argv)
    if args.tables is not None:
        args.tables.write_text(tables_file())
        return
    cells = args.cells or sorted(p for p in RUNS.iterdir() if p.is_dir() and p.name != "tune")
    for paths in [cells] if args.merge else [[path] for path in cells]:
        if args.per_seed:
            print(seed_table(paths))
            continue
        print(report_cell(paths))
        if args.min_return is not None:
            print(report_cell(paths, args.min_return))


if __name__ == "__main__":
    main(sys.argv[1:])
