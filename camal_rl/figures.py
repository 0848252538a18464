"""Figure helpers the plots share (learning curves, metric bars, performance profiles): a grid of
subplots on the Agg canvas, one colour per agent variant with the baseline first, and saving.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never through
``pyplot``, so plotting needs no display and leaves matplotlib's global state alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from camal_rl.statistics import METHOD_ORDER


def label_order(label: str) -> tuple[int, str]:
    """Baseline first (labels are ``<algo>-<method>[-...]``, :attr:`TrainConfig.label`)."""
    method = label.split("-")[1] if "-" in label else label
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), label)


def variant_colours(labels: Iterable[str]) -> dict[str, Any]:
    """A colour of matplotlib's ``tab10`` per label, dealt out in :func:`label_order` (the
    baseline first)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {label: palette(i % 10) for i, label in enumerate(sorted(set(labels), key=label_order))}


def subplot_grid(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Any]]:
    """A figure on the Agg canvas with ``n`` subplots of ``width`` x ``height`` inches, up to 3 a
    row (the unused ones of the last row hidden), and those ``n`` axes."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def step_count(value: float, _position: object = None) -> str:
    """A count of env steps as a tick label of at most three significant digits: 500, 25k,
    1.25M (a matplotlib ``FuncFormatter``: full numbers run into each other on a shared axis)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def save_png(fig: Figure, out_path: Path) -> Path:
    """Write ``fig`` as a PNG at ``out_path`` (its folder created); return ``out_path``."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path
