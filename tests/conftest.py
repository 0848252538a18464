"""Shared fixtures. Tests are fast by default; long runs carry the ``slow`` marker, which
``make test-all`` (``pytest -m "not learning"``) and CI run too. The hour-long learning check
carries ``learning`` and runs only on request (``make test-learning``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
# Tiny networks: one thread is faster than two fighting over two shared cores.
torch.set_num_threads(1)

TINY_PPO_HP = ("n_steps=64", "batch_size=64", "n_epochs=2")
DEVICE = os.environ.get("CAMAL_RL_TEST_DEVICE", "cpu")
"""Torch device of the agents the tests train and load: ``CAMAL_RL_TEST_DEVICE=cuda pytest`` runs
the suite's training, saliency and evaluation paths on a GPU."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete PPO-CAMAL run on DoorKey-5x5 (256 steps), shared read-only by tests."""
    from camal_rl.config import TrainConfig
    from camal_rl.train import train

    out = tmp_path_factory.mktemp("runs") / "ppo-camal"
    cfg = TrainConfig(
        steps=256,
        n_envs=2,
        hp=TINY_PPO_HP,
        eval_freq=128,
        eval_episodes=1,
        checkpoint_freq=128,
        progress_bar=False,
        device=DEVICE,
        out=out,
    )
    return train(cfg, argv=["camal-rl", "train", "(fixture)"]).path
