"""``camal-rl record``: videos of an agent's rollouts showing where it looks and what it does.

:func:`record_agent` rolls out an agent's deterministic policy and scores every step (saliency
of the action taken, value, pi(a|s), energy pointing game); :mod:`camal_rl.frames` composes the
video frames from those arrays (one tile per agent, several agents side by side on the same
episode seeds); :func:`write_video` writes MP4 (H.264, yuv420p), and on request a GIF and one
still PNG; :func:`record` does all three for the command line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Generator, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import gymnasium as gym
import numpy as np
import torch
import tyro
from gymnasium import spaces

from camal_rl.adapters import images_to_tensor
from camal_rl.atomic import written_then_moved
from camal_rl.errors import InputError
from camal_rl.evaluation import EVAL_SEED, Episode, collect_episodes
from camal_rl.frames import DEFAULT_ALPHA, AgentRecording, RecordedEpisode, render_frames, still_index
from camal_rl.metrics import energy_pointing_game
from camal_rl.outputs import check_output
from camal_rl.saliency import check_saliency_methods, compute_saliency, eval_mode
from camal_rl.settings import DEFAULT_AGENT, AgentSettings, RolloutSettings

if TYPE_CHECKING:
    from camal_rl.agents import PolicyScorer
    from camal_rl.loading import LoadedAgent


# ---------------------------------------------------------------------------------------------
# Rollouts
# ---------------------------------------------------------------------------------------------


def action_names(env: gym.Env) -> tuple[str, ...]:
    """Names of a discrete action space: the env's own ``action_names`` attribute (one name per
    action; an env of the user's may set it), MiniGrid's ``Actions`` members, ViZDoom's pressed
    buttons joined by ``+`` (``noop`` for none, e.g. ``move_left``), else the action numbers.

    :raises InputError: the action space is not discrete.
    """
    space = env.action_space
    if not isinstance(space, spaces.Discrete):
        raise InputError(f"camal-rl record needs a discrete action space, got {space}")
    n = int(space.n)
    base: Any = env.unwrapped
    own = getattr(base, "action_names", None)
    if own is not None and len(own) == n:
        return tuple(str(name) for name in own)
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
    """``<algo>-<method> seed <seed>`` for a run directory, the file name for a bare model zip;
    ``, <k> frames stacked`` after that of a model that sees k frames at once (its panel shows the
    newest)."""
    label = (
        f"{agent.config.label} seed {agent.config.seed}"
        if agent.config is not None
        else agent.model_path.stem
    )
    return f"{label}, {agent.frames_seen} frames stacked" if agent.frames_seen > 1 else label


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
        images=episode.images[..., -3:],  # the newest frame of stacked ones
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
    layer: str | None = None,
    stochastic: bool = False,
) -> AgentRecording:
    """Roll out an agent's policy (deterministic, or sampled with ``stochastic``; acting on the
    image only) and score each step.

    :param agent: from :func:`camal_rl.loading.load_agent`.
    :param method: saliency method of the heatmap.
    :param episodes: episodes, seeded ``seed, seed + 1, ...``.
    :param seed: seed of the first episode.
    :param distractors: extra non-relevant objects (MiniGrid distractor variant; 0: none).
    :param max_steps: cut each episode after this many steps (None: the env's own limit).
    :param layer: the extractor layer of Grad-CAM's maps (see :class:`~camal_rl.agents.PolicyScorer`).
    :param stochastic: sample the actions (seeded) instead of the deterministic policy.
    """
    from camal_rl.agents import PolicyScorer

    check_saliency_methods([method])
    kwargs = dict(agent.env_kwargs)
    if distractors:
        kwargs["distractors"] = distractors

    def make_env() -> gym.Env:
        env = agent.make_env(kwargs)
        return gym.wrappers.TimeLimit(env, max_steps) if max_steps is not None else env

    with agent.probe(kwargs) as probe:
        names = action_names(probe)
    scorer = PolicyScorer(agent.model, layer=layer)
    played = collect_episodes(agent.model, make_env, episodes, seed=seed, deterministic=not stochastic)
    return AgentRecording(
        label=agent_label(agent),
        method=method,
        action_names=names,
        value_name="max Q" if scorer.is_q_network else "V(s)",
        prob_name="softmax Q" if scorer.is_q_network else "pi(a|s)",
        episodes=tuple(score_episode(scorer, episode, method) for episode in played),
    )


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _partial_path(path: Path) -> Path:
    """Where ``path`` is written before it is moved there: hidden, beside it, with its suffix (by
    which ffmpeg and imageio pick the format)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


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
    ``.png``). Frames are streamed to the MP4; only the GIF keeps them in memory. The files are
    written beside their paths and moved there when all are complete, so a failed or interrupted
    recording (Ctrl-C) writes none of them and leaves earlier files at those paths as they were.

    :param frames: (H, W, 3) uint8 frames, all of one even size.
    :param out: the ``.mp4`` path (parent folders are created).
    :param fps: frames per second.
    :param gif: also write the GIF.
    :param still: index of the frame to save as a PNG (None: no PNG).
    :return: the files written, MP4 first.
    """
    import imageio.v3 as iio

    out.parent.mkdir(parents=True, exist_ok=True)
    gif_frames: list[np.ndarray] = []
    written = [out]
    writer: Generator[None, np.ndarray, None] | None = None
    size: tuple[int, ...] | None = None
    still_frame: np.ndarray | None = None
    n = 0
    with ExitStack() as files:  # each file moved into place when all are written
        partial = files.enter_context(written_then_moved(out, _partial_path(out)))
        try:
            for n, frame in enumerate(frames, start=1):
                if size is None:
                    size = frame.shape
                    writer = _mp4_writer(partial, frame, fps)
                if frame.shape != size:
                    raise InputError(
                        f"all video frames must have one size: frame {n - 1} is {frame.shape}, "
                        f"the first {size}"
                    )
                assert writer is not None
                writer.send(np.ascontiguousarray(frame, np.uint8))
                if gif:
                    gif_frames.append(frame)
                if n - 1 == still:
                    still_frame = frame
        finally:
            if writer is not None:
                writer.close()
        if n == 0:
            raise InputError(f"no frames to write to {out}")
        images: list[tuple[Path, np.ndarray, dict[str, Any]]] = []
        if gif:
            images.append(
                (out.with_suffix(".gif"), np.stack(gif_frames), {"duration": 1000.0 / fps, "loop": 0})
            )
        if still_frame is not None:
            images.append((out.with_suffix(".png"), still_frame, {}))
        for path, image, options in images:
            iio.imwrite(files.enter_context(written_then_moved(path, _partial_path(path))), image, **options)
            written.append(path)
    return written


def _mp4_writer(path: Path, first: np.ndarray, fps: int) -> Generator[None, np.ndarray, None]:
    """imageio-ffmpeg's started H.264 writer of ``path`` for frames the size of ``first``.

    :raises InputError: ``first`` is not (H, W, 3) with even H and W (yuv420p halves both).
    """
    import imageio_ffmpeg

    if first.ndim != 3 or first.shape[2] != 3 or first.shape[0] % 2 or first.shape[1] % 2:
        raise InputError(f"video frames must be (H, W, 3) with even H and W, got {first.shape}")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (first.shape[1], first.shape[0]),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=2,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    return writer


# ---------------------------------------------------------------------------------------------
# camal-rl record
# ---------------------------------------------------------------------------------------------


RECORD_ROLLOUTS = RolloutSettings(episodes=3, saliency=("gradcam",))
"""``record``'s episodes and saliency: 3 episodes, Grad-CAM."""


