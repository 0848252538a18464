"""Video frames (camal_rl.frames): exact pixels of the composition, the frame schedule and the
text panel, on hand-made arrays (no model, no env)."""

from __future__ import annotations

import numpy as np
import pytest

from camal_rl.errors import InputError
from camal_rl.frames import (
    BAR_COLUMN,
    BAR_X,
    OUTLINE_COLOR,
    PANEL_MIN_HEIGHT,
    PANEL_WIDTH,
    AgentRecording,
    RecordedEpisode,
    compose_frame,
    default_scale,
    frame_schedule,
    heat_colors,
    normalize_saliency,
    outline_pixels,
    overlay_saliency,
    pad_even,
    step_rows,
    still_index,
    tile_side_by_side,
)
from camal_rl.visual import GAP, SEPARATOR, upscale

JET_LOW, JET_HIGH = (0, 0, 128), (128, 0, 0)  # COLORMAP_JET at 0 and 1, in RGB


def test_default_scale() -> None:
    assert default_scale(56) == 6  # 336 px
    assert default_scale(40) == 9  # 360 px
    assert default_scale(120) == 3  # 360 px
    assert default_scale(1000) == 1
    with pytest.raises(InputError, match="frame height must be >= 1"):
        default_scale(0)


def test_normalize_saliency() -> None:
    s = normalize_saliency(np.array([[0.0, 2.0], [4.0, np.nan], [-1.0, 1.0]]))
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, [[0.0, 0.5], [1.0, 0.0], [0.0, 0.25]])
    zeros = normalize_saliency(np.zeros((2, 3)))
    assert (zeros == 0).all()


def test_heat_colors_endpoints() -> None:
    colors = heat_colors(np.array([[0.0, 1.0]]))
    assert colors.dtype == np.uint8
    assert colors.tolist() == [[list(JET_LOW), list(JET_HIGH)]]


def test_overlay_keeps_frame_where_saliency_is_zero() -> None:
    frame = np.full((2, 2, 3), 100, np.uint8)
    saliency = np.array([[0.0, 1.0], [0.5, 0.0]], np.float32)
    out = overlay_saliency(frame, saliency, alpha=0.6)
    # s = 0: weight 0, the frame's exact values.
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[1, 1].tolist() == [100, 100, 100]
    # s = 1: 0.4 * 100 + 0.6 * (128, 0, 0) = (116.8, 40, 40) -> (117, 40, 40).
    assert out[0, 1].tolist() == [117, 40, 40]
    # s = 0.5: weight 0.3 on heat_colors(0.5).
    half = heat_colors(np.array([[0.5]]))[0, 0].astype(float)
    assert out[1, 0].tolist() == np.rint(0.7 * 100 + 0.3 * half).astype(int).tolist()
    with pytest.raises(InputError, match=r"alpha must lie in \[0, 1\]"):
        overlay_saliency(frame, saliency, alpha=1.5)
    with pytest.raises(InputError, match="does not match frame shape"):
        overlay_saliency(frame, np.zeros((3, 3), np.float32))


def test_outline_pixels() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[1:7, 1:7] = 3  # a 6x6 block
    assert outline_pixels(mask, 1).sum() == 36 - 16  # rim of 6x6 around the 4x4 interior
    assert outline_pixels(mask, 2).sum() == 36 - 4  # two rims around the 2x2 interior
    assert not outline_pixels(mask, 2)[3:5, 3:5].any()
    with pytest.raises(InputError, match="outline width must be >= 1"):
        outline_pixels(mask, 0)


def test_compose_frame_layout_overlay_and_outline() -> None:
    """An 8 x 10 frame at scale 40: 320 x 400 frame, then the 56-pixel colour-bar column and the
    224-pixel text panel: 320 x 680. Saliency is 1 on columns 5..9 (pixels 200..399 once
    upscaled) and 0 elsewhere; the mask is a 2 x 2 block at rows 2..3, columns 1..2 (pixels
    80..159 x 40..119)."""
    rng = np.random.default_rng(0)
    image = rng.integers(10, 100, size=(8, 10, 3), dtype=np.uint8)
    saliency = np.zeros((8, 10), np.float32)
    saliency[:, 5:] = 3.0  # normalised to 1
    mask = np.zeros((8, 10), np.uint8)
    mask[2:4, 1:3] = 1
    tile = compose_frame(image, saliency, mask, "ppo-camal seed 0", [("action", "forward")], scale=40)
    assert tile.shape == (320, 400 + BAR_COLUMN + PANEL_WIDTH, 3) == (320, 680, 3)
    assert tile.dtype == np.uint8
    raw = upscale(image, 40)
    frame = tile[:, :400]

    # Outline: the 2-pixel rim of the 80 x 80 block, 80*80 - 76*76 = 624 pixels, all white.
    rim = np.zeros((320, 400), bool)
    rim[80:160, 40:120] = True
    rim[82:158, 42:118] = False
    assert rim.sum() == 624
    assert (frame[rim] == OUTLINE_COLOR).all()
    # Zero saliency (left half), away from the rim: exactly the raw upscaled frame.
    left = ~rim
    left[:, 200:] = False
    assert np.array_equal(frame[left], raw[left])
    # Saliency 1 (right half): every pixel changed, to round(0.4 * raw + 0.6 * (128, 0, 0)).
    right = frame[:, 200:].astype(int)
    assert (right != raw[:, 200:]).any(axis=2).all()
    expected = np.rint(0.4 * raw[:, 200:] + 0.6 * np.array(JET_HIGH)).astype(int)
    assert np.array_equal(right, expected)

    # Colour bar: high (dark red) on the top row, low (dark blue) on the bottom row.
    bar = tile[:, 400 + BAR_X[0] : 400 + BAR_X[1]]
    assert (bar[0] == JET_HIGH).all()
    assert (bar[-1] == JET_LOW).all()
    # The text panel holds text (non-black pixels) and nothing from the frame.
    assert tile[:, 400 + BAR_COLUMN :].any()


