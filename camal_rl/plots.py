"""Plots from run directories: learning curves with confidence bands, and metric bar charts.

- :func:`curve_data` / :func:`plot_learning_curves`: one line per agent variant
  ``(env, algo, label)``, the mean over seeds of a column of ``evaluations.csv`` (or, from the
  SB3 Monitor CSVs, a rolling mean of training-episode returns) with a 95% percentile-bootstrap
  band over seeds (rliable's interval; Agarwal et al., NeurIPS 2021), one subplot per env.
- :func:`plot_metric_bars`: one bar per agent variant for a metric of ``metrics.json``, with its
  bootstrap interval as error bar (rows of :func:`camal_rl.statistics.aggregate` or
  :func:`camal_rl.statistics.comparison_table`).
- Performance profiles (:mod:`camal_rl.profiles`): the share of seeds above each threshold of a
  metric, per agent variant.
- ``camal-rl plot RUNS...`` (:func:`plot`): all three, as PNGs.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never through
``pyplot``, so plotting needs no display and leaves matplotlib's global state alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from camal_rl.errors import InputError
from camal_rl.outputs import check_output
from camal_rl.runlogs import EVALUATION_FIELDS
from camal_rl.statistics import (
    METHOD_ORDER,
    RunResult,
    aggregate,
    available_metrics,
    better_direction,
    bootstrap_ci,
    check_metrics,
    group_results,
    load_results,
    metric_name,
    read_monitor,
    state_counts,
)

Source = Literal["auto", "evaluations", "monitor"]
MONITOR_COLUMNS = {"return_mean": "returns", "length_mean": "lengths"}
"""Columns of ``evaluations.csv`` that the Monitor CSVs can stand in for (training episodes)."""
DEFAULT_CURVES = ("return_mean", "epg")
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
CURVE_LABELS = {
    "return_mean": "evaluation return (mean over episodes)",
    "length_mean": "evaluation episode length",
    "epg": "Grad-CAM energy pointing game",
    "iou": "Grad-CAM IoU of the top-|M| pixels",
    "coverage": "share of steps with a relevant object in view",
    "wall_time_s": "wall time (s)",
    "step": "env steps",
}


@dataclass(frozen=True)
class Curve:
    """One learning curve: an agent variant's seeds on a shared x grid."""

    env: str
    algo: str
    label: str
    y: str
    """The plotted column (``evaluations.csv``), e.g. ``return_mean``."""
    source: str
    """``evaluations`` or ``monitor``."""
    x: np.ndarray
    """(G,) the shared grid: the seeds' evaluation steps within the range all of them reach."""
    per_seed: np.ndarray
    """(S, G) each seed's values on the grid (linear interpolation between its own points)."""
    mean: np.ndarray
    """(G,) mean over seeds."""
    ci_low: np.ndarray
    """(G,) lower bound of the bootstrap interval of the mean over seeds (``nan`` for one seed)."""
    ci_high: np.ndarray
    """(G,) upper bound."""
    seeds: tuple[int, ...]
    """Seeds in ``per_seed`` order."""
    seed_ends: tuple[float, ...]
    """Last x of each seed's own data: the curve stops at the smallest."""


