"""``make demo`` / ``camal-rl demo``: build a masked env, roll a random policy, save frame | mask.

The PNG shows the same state in both MiniGrid views (agent's view on top, whole grid below),
each as frame | coloured mask with a class legend (:func:`camal_rl.visual.frame_mask_panel`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from camal_rl.envs import make_masked_env
from camal_rl.envs.base import get_mask_classes
from camal_rl.envs.minigrid import VIEWS
from camal_rl.errors import InputError
from camal_rl.visual import frame_mask_panel, stack_panels

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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{env_id.replace('/', '_')}_seed{seed}.png"
    picture = stack_panels(panels)
    if not cv2.imwrite(str(path), np.ascontiguousarray(picture[:, :, ::-1])):
        raise OSError(f"could not write {path}")
    return path
