"""Pictures of masks: a fixed class palette, coloured masks, outlines and frame | mask panels.

Pure numpy (+ ``cv2.putText`` for legend text) on uint8 arrays, so the demo, the video recorder
and plots colour every class the same way: class k >= 1 always gets ``PALETTE[(k - 1) % 12]``,
background is black.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from camal_rl.errors import InputError

PALETTE: np.ndarray = np.array(
    [
        (230, 25, 75),  # red
        (60, 180, 75),  # green
        (0, 130, 200),  # blue
        (255, 225, 25),  # yellow
        (245, 130, 48),  # orange
        (145, 30, 180),  # purple
        (70, 240, 240),  # cyan
        (240, 50, 230),  # magenta
        (210, 245, 60),  # lime
        (250, 190, 212),  # pink
        (0, 128, 128),  # teal
        (170, 110, 40),  # brown
    ],
    dtype=np.uint8,
)
"""RGB colour of classes 1, 2, ...; cycles after 12 classes."""

BACKGROUND = (0, 0, 0)
SEPARATOR = (255, 255, 255)
GAP = 4
"""Pixels of :data:`SEPARATOR` between the frame and the mask, and between stacked panels."""
LEGEND_ROW = 16
"""Height of one legend row (one class) in pixels."""
SWATCH = (4, 2, 12)
"""Legend swatch: x offset, y offset within its row, side length (pixels)."""


def class_colors(n_classes: int) -> np.ndarray:
    """(n_classes + 1, 3) uint8 lookup table: row 0 background, row k the colour of class k."""
    if n_classes < 0:
        raise InputError(f"n_classes must be >= 0, got {n_classes}")
    rows = [np.array(BACKGROUND, np.uint8)] + [
        PALETTE[(k - 1) % len(PALETTE)] for k in range(1, n_classes + 1)
    ]
    return np.stack(rows)


def colorize_mask(mask: np.ndarray, n_classes: int) -> np.ndarray:
    """Colour a class mask with :func:`class_colors`.

    :param mask: (H, W) integer mask, values in [0, n_classes].
    :param n_classes: number of classes.
    :return: (H, W, 3) uint8.
    """
    mask = _check_mask(mask)
    if mask.size and int(mask.max()) > n_classes:
        raise InputError(f"mask holds class {int(mask.max())} but n_classes is {n_classes}")
    return class_colors(n_classes)[mask]


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Boundary of ``mask > 0``: labelled pixels with a 4-neighbour that is background (pixels
    beyond the image count as background).

    :param mask: (H, W) mask.
    :return: (H, W) bool.
    """
    inside = _check_mask(mask) > 0
    padded = np.pad(inside, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return inside & ~interior


def draw_outline(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = SEPARATOR) -> np.ndarray:
    """A copy of ``image`` with the :func:`mask_outline` of ``mask`` painted in ``color``.

    :param image: (H, W, 3) uint8 frame.
    :param mask: (H, W) mask aligned with ``image``.
    :param color: RGB outline colour.
    """
    _check_pair(image, mask)
    out = image.copy()
    out[mask_outline(mask)] = color
    return out


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (each pixel becomes a scale x scale block)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"scale must be an integer >= 1, got {scale!r}")
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def legend(mask_classes: Sequence[str], width: int) -> np.ndarray:
    """Legend image: one :data:`LEGEND_ROW`-pixel row per class, a colour swatch then ``"k name"``.

    :param mask_classes: class names, class k = ``mask_classes[k - 1]``.
    :param width: image width in pixels (longer names are clipped).
    :return: (LEGEND_ROW * n_classes, width, 3) uint8.
    """
    colors = class_colors(len(mask_classes))
    out = np.zeros((LEGEND_ROW * len(mask_classes), width, 3), np.uint8)
    x, y, side = SWATCH
    for k, name in enumerate(mask_classes, start=1):
        top = (k - 1) * LEGEND_ROW
        out[top + y : top + y + side, x : x + side] = colors[k]
        cv2.putText(
            out,
            f"{k} {name}",
            (x + side + 4, top + y + side - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out


def frame_mask_panel(
    image: np.ndarray, mask: np.ndarray, mask_classes: Sequence[str], scale: int = 4
) -> np.ndarray:
    """The frame and its coloured mask side by side, upscaled, with a class legend below.

    Layout: ``[frame x scale | GAP white columns | colorize_mask x scale]`` on top of
    :func:`legend`; the frame starts at (0, 0) and the mask at column ``W * scale + GAP``.

    :param image: (H, W, 3) uint8 frame.
    :param mask: (H, W) class mask aligned with ``image``.
    :param mask_classes: class names of mask values 1..n.
    :param scale: integer upscaling factor.
    :return: (H * scale + LEGEND_ROW * n, 2 * W * scale + GAP, 3) uint8.
    """
    _check_pair(image, mask)
    frame = upscale(image, scale)
    colored = upscale(colorize_mask(mask, len(mask_classes)), scale)
    gap = np.empty((frame.shape[0], GAP, 3), np.uint8)
    gap[:] = SEPARATOR
    top = np.concatenate([frame, gap, colored], axis=1)
    return np.concatenate([top, legend(mask_classes, top.shape[1])], axis=0)


def join_images(images: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """Join images top to bottom (``axis=0``) or left to right (``axis=1``), padding the smaller
    ones with black (at the bottom or on the right) and separating them with :data:`GAP` lines of
    :data:`SEPARATOR`.

    :raises InputError: no image.
    """
    if not images:
        raise InputError("join_images needs at least one image")
    across = 1 - axis
    size = max(image.shape[across] for image in images)
    parts: list[np.ndarray] = []
    for image in images:
        if parts:
            gap_shape = [0, 0, 3]
            gap_shape[axis], gap_shape[across] = GAP, size
            parts.append(np.full(gap_shape, SEPARATOR, np.uint8))
        padding = [(0, 0), (0, 0), (0, 0)]
        padding[across] = (0, size - image.shape[across])
        parts.append(np.pad(image, padding))
    return np.concatenate(parts, axis=axis)


def stack_panels(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Stack images top to bottom (:func:`join_images` along rows)."""
    return join_images(panels, axis=0)


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise InputError(f"expected an integer mask (H, W), got {mask.dtype} {mask.shape}")
    if mask.size and int(mask.min()) < 0:
        raise InputError(f"mask values must be >= 0, got {int(mask.min())}")
    return mask


def _check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected a uint8 frame (H, W, 3), got {image.dtype} {image.shape}")
    if np.shape(mask) != image.shape[:2]:
        raise InputError(f"mask shape {np.shape(mask)} does not match frame shape {image.shape[:2]}")


def write_png(path: Path, picture: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB picture to ``path`` (folders created).

    :raises OSError: the file could not be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(picture[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    return path
