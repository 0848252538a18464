"""Train a stock Stable-Baselines3 PPO on DoorKey-5x5 as an SB3 user would (CnnPolicy, i.e.
NatureCNN, on the agent's 56x56 RGB view, no mask, no camal-rl code), for ``camal-rl evaluate``
to score its attention: what a standard agent attends to, beside the study's agents.

Hyperparameters and budget are the study's DoorKey PPO cell's (camal_rl.hyperparams.PPO_MINIGRID,
8 envs, 300k steps); only the network differs (NatureCNN here, camal-rl's cell-aligned MiniGridCNN
there).

    python experiments/stock_sb3/train_stock_ppo.py --seed 0 --out experiments/stock_sb3/runs/seed0.zip
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import torch
from minigrid.wrappers import ImgObsWrapper, RGBImgPartialObsWrapper
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from camal_rl.hyperparams import PPO_MINIGRID

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def image_env() -> gym.Env:
    """The agent's partial view as RGB pixels (tile size 8: 56x56), the observation alone."""
    return ImgObsWrapper(RGBImgPartialObsWrapper(gym.make(ENV_ID)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--out", type=Path, required=True, help="model zip to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    venv = make_vec_env(image_env, n_envs=8, seed=args.seed)
    model = PPO("CnnPolicy", venv, seed=args.seed, device="cpu", verbose=0, **PPO_MINIGRID)
    model.learn(args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"wrote {args.out} after {model.num_timesteps} steps")


if __name__ == "__main__":
    main()