def test_compose_frame_is_at_least_as_tall_as_the_panel() -> None:
    image = np.full((4, 4, 3), 200, np.uint8)
    tile = compose_frame(image, np.zeros((4, 4)), np.zeros((4, 4), np.uint8), "x", [], scale=2)
    assert tile.shape == (PANEL_MIN_HEIGHT, 8 + BAR_COLUMN + PANEL_WIDTH, 3) == (236, 288, 3)
    assert (tile[:8, :8] == 200).all()  # zero saliency, empty mask: the raw frame
    assert not tile[8:, :8].any()  # black below the frame
    with pytest.raises(InputError, match="must match the frame"):
        compose_frame(image, np.zeros((5, 4)), np.zeros((4, 4), np.uint8), "x", [], scale=2)


def test_tile_side_by_side_and_pad_even() -> None:
    a = np.full((3, 2, 3), 7, np.uint8)
    b = np.full((5, 4, 3), 9, np.uint8)
    tiled = tile_side_by_side([a, b])
    assert tiled.shape == (5, 2 + GAP + 4, 3)
    assert (tiled[:3, :2] == 7).all()
    assert not tiled[3:, :2].any()  # the shorter tile is padded with black
    assert (tiled[:, 2 : 2 + GAP] == SEPARATOR).all()
    assert (tiled[:, 2 + GAP :] == 9).all()
    with pytest.raises(InputError, match="at least one image"):
        tile_side_by_side([])
    padded = pad_even(tiled)  # (5, 10) -> (6, 10)
    assert padded.shape == (6, 10, 3)
    assert np.array_equal(padded[:5], tiled)
    assert not padded[5].any()
    even = np.zeros((4, 6, 3), np.uint8)
    assert pad_even(even) is even


def test_frame_schedule_holds_the_last_frame_of_shorter_episodes() -> None:
    schedule = frame_schedule([[3, 1], [2, 2]])
    assert [(f.episode, f.t, f.steps) for f in schedule] == [
        (0, 0, (0, 0)),
        (0, 1, (1, 1)),
        (0, 2, (2, 1)),  # agent 1 finished episode 0 after 2 steps: holds step 1
        (1, 0, (0, 0)),
        (1, 1, (0, 1)),  # agent 0's episode 1 lasted 1 step
    ]
    assert len(frame_schedule([[4, 5, 6]])) == 15  # one agent: the sum of its episode lengths
    with pytest.raises(InputError, match="same number of episodes"):
        frame_schedule([[3], [2, 2]])
    with pytest.raises(InputError, match="must be >= 1"):
        frame_schedule([[0]])


def fake_episode(masks_any: list[bool], rewards: list[float]) -> RecordedEpisode:
    n = len(masks_any)
    masks = np.zeros((n, 2, 2), np.uint8)
    masks[np.array(masks_any), 0, 0] = 1
    epg = np.where(masks_any, 0.25, np.nan)
    return RecordedEpisode(
        images=np.zeros((n, 2, 2, 3), np.uint8),
        masks=masks,
        saliency=np.tile(np.float32([[1, 2], [3, 4]]), (n, 1, 1)),
        actions=np.array([2, 5, 9][:n] + [0] * max(0, n - 3)),
        values=np.linspace(0.5, 1.0, n),
        probs=np.full(n, 0.75),
        rewards=np.array(rewards),
        epg=epg,
    )


def fake_recording(*episodes: RecordedEpisode) -> AgentRecording:
    names = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    return AgentRecording("ppo-camal seed 0", "gradcam", names, "V(s)", "pi(a|s)", tuple(episodes))


def test_step_rows() -> None:
    rec = fake_recording(fake_episode([False, True, True], [0.0, 0.0, 0.9]), fake_episode([True], [0.0]))
    rows = dict(step_rows(rec, 0, 2, done=True))
    assert rows == {
        "method": "gradcam",
        "episode": "1/2",
        "step": "2 (done)",
        "action": "9",  # outside the 7 named actions: its number
        "V(s)": "1.000",
        "pi(a|s)": "0.750",
        "reward": "+0.900",
        "return": "0.900",  # rewards up to and including this step
        "EPG": "0.25",
    }
    first = dict(step_rows(rec, 0, 0, done=False))
    assert first["step"] == "0"
    assert first["action"] == "forward"
    assert first["EPG"] == "- (no mask)"


def test_step_rows_mark_a_flat_map() -> None:
    """A map with no pixel above another (a dead Grad-CAM) scores chance: the panel says why."""
    episode = fake_episode([True, True], [0.0, 0.0])
    episode.saliency[0] = 0.0
    episode.saliency[1] = 0.0
    episode.saliency[1, 0, 0] = 1e-6
    rec = fake_recording(episode)
    assert dict(step_rows(rec, 0, 0, done=False))["EPG"] == "0.25 (flat map)"
    assert dict(step_rows(rec, 0, 1, done=False))["EPG"] == "0.25"


def test_still_index_prefers_steps_with_a_mask_in_view() -> None:
    a = fake_recording(fake_episode([False, True, True, True, False], [0.0] * 5))
    b = fake_recording(fake_episode([False, False, True, True], [0.0] * 4))
    assert still_index([a]) == 2  # masks at frames 1, 2, 3: the middle one
    assert still_index([a, b]) == 2  # both masked at frames 2, 3: the first of the middle two
    none = fake_recording(fake_episode([False] * 5, [0.0] * 5), fake_episode([True], [0.0]))
    assert still_index([none]) == 2  # no mask in episode 0: its middle frame
