"""Masks of Atari frames from object boxes: painting, the union of two frames, and resizing.

Pure numpy functions on one frame's boxes, used by :class:`camal_rl.envs.atari.AtariMaskedEnv`
and testable without an emulator. A box is ``(k, x, y, w, h, rgb)``: mask value ``k >= 1`` (its
class), the top-left corner and size in screen pixels (OCAtari's ``xywh``), and the colour the
object is drawn in, or ``None`` to label the whole box.

Overlaps: where boxes of two classes cover the same pixel, the class listed first (the smaller
``k``) wins, in the painted mask, in the union of two frames' masks and in the resized mask alike.
The class tables list the small moving objects (the ball) first, so a ball in front of a paddle
or a brick row stays labelled.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

Box = tuple[int, int, int, int, int, tuple[int, int, int] | None]
"""``(k, x, y, w, h, rgb)``: class value, top-left corner, size, colour (None: the whole box)."""


def paint_mask(
    mask: np.ndarray, frame: np.ndarray, boxes: Iterable[Box], *, first_wins: bool = True
) -> np.ndarray:
    """Label ``boxes`` of ``frame`` in ``mask`` (in place) and return it.

    Each box labels its pixels clipped to the screen: all of them when its ``rgb`` is None, else
    those whose colour in ``frame`` is exactly ``rgb`` (colour refinement). Pixels no box labels
    keep their value, so painting a second frame's boxes into the same mask gives the union of
    the two frames' masks.

    :param mask: uint8 (H, W), the mask to paint into (zeros for a new one).
    :param frame: uint8 (H, W, 3), the screen the boxes were read with.
    :param boxes: the frame's boxes.
    :param first_wins: where a box overlaps a pixel already labelled with a smaller class value,
        keep that value (the class listed first wins).
    :return: ``mask``.
    """
    height, width = mask.shape
    for k, x, y, w, h, rgb in boxes:
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x1 <= x0 or y1 <= y0:
            continue
        region = mask[y0:y1, x0:x1]
        hit: np.ndarray | bool = True
        if rgb is not None:
            pixels = frame[y0:y1, x0:x1]
            hit = (pixels[..., 0] == rgb[0]) & (pixels[..., 1] == rgb[1]) & (pixels[..., 2] == rgb[2])
        if first_wins:
            hit = hit & ((region == 0) | (region > k))
        region[hit] = k
    return mask


@functools.cache
def overlap_windows(source: int, target: int) -> tuple[np.ndarray, ...]:
    """Source indices each target index covers when ``source`` pixels are resized to ``target``.

    Target pixel ``i`` spans ``[i * source / target, (i + 1) * source / target)`` in source
    coordinates (the area OpenCV's ``INTER_AREA`` averages over); every source pixel that span
    overlaps, even in part, is in its window. Returned as ``L`` index arrays of length ``target``
    (``L`` the longest window), shorter windows repeating their last index.

    Example: 210 rows to 84 cover ``[0, 2.5)``, ``[2.5, 5)``, ...: target row 0 reads rows 0-2,
    row 1 rows 2-4.
    """
    starts = [(i * source) // target for i in range(target)]
    ends = [-((-(i + 1) * source) // target) for i in range(target)]  # ceil, exclusive
    length = max(end - start for start, end in zip(starts, ends, strict=True))
    return tuple(
        np.array([min(start + offset, end - 1) for start, end in zip(starts, ends, strict=True)], np.intp)
        for offset in range(length)
    )


def _priority_table(n_classes: int) -> np.ndarray:
    """uint8 lookup k -> n_classes + 1 - k (k >= 1), 0 -> 0: its own inverse, so the max of
    priorities picks the smallest class value."""
    table = np.zeros(256, np.uint8)
    table[1 : n_classes + 1] = np.arange(n_classes, 0, -1, dtype=np.uint8)
    return table


def resize_mask(mask: np.ndarray, size: tuple[int, int], n_classes: int) -> np.ndarray:
    """Resize a mask as ``cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)``
    resizes its frame: a target pixel is labelled with a class when any source pixel of that
    class lies (even in part) in its area (:func:`overlap_windows`), so an object that tints a
    pixel of the resized frame labels it; the smallest class value wins. A 2-pixel ball stays in
    the mask at 84x84, where nearest-neighbour sampling would drop it on some steps.

    :param mask: uint8 (H, W) with values in [0, n_classes].
    :param size: (height, width) of the result.
    :param n_classes: the largest class value.
    :return: uint8 (height, width).
    """
    height, width = size
    if mask.shape == (height, width):
        return mask.copy()
    table = _priority_table(n_classes)
    priority = cv2.LUT(mask, table)
    # The max over each window, rows then columns; columns as rows of the transpose (gathering
    # whole rows is several times faster than gathering columns).
    rows = functools.reduce(np.maximum, (priority[index] for index in overlap_windows(mask.shape[0], height)))
    columns = np.ascontiguousarray(rows.T)
    both = functools.reduce(np.maximum, (columns[index] for index in overlap_windows(mask.shape[1], width)))
    return cv2.LUT(np.ascontiguousarray(both.T), table)


def max_pool(frames: Sequence[np.ndarray]) -> np.ndarray:
    """The pixel-wise maximum of the last two frames (one frame: itself), as Stable-Baselines3's
    ``MaxAndSkipEnv`` removes Atari flicker.

    :param frames: the captured frames of one step, oldest first.
    """
    if len(frames) == 1:
        return frames[-1].copy()
    return np.maximum(frames[-2], frames[-1])
