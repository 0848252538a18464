"""Speed and memory of CAMAL agents against stock SB3 agents with the same network.

Measured side by side in one run, on MiniGrid-DoorKey-5x5 (partial view, 56 x 56 frames), 8 envs,
the cell-aligned MiniGridCNN, CPU, one torch thread:

- training env-steps/s of CamalPPO (camal loss, coef 1) / stock PPO (target >= 0.90), and of
  CamalDQN / stock DQN (target >= 0.85); beside them the CAMAL agents with loss ``camal-v1`` (the
  first formulation, without the capped gradient's extra backward pass) and ``none`` (a
  comparison's baseline, which computes its Grad-CAM for the log alone) / stock. All train on
  the same masked env (so env cost is equal) with the same hyperparameters; the agents take
  turns, after a warm-up, and each ratio is that of the median process CPU times (steadier than
  wall clock on a shared machine), with the wall-clock ratio beside it;
- policy forward time at inference, CAMAL model / stock model (target 1.00; 1.05 tolerated): ``predict`` on a
  batch of image-only observations;
- replay-buffer memory of CamalDQN / DQN for the same buffer size (target <= 1.3x): against DQN
  on image-only observations (what a user without masks stores) and on the masked observations.

Run: ``python experiments/bench_agents.py [--steps 4096] [--repeats 3] [--device cuda]``. On a GPU
the headline ratios are of wall clock (process CPU time does not count the GPU's work).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from camal_rl.agents import CamalDQN, CamalPPO, MaskPackedDictReplayBuffer, MiniGridCNN
from camal_rl.envs import make_masked_env
from camal_rl.hyperparams import DQN_MINIGRID, PPO_MINIGRID
from experiments.timing import timed

ENV = "MiniGrid-DoorKey-5x5-v0"
N_ENVS = 8
POLICY_KWARGS: dict[str, Any] = {
    "features_extractor_class": MiniGridCNN,
    "features_extractor_kwargs": {"tile_size": 8},
}
TARGETS = {"ppo": 0.90, "dqn": 0.85}
AGENTS: dict[str, str | None] = {"camal": "camal", "camal-v1": "camal-v1", "none": "none", "stock": None}
"""The agents timed side by side: name -> attention loss (None: stock SB3)."""


def make_model(kind: str, method: str | None, seed: int = 0, device: str = "cpu") -> BaseAlgorithm:
    """The CAMAL agent with attention loss ``method`` (coefficient 1), or stock SB3's (None)."""
    venv = make_vec_env(lambda: make_masked_env(ENV), n_envs=N_ENVS, seed=seed)
    common: dict[str, Any] = {"seed": seed, "device": device, "policy_kwargs": POLICY_KWARGS}
    if kind == "ppo":
        if method is not None:
            return CamalPPO(
                "MultiInputPolicy", venv, camal_coef=1.0, camal_loss=method, **PPO_MINIGRID, **common
            )
        return PPO("MultiInputPolicy", venv, **PPO_MINIGRID, **common)
    # one-step returns: stock SB3 refuses n-step returns on the Dict observations both agents share
    hp = {**DQN_MINIGRID, "buffer_size": 20_000, "learning_starts": 512, "n_steps": 1}
    if method is not None:
        return CamalDQN("MultiInputPolicy", venv, camal_coef=1.0, camal_loss=method, **hp, **common)
    return DQN("MultiInputPolicy", venv, **hp, **common)


