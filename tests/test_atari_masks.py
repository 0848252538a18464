"""The Atari mask helpers on hand-made arrays: painting with and without colour, the union of two
frames, the max-pool, and the resize to 84x84 (numbers worked out by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from camal_rl.envs.atari_classes import (
    ATARI_GAMES,
    game_of,
    is_atari_id,
    registered_id,
    resolve_atari_classes,
)
from camal_rl.envs.atari_masks import max_pool, overlap_windows, paint_mask, resize_mask
from camal_rl.errors import InputError

RED = (200, 72, 72)


def test_paint_box_labels_the_whole_box_clipped_to_the_screen() -> None:
    frame = np.zeros((4, 5, 3), np.uint8)
    mask = paint_mask(np.zeros((4, 5), np.uint8), frame, [(2, -1, 1, 3, 2, None)])
    # x from -1 to 1 (3 wide) clips to columns 0-1; y 1-2
    assert mask.tolist() == [[0, 0, 0, 0, 0], [2, 2, 0, 0, 0], [2, 2, 0, 0, 0], [0, 0, 0, 0, 0]]


def test_paint_colour_labels_only_the_pixels_of_that_colour_inside_the_box() -> None:
    frame = np.zeros((3, 4, 3), np.uint8)
    frame[0, 0] = RED  # outside the box: not labelled
    frame[1, 1] = RED
    frame[1, 2] = (200, 72, 73)  # one channel off: not labelled
    frame[2, 3] = RED
    mask = paint_mask(np.zeros((3, 4), np.uint8), frame, [(1, 1, 1, 3, 2, RED)])
    assert mask.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def test_first_listed_class_wins_in_either_painting_order() -> None:
    frame = np.zeros((1, 3, 3), np.uint8)
    ball, paddle = (1, 1, 0, 1, 1, None), (2, 0, 0, 3, 1, None)
    for boxes in ([ball, paddle], [paddle, ball]):
        assert paint_mask(np.zeros((1, 3), np.uint8), frame, boxes).tolist() == [[2, 1, 2]]


def test_two_frames_painted_into_one_mask_give_their_union() -> None:
    # The ball flickers: drawn at column 0 in one frame, column 3 in the next.
    first, second = np.zeros((1, 4, 3), np.uint8), np.zeros((1, 4, 3), np.uint8)
    first[0, 0] = second[0, 3] = RED
    mask = np.zeros((1, 4), np.uint8)
    paint_mask(mask, first, [(1, 0, 0, 2, 1, RED)])
    paint_mask(mask, second, [(1, 2, 0, 2, 1, RED)])
    assert mask.tolist() == [[1, 0, 0, 1]]
    assert max_pool([first, second]).tolist() == [[list(RED), [0, 0, 0], [0, 0, 0], list(RED)]]


def test_max_pool_takes_the_brighter_pixel_of_the_last_two_frames() -> None:
    frames = [np.array([[[9, 9, 9]]], np.uint8), np.array([[[10, 200, 0]]], np.uint8)]
    frames.append(np.array([[[50, 100, 3]]], np.uint8))
    assert max_pool(frames).tolist() == [[[50, 200, 3]]]
    assert max_pool(frames[:1]).tolist() == [[[9, 9, 9]]]


def test_overlap_windows_of_the_atari_screen() -> None:
    # 210 rows -> 84: row i spans [2.5 i, 2.5 i + 2.5); 160 columns -> 84: column j spans
    # [1.905 j, 1.905 j + 1.905).
    rows = np.stack(overlap_windows(210, 84))
    assert rows[:, 0].tolist() == [0, 1, 2]
    assert rows[:, 1].tolist() == [2, 3, 4]
    assert rows[:, 2].tolist() == [5, 6, 7]
    assert rows[:, 83].tolist() == [207, 208, 209]
    cols = np.stack(overlap_windows(160, 84))
    assert cols[:, 0].tolist() == [0, 1, 1]  # [0, 1.905): columns 0 and 1
    assert cols[:, 1].tolist() == [1, 2, 3]  # [1.905, 3.810)
    assert cols[:, 2].tolist() == [3, 4, 5]  # [3.810, 5.714)


def test_resize_keeps_a_one_pixel_object_in_every_pixel_it_tints() -> None:
    mask = np.zeros((210, 160), np.uint8)
    mask[5, 3] = 1  # rows [5, 6) -> target row 2; columns [3, 4) -> target columns 1 and 2
    resized = resize_mask(mask, (84, 84), 1)
    assert resized.shape == (84, 84)
    assert list(zip(*np.nonzero(resized), strict=True)) == [(2, 1), (2, 2)]


def test_resize_gives_an_overlapped_pixel_to_the_first_class() -> None:
    mask = np.zeros((210, 160), np.uint8)
    mask[0, 0] = 2
    mask[2, 0] = 1  # row 2 lies in target rows 0 and 1
    resized = resize_mask(mask, (84, 84), 2)
    assert resized[:2, :2].tolist() == [[1, 0], [1, 0]]
    mask[2, 0] = 0
    assert resize_mask(mask, (84, 84), 2)[:2, :2].tolist() == [[2, 0], [0, 0]]


def test_resize_to_the_same_size_is_a_copy() -> None:
    mask = np.arange(6, dtype=np.uint8).reshape(2, 3) % 3
    resized = resize_mask(mask, (2, 3), 2)
    assert resized.tolist() == mask.tolist()
    assert resized is not mask


def test_atari_ids() -> None:
    assert game_of("ALE/Pong-v5") == game_of("camal_rl/ALE-Pong-v5") == "Pong"
    assert game_of("PongNoFrameskip-v4") is None
    assert is_atari_id("camal_rl/ALE-Breakout-v5")
    assert not is_atari_id("MiniGrid-Empty-5x5-v0")
    assert registered_id("Pong") == "camal_rl/ALE-Pong-v5"


def test_class_overrides() -> None:
    assert list(resolve_atari_classes("Pong", "paddle,ball")) == ["paddle", "ball"]
    assert resolve_atari_classes("Pong", None) == ATARI_GAMES["Pong"]
    categories = ["Player", "Enemy", "Ball"]
    mine = resolve_atari_classes("Pong", {"mine": "Player"}, categories)["mine"]
    assert mine == ATARI_GAMES["Pong"]["paddle"]  # one default class's categories: found as it finds them
    both = resolve_atari_classes("Pong", {"paddles": ["Player", "Enemy"]}, categories)["paddles"]
    assert both.categories == ("Player", "Enemy")
    assert not both.colour
    with pytest.raises(InputError, match="no category in two classes"):
        resolve_atari_classes("Pong", {"a": "Player", "b": ["Player", "Enemy"]}, categories)
    with pytest.raises(InputError, match="close matches: paddle"):
        resolve_atari_classes("Pong", "padle")
    with pytest.raises(InputError, match="close matches: Player"):
        resolve_atari_classes("Pong", {"me": "Playr"}, categories)
    boxes = resolve_atari_classes("Seaquest", {"shark": "Shark"}, ["Player", "Shark"])
    assert not boxes["shark"].colour