def _series_from_evaluations(result: RunResult, y: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a run's evaluations, sorted by x, the last row kept for a repeated x, ``nan``
    values of y dropped."""
    by_x: dict[float, float] = {}
    for row in result.evaluations:
        if math.isfinite(row.get(x, math.nan)) and math.isfinite(row.get(y, math.nan)):
            by_x[row[x]] = row[y]
    xs = np.array(sorted(by_x), dtype=np.float64)
    return xs, np.array([by_x[v] for v in xs], dtype=np.float64)


def _series_from_monitor(result: RunResult, y: str, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(env step, trailing rolling mean over ``window`` training episodes) of a run."""
    episodes = read_monitor(result.path)
    values = getattr(episodes, MONITOR_COLUMNS[y])
    if values.size == 0:
        return episodes.steps, values
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return episodes.steps, (sums[ends] - sums[starts]) / (ends - starts)


def curve_data(
    results: Sequence[RunResult],
    y: str = "return_mean",
    *,
    x: str = "step",
    source: Source = "auto",
    window: int = 20,
    points: int = 100,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: int = 0,
) -> list[Curve]:
    """The arrays :func:`plot_learning_curves` draws: per agent variant, each seed's series on a
    shared grid, their mean and a percentile-bootstrap interval of the mean at each grid point
    (:func:`camal_rl.statistics.bootstrap_ci`).

    Seeds are aligned on a shared grid: with evaluations, the union of the seeds' x values (the
    same steps for runs of one sweep) within ``[max of first x, min of last x]``, the range every
    seed covers; with Monitor data, ``points`` evenly spaced steps over that range. Each seed is
    linearly interpolated onto the grid (exact at its own points), so a curve ends where its
    shortest seed ends.

    :param results: runs (:func:`camal_rl.statistics.load_results`).
    :param y: a column of ``evaluations.csv`` (``return_mean``, ``epg``, ``iou``, ...).
    :param x: the x column of ``evaluations.csv`` (``step`` or ``wall_time_s``).
    :param source: ``evaluations``; ``monitor`` (training episodes from the SB3 Monitor CSVs,
        ``return_mean`` or ``length_mean`` against ``step`` only); ``auto``: per variant,
        evaluations when any of its runs has them (runs without are left out), else monitor.
    :param window: Monitor data: trailing rolling mean over this many training episodes.
    :param points: Monitor data: grid points.
    :param confidence: coverage of the bands.
    :param n_resamples: bootstrap resamples per grid point.
    :param rng: bootstrap seed.
    :return: curves sorted by (env, algo, label); variants with no data are left out.
    :raises InputError: an unknown column, or a monitor request it cannot serve.
    """
    columns = [c for c in EVALUATION_FIELDS if c not in ("episodes",)]
    for name, value in (("y", y), ("x", x)):
        if value not in columns:
            raise InputError(
                f"{name}={value!r} is not a column of evaluations.csv; choose from {', '.join(columns)}"
            )
    if source == "monitor" and (y not in MONITOR_COLUMNS or x != "step"):
        raise InputError(
            "monitor CSVs hold training episodes: they give "
            f"{' and '.join(MONITOR_COLUMNS)} against step, not {y} against {x}; use source evaluations"
        )
    if window < 1 or points < 2:
        raise InputError(f"window must be >= 1 and points >= 2, got {window} and {points}")
    curves = []
    for (env, algo, label), runs in group_results(results).items():
        kind = source
        if kind == "auto":
            has_evaluations = any(_series_from_evaluations(r, y, x)[0].size for r in runs)
            kind = "evaluations" if has_evaluations or y not in MONITOR_COLUMNS or x != "step" else "monitor"
        series = [
            (
                r.seed,
                *(
                    _series_from_evaluations(r, y, x)
                    if kind == "evaluations"
                    else _series_from_monitor(r, y, window)
                ),
            )
            for r in runs
        ]
        series = [s for s in series if s[1].size]
        if not series:
            continue
        low_x, high_x = max(s[1][0] for s in series), min(s[1][-1] for s in series)
        if low_x > high_x:
            continue
        if kind == "evaluations":
            grid = np.unique(np.concatenate([s[1] for s in series]))
            grid = grid[(grid >= low_x) & (grid <= high_x)]
        else:
            grid = np.unique(np.linspace(low_x, high_x, points))
        per_seed = np.stack([np.interp(grid, xs, ys) for _, xs, ys in series])
        bands = np.array(
            [
                bootstrap_ci(per_seed[:, g], confidence=confidence, n_resamples=n_resamples, rng=rng)
                for g in range(grid.size)
            ]
        )
        curves.append(
            Curve(
                env=env,
                algo=algo,
                label=label,
                y=y,
                source=kind,
                x=grid,
                per_seed=per_seed,
                mean=bands[:, 0],
                ci_low=bands[:, 1],
                ci_high=bands[:, 2],
                seeds=tuple(s[0] for s in series),
                seed_ends=tuple(float(s[1][-1]) for s in series),
            )
        )
    return curves


def _label_order(label: str) -> tuple[int, str]:
    """Baseline first (labels are ``<algo>-<method>[-...]``, :attr:`TrainConfig.label`)."""
    method = label.split("-")[1] if "-" in label else label
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), label)


