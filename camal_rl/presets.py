"""Named single-agent presets that ship with the package: ``camal-rl train --preset NAME``.

Each fixes one agent's settings: the env, a budget at which the baseline plateaus, the vector
envs, evaluation and checkpoints. Explicit command-line options override them (``--hp`` adds to
their ``hp``). The study's and the loss redesign's sweep presets, which run these cells, stay in
``experiments/presets.py`` of a source checkout (:func:`camal_rl.config.get_preset` looks here
first, then there).
"""

from __future__ import annotations

from camal_rl.config import TrainConfig

DOORKEY = "MiniGrid-DoorKey-5x5-v0"
LAVA = "MiniGrid-LavaCrossingS9N1-v0"
VIZDOOM_BASIC = "VizdoomBasic-v1"

# The study's (env x algo) cells: budgets at which the baseline plateaus, stated here.
DOORKEY_PPO = TrainConfig(
    env=DOORKEY, steps=300_000, n_envs=8, eval_freq=10_000, eval_episodes=10, checkpoint_freq=100_000
)
# DQN runs on camal_rl.hyperparams.DQN_MINIGRID: 1 update per vector step, exploration over half the
# budget, 3-step returns, found on tuning seed 100 (runs/dqn-pilot; with SB3's one-step defaults and
# 1 update per 16 env steps, the DQN baseline never learnt DoorKey in 300k steps).
DOORKEY_DQN = TrainConfig(
    algo="dqn",
    env=DOORKEY,
    steps=300_000,
    n_envs=4,
    eval_freq=10_000,
    eval_episodes=10,
    checkpoint_freq=100_000,
)
LAVA_PPO = TrainConfig(
    env=LAVA, steps=500_000, n_envs=8, eval_freq=20_000, eval_episodes=10, checkpoint_freq=100_000
)
VIZDOOM_PPO = TrainConfig(
    env=VIZDOOM_BASIC,
    steps=300_000,
    n_envs=8,
    env_kwargs=("frame_skip=4",),
    eval_freq=20_000,
    eval_episodes=10,
    checkpoint_freq=100_000,
)

# Atari: rl-baselines3-zoo's PPO setup. camal_rl.hyperparams.PPO_ATARI holds its hyperparameters,
# the learning rate and clip range decaying linearly from 2.5e-4 and 0.1 to 0 (lin_2.5e-4, lin_0.1);
# 4 RGB frames stacked (the mask is the newest frame's), FIRE pressed at each reset (SB3's
# AtariWrapper does both) and after each lost life; NatureCamCNN (NatureCNN with Grad-CAM at its
# last conv layer, the default for frames without a grid); rl-zoo3's 10M-step budget.
PONG = "ALE/Pong-v5"
BREAKOUT = "ALE/Breakout-v5"
ATARI_ENV_KWARGS = ("frame_stack=4", "fire_reset=true")


def atari_ppo(env: str) -> TrainConfig:
    """rl-zoo3's PPO setup on the Atari game ``env`` (the comment above)."""
    return TrainConfig(
        env=env,
        steps=10_000_000,
        n_envs=8,
        env_kwargs=ATARI_ENV_KWARGS,
        eval_freq=250_000,
        eval_episodes=5,
        checkpoint_freq=1_000_000,
    )


PONG_PPO = atari_ppo(PONG)
BREAKOUT_PPO = atari_ppo(BREAKOUT)

PRESETS: dict[str, TrainConfig] = {
    "doorkey-ppo": DOORKEY_PPO,
    "doorkey-dqn": DOORKEY_DQN,
    "lavacrossing-ppo": LAVA_PPO,
    "vizdoom-basic-ppo": VIZDOOM_PPO,
    "pong-ppo": PONG_PPO,
    "breakout-ppo": BREAKOUT_PPO,
}
"""Name -> the agent's settings (``camal-rl train --preset doorkey-ppo --method camal --seed 3``)."""