def training_ratio(kind: str, steps: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    """Env-steps/s of the CAMAL agent, the CAMAL agent with loss ``none`` (the baseline of a
    comparison) and the stock agent, learning in turn ``repeats`` times; ``ratio`` (CAMAL / stock)
    and ``none_ratio`` (none / stock) are the headlines (of CPU time on the CPU, of wall clock on
    a GPU)."""
    models = {name: make_model(kind, method, device=device) for name, method in AGENTS.items()}
    for model in models.values():  # warm-up: first rollouts, DQN's learning_starts, lazy inits
        model.learn(1024, reset_num_timesteps=False)
    cpu: dict[str, list[float]] = {name: [] for name in models}
    wall: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # each goes first in turn
            c, w = timed(partial(models[name].learn, steps, reset_num_timesteps=False))
            cpu[name].append(c)
            wall[name].append(w)
    clock = cpu if device == "cpu" else wall  # the GPU's work is not process CPU time
    ratio_cpu = statistics.median(cpu["stock"]) / statistics.median(cpu["camal"])
    ratio_wall = statistics.median(wall["stock"]) / statistics.median(wall["camal"])
    return {
        **{f"{name}_steps_per_s": steps / statistics.median(clock[name]) for name in models},
        "ratio": ratio_cpu if clock is cpu else ratio_wall,
        "ratio_cpu": ratio_cpu,
        "ratio_wall": ratio_wall,
        "none_ratio": statistics.median(clock["stock"]) / statistics.median(clock["none"]),
        "v1_ratio": statistics.median(clock["stock"]) / statistics.median(clock["camal-v1"]),
    }


def inference_ratio(repeats: int = 200, batch: int = 8, device: str = "cpu") -> dict[str, float]:
    """Median time of ``predict`` on image-only observations, CAMAL model / stock model: of
    process CPU time (what the call costs, steady on a busy machine) and of wall clock."""
    camal, stock = make_model("ppo", "camal", device=device), make_model("ppo", None, device=device)
    env = make_masked_env(ENV)
    images = np.stack([env.reset(seed=i)[0]["image"] for i in range(batch)])
    cpu: dict[str, list[float]] = {"camal": [], "stock": []}
    wall: dict[str, list[float]] = {"camal": [], "stock": []}
    models = {"camal": camal, "stock": stock}
    for r in range(repeats):
        for name in sorted(models, reverse=r % 2 == 1):
            obs = {"image": images} if name == "stock" else images  # CAMAL also takes a bare image
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            models[name].predict(obs, deterministic=True)
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {
        "ratio_cpu": statistics.median(cpu["camal"]) / statistics.median(cpu["stock"]),
        "ratio_wall": statistics.median(wall["camal"]) / statistics.median(wall["stock"]),
    }


def buffer_bytes(buffer: ReplayBuffer) -> int:
    observations = buffer.observations
    arrays = list(observations.values()) if isinstance(observations, dict) else [observations]
    next_obs = buffer.next_observations
    arrays += list(next_obs.values()) if isinstance(next_obs, dict) else [next_obs]
    arrays += [buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
    return int(sum(a.nbytes for a in arrays))


def memory_ratios(size: int = 10_000) -> dict[str, float]:
    """Replay-buffer bytes of CamalDQN over stock DQN's, for the same buffer size."""
    camal = make_model("dqn", "camal")
    masked_space = camal.observation_space
    image_space = masked_space["image"]  # type: ignore[index]
    action_space = camal.action_space
    ours = MaskPackedDictReplayBuffer(size, masked_space, action_space, device="cpu", n_envs=N_ENVS)  # type: ignore[arg-type]
    image_only = ReplayBuffer(size, image_space, action_space, device="cpu", n_envs=N_ENVS)
    masked = DictReplayBuffer(size, masked_space, action_space, device="cpu", n_envs=N_ENVS)  # type: ignore[arg-type]
    return {
        "vs_dqn_image_only": buffer_bytes(ours) / buffer_bytes(image_only),
        "vs_dqn_masked_obs": buffer_bytes(ours) / buffer_bytes(masked),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=4096, help="env steps per timed learn() call")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions per agent pair")
    parser.add_argument("--device", default="cpu", help="torch device of the agents (cpu, cuda)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{ENV}, partial view, {N_ENVS} envs, MiniGridCNN, {args.device}, 1 torch thread")
    for kind in ("ppo", "dqn"):
        r = training_ratio(kind, args.steps, args.repeats, args.device)
        verdict = "meets" if r["ratio"] >= TARGETS[kind] else "MISSES"
        print(
            f"training {kind}: CAMAL {r['camal_steps_per_s']:.0f} steps/s, "
            f"stock {r['stock_steps_per_s']:.0f} steps/s;"
            f" ratio {r['ratio_cpu']:.3f} (CPU time), {r['ratio_wall']:.3f} (wall)"
            f" - {verdict} the target >= {TARGETS[kind]}"
        )
        print(
            f"training {kind}, baseline: CAMAL agent with loss none {r['none_steps_per_s']:.0f} steps/s;"
            f" ratio to stock {r['none_ratio']:.3f}"
        )
        print(
            f"training {kind}, camal-v1 (no capped gradient): {r['camal-v1_steps_per_s']:.0f} steps/s;"
            f" ratio to stock {r['v1_ratio']:.3f}"
        )
    inference = inference_ratio(device=args.device)
    print(
        f"inference: predict() time CAMAL / stock = {inference['ratio_cpu']:.3f} (CPU time),"
        f" {inference['ratio_wall']:.3f} (wall) (target <= 1.05)"
    )
    memory = memory_ratios()
    print(
        f"replay memory: CamalDQN / DQN(image only) = {memory['vs_dqn_image_only']:.3f}, "
        f"CamalDQN / DQN(masked obs) = {memory['vs_dqn_masked_obs']:.3f} (target <= 1.3)"
    )


if __name__ == "__main__":
    main()
