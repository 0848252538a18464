"""Gradient norms of the task loss and of each attention term on one rollout, before any update.

The measured cause of the first formulation's slow learning (docs/camal_loss.md): its gradient
dwarfs the task loss's, and the shared gradient-norm clip then shrinks the RL step. This script
measures, on the first minibatch of one rollout of a freshly initialised agent (DoorKey-5x5, or
``--env``; the study's PPO and DQN hyperparameters, tuning seed 100):

- ``|g_task|``: the norm over all parameters of PPO's clipped-surrogate + value + entropy loss
  (DQN: the Huber TD loss on a replayed batch);
- ``|g_att|``: the norm of each attention term's gradient at coefficient 1, for each loss kind
  and Grad-CAM target;
- for ``camal`` (balanced), the scale ``s = min(1, |g_task| / |g_att|)`` its gradient gets, and so
  ``|s g_att|``, what it adds.

    python experiments/camal_loss/grad_norms.py > experiments/camal_loss/logs/grad_norms.md

With ``--runs FOLDER --step N`` it measures trained PPO agents instead (exploratory, no
endpoint): each run's checkpoint at step N, one rollout on env seed ``--seed``, the means over that
rollout's minibatches (one epoch) of ``|g_task|``, of the run's own attention gradient ``|g_att|``
and what it added (``|s g_att|`` for ``camal``, ``|g_att|`` for ``energy`` at coefficient 1), of the
norm of their sum and of the factor by which PPO's ``max_grad_norm`` clip shrank that sum, so how
much of the task's gradient was left in the step (``clip |g_task|``), and the cosine of ``g_task``
and ``g_att``. The checkpoints are not committed (a cell's sweep writes them again):

    python experiments/camal_loss/grad_norms.py --runs experiments/camal_loss/runs/lava-ppo --step 100000
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples
from torch.nn import functional as F

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from camal_rl.agents import CamalDQN, CamalPPO
from camal_rl.agents.common.attention import AttentionLog, attention_term, coef_at, decision_scores
from camal_rl.agents.dqn.policies import q_values_with_maps
from camal_rl.envs import make_masked_env
from camal_rl.envs.base import MASK_KEY
from camal_rl.errors import InputError
from camal_rl.hyperparams import default_hyperparams
from camal_rl.loading import checkpoint_path, load_agent
from camal_rl.losses import is_balanced_kind
from camal_rl.statistics import RunResult, load_results, variant_order
from camal_rl.tables import markdown_table
from camal_rl.train import env_factory, with_training_rewards
from experiments.camal_loss.dynamics import significant, variant_medians

ENV = "MiniGrid-DoorKey-5x5-v0"
VARIANTS = (("camal-v1", "action"), ("energy", "action"), ("camal", "action"), ("camal", "decision"))
"""(loss kind, Grad-CAM target) pairs measured; ``camal`` and ``energy`` share the map term."""


def collect_rollout(model: CamalPPO) -> None:
    """Fill ``model``'s rollout buffer with one rollout of its env, from where its training
    stopped (a fresh agent: from step 0), without an update."""
    _, callback = model._setup_learn(model.n_steps * model.n_envs, None, reset_num_timesteps=False)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)  # type: ignore[arg-type]


def ppo_rows(seed: int, env_id: str = ENV) -> list[list[str]]:
    """One row per variant on the first PPO minibatch of one rollout."""
    env = make_vec_env(lambda: make_masked_env(env_id), n_envs=8, seed=seed)
    model = CamalPPO("MultiInputPolicy", env, seed=seed, device="cpu", **default_hyperparams("ppo", env_id))
    collect_rollout(model)
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
        rows.append(row("PPO", kind, target, norm(g_task, params), norm(g_att, params)))
    return rows


def dqn_rows(seed: int, env_id: str = ENV) -> list[list[str]]:
    """One row per variant on one replayed DQN batch after ``learning_starts`` random steps."""
    env = make_vec_env(lambda: make_masked_env(env_id), n_envs=4, seed=seed)
    hp = {**default_hyperparams("dqn", env_id), "buffer_size": 2_000}
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
        rows.append(row("DQN", kind, target, norm(g_task, params), norm(g_att, params)))
    return rows


def row(algo: str, kind: str, target: str, task: float, att: float) -> list[str]:
    """A table row; ``s`` and ``|s g_att|`` for the balanced kinds, ``-`` otherwise."""
    if is_balanced_kind(kind):
        scale = min(1.0, task / max(att, 1e-12))
        balanced = [f"{scale:.3g}", f"{scale * att:.3g}"]
    else:
        balanced = ["-", f"{att:.3g}"]
    return [algo, kind, target, f"{task:.3g}", f"{att:.3g}", f"{att / task:.3g}", *balanced]


def flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """One float64 vector of all gradient tensors, zeros for a parameter the loss does not use
    (a float32 norm over 10^5 entries is off by about 1e-5 of itself)."""
    vectors = [
        (g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(vectors).double()


def norm(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> float:
    """Euclidean norm over all gradient tensors (None: unused parameter), in float64."""
    return float(flat(grads, params).norm())


def clip_factor(total_norm: float, max_norm: float) -> float:
    """The factor by which ``torch.nn.utils.clip_grad_norm_`` scales a gradient of norm
    ``total_norm``: ``max_norm / (total_norm + 1e-6)``, at most 1."""
    return min(1.0, max_norm / (total_norm + 1e-6))


STEP_COLUMNS = ("‖g_task‖", "‖g_att‖", "‖added‖", "‖sum‖", "clip", "clip ‖g_task‖", "cos")
"""What :func:`step_norms` measures on one minibatch, in its order."""


def step_norms(model: CamalPPO, data: DictRolloutBufferSamples) -> list[float]:
    """On one minibatch, the gradient norms of the step ``model`` takes (:data:`STEP_COLUMNS`):
    the task's, its own attention term's at coefficient 1 and what that term added (after
    ``camal``'s cap), the norm of the sum, PPO's clip factor for it and the task gradient's norm
    after the clip, and the cosine of the task and attention gradients (``nan`` without an
    attention term)."""
    params = [p for p in model.policy.parameters() if p.requires_grad]
    coef = coef_at(model.camal_coef, model._current_progress_remaining)
    clip_range = float(model.clip_range(model._current_progress_remaining))  # type: ignore[operator]
    objective = model._minibatch_loss(data, clip_range, None, coef, AttentionLog(), alignment=False).objective
    trained = objective.attention is not None
    g_task = flat(
        torch.autograd.grad(objective.task, params, retain_graph=trained, allow_unused=True), params
    )
    g_att = torch.zeros_like(g_task)
    if objective.attention is not None:
        g_att = flat(torch.autograd.grad(objective.attention, params, allow_unused=True), params)
    task, att = float(g_task.norm()), float(g_att.norm())
    scale = coef * min(1.0, task / max(att, 1e-12)) if objective.balanced else coef
    total = float((g_task + scale * g_att).norm())
    clip = clip_factor(total, model.max_grad_norm)
    cosine = float(g_task @ g_att) / (task * att) if trained and att > 0 else math.nan
    return [task, att, scale * att, total, clip, clip * task, cosine]


def trained_norms(run: RunResult, step: int, seed: int) -> list[float]:
    """The means over one epoch's minibatches of :func:`step_norms` of ``run``'s checkpoint at
    ``step``, on one rollout of its training envs seeded ``seed``.

    :raises InputError: no checkpoint at ``step``, or not a PPO run.
    """
    agent = load_agent(checkpoint_path(run.path, step), device="cpu")
    model, cfg = agent.model, agent.config
    if not isinstance(model, CamalPPO) or cfg is None:
        raise InputError(f"{run.path}: trained gradient norms are measured for CAMAL PPO runs only")
    assert cfg.n_envs is not None
    model.set_env(with_training_rewards(make_vec_env(env_factory(cfg), n_envs=cfg.n_envs, seed=seed), cfg))
    collect_rollout(model)
    model.policy.set_training_mode(True)
    rows: list[list[float]] = []
    for data in model.rollout_buffer.get(model.batch_size):
        assert isinstance(data, DictRolloutBufferSamples)
        rows.append(step_norms(model, data))
    return [float(v) for v in np.mean(rows, axis=0)]


def trained_rows(folder: Path, step: int, seed: int) -> list[list[str]]:
    """One row per PPO run under ``folder`` (variant, then seed order), then one per variant with
    the medians over its runs."""
    runs = sorted(
        (r for r in load_results([folder]) if r.algo == "ppo"), key=lambda r: (variant_order(r), r.seed)
    )
    if not runs:
        raise InputError(f"no PPO run under {folder}")
    values = np.array([trained_norms(run, step, seed) for run in runs], dtype=np.float64)
    rows = [[run.label, str(run.seed), *map(significant, row)] for run, row in zip(runs, values, strict=True)]
    medians = variant_medians([run.label for run in runs], values)
    return rows + [[label, "median", *cells] for label, cells in medians.items()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed", type=int, default=100, help="a tuning seed, or the env seed of --runs (default 100)"
    )
    parser.add_argument("--env", default=ENV, help=f"the env measured at initialisation (default {ENV})")
    parser.add_argument("--runs", type=Path, help="a folder of PPO runs: measure their checkpoints at --step")
    parser.add_argument("--step", type=int, default=100_000, help="the checkpoint's env step (with --runs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.runs is not None:
        header = ["variant", "seed", *STEP_COLUMNS]
        print(
            f"Gradient norms of trained PPO agents, checkpoints at step {args.step} of {args.runs}, one "
            f"rollout on env seed {args.seed}, means over its minibatches:\n"
        )
        print("\n".join(markdown_table(header, trained_rows(args.runs, args.step, args.seed))))
        return
    header = ["algo", "loss", "target", "‖g_task‖", "‖g_att‖", "‖g_att‖ / ‖g_task‖", "s", "‖s g_att‖ added"]
    rows = ppo_rows(args.seed, args.env) + dqn_rows(args.seed, args.env)
    print(f"Gradient norms at initialisation, {args.env}, seed {args.seed}, coefficient 1:\n")
    print("\n".join(markdown_table(header, rows)))


if __name__ == "__main__":
    main()
