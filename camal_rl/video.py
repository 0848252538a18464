"""``camal-rl record``: videos of an agent's rollouts showing where it looks and what it does.

Every video frame shows, per agent: the env frame upscaled (nearest neighbour), the saliency map
of the action it took overlaid as a heatmap, the outline of the task-relevant objects' mask, a
colour bar, and a text panel (agent, method, episode and step, action, value, pi(a|s), reward,
return so far, and the energy pointing game of that frame). Several agents are tiled side by
side on the same episode seeds, so a baseline and a CAMAL agent can be compared in one video.

The composition is pure numpy / OpenCV on uint8 arrays (:func:`compose_frame`,
:func:`tile_side_by_side`, :func:`frame_schedule`), testable without a model; :func:`record`
rolls out the agents and writes MP4 (H.264, yuv420p), and on request a GIF and one still PNG.

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
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import cv2
import gymnasium as gym
import numpy as np
import torch
import tyro
from gymnasium import spaces

from camal_rl.adapters import images_to_tensor
from camal_rl.errors import InputError
from camal_rl.evaluation import EVAL_SEED, Episode, collect_episodes
from camal_rl.metrics import energy_pointing_game
from camal_rl.saliency import SALIENCY_METHODS, compute_saliency, eval_mode
from camal_rl.visual import join_images, mask_outline, upscale

if TYPE_CHECKING:
    from camal_rl.agents import PolicyScorer
    from camal_rl.loading import LoadedAgent

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
# Pure frame composition
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
# Rollouts
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
    including it; ``done`` marks a held last frame.
    """
    ep = recording.episodes[episode]
    action = int(ep.actions[step])
    name = recording.action_names[action] if 0 <= action < len(recording.action_names) else str(action)
    epg = float(ep.epg[step])
    return [
        ("method", recording.method),
        ("episode", f"{episode + 1}/{len(recording.episodes)}"),
        ("step", f"{step}" + (" (done)" if done else "")),
        ("action", name),
        (recording.value_name, f"{float(ep.values[step]):.3f}"),
        (recording.prob_name, f"{float(ep.probs[step]):.3f}"),
        ("reward", f"{float(ep.rewards[step]):+.3f}"),
        ("return", f"{float(ep.rewards[: step + 1].sum()):.3f}"),
        ("EPG", f"{epg:.2f}" if math.isfinite(epg) else "- (no mask)"),
    ]


def action_names(env: gym.Env) -> tuple[str, ...]:
    """Names of a discrete action space: MiniGrid's ``Actions`` members, ViZDoom's pressed buttons
    joined by ``+`` (``noop`` for none, e.g. ``move_left``), else the action numbers.

    :raises InputError: the action space is not discrete.
    """
    space = env.action_space
    if not isinstance(space, spaces.Discrete):
        raise InputError(f"camal-rl record needs a discrete action space, got {space}")
    n = int(space.n)
    base: Any = env.unwrapped
    from minigrid.core.actions import Actions
    from minigrid.minigrid_env import MiniGridEnv

    if isinstance(base, MiniGridEnv):
        return tuple(Actions(i).name for i in range(n))
    button_map = getattr(base, "button_map", None)
    game = getattr(base, "game", None)
    if button_map is not None and game is not None and len(button_map) == n:
        buttons = list(game.get_available_buttons())[int(getattr(base, "num_delta_buttons", 0)) :]
        return tuple(
            "+".join(button.name.lower() for button, pressed in zip(buttons, row, strict=True) if pressed)
            or "noop"
            for row in button_map
        )
    return tuple(str(i) for i in range(n))


def agent_label(agent: LoadedAgent) -> str:
    """``<algo>-<method> seed <seed>`` for a run directory, the file name for a bare model zip."""
    if agent.config is not None:
        return f"{agent.config.label} seed {agent.config.seed}"
    return agent.model_path.stem


def score_episode(
    scorer: PolicyScorer, episode: Episode, method: str, *, batch_size: int = 32
) -> RecordedEpisode:
    """Saliency, value, pi(a|s) and EPG of every step of a recorded episode.

    :param scorer: the agent's :class:`~camal_rl.agents.PolicyScorer`.
    :param episode: from :func:`camal_rl.evaluation.collect_episodes`.
    :param method: a name in :data:`camal_rl.saliency.SALIENCY_METHODS`.
    :param batch_size: steps per saliency batch.
    """
    saliency, values, probs = [], [], []
    for start in range(0, episode.length, batch_size):
        chunk = slice(start, start + batch_size)
        x = images_to_tensor(episode.images[chunk], scorer.device)
        a = torch.as_tensor(episode.actions[chunk], dtype=torch.long, device=scorer.device)
        saliency.append(compute_saliency(method, scorer, x, a).cpu().numpy())
        with eval_mode(scorer), torch.no_grad():
            scores, _ = scorer.scores_and_maps(x)
            probs.append(torch.softmax(scores.float(), dim=1).gather(1, a[:, None])[:, 0].cpu().numpy())
            values.append(scorer.state_values(x).float().cpu().numpy())
    saliency_np = np.concatenate(saliency).astype(np.float32)
    return RecordedEpisode(
        images=episode.images,
        masks=episode.masks,
        saliency=saliency_np,
        actions=episode.actions,
        values=np.concatenate(values).astype(np.float64),
        probs=np.concatenate(probs).astype(np.float64),
        rewards=episode.rewards,
        epg=np.asarray(energy_pointing_game(saliency_np, episode.masks), np.float64),
    )


