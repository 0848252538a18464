"""Gradient norms of the task loss and of each attention term on one rollout, before any update.

The measured cause of the first formulation's slow learning (docs/camal_loss.md): its gradient
dwarfs the task loss's, and the shared gradient-norm clip then shrinks the RL step. This script
measures, on the first minibatch of one rollout of a freshly initialised agent (DoorKey-5x5,
the study's PPO and DQN hyperparameters, tuning seed 100):

- ``|g_task|``: the norm over all parameters of PPO's clipped-surrogate + value + entropy loss
  (DQN: the Huber TD loss on a replayed batch);
- ``|g_att|``: the norm of each attention term's gradient at coefficient 1, for each loss kind
  and Grad-CAM target;
- for ``camal`` (balanced), the scale ``s = min(1, |g_task| / |g_att|)`` its gradient gets, and so
  ``|s g_att|``, what it adds.

    python experiments/camal_loss/grad_norms.py > experiments/camal_loss/logs/grad_norms.md
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples
from torch.nn import functional as F

from camal_rl.agents import CamalDQN, CamalPPO
from camal_rl.agents.common.attention import AttentionLog, attention_term, decision_scores
from camal_rl.agents.dqn.policies import q_values_with_maps
from camal_rl.envs import make_masked_env
from camal_rl.envs.base import MASK_KEY
from camal_rl.hyperparams import default_hyperparams
from camal_rl.losses import is_balanced_kind
from camal_rl.tables import markdown_table

ENV = "MiniGrid-DoorKey-5x5-v0"
VARIANTS = (("camal-v1", "action"), ("energy", "action"), ("camal", "action"), ("camal", "decision"))
"""(loss kind, Grad-CAM target) pairs measured; ``camal`` and ``energy`` share the map term."""


def norm(grads: Sequence[torch.Tensor | None]) -> float:
    """Euclidean norm over all gradient tensors (None: unused parameter)."""
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))


def ppo_rows(seed: int) -> list[list[str]]:
    """One row per variant on the first PPO minibatch of one rollout."""
    env = make_vec_env(lambda: make_masked_env(ENV), n_envs=8, seed=seed)
    model = CamalPPO("MultiInputPolicy", env, seed=seed, device="cpu", **default_hyperparams("ppo", ENV))
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)  # type: ignore[arg-type]
    data = next(model.rollout_buffer.get(model.batch_size))
    assert isinstance(data, DictRolloutBufferSamples)
    params = [p for p in model.policy.parameters() if p.requires_grad]
    model.policy.set_training_mode(True)
    rows = []
    for kind, target in VARIANTS:
        model.camal_loss, model.camal_target = kind, target
        terms = model._minibatch_loss(data, 0.2, None, 1.0, AttentionLog(), alignment=False)
        objective = terms.objective
        assert objective.attention is not None
        g_task = torch.autograd.grad(objective.task, params, retain_graph=True, allow_unused=True)
        g_att = torch.autograd.grad(objective.attention, params, allow_unused=True)
        rows.append(row("PPO", kind, target, norm(g_task), norm(g_att)))
    return rows


def dqn_rows(seed: int) -> list[list[str]]:
    """One row per variant on one replayed DQN batch after ``learning_starts`` random steps."""
    env = make_vec_env(lambda: make_masked_env(ENV), n_envs=4, seed=seed)
    hp = {**default_hyperparams("dqn", ENV), "buffer_size": 2_000}
    model = CamalDQN("MultiInputPolicy", env, seed=seed, device="cpu", **hp)
    model.learning_starts = 10**9  # collect without updating
    model.learn(1_024)
    assert model.replay_buffer is not None
    batch = model.replay_buffer.sample(model.batch_size)
    params = [p for p in model.policy.parameters() if p.requires_grad]
    rows: list[list[str]] = []
    for kind, target in VARIANTS:
        q_values, maps, _ = q_values_with_maps(model.q_net, batch.observations)
        with torch.no_grad():
            next_q = model.q_net_target(batch.next_observations).max(dim=1).values.reshape(-1, 1)
            discounts = batch.discounts if batch.discounts is not None else model.gamma
            td_target = batch.rewards + (1 - batch.dones) * discounts * next_q
        actions = batch.actions.long()
        task = F.smooth_l1_loss(q_values.gather(1, actions), td_target)
        scores = (
            decision_scores(q_values, actions) if target == "decision" else q_values.gather(1, actions)[:, 0]
        )
        assert isinstance(batch.observations, dict)
        term = attention_term(kind, maps, scores, batch.observations[MASK_KEY], train=True)
        assert term.loss is not None
        g_task = torch.autograd.grad(task, params, retain_graph=True, allow_unused=True)
        g_att = torch.autograd.grad(term.loss, params, allow_unused=True)
        rows.append(row("DQN", kind, target, norm(g_task), norm(g_att)))
    return rows


def row(algo: str, kind: str, target: str, task: float, att: float) -> list[str]:
    """A table row; ``s`` and ``|s g_att|`` for the balanced kinds, ``-`` otherwise."""
    if is_balanced_kind(kind):
        scale = min(1.0, task / max(att, 1e-12))
        balanced = [f"{scale:.3g}", f"{scale * att:.3g}"]
    else:
        balanced = ["-", f"{att:.3g}"]
    return [algo, kind, target, f"{task:.3g}", f"{att:.3g}", f"{att / task:.3g}", *balanced]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=100, help="a tuning seed (default 100)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    header = ["algo", "loss", "target", "‖g_task‖", "‖g_att‖", "‖g_att‖ / ‖g_task‖", "s", "‖s g_att‖ added"]
    rows = ppo_rows(args.seed) + dqn_rows(args.seed)
    print(f"Gradient norms at initialisation, {ENV}, seed {args.seed}, coefficient 1:\n")
    print("\n".join(markdown_table(header, rows)))


if __name__ == "__main__":
    main()
