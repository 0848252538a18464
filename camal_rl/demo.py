"""``make demo`` / ``camal-rl demo``: the main job on a small default.

:func:`write_env_demo` rolls a random policy in a masked env and saves frame | mask of both
MiniGrid views (agent's view on top, whole grid below, each with a class legend, see
:func:`camal_rl.visual.frame_mask_panel`); :func:`demo` adds a CAMAL agent and a baseline,
trained, evaluated, compared and recorded side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from camal_rl.config import DEFAULT_ENV
from camal_rl.envs import make_masked_env
from camal_rl.envs.base import get_mask_classes
from camal_rl.envs.minigrid import VIEWS
from camal_rl.errors import InputError
from camal_rl.outputs import check_output
from camal_rl.presets import DOORKEY_PPO
from camal_rl.visual import frame_mask_panel, stack_panels, write_png

if TYPE_CHECKING:
    from camal_rl.sweep import SweepConfig

DEMO_SCALE = 4


def write_env_demo(
    out_dir: Path, env_id: str = "MiniGrid-DoorKey-5x5-v0", steps: int = 20, seed: int = 0
) -> Path:
    """Roll a uniformly random policy for ``steps`` steps and write frame and mask of both views
    as a PNG, at the last step whose agent's view holds a task-relevant object (else the last).

    Both views step the same env with the same seed and actions, so they show the same state;
    an episode that ends is reset (unseeded, the same in both).

    :param out_dir: directory for the PNG (created if missing).
    :param env_id: a MiniGrid id with default classes (``camal-rl envs`` lists them).
    :param steps: random steps before the picture.
    :param seed: seeds the env and the policy.
    :return: path of the PNG, ``out_dir / "<env id>_seed<seed>.png"``.
    """
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    envs = [make_masked_env(env_id, view=view) for view in VIEWS]
    observations = [env.reset(seed=seed)[0] for env in envs]
    shown = observations
    actions = envs[0].action_space
    actions.seed(seed)
    for _ in range(steps):
        action = actions.sample()
        results = [env.step(action) for env in envs]
        observations = [result[0] for result in results]
        if results[0][2] or results[0][3]:
            observations = [env.reset()[0] for env in envs]
        if observations[0]["mask"].any() or not shown[0]["mask"].any():
            shown = observations
    panels = [
        frame_mask_panel(obs["image"], obs["mask"], get_mask_classes(env), scale=DEMO_SCALE)
        for obs, env in zip(shown, envs, strict=True)
    ]
    for env in envs:
        env.close()
    return write_png(Path(out_dir) / f"{env_id.replace('/', '_')}_seed{seed}.png", stack_panels(panels))


@dataclass(frozen=True)
class DemoConfig:
    """The main job on a small default: a frame | mask picture of the env, a CAMAL agent and a
    baseline trained on MiniGrid-DoorKey-5x5 until each solves it, both evaluated (returns and
    attention metrics), the comparison table and plots, and a saliency video of the two side by
    side."""

    out: Path = Path("demo")
    """Output folder."""
    env: str = DEFAULT_ENV
    """MiniGrid env id."""
    steps: int = 150_000
    """Most env steps per agent: each stops earlier, at its first greedy evaluation whose mean
    return reaches --stop-return."""
    stop_return: float = 0.9
    """Mean greedy evaluation return at which an agent counts as solving the task and stops."""
    eval_freq: int = 10_000
    """Env steps between the greedy evaluations (10 episodes each) that decide the stop."""
    seed: int = 4
    """Seed of both agents. At these settings (the doorkey-ppo preset's), the study's seeds 0-4
    first reach 0.9 at 70-110k steps (none) and 60-130k (camal); seed 4 is the quickest for both."""
    episodes: int = 10
    """Evaluation episodes per agent."""
    workers: int = 2
    """Agents trained at the same time."""


def demo_sweep(cfg: DemoConfig) -> SweepConfig:
    """The demo's two agents: the ``doorkey-ppo`` preset on ``cfg.env``, stopping at
    ``cfg.stop_return``, for methods none and camal on ``cfg.seed``."""
    from camal_rl.settings import EvaluationSettings
    from camal_rl.sweep import ExecutionSettings, SweepConfig

    cell = dataclasses.replace(
        DOORKEY_PPO,
        env=cfg.env,
        steps=cfg.steps,
        eval_freq=cfg.eval_freq,
        stop_return=cfg.stop_return,
        checkpoint_freq=0,
    )
    return SweepConfig(
        cells=(cell,),
        methods=("none", "camal"),
        seeds=(cfg.seed,),
        out=cfg.out / "runs",
        evaluation=EvaluationSettings(episodes=cfg.episodes, distractors=1, max_steps_scored=16),
        execution=ExecutionSettings(workers=cfg.workers),
    )


def demo(cfg: DemoConfig) -> dict[str, Path]:
    """``camal-rl demo`` / ``make demo``: run the main job and return what it wrote, by name."""
    from camal_rl.compare import compare
    from camal_rl.settings import RolloutSettings
    from camal_rl.video import RecordConfig, record

    check_output(cfg.out, "--out", folder=True)
    written = {"env_picture": write_env_demo(cfg.out, cfg.env, seed=cfg.seed)}
    sweep = demo_sweep(cfg)
    written.update(compare(sweep))
    runs = tuple(run.run_dir for run in sweep.run_configs())
    video = cfg.out / "saliency_none_vs_camal.mp4"
    rollouts = RolloutSettings(episodes=2, saliency=("gradcam",))
    for path in record(RecordConfig(runs=runs, rollouts=rollouts, max_steps=60, out=video, frame_png=True)):
        written[path.suffix.lstrip(".")] = path
    print(f"\ndemo done: open {written['markdown']} and {video}")
    return written