def record_agent(
    agent: LoadedAgent,
    method: str = "gradcam",
    *,
    episodes: int = 1,
    seed: int = EVAL_SEED,
    distractors: int = 0,
    max_steps: int | None = None,
) -> AgentRecording:
    """Roll out an agent's deterministic policy (acting on the image only) and score each step.

    :param agent: from :func:`camal_rl.loading.load_agent`.
    :param method: saliency method of the heatmap.
    :param episodes: episodes, seeded ``seed, seed + 1, ...``.
    :param seed: seed of the first episode.
    :param distractors: extra non-relevant objects (MiniGrid distractor variant; 0: none).
    :param max_steps: cut each episode after this many steps (None: the env's own limit).
    """
    from camal_rl.agents import PolicyScorer
    from camal_rl.envs import make_masked_env

    if method not in SALIENCY_METHODS:
        raise InputError(f"unknown saliency method {method!r}; choose one of: {', '.join(SALIENCY_METHODS)}")
    kwargs = dict(agent.env_kwargs)
    if distractors:
        kwargs["distractors"] = distractors

    def make_env() -> gym.Env:
        env = make_masked_env(agent.env_id, **kwargs)
        return gym.wrappers.TimeLimit(env, max_steps) if max_steps is not None else env

    probe = make_env()
    try:
        names = action_names(probe)
    finally:
        probe.close()
    scorer = PolicyScorer(agent.model)
    played = collect_episodes(agent.model, make_env, episodes, seed=seed)
    return AgentRecording(
        label=agent_label(agent),
        method=method,
        action_names=names,
        value_name="max Q" if scorer.is_q_network else "V(s)",
        prob_name="softmax Q" if scorer.is_q_network else "pi(a|s)",
        episodes=tuple(score_episode(scorer, episode, method) for episode in played),
    )


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


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def write_video(
    frames: Iterable[np.ndarray],
    out: Path,
    *,
    fps: int = 6,
    gif: bool = False,
    still: int | None = None,
) -> list[Path]:
    """Write frames as an MP4 (H.264, yuv420p, through imageio-ffmpeg's bundled ffmpeg), and
    optionally as a GIF (``out`` with suffix ``.gif``) and frame ``still`` as a PNG (suffix
    ``.png``). Frames are streamed to the MP4; only the GIF keeps them in memory.

    :param frames: (H, W, 3) uint8 frames, all of one even size.
    :param out: the ``.mp4`` path (parent folders are created).
    :param fps: frames per second.
    :param gif: also write the GIF.
    :param still: index of the frame to save as a PNG (None: no PNG).
    :return: the files written, MP4 first.
    """
    import imageio.v3 as iio
    import imageio_ffmpeg

    out.parent.mkdir(parents=True, exist_ok=True)
    gif_frames: list[np.ndarray] = []
    written = [out]
    writer = None
    size: tuple[int, ...] | None = None
    n = 0
    try:
        for n, frame in enumerate(frames, start=1):
            if size is None:
                size = frame.shape
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] % 2 or frame.shape[1] % 2:
                    raise InputError(f"video frames must be (H, W, 3) with even H and W, got {frame.shape}")
                writer = imageio_ffmpeg.write_frames(
                    str(out),
                    (frame.shape[1], frame.shape[0]),
                    fps=fps,
                    codec="libx264",
                    pix_fmt_out="yuv420p",
                    quality=8,
                    macro_block_size=2,
                    ffmpeg_log_level="error",
                )
                writer.send(None)
            if frame.shape != size:
                raise InputError(
                    f"all video frames must have one size: frame {n - 1} is {frame.shape}, the first {size}"
                )
            assert writer is not None
            writer.send(np.ascontiguousarray(frame, np.uint8))
            if gif:
                gif_frames.append(frame)
            if still is not None and n - 1 == still:
                png = out.with_suffix(".png")
                iio.imwrite(png, frame)
                written.append(png)
    finally:
        if writer is not None:
            writer.close()
    if n == 0:
        raise InputError(f"no frames to write to {out}")
    if gif:
        path = out.with_suffix(".gif")
        iio.imwrite(path, np.stack(gif_frames), extension=".gif", duration=1000.0 / fps, loop=0)
        written.insert(1, path)
    return written


