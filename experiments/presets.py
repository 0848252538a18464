"""Named presets: ``camal-rl train --preset NAME`` and ``camal-rl compare --preset NAME``.

TrainConfig entries fix one agent's settings (explicit command-line options override them; --hp
adds to their hp). Study entries (:class:`camal_rl.compare.SweepConfig`) fix a whole sweep.
Budgets are stated here so that results files can be traced back to them.
"""

from __future__ import annotations

from typing import Any

from camal_rl.config import TrainConfig

DOORKEY = "MiniGrid-DoorKey-5x5-v0"
LAVA = "MiniGrid-LavaCrossingS9N1-v0"
VIZDOOM_BASIC = "VizdoomBasic-v1"

PRESETS: dict[str, Any] = {
    # The README's main job: a few minutes on 2 CPU cores.
    "demo": TrainConfig(
        env=DOORKEY, steps=20_000, n_envs=8, eval_freq=5_000, eval_episodes=5, checkpoint_freq=0
    ),
    "doorkey-ppo": TrainConfig(env=DOORKEY, steps=300_000, n_envs=8, eval_freq=10_000, eval_episodes=10),
    "doorkey-dqn": TrainConfig(
        algo="dqn", env=DOORKEY, steps=300_000, n_envs=4, eval_freq=10_000, eval_episodes=10
    ),
    "lavacrossing-ppo": TrainConfig(env=LAVA, steps=500_000, n_envs=8, eval_freq=20_000, eval_episodes=10),
    "vizdoom-basic-ppo": TrainConfig(
        env=VIZDOOM_BASIC,
        steps=300_000,
        n_envs=8,
        env_kwargs=("frame_skip=4",),
        eval_freq=20_000,
        eval_episodes=10,
    ),
}
