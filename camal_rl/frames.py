"""Video frames of ``camal-rl record``, composed from arrays: no model, no env, no files.

Every video frame shows, per agent: the env frame upscaled (nearest neighbour), the saliency map
of the action it took overlaid as a heatmap, the outline of the task-relevant objects' mask, a
colour bar, and a text panel (agent, method, episode and step, action, value, pi(a|s), reward,
return so far, and the energy pointing game of that frame, marked where the map is flat).
Several agents are tiled side by side on the same episode seeds, so a baseline and a CAMAL agent
can be compared in one video.

The composition is pure numpy / OpenCV on uint8 arrays (:func:`compose_frame`,
:func:`tile_side_by_side`, :func:`frame_schedule`, :func:`render_frames`); the recorded
episodes it draws (:class:`RecordedEpisode`, :class:`AgentRecording`) come from
:func:`camal_rl.video.record_agent`, or from hand-made arrays in tests.

Layout of one agent's tile (pixels; ``S = scale``, the env frame is H x W)::

    +-----------------+--------------+-------------------+
    | frame, H*S x W*S| colour bar   | text panel        |
    | + heatmap       | BAR_COLUMN   | PANEL_WIDTH       |
    | + mask outline  | wide         | wide              |
    +-----------------+--------------+-------------------+
    tile height = max(H * S, PANEL_MIN_HEIGHT); tiles are joined with GAP white columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from camal_rl.errors import InputError
from camal_rl.metrics import flat_map
from camal_rl.visual import join_images, mask_outline, upscale

TARGET_HEIGHT = 360
"""Default upscaled frame height in pixels (:func:`default_scale`)."""
DEFAULT_ALPHA = 0.6
"""Heatmap opacity where the (per-frame normalised) saliency is 1."""
COLORMAP = cv2.COLORMAP_JET
"""OpenCV colour map of the heatmap and the colour bar: dark blue (low) to dark red (high)."""
OUTLINE_COLOR = (255, 255, 255)
"""RGB colour of the mask outline."""
BACKGROUND = (0, 0, 0)
BAR_COLUMN = 56
"""Width of the colour-bar column: a margin, the bar, and its "high" / "low" labels."""
BAR_X = (6, 20)
"""Columns [start, stop) of the bar inside its column."""
PANEL_WIDTH = 224
"""Width of the text panel."""
PANEL_MARGIN = 8
"""Left and top margin of the text panel."""
ROW_HEIGHT = 22
"""Height of one text row."""
VALUE_X = 96
"""Column where the value of a ``name value`` row starts."""
PANEL_ROWS = 10
"""Rows of the panel: the agent label, then the nine rows of :func:`step_rows`."""
PANEL_MIN_HEIGHT = PANEL_ROWS * ROW_HEIGHT + 2 * PANEL_MARGIN
"""A tile is at least this tall, so the text panel always fits (236 pixels)."""
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.45
TITLE_COLOR = (255, 225, 25)
NAME_COLOR = (170, 170, 170)
VALUE_COLOR = (255, 255, 255)


# ---------------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------------


def default_scale(height: int) -> int:
    """The integer upscaling factor that brings a frame of ``height`` pixels closest to
    :data:`TARGET_HEIGHT` (at least 1): 56 -> 6 (336 px), 40 -> 9 (360 px), 120 -> 3 (360 px)."""
    if height < 1:
        raise InputError(f"frame height must be >= 1 pixel, got {height}")
    return max(1, round(TARGET_HEIGHT / height))


def normalize_saliency(saliency: np.ndarray) -> np.ndarray:
    """A saliency map divided by its maximum, so it spans [0, 1] with 0 kept at 0.

    Negative and non-finite values count as 0; an all-zero map stays all zero.

    :param saliency: (H, W) map.
    :return: (H, W) float32 in [0, 1].
    """
    s = np.nan_to_num(np.asarray(saliency, np.float32), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    peak = float(s.max()) if s.size else 0.0
    return s / peak if peak > 0 else np.zeros_like(s)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """RGB colours of values in [0, 1] under :data:`COLORMAP` (0 -> (0, 0, 128), 1 -> (128, 0, 0)).

    :param values: (H, W) floats in [0, 1] (clipped).
    :return: (H, W, 3) uint8 RGB.
    """
    levels = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAP), cv2.COLOR_BGR2RGB)


def overlay_saliency(frame: np.ndarray, saliency: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Blend a heatmap onto a frame with an opacity proportional to the saliency:
    ``out = (1 - alpha * s) * frame + alpha * s * heat_colors(s)``, rounded to uint8.

    Pixels with ``s = 0`` keep the frame's exact values, so low attention never hides the frame.

    :param frame: (H, W, 3) uint8.
    :param saliency: (H, W) normalised saliency ``s`` in [0, 1] (:func:`normalize_saliency`).
    :param alpha: opacity at ``s = 1``, in [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must lie in [0, 1], got {alpha}")
    if saliency.shape != frame.shape[:2]:
        raise InputError(f"saliency shape {saliency.shape} does not match frame shape {frame.shape[:2]}")
    weight = (alpha * np.clip(saliency, 0.0, 1.0))[..., None]
    blended = frame * (1.0 - weight) + heat_colors(saliency) * weight
    return np.rint(blended).astype(np.uint8)


def outline_pixels(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The inner ``width``-pixel rim of ``mask > 0``: :func:`camal_rl.visual.mask_outline` applied
    ``width`` times, peeling one ring each time.

    :param mask: (H, W) integer mask.
    :param width: rim thickness in pixels, >= 1.
    :return: (H, W) bool.
    """
    if width < 1:
        raise InputError(f"outline width must be >= 1 pixel, got {width}")
    inside = np.asarray(mask) > 0
    rim = np.zeros_like(inside)
    for _ in range(width):
        ring = mask_outline(inside.astype(np.uint8))
        rim |= ring
        inside &= ~ring
    return rim