def _colours(labels: Iterable[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {label: palette(i % 10) for i, label in enumerate(sorted(set(labels), key=_label_order))}


def _subplots(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Any]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _save(fig: Figure, out_path: Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path


def draw_learning_curves(curves: Sequence[Curve], out_path: Path, *, window: int | None = None) -> Path:
    """Draw :func:`curve_data` curves: one subplot per env, a line per variant (mean over seeds)
    with its bootstrap band, ``n`` seeds in the legend.

    :param curves: from :func:`curve_data` (one ``y``).
    :param out_path: the PNG to write.
    :param window: the Monitor rolling window, for the axis label.
    :return: ``out_path``.
    """
    if not curves:
        raise InputError(f"no learning-curve data to draw into {out_path}")
    envs = list(dict.fromkeys(c.env for c in curves))
    colours = _colours(c.label for c in curves)
    fig, axes = _subplots(len(envs))
    y = curves[0].y
    for ax, env in zip(axes, envs, strict=True):
        env_curves = sorted((c for c in curves if c.env == env), key=lambda c: _label_order(c.label))
        for curve in env_curves:
            colour = colours[curve.label]
            ax.plot(curve.x, curve.mean, color=colour, lw=1.8, label=f"{curve.label} (n={len(curve.seeds)})")
            if np.isfinite(curve.ci_low).any():
                ax.fill_between(curve.x, curve.ci_low, curve.ci_high, color=colour, alpha=0.2, lw=0)
        sources = {c.source for c in env_curves}
        ylabel = CURVE_LABELS.get(y, y)
        if sources == {"monitor"}:
            ylabel = f"training episode {'return' if y == 'return_mean' else 'length'}" + (
                f" (rolling mean of {window})" if window else ""
            )
        ax.set_title(env, fontsize=10)
        ax.set_xlabel(CURVE_LABELS["step"] if curves[0].x.size else "")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("mean over seeds, 95% bootstrap CI", fontsize=9)
    return _save(fig, out_path)


def plot_learning_curves(
    results: Sequence[RunResult],
    out_path: Path,
    y: str = "return_mean",
    x: str = "step",
    *,
    source: Source = "auto",
    window: int = 20,
) -> Path:
    """Learning curves of ``y`` (a column of ``evaluations.csv``) as a PNG: :func:`curve_data`
    drawn by :func:`draw_learning_curves`.

    :raises InputError: no run has data for ``y``.
    """
    curves = curve_data(results, y, x=x, source=source, window=window)
    if not curves:
        raise InputError(
            f"no run has {y} in evaluations.csv"
            + (" or monitor episodes" if y in MONITOR_COLUMNS else "")
            + "; train with --eval-freq > 0 to write evaluations"
        )
    return draw_learning_curves(curves, out_path, window=window)


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
    colours = _colours(str(r["label"]) for r in selected)
    fig, axes = _subplots(len(envs), width=max(4.0, 1.1 * len({r["label"] for r in selected}) + 1.5))
    direction = better_direction(name)
    statistic = "IQM" if selected[0]["statistic"] == "iqm" else "mean"
    for ax, env in zip(axes, envs, strict=True):
        env_rows = sorted(
            (r for r in selected if r["env"] == env), key=lambda r: _label_order(str(r["label"]))
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
    return _save(fig, out_path)


def curve_file(y: str) -> str:
    """``learning_curves_return.png`` for ``return_mean``, ``learning_curves_epg.png`` for ``epg``."""
    return f"learning_curves_{y.removesuffix('_mean')}.png"


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