# ---------------------------------------------------------------------------------------------
# camal-rl record
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordConfig:
    """Record MP4 videos of trained agents' rollouts with their saliency heatmap, the mask outline,
    the action, value and pi(a|s) of every step; several agents are tiled side by side on the same
    episode seeds."""

    runs: Annotated[
        tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_OR_MODEL [RUN_OR_MODEL ...]")
    ]
    """Run directories (from `camal-rl train`) or model zips; several are tiled side by side."""
    method: str = "gradcam"
    """Saliency method of the heatmap: gradcam, gradcam++, input_x_gradient or perturbation."""
    episodes: int = 3
    """Episodes to record (every agent plays the same seeds)."""
    seed: int = EVAL_SEED
    """Seed of the first episode."""
    env: str | None = None
    """Env id (default: each run's own); needed for a bare model zip."""
    distractors: int = 0
    """Record on the distractor variant with this many extra objects (MiniGrid; 0: the training env)."""
    max_steps: int | None = None
    """Cut each episode after this many steps (default: the env's own limit)."""
    scale: int | None = None
    """Integer upscaling of the env frame (default: the one bringing it closest to 360 pixels tall)."""
    alpha: float = DEFAULT_ALPHA
    """Heatmap opacity at each frame's peak saliency (it fades to 0 where saliency is 0)."""
    fps: int = 6
    """Frames (env steps) per second."""
    out: Path | None = None
    """MP4 path (default: RUN/videos/<method>_seed<seed>.mp4 for one run directory,
    <zip folder>/videos/<zip name>_<method>_seed<seed>.mp4 for a model zip,
    videos/<label>_vs_<label>_<method>_seed<seed>.mp4 for several)."""
    gif: bool = False
    """Also write a GIF next to the MP4."""
    frame_png: bool = False
    """Also write one still PNG next to the MP4 (the middle step of the first episode with a mask in view)."""
    device: str = "auto"
    """Torch device: auto, cpu or cuda."""


def check_record_config(cfg: RecordConfig) -> None:
    """:raises InputError: a value ``record`` cannot use, with what to pass instead."""
    if not cfg.runs:
        raise InputError("pass at least one run directory or model zip to record")
    if cfg.method not in SALIENCY_METHODS:
        raise InputError(
            f"unknown saliency method {cfg.method!r}; choose one of: {', '.join(SALIENCY_METHODS)}"
        )
    for name in ("episodes", "fps"):
        if getattr(cfg, name) < 1:
            raise InputError(f"--{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("scale", "max_steps"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be >= 1 (or left out for the default), got {value}"
            )
    if cfg.distractors < 0:
        raise InputError(f"--distractors must be >= 0, got {cfg.distractors}")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise InputError(f"--alpha must lie in [0, 1], got {cfg.alpha}")
    if cfg.out is not None and cfg.out.suffix.lower() != ".mp4":
        raise InputError(f"--out must be an .mp4 path (the GIF and PNG are written beside it), got {cfg.out}")


def default_out(cfg: RecordConfig, agents: Sequence[LoadedAgent], labels: Sequence[str]) -> Path:
    """Where ``record`` writes its MP4 when ``--out`` is not given (see :class:`RecordConfig`)."""
    name = f"{cfg.method}_seed{cfg.seed}.mp4"
    if len(agents) == 1:
        agent = agents[0]
        if agent.run is not None:
            return agent.run.videos / name
        return agent.model_path.parent / "videos" / f"{agent.model_path.stem}_{name}"
    slugs = [re.sub(r"[^A-Za-z0-9.+=-]+", "", label.replace(" ", "-")) for label in labels]
    return Path("videos") / f"{'_vs_'.join(slugs)}_{name}"


def record(cfg: RecordConfig) -> list[Path]:
    """``camal-rl record``: roll out each agent on the same seeds and write the video files.

    :return: the files written: the MP4, then the GIF and PNG when asked for.
    """
    from camal_rl.loading import load_agent

    check_record_config(cfg)
    agents = [load_agent(path, device=cfg.device, env=cfg.env) for path in cfg.runs]
    recordings = [
        record_agent(
            agent,
            cfg.method,
            episodes=cfg.episodes,
            seed=cfg.seed,
            distractors=cfg.distractors,
            max_steps=cfg.max_steps,
        )
        for agent in agents
    ]
    out = cfg.out or default_out(cfg, agents, [rec.label for rec in recordings])
    written = write_video(
        render_frames(recordings, scale=cfg.scale, alpha=cfg.alpha),
        out,
        fps=cfg.fps,
        gif=cfg.gif,
        still=still_index(recordings) if cfg.frame_png else None,
    )
    for path in written:
        print(f"wrote {path}")
    return written


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