def outline_width(scale: int) -> int:
    """Mask outline thickness on a frame upscaled ``scale`` times: 1 pixel below 4, else 2."""
    return 1 if scale < 4 else 2


def colour_bar(height: int) -> np.ndarray:
    """The colour-bar column: :data:`COLORMAP` from high (top row) to low (bottom row) in columns
    :data:`BAR_X`, labelled "high" at the top and "low" at the bottom, on black.

    :param height: column height in pixels.
    :return: (height, BAR_COLUMN, 3) uint8.
    """
    out = np.zeros((height, BAR_COLUMN, 3), np.uint8)
    levels = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None]
    x0, x1 = BAR_X
    out[:, x0:x1] = heat_colors(np.repeat(levels, x1 - x0, axis=1))
    _put_text(out, "high", (x1 + 4, 12), BAR_COLUMN - x1 - 4, 0.4, VALUE_COLOR)
    _put_text(out, "low", (x1 + 4, height - 3), BAR_COLUMN - x1 - 4, 0.4, VALUE_COLOR)
    return out


def text_panel(title: str, rows: Sequence[tuple[str, str]], height: int) -> np.ndarray:
    """The text panel: ``title`` on the first row, then one ``name  value`` row per entry.

    Text that would not fit its column is drawn smaller (down to font scale 0.3).

    :param title: the agent's label.
    :param rows: ``(name, value)`` pairs.
    :param height: panel height in pixels.
    :return: (height, PANEL_WIDTH, 3) uint8.
    """
    out = np.zeros((height, PANEL_WIDTH, 3), np.uint8)
    baseline = PANEL_MARGIN + ROW_HEIGHT - 6
    _put_text(out, title, (PANEL_MARGIN, baseline), PANEL_WIDTH - 2 * PANEL_MARGIN, 0.5, TITLE_COLOR)
    for name, value in rows:
        baseline += ROW_HEIGHT
        _put_text(out, name, (PANEL_MARGIN, baseline), VALUE_X - PANEL_MARGIN - 4, TEXT_SCALE, NAME_COLOR)
        _put_text(out, value, (VALUE_X, baseline), PANEL_WIDTH - VALUE_X - 4, TEXT_SCALE, VALUE_COLOR)
    return out


