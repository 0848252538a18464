"""Learning curves: per agent variant ``(env, algo, label)``, the mean over seeds of a column of
``evaluations.csv`` (or, from the SB3 Monitor CSVs, a rolling mean of training-episode returns) with
a 95% percentile-bootstrap band over seeds (rliable's interval; Agarwal et al., NeurIPS 2021), one
subplot per env: :func:`curve_data` computes them, :func:`draw_learning_curves` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.ticker import FuncFormatter

from camal_rl.errors import InputError
from camal_rl.figures import label_order, save_png, step_count, subplot_grid, variant_colours
from camal_rl.runlogs import EVALUATION_FIELDS
from camal_rl.statistics import RunResult, bootstrap_ci, group_results, read_monitor

Source = Literal["auto", "evaluations", "monitor"]
MONITOR_COLUMNS = {"return_mean": "returns", "length_mean": "lengths"}
"""Columns of ``evaluations.csv`` that the Monitor CSVs can stand in for (training episodes)."""
DEFAULT_CURVES = ("return_mean", "epg")
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
    _check_curve_request(y, x, source, window, points)
    curves = []
    for (env, algo, label), runs in group_results(results).items():
        kind, series = _variant_series(runs, y, x, source, window)
        grid = _grid(series, kind, points) if series else None
        if grid is None:
            continue
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


def _check_curve_request(y: str, x: str, source: Source, window: int, points: int) -> None:
    """Refuse columns that ``evaluations.csv`` lacks, a Monitor request that Monitor CSVs cannot
    serve, and a ``window`` or ``points`` too small (:func:`curve_data`).

    :raises InputError: saying which.
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


Series = list[tuple[int, np.ndarray, np.ndarray]]
"""(seed, x, y) of each run of a variant."""


def _variant_series(
    runs: Sequence[RunResult], y: str, x: str, source: Source, window: int
) -> tuple[str, Series]:
    """The data source of one agent variant's curve (``source``, or for ``auto``: evaluations
    when any of its runs has them, or when Monitor CSVs cannot serve ``y`` against ``x``) and its
    runs' series from there, those without data left out."""
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
    return kind, [s for s in series if s[1].size]


def _grid(series: Series, kind: str, points: int) -> np.ndarray | None:
    """The x grid the seeds share (:func:`curve_data`): within the range every seed covers, the
    union of their x values for evaluations, ``points`` evenly spaced steps for Monitor data; None
    when the seeds share no range."""
    low_x, high_x = max(s[1][0] for s in series), min(s[1][-1] for s in series)
    if low_x > high_x:
        return None
    if kind == "evaluations":
        grid = np.unique(np.concatenate([s[1] for s in series]))
        return grid[(grid >= low_x) & (grid <= high_x)]
    return np.unique(np.linspace(low_x, high_x, points))


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
    colours = variant_colours(c.label for c in curves)
    fig, axes = subplot_grid(len(envs))
    y = curves[0].y
    for ax, env in zip(axes, envs, strict=True):
        env_curves = sorted((c for c in curves if c.env == env), key=lambda c: label_order(c.label))
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
        ax.xaxis.set_major_formatter(FuncFormatter(step_count))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("mean over seeds, 95% bootstrap CI", fontsize=9)
    return save_png(fig, out_path)


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


def curve_file(y: str) -> str:
    """``learning_curves_return.png`` for ``return_mean``, ``learning_curves_epg.png`` for ``epg``."""
    return f"learning_curves_{y.removesuffix('_mean')}.png"
