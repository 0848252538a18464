"""Mask pictures: exact pixel values on tiny hand-made masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from camal_rl.demo import write_env_demo
from camal_rl.errors import InputError
from camal_rl.visual import (
    GAP,
    LEGEND_ROW,
    PALETTE,
    class_colors,
    colorize_mask,
    draw_outline,
    frame_mask_panel,
    mask_outline,
    stack_panels,
)

RED, GREEN = (230, 25, 75), (60, 180, 75)  # PALETTE[0], PALETTE[1]: classes 1 and 2


def test_palette_is_fixed_and_cycles() -> None:
    assert PALETTE[0].tolist() == list(RED)
    assert PALETTE[1].tolist() == list(GREEN)
    colors = class_colors(13)
    assert colors.shape == (14, 3)
    assert colors.dtype == np.uint8
    assert colors[0].tolist() == [0, 0, 0]
    assert colors[13].tolist() == colors[1].tolist()  # class 13 reuses class 1's colour


def test_colorize_mask() -> None:
    mask = np.array([[0, 1], [2, 0]], np.uint8)
    colored = colorize_mask(mask, 2)
    assert colored.shape == (2, 2, 3)
    assert colored.dtype == np.uint8
    assert colored.tolist() == [[[0, 0, 0], list(RED)], [list(GREEN), [0, 0, 0]]]
    with pytest.raises(InputError, match="mask holds class 2 but n_classes is 1"):
        colorize_mask(mask, 1)
    with pytest.raises(InputError, match="integer mask"):
        colorize_mask(np.zeros((2, 2, 3), np.uint8), 1)


def test_mask_outline() -> None:
    square = np.zeros((5, 5), np.uint8)
    square[1:4, 1:4] = 2  # a 3x3 block: its 8 rim pixels are the outline, the centre is not
    outline = mask_outline(square)
    assert outline.dtype == bool
    assert outline.sum() == 8
    assert not outline[2, 2]
    assert outline[1, 1]
    assert outline[3, 2]
    assert not outline[0].any()  # background is never outline
    # Pixels on the image border count as boundary: a full 3x3 mask keeps only its centre inside.
    full = mask_outline(np.ones((3, 3), np.uint8))
    assert full.sum() == 8
    assert not full[1, 1]
    two = np.zeros((4, 4), np.uint8)
    two[1:3, 1:3] = 1
    assert mask_outline(two).sum() == 4


def test_draw_outline() -> None:
    image = np.zeros((5, 5, 3), np.uint8)
    mask = np.zeros((5, 5), np.uint8)
    mask[1:4, 1:4] = 1
    drawn = draw_outline(image, mask, (10, 20, 30))
    assert (drawn[1, 1] == (10, 20, 30)).all()
    assert (drawn[2, 2] == 0).all()
    assert (drawn[0, 0] == 0).all()
    assert (drawn.reshape(-1, 3) == (10, 20, 30)).all(axis=1).sum() == 8
    assert (image == 0).all()  # input untouched


def test_frame_mask_panel_layout() -> None:
    image = np.array([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]], np.uint8)
    mask = np.array([[0, 1], [2, 0]], np.uint8)
    panel = frame_mask_panel(image, mask, ("key", "door"), scale=3)
    # Frame 6 px wide, 4 px white gap, mask 6 px wide; 6 rows then two 16-px legend rows.
    assert panel.shape == (6 + 2 * LEGEND_ROW, 6 + GAP + 6, 3)
    assert panel.dtype == np.uint8
    assert (panel[0:3, 0:3] == (1, 2, 3)).all()
    assert (panel[3:6, 3:6] == (10, 11, 12)).all()
    assert (panel[0:6, 6:10] == 255).all()
    assert (panel[0:3, 10:13] == 0).all()
    assert (panel[0:3, 13:16] == RED).all()
    assert (panel[3:6, 10:13] == GREEN).all()
    assert (panel[3:6, 13:16] == 0).all()
    # Legend swatches: 12x12 at x = 4, 2 px below the top of each row.
    assert (panel[6 + 2 : 6 + 14, 4:16] == RED).all()
    assert (panel[6 + LEGEND_ROW + 2 : 6 + LEGEND_ROW + 14, 4:16] == GREEN).all()
    assert (panel[6 : 6 + 2, :] == 0).all()


def test_frame_mask_panel_bad_input() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(InputError, match=r"mask shape \(3, 2\) does not match frame shape \(2, 2\)"):
        frame_mask_panel(image, np.zeros((3, 2), np.uint8), ("key",))
    with pytest.raises(InputError, match="scale must be an integer >= 1"):
        frame_mask_panel(image, np.zeros((2, 2), np.uint8), ("key",), scale=0)
    with pytest.raises(InputError, match="uint8 frame"):
        frame_mask_panel(image.astype(np.float32), np.zeros((2, 2), np.uint8), ("key",))


def test_stack_panels_pads_and_separates() -> None:
    top = np.full((2, 3, 3), 7, np.uint8)
    bottom = np.full((1, 5, 3), 9, np.uint8)
    stacked = stack_panels([top, bottom])
    assert stacked.shape == (2 + GAP + 1, 5, 3)
    assert (stacked[:2, :3] == 7).all()
    assert (stacked[:2, 3:] == 0).all()
    assert (stacked[2 : 2 + GAP] == 255).all()
    assert (stacked[-1] == 9).all()
    with pytest.raises(InputError, match="at least one"):
        stack_panels([])


def test_write_env_demo(tmp_path: Path) -> None:
    path = write_env_demo(tmp_path / "demo", steps=5, seed=0)
    assert path == tmp_path / "demo" / "MiniGrid-DoorKey-5x5-v0_seed0.png"
    picture = cv2.imread(str(path))
    # Partial view: 7x7 cells of 8 px, x4, plus 3 legend rows; full view: 5x5 cells, same legend.
    partial = (56 * 4 + 3 * LEGEND_ROW, 2 * 56 * 4 + GAP)
    full = (40 * 4 + 3 * LEGEND_ROW, 2 * 40 * 4 + GAP)
    assert picture.shape == (partial[0] + GAP + full[0], partial[1], 3)
    # The full view's mask panel shows the key, door and goal: 3 blocks of 32x32 px.
    full_mask = picture[partial[0] + GAP : partial[0] + GAP + 160, 164:324, ::-1]
    assert (full_mask != 0).any(axis=2).sum() == 3 * 32 * 32