def compose_frame(
    image: np.ndarray,
    saliency: np.ndarray,
    mask: np.ndarray,
    title: str,
    rows: Sequence[tuple[str, str]],
    *,
    scale: int,
    alpha: float = DEFAULT_ALPHA,
) -> np.ndarray:
    """One agent's tile of a video frame (layout in the module docstring).

    The frame and the saliency are upscaled by pixel repetition (each input pixel becomes a
    ``scale`` x ``scale`` block), the saliency is normalised with :func:`normalize_saliency` and
    overlaid with :func:`overlay_saliency`, then the :func:`outline_pixels` of the upscaled mask
    (:func:`outline_width` thick) are painted :data:`OUTLINE_COLOR`.

    :param image: (H, W, 3) uint8 env frame.
    :param saliency: (H, W) saliency map >= 0 of the same step.
    :param mask: (H, W) mask of the same step.
    :param title: first line of the text panel.
    :param rows: ``(name, value)`` lines below it (:func:`step_rows`).
    :param scale: integer upscaling factor >= 1.
    :param alpha: heatmap opacity at the frame's peak saliency.
    :return: (max(H * scale, PANEL_MIN_HEIGHT), W * scale + BAR_COLUMN + PANEL_WIDTH, 3) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected a uint8 frame (H, W, 3), got {image.dtype} {image.shape}")
    if np.shape(saliency) != image.shape[:2] or np.shape(mask) != image.shape[:2]:
        raise InputError(
            f"saliency {np.shape(saliency)} and mask {np.shape(mask)} must match the frame {image.shape[:2]}"
        )
    frame = overlay_saliency(upscale(image, scale), upscale(normalize_saliency(saliency), scale), alpha)
    frame[outline_pixels(upscale(np.asarray(mask), scale), outline_width(scale))] = OUTLINE_COLOR
    frame_height, frame_width = frame.shape[:2]
    height = max(frame_height, PANEL_MIN_HEIGHT)
    left = np.zeros((height, frame_width + BAR_COLUMN, 3), np.uint8)
    left[:frame_height, :frame_width] = frame
    left[:frame_height, frame_width:] = colour_bar(frame_height)
    return np.concatenate([left, text_panel(title, rows, height)], axis=1)


def tile_side_by_side(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """Join agents' tiles left to right (:func:`camal_rl.visual.join_images` along columns):
    :data:`~camal_rl.visual.GAP` columns of :data:`~camal_rl.visual.SEPARATOR` between them,
    shorter tiles padded at the bottom with black.

    :return: (max height, sum of widths + GAP * (n - 1), 3) uint8.
    """
    return join_images(tiles, axis=1)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad a frame with one black row and / or column so both sides are even (H.264 with yuv420p
    needs even dimensions); an even frame is returned as is."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))


@dataclass(frozen=True)
class ScheduledFrame:
    """Which step each agent shows in one video frame."""

    episode: int
    """Episode index (all agents play the episode with the same seed)."""
    t: int
    """Time step of the video within the episode."""
    steps: tuple[int, ...]
    """Step shown by each agent: ``min(t, its episode length - 1)`` (a finished agent holds its
    last frame)."""


def frame_schedule(lengths: Sequence[Sequence[int]]) -> list[ScheduledFrame]:
    """The video's frames for agents whose episodes have different lengths.

    Episode ``e`` lasts as long as its longest agent's episode; agents that finished earlier hold
    their last step. E.g. lengths ``[[3, 1], [2, 2]]`` (agent 0: 3 and 1 steps; agent 1: 2 and 2)
    give 3 + 2 = 5 frames, showing steps (0, 0), (1, 1), (2, 1) | (0, 0), (0, 1).

    :param lengths: ``lengths[a][e]``: length (>= 1) of agent ``a``'s episode ``e``; every agent
        has the same number of episodes.
    """
    if not lengths or len({len(agent) for agent in lengths}) != 1:
        raise InputError("frame_schedule needs at least one agent and the same number of episodes for each")
    if any(n < 1 for agent in lengths for n in agent):
        raise InputError(f"episode lengths must be >= 1, got {[list(agent) for agent in lengths]}")
    schedule = []
    for episode in range(len(lengths[0])):
        longest = max(agent[episode] for agent in lengths)
        for t in range(longest):
            steps = tuple(min(t, agent[episode] - 1) for agent in lengths)
            schedule.append(ScheduledFrame(episode, t, steps))
    return schedule


# ---------------------------------------------------------------------------------------------
# Recorded episodes and the video they make
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedEpisode:
    """One episode of the deterministic policy, with what the video shows of each step."""

    images: np.ndarray
    """(T, H, W, 3) uint8 frames the agent saw."""
    masks: np.ndarray
    """(T, H, W) masks of the same steps (never shown to the agent)."""
    saliency: np.ndarray
    """(T, H, W) float32 saliency of the taken action."""
    actions: np.ndarray
    """(T,) actions taken."""
    values: np.ndarray
    """(T,) V(s) (PPO) or max_a Q(s, a) (DQN)."""
    probs: np.ndarray
    """(T,) softmax(scores)[action]: pi(a|s) for PPO, softmax(Q)(a) for DQN."""
    rewards: np.ndarray
    """(T,) reward received for each action."""
    epg: np.ndarray
    """(T,) energy pointing game of the saliency on the mask (nan where the mask is empty)."""

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])


@dataclass(frozen=True)
class AgentRecording:
    """An agent's recorded episodes and the names its text panel uses."""

    label: str
    """First line of the panel, e.g. ``ppo-camal seed 0``."""
    method: str
    """Saliency method."""
    action_names: tuple[str, ...]
    """Name of each discrete action."""
    value_name: str
    """``V(s)`` for PPO, ``max Q`` for DQN."""
    prob_name: str
    """``pi(a|s)`` for PPO, ``softmax Q`` for DQN."""
    episodes: tuple[RecordedEpisode, ...]


