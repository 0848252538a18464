"""Plots from run directories: learning curves, metric bar charts and performance profiles.

- Learning curves (:mod:`camal_rl.curves`): one line per agent variant, the mean over seeds of a
  column of ``evaluations.csv`` or of training-episode returns, with a bootstrap band over seeds.
- :func:`plot_metric_bars`: one bar per agent variant for a metric of ``metrics.json``, with its
  bootstrap interval as error bar (rows of :func:`camal_rl.statistics.aggregate` or
  :func:`camal_rl.statistics.comparison_table`).
- Performance profiles (:mod:`camal_rl.profiles`): the share of seeds above each threshold of a
  metric, per agent variant.
- ``camal-rl plot RUNS...`` (:func:`plot`): all three, as PNGs (:func:`write_plots`).

Figures are drawn with the Agg canvas, never through ``pyplot`` (:mod:`camal_rl.figures`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from camal_rl.curves import DEFAULT_CURVES, Source, curve_data, curve_file, draw_learning_curves
from camal_rl.errors import InputError
from camal_rl.figures import label_order, save_png, subplot_grid, variant_colours
from camal_rl.outputs import check_output
from camal_rl.statistics import (
    RunResult,
    aggregate,
    available_metrics,
    better_direction,
    check_metrics,
    group_results,
    load_results,
    metric_name,
    state_counts,
)

DEFAULT_BAR_METRICS = (
    "return",
    "gradcam/epg",
    "gradcam/iou",
    "gradcam/pointing_game",
    "gradcam/deletion_auc",
    "gradcam/insertion_auc",
    "perturbation/epg",
    "distractors/return",
)
"""Bars ``camal-rl plot`` draws without ``--metrics``: those of them some ``metrics.json`` holds."""


def plot_metric_bars(rows: Sequence[Mapping[str, Any]], metric: str, out_path: Path) -> Path:
    """A bar per agent variant for ``metric``, height the estimate (IQM for returns, else mean
    over seeds) with its bootstrap interval as error bar; one subplot per env.

    :param rows: rows of :func:`camal_rl.statistics.aggregate` or
        :func:`camal_rl.statistics.comparison_table` (its summary rows are used).
    :param metric: a metric name, e.g. ``gradcam/epg``.
    :param out_path: the PNG to write.
    :return: ``out_path``.
    :raises InputError: no row holds the metric with a value.
    """
    name = metric_name(metric)
    selected = [r for r in rows if r["metric"] == name and not r.get("versus") and r["n"] > 0]
    if not selected:
        present = ", ".join(dict.fromkeys(str(r["metric"]) for r in rows)) or "none"
        raise InputError(f"no values of {name} to plot; metrics in these rows: {present}")
    envs = list(dict.fromkeys(str(r["env"]) for r in selected))
    colours = variant_colours(str(r["label"]) for r in selected)
    fig, axes = subplot_grid(len(envs), width=max(4.0, 1.1 * len({r["label"] for r in selected}) + 1.5))
    direction = better_direction(name)
    statistic = "IQM" if selected[0]["statistic"] == "iqm" else "mean"
    for ax, env in zip(axes, envs, strict=True):
        env_rows = sorted(
            (r for r in selected if r["env"] == env), key=lambda r: label_order(str(r["label"]))
        )
        estimates = np.array([r["estimate"] for r in env_rows], dtype=np.float64)
        low = np.array([r["ci_low"] for r in env_rows], dtype=np.float64)
        high = np.array([r["ci_high"] for r in env_rows], dtype=np.float64)
        errors = np.nan_to_num(np.stack([estimates - low, high - estimates]), nan=0.0)
        positions = np.arange(len(env_rows))
        ax.bar(
            positions,
            estimates,
            yerr=errors,
            capsize=4,
            color=[colours[str(r["label"])] for r in env_rows],
            alpha=0.85,
        )
        ax.set_xticks(positions, [f"{r['label']}\n(n={r['n']})" for r in env_rows], fontsize=8)
        ax.set_title(env, fontsize=10)
        ax.set_ylabel(name)
        ax.grid(axis="y", alpha=0.3)
    better = f", {direction} is better" if direction else ""
    fig.suptitle(
        f"{name}: {statistic} over seeds{better}; error bars: 95% bootstrap CI over seeds", fontsize=9
    )
    return save_png(fig, out_path)


def bar_file(metric: str) -> str:
    """``bars_gradcam_epg.png`` for ``gradcam/epg``, ``bars_sufficiency_at_10.png`` for
    ``sufficiency@10``, ``bars_captum_DeepLift_epg.png`` for ``captum:DeepLift/epg``."""
    return f"bars_{metric_name(metric).replace('/', '_').replace('@', '_at_').replace(':', '_')}.png"


def write_plots(
    results: Sequence[RunResult],
    out_dir: Path,
    *,
    curves: Sequence[str] = DEFAULT_CURVES,
    metrics: Sequence[str] | None = None,
    rows: Sequence[Mapping[str, Any]] | None = None,
    profiles: Sequence[str] | None = None,
    source: Source = "auto",
    window: int = 20,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Learning curves, metric bars and performance profiles of ``results`` into ``out_dir``
    (shared by ``camal-rl plot`` and ``camal-rl compare``).

    :param results: runs.
    :param out_dir: folder for the PNGs (created).
    :param curves: columns of ``evaluations.csv`` to draw as learning curves
        (:func:`curve_file` names the files); a column no run has is skipped with a message.
    :param metrics: metrics of ``metrics.json`` to draw as bars (:func:`bar_file`); each must be in
        some run's ``metrics.json``. ``None``: those of :data:`DEFAULT_BAR_METRICS` that are.
    :param rows: summary rows to draw the bars from (default: :func:`camal_rl.statistics.aggregate`).
    :param profiles: metrics of ``metrics.json`` to draw as performance profiles
        (:func:`camal_rl.profiles.profile_file`); ``None``: those of
        :data:`camal_rl.profiles.DEFAULT_PROFILE_METRICS` that some run has.
    :param source: learning-curve data (:func:`curve_data`).
    :param window: Monitor rolling window.
    :param log: where to report what was written or skipped.
    :return: the files written.
    """
    out_dir = Path(out_dir)
    written = []
    cut: dict[str, None] = {}  # one note per variant, not one per curve file
    for y in curves:
        data = curve_data(results, y, source=source, window=window)
        if not data:
            log(f"skipped learning curves of {y}: no run has it in evaluations.csv (nor monitor episodes)")
            continue
        written.append(draw_learning_curves(data, out_dir / curve_file(y), window=window))
        for curve in data:
            if max(curve.seed_ends) > min(curve.seed_ends):
                cut[
                    f"note: {curve.label} on {curve.env} is drawn up to step {min(curve.seed_ends):g}, "
                    f"where its shortest seed ends (longest: {max(curve.seed_ends):g})"
                ] = None
    for note in cut:
        log(note)
    if metrics is None:
        available = set(available_metrics(results))
        metrics = [m for m in DEFAULT_BAR_METRICS if m in available]
        if not available:
            log("skipped bar charts: no metrics.json in these runs (run camal-rl evaluate RUN first)")
    else:
        check_metrics(results, metrics)
    if metrics:
        rows = list(rows) if rows is not None else aggregate(results, metrics)
        for metric in metrics:
            written.append(plot_metric_bars(rows, metric, out_dir / bar_file(metric)))
    from camal_rl.profiles import DEFAULT_PROFILE_METRICS, draw_profiles, profile_data, profile_file

    if profiles is None:
        available = set(available_metrics(results))
        profiles = [m for m in DEFAULT_PROFILE_METRICS if m in available]
    else:
        check_metrics(results, profiles)
    for metric in profiles:
        written.append(draw_profiles(profile_data(results, metric), out_dir / profile_file(metric)))
    return written