@dataclass(frozen=True)
class RecordConfig:
    """Record MP4 videos of trained agents' rollouts with their saliency heatmap, the mask outline,
    the action, value and pi(a|s) of every step; several agents, or saliency methods, are tiled side
    by side on the same episode seeds."""

    runs: Annotated[
        tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_OR_MODEL [RUN_OR_MODEL ...]")
    ]
    """Run directories (from `camal-rl train`) or model zips (their pickled objects rebuilt from an
    allowlist of SB3's and camal-rl's own, their weights read as tensors alone, see --allow-pickle);
    several are tiled side by side."""
    agent: Annotated[AgentSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_AGENT
    """The agents and their env."""
    rollouts: Annotated[RolloutSettings, tyro.conf.OmitArgPrefixes] = RECORD_ROLLOUTS
    """The episodes recorded and the saliency drawn on them (one tile per agent and method)."""
    max_steps: int | None = None
    """Cut each episode after this many steps (default: the env's own limit)."""
    scale: int | None = None
    """Integer upscaling of the env frame (default: the one bringing it closest to 360 pixels tall)."""
    alpha: float = DEFAULT_ALPHA
    """Heatmap opacity at each frame's peak saliency (it fades to 0 where saliency is 0)."""
    fps: int = 6
    """Frames (env steps) per second."""
    out: Path | None = None
    """MP4 path (default: RUN/videos/<saliency>_seed<seed>.mp4 for one run directory,
    <zip folder>/videos/<zip name>_<saliency>_seed<seed>.mp4 for a model zip or a checkpoint,
    videos/<label>_vs_<label>_<saliency>_seed<seed>.mp4 for several)."""
    gif: bool = False
    """Also write a GIF next to the MP4."""
    frame_png: bool = False
    """Also write one still PNG next to the MP4 (the middle step of the first episode with a mask in view)."""


def check_record_config(cfg: RecordConfig) -> None:
    """:raises InputError: a value ``record`` cannot use, with what to pass instead."""
    if not cfg.runs:
        raise InputError("pass at least one run directory or model zip to record")
    cfg.rollouts.check()
    if not cfg.rollouts.saliency:
        raise InputError("--saliency named no method: record draws at least one, e.g. --saliency gradcam")
    if cfg.fps < 1:
        raise InputError(f"--fps must be >= 1, got {cfg.fps}")
    for name in ("scale", "max_steps"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise InputError(
                f"--{name.replace('_', '-')} must be >= 1 (or left out for the default), got {value}"
            )
    if not 0.0 <= cfg.alpha <= 1.0:
        raise InputError(f"--alpha must lie in [0, 1], got {cfg.alpha}")
    if cfg.out is not None and cfg.out.suffix.lower() != ".mp4":
        raise InputError(f"--out must be an .mp4 path (the GIF and PNG are written beside it), got {cfg.out}")


def default_out(cfg: RecordConfig, agents: Sequence[LoadedAgent], labels: Sequence[str]) -> Path:
    """Where ``record`` writes its MP4 when ``--out`` is not given (see :class:`RecordConfig`)."""
    name = f"{'_'.join(cfg.rollouts.saliency)}_seed{cfg.agent.seed}.mp4"
    if len(agents) == 1:
        agent = agents[0]
        if agent.run is not None and agent.checkpoint is None:  # a checkpoint's go beside it
            return agent.run.videos / name
        return agent.model_path.parent / "videos" / f"{agent.model_path.stem}_{name}"
    slugs = [re.sub(r"[^A-Za-z0-9.+=-]+", "", label.replace(" ", "-")) for label in labels]
    return Path("videos") / f"{'_vs_'.join(slugs)}_{name}"


def record(cfg: RecordConfig) -> list[Path]:
    """``camal-rl record``: roll out each agent on the same seeds and write the video files, one
    tile per agent and saliency method.

    :return: the files written: the MP4, then the GIF and PNG when asked for.
    """
    check_record_config(cfg)
    agents = [cfg.agent.load(path) for path in cfg.runs]
    out = cfg.out or default_out(cfg, agents, [agent_label(agent) for agent in agents])
    suffixes = [".mp4", *([".gif"] if cfg.gif else []), *([".png"] if cfg.frame_png else [])]
    for suffix in suffixes:  # before any rollout
        check_output(out.with_suffix(suffix), "--out")
    rollouts = cfg.rollouts
    try:
        recordings = [
            record_agent(
                agent,
                method,
                episodes=rollouts.episodes,
                seed=cfg.agent.seed,
                distractors=rollouts.distractors,
                max_steps=cfg.max_steps,
                layer=rollouts.layer,
                stochastic=rollouts.stochastic,
            )
            for agent in agents
            for method in rollouts.saliency
        ]
        try:
            written = write_video(
                render_frames(recordings, scale=cfg.scale, alpha=cfg.alpha),
                out,
                fps=cfg.fps,
                gif=cfg.gif,
                still=still_index(recordings) if cfg.frame_png else None,
            )
        except OSError as error:  # a disk that filled up, or a folder that went away
            detail = error.strerror or str(error).partition("\n")[0]  # ffmpeg's: its command follows
            raise InputError(f"cannot write {out} ({detail}); no video written") from error
    except KeyboardInterrupt:
        print("\ninterrupted: the recording did not finish; no video written", file=sys.stderr)
        raise
    for path in written:
        print(f"wrote {path}")
    return written