def step_rows(recording: AgentRecording, episode: int, step: int, *, done: bool) -> list[tuple[str, str]]:
    """The ``(name, value)`` rows of the text panel for one step.

    ``reward`` is the reward of the action shown, ``return`` the sum of rewards up to and
    including it; ``done`` marks a held last frame. A flat saliency map (nothing to show, scored
    at chance) has "(flat map)" after its EPG.
    """
    ep = recording.episodes[episode]
    action = int(ep.actions[step])
    name = recording.action_names[action] if 0 <= action < len(recording.action_names) else str(action)
    epg = float(ep.epg[step])
    flat = " (flat map)" if flat_map(ep.saliency[step : step + 1])[0] else ""
    return [
        ("method", recording.method),
        ("episode", f"{episode + 1}/{len(recording.episodes)}"),
        ("step", f"{step}" + (" (done)" if done else "")),
        ("action", name),
        (recording.value_name, f"{float(ep.values[step]):.3f}"),
        (recording.prob_name, f"{float(ep.probs[step]):.3f}"),
        ("reward", f"{float(ep.rewards[step]):+.3f}"),
        ("return", f"{float(ep.rewards[: step + 1].sum()):.3f}"),
        ("EPG", (f"{epg:.2f}" if math.isfinite(epg) else "- (no mask)") + flat),
    ]


def render_frames(
    recordings: Sequence[AgentRecording],
    *,
    scale: int | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Iterator[np.ndarray]:
    """The video frames of :func:`frame_schedule`: one :func:`compose_frame` tile per agent,
    tiled with :func:`tile_side_by_side` and padded to even sides with :func:`pad_even`.

    :param recordings: one per agent, each with the same number of episodes.
    :param scale: upscaling factor (default: :func:`default_scale` of each agent's frame height).
    :param alpha: heatmap opacity at each frame's peak saliency.
    """
    schedule = frame_schedule([[ep.length for ep in rec.episodes] for rec in recordings])
    scales = [scale or default_scale(rec.episodes[0].images.shape[1]) for rec in recordings]
    for entry in schedule:
        tiles = []
        for rec, step, agent_scale in zip(recordings, entry.steps, scales, strict=True):
            ep = rec.episodes[entry.episode]
            rows = step_rows(rec, entry.episode, step, done=step < entry.t)
            tiles.append(
                compose_frame(
                    ep.images[step],
                    ep.saliency[step],
                    ep.masks[step],
                    rec.label,
                    rows,
                    scale=agent_scale,
                    alpha=alpha,
                )
            )
        yield pad_even(tile_side_by_side(tiles))


def still_index(recordings: Sequence[AgentRecording]) -> int:
    """The video frame to save as a still: among the first episode's frames where every agent's
    mask is non-empty, the middle one; if there is none, the middle frame of the first episode."""
    schedule = frame_schedule([[ep.length for ep in rec.episodes] for rec in recordings])
    first = [i for i, entry in enumerate(schedule) if entry.episode == 0]
    with_mask = [
        i
        for i in first
        if all(
            rec.episodes[0].masks[step].any() for rec, step in zip(recordings, schedule[i].steps, strict=True)
        )
    ]
    candidates = with_mask or first
    return candidates[(len(candidates) - 1) // 2]


def _put_text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    max_width: int,
    font_scale: float,
    color: tuple[int, int, int],
) -> None:
    """Draw ``text`` with its baseline at ``origin``, shrinking the font (down to 0.3) to fit
    ``max_width`` pixels."""
    while font_scale > 0.3 and cv2.getTextSize(text, FONT, font_scale, 1)[0][0] > max_width:
        font_scale -= 0.05
    cv2.putText(image, text, origin, FONT, font_scale, color, 1, cv2.LINE_AA)
