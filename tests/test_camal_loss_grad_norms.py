"""experiments/camal_loss/grad_norms.py: the gradient norms of trained agents' steps, checked by
hand and against the gradient the agents' own backward pass accumulates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples

from camal_rl.agents import CamalPPO
from camal_rl.agents.common.attention import AttentionLog
from camal_rl.envs import make_masked_env
from camal_rl.errors import InputError
from camal_rl.statistics import load_results
from experiments.camal_loss.grad_norms import (
    STEP_COLUMNS,
    clip_factor,
    collect_rollout,
    flat,
    step_norms,
    trained_rows,
)


def test_clip_factor_is_torchs_clip_grad_norm_scale() -> None:
    # a gradient (1.2, 1.6) has norm 2; clipped to 0.5 it is scaled by 0.5 / (2 + 1e-6) = 0.24999988
    assert clip_factor(2.0, 0.5) == pytest.approx(0.24999988, abs=1e-8)
    assert clip_factor(0.3, 0.5) == 1.0
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.tensor([1.2, 1.6])
    total = float(torch.nn.utils.clip_grad_norm_([weight], 0.5))
    assert total == pytest.approx(2.0)
    assert float(weight.grad[0]) / 1.2 == pytest.approx(clip_factor(total, 0.5), rel=1e-6)


def test_flat_puts_zeros_where_a_parameter_has_no_gradient() -> None:
    params = [torch.zeros(2), torch.zeros(2, 2)]
    vector = flat([torch.tensor([1.0, 2.0]), None], params)
    assert vector.tolist() == [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    assert vector.dtype == torch.float64


def minibatch(loss: str) -> tuple[CamalPPO, DictRolloutBufferSamples]:
    """A fresh DoorKey agent with ``loss`` and the first minibatch of one rollout."""
    env = make_vec_env(lambda: make_masked_env("MiniGrid-DoorKey-5x5-v0"), n_envs=2, seed=3)
    model = CamalPPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=64,
        seed=3,
        device="cpu",
        camal_loss=loss,
        camal_coef=1.0,
    )
    collect_rollout(model)
    data = next(model.rollout_buffer.get(64))
    assert isinstance(data, DictRolloutBufferSamples)
    model.policy.set_training_mode(True)
    return model, data


@pytest.mark.parametrize("loss", ["camal", "energy", "none"])
def test_step_norms_match_the_gradient_the_agent_accumulates(loss: str) -> None:
    model, data = minibatch(loss)
    values = dict(zip(STEP_COLUMNS, step_norms(model, data), strict=True))
    params = [p for p in model.policy.parameters() if p.requires_grad]
    model.policy.zero_grad()
    objective = model._minibatch_loss(data, 0.2, None, 1.0, AttentionLog(), alignment=False).objective
    objective.backward(params)
    applied = float(torch.nn.utils.clip_grad_norm_(params, model.max_grad_norm))
    # the norm of the summed gradient is the pre-clip norm of what the agent's own backward
    # accumulated (which torch sums in float32: within 1e-4 of itself)
    assert values["‖sum‖"] == pytest.approx(applied, rel=1e-4)
    assert values["clip"] == pytest.approx(clip_factor(applied, model.max_grad_norm), rel=1e-4)
    assert values["clip ‖g_task‖"] == pytest.approx(values["clip"] * values["‖g_task‖"])
    task, att, added = values["‖g_task‖"], values["‖g_att‖"], values["‖added‖"]
    if loss == "none":
        assert att == added == 0.0
        assert values["‖sum‖"] == pytest.approx(task)
        assert math.isnan(values["cos"])
        return
    # camal caps what it adds at the task gradient's norm (coefficient 1); energy adds all of it
    assert added == pytest.approx(min(att, task) if loss == "camal" else att)
    # |t + a|^2 = |t|^2 + |a|^2 + 2 |t| |a| cos
    expected = math.sqrt(task**2 + added**2 + 2 * task * added * values["cos"])
    assert values["‖sum‖"] == pytest.approx(expected, rel=1e-9)


def test_trained_rows_give_each_run_and_the_median_of_its_variant(tiny_run: Path) -> None:
    rows = trained_rows(tiny_run.parent, 128, 0)
    (run,) = load_results([tiny_run])
    assert [row[:2] for row in rows] == [[run.label, str(run.seed)], [run.label, "median"]]
    assert rows[0][2:] == rows[1][2:]  # one seed: its median is itself
    assert all(cell != "-" for cell in rows[0][2:])  # a camal run: every column measured
    with pytest.raises(InputError, match="no checkpoint at step 100"):
        trained_rows(tiny_run.parent, 100, 0)