# ---------------------------------------------------------------------------------------------
# camal-rl plot
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlotConfig:
    """Learning curves, metric bar charts and performance profiles (PNG) from run directories."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Run directories, or folders searched recursively for them (any folder with a config.json)."""
    out: Path | None = None
    """Folder for the PNGs (default: the given paths' common parent folder / plots)."""
    metrics: tuple[str, ...] | None = None
    """Metrics of metrics.json to draw as bars, e.g. return gradcam/epg gradcam/deletion_auc
    distractors/return behaviour/behaviour_log_ratio (default: return and the main Grad-CAM
    metrics present)."""
    curves: tuple[str, ...] = DEFAULT_CURVES
    """Columns of evaluations.csv to draw as learning curves (return_mean, epg, iou, flat_share,
    length_mean, ...)."""
    profiles: tuple[str, ...] | None = None
    """Metrics of metrics.json to draw as performance profiles, the share of seeds above each
    threshold (Agarwal et al. 2021; default: return and gradcam/epg, those present)."""
    source: Source = "auto"
    """Learning-curve data: evaluations (evaluations.csv), monitor (training episodes), or auto
    (evaluations where a variant has them, else monitor)."""
    window: int = 20
    """Monitor curves: rolling mean over this many training episodes."""
    complete_only: bool = False
    """Leave out runs whose training has not finished."""


def default_out(paths: Sequence[Path]) -> Path:
    """``<common parent of paths>/plots``."""
    return Path(os.path.commonpath([str(Path(p).resolve()) for p in paths])) / "plots"


def plot(cfg: PlotConfig) -> list[Path]:
    """``camal-rl plot``: find the runs, write the plots, print and return their paths.

    :raises InputError: no runs under the paths, or nothing in them to plot.
    """
    results = load_results(cfg.runs, complete_only=cfg.complete_only)
    states = ", ".join(f"{n} {state}" for state, n in sorted(state_counts(results).items()))
    print(f"{len(results)} runs ({states}) of {len(group_results(results))} agent variants")
    out = cfg.out if cfg.out is not None else default_out(cfg.runs)
    check_output(out, "--out", folder=True)
    written = write_plots(
        results,
        out,
        curves=cfg.curves,
        metrics=cfg.metrics,
        profiles=cfg.profiles,
        source=cfg.source,
        window=cfg.window,
    )
    if not written:
        raise InputError(
            f"nothing to plot in the {len(results)} runs under {', '.join(map(str, cfg.runs))}: no "
            "evaluations.csv rows, monitor episodes or metrics.json; train with --eval-freq > 0 or run "
            "camal-rl evaluate RUN"
        )
    for path in written:
        print(f"wrote {path}")
    return written
