"""Why a DQN agent scores 0 on DoorKey: roll out a saved model, greedy and epsilon-greedy, and
count the greedy steps that leave the observation unchanged (stalls on no-op actions).

    python experiments/camal_study/dqn_stalls.py RUN_OR_MODEL [--episodes 10]

Prints, per epsilon, the mean return, the success rate, the stalls, the actions taken and the
Q-values at the last observation (flat Q-values across actions are the failure this shows).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from camal_rl.agents import CamalDQN
from camal_rl.envs import make_masked_env
from camal_rl.loading import LoadedAgent, load_agent

ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")


def rollouts(agent: LoadedAgent, epsilon: float, episodes: int) -> str:
    model = agent.model
    assert isinstance(model, CamalDQN), f"{agent.model_path} is not a DQN agent"
    rng = np.random.default_rng(0)
    returns, stalls, counts = [], 0, np.zeros(len(ACTIONS), int)
    obs: dict[str, np.ndarray] = {}
    for episode in range(episodes):
        env = make_masked_env(agent.env_id, **agent.env_kwargs)
        obs, _ = env.reset(seed=1_000_000 + episode)
        total, done = 0.0, False
        while not done:
            greedy = int(model.predict({"image": obs["image"]}, deterministic=True)[0])
            action = int(rng.integers(len(ACTIONS))) if rng.random() < epsilon else greedy
            counts[action] += 1
            after, reward, terminated, truncated, _ = env.step(action)
            stalls += action == greedy and np.array_equal(after["image"], obs["image"])
            obs, total, done = after, total + float(reward), terminated or truncated
        returns.append(total)
    with torch.no_grad():
        q_values = model.q_net(model.policy.obs_to_tensor({"image": obs["image"]})[0])[0].numpy()
    steps = int(counts.sum())
    taken = ", ".join(f"{name} {count}" for name, count in zip(ACTIONS, counts.tolist(), strict=True))
    return (
        f"epsilon {epsilon}: return {np.mean(returns):.3f}, success {np.mean(np.array(returns) > 0):.2f}, "
        f"greedy stalls {stalls} of {steps} steps; actions: {taken}\n"
        f"  Q at the last observation: {' '.join(f'{q:.3f}' for q in q_values)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run directory or a model .zip")
    parser.add_argument("--env", default=None, help="env id (default: the run's; needed for a bare zip)")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = load_agent(args.model, device="cpu", env=args.env)
    print(f"{agent.model_path}, {agent.env_id}, {args.episodes} held-out episodes per epsilon")
    for epsilon in (0.0, 0.01, 0.05):
        print(rollouts(agent, epsilon, args.episodes))


if __name__ == "__main__":
    main()
