"""CamalPPO: parity with stock PPO, the attention loss at work, save/load, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from camal_rl.agents import CamalPPO, MiniGridCNN, PolicyScorer
from camal_rl.errors import InputError
from camal_rl.losses import attention_loss
from camal_rl.metrics import energy_pointing_game
from camal_rl.saliency import grad_cam
from tests.agent_utils import max_param_diff, record_logs
from tests.conftest import DEVICE
from tests.toy_envs import FindObjectEnv, ImageOnlyEnv

TINY: dict[str, Any] = {"n_steps": 32, "batch_size": 16, "n_epochs": 2, "seed": 0, "device": DEVICE}


def toy_env(**kwargs: Any) -> Any:
    return make_vec_env(FindObjectEnv, n_envs=2, seed=0, env_kwargs=kwargs)


@pytest.mark.parametrize("camal", [{"camal_coef": 0.0}, {"camal_loss": "none"}])
def test_parity_with_stock_ppo(camal: dict[str, Any]) -> None:
    stock = PPO(
        "MultiInputPolicy",
        toy_env(),
        policy_kwargs={
            "features_extractor_class": MiniGridCNN,
            "features_extractor_kwargs": {"tile_size": 4},
        },
        **TINY,
    ).learn(128)
    ours = CamalPPO("MultiInputPolicy", toy_env(), **camal, **TINY).learn(128)
    assert max_param_diff(stock, ours) <= 1e-6
    assert ours.policy.features_extractor.__class__ is MiniGridCNN  # picked from the env's tile size


def test_camal_changes_training() -> None:
    stock = CamalPPO("MultiInputPolicy", toy_env(), camal_coef=0.0, **TINY).learn(64)
    ours = CamalPPO("MultiInputPolicy", toy_env(), camal_coef=1.0, **TINY).learn(64)
    assert max_param_diff(stock, ours) > 1e-4


def test_mask_never_drives_action_or_value() -> None:
    model = CamalPPO("MultiInputPolicy", toy_env(), **TINY)
    env = FindObjectEnv()
    obs, _ = env.reset(seed=1)
    other = {"image": obs["image"], "mask": 1 - obs["mask"]}
    tensors = [model.policy.obs_to_tensor(o)[0] for o in (obs, other)]
    with torch.no_grad():
        dists = [model.policy.get_distribution(t).distribution.probs for t in tensors]
        values = [model.policy.predict_values(t) for t in tensors]
    torch.testing.assert_close(dists[0], dists[1], rtol=0, atol=0)
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=0)
    assert model.predict(obs, deterministic=True)[0] == model.predict(other, deterministic=True)[0]


def attention_on_fixed_batch(model: CamalPPO, target: str) -> tuple[float, float]:
    """The camal loss and EPG of the model's Grad-CAM for ``target`` on 64 fixed observations."""
    env = FindObjectEnv(cells=3, distractor=True)
    batch = [env.reset(seed=100 + i)[0] for i in range(64)]
    obs = {k: np.stack([o[k] for o in batch]) for k in ("image", "mask")}
    obs_tensor = model.policy.obs_to_tensor(obs)[0]
    with torch.no_grad():
        actions = model.policy.get_distribution(obs_tensor).distribution.probs.argmax(1)
    forward = model.policy.evaluate_actions_with_maps(obs_tensor, actions)
    model.camal_target = target
    scores, maps = model._camal_target_scores(forward, actions)
    cam = grad_cam(maps, scores, create_graph=False)
    loss = attention_loss(cam, torch.as_tensor(obs["mask"]), "camal").item()
    return loss, float(np.mean(energy_pointing_game(cam.cpu().numpy(), obs["mask"])))


@pytest.mark.parametrize("target", ["decision", "action", "greedy", "value"])
def test_attention_loss_falls_and_epg_rises(target: str) -> None:
    model = CamalPPO(
        "MultiInputPolicy",
        toy_env(cells=3, distractor=True),
        camal_coef=1.0,
        camal_target=target,
        n_steps=64,
        batch_size=32,
        n_epochs=4,
        learning_rate=1e-3,
        seed=0,
        device=DEVICE,
    )
    loss_before, epg_before = attention_on_fixed_batch(model, target)
    logs = record_logs(model)
    model.learn(640)  # 5 updates of 2 x 64 steps; SB3 dumps an update's logs before the next one
    loss_after, epg_after = attention_on_fixed_batch(model, target)
    assert loss_after < 0.6 * loss_before
    assert epg_after > epg_before + 0.2
    assert logs.series("camal/mask_coverage") == [1.0] * 4
    assert len(logs.series("camal/batch_epg")) == 4


@pytest.mark.parametrize("loss", ["camal", "camal-v1", "energy", "rrr", "none"])
def test_every_loss_learns_with_finite_losses(loss: str) -> None:
    model = CamalPPO("MultiInputPolicy", toy_env(), camal_loss=loss, **TINY)
    logs = record_logs(model)
    model.learn(128)
    for key in ("train/loss", "camal/attention_loss", "camal/batch_epg", "camal/batch_iou"):
        values = logs.series(key)
        assert values, key
        assert np.isfinite(values).all(), key


def test_camal_defaults_to_the_decision_target_and_a_capped_gradient() -> None:
    """camal trains the decision's map (the others the taken action's logit), and its attention
    gradient never adds more than camal_coef times PPO's gradient norm: the mean scale s logged
    per update is in (0, coef]."""
    assert CamalPPO("MultiInputPolicy", toy_env(), **TINY).camal_target == "decision"
    assert CamalPPO("MultiInputPolicy", toy_env(), camal_loss="camal-v1", **TINY).camal_target == "action"
    model = CamalPPO("MultiInputPolicy", toy_env(), camal_coef=0.5, **TINY)
    logs = record_logs(model)
    model.learn(128)
    scales = logs.series("camal/grad_scale")
    assert scales
    assert all(0.0 < s <= 0.5 + 1e-9 for s in scales)
    v1 = CamalPPO("MultiInputPolicy", toy_env(), camal_loss="camal-v1", **TINY)
    v1_logs = record_logs(v1)
    v1.learn(128)
    assert not v1_logs.series("camal/grad_scale")  # added as written: no scale


def test_save_load_round_trip_and_image_only_prediction(tmp_path: Path) -> None:
    model = CamalPPO(
        "MultiInputPolicy", toy_env(), camal_coef=0.5, camal_loss="energy", camal_target="greedy", **TINY
    ).learn(64)
    model.save(tmp_path / "model.zip")
    loaded = CamalPPO.load(tmp_path / "model.zip", device=DEVICE)
    assert (loaded.camal_coef, loaded.camal_loss, loaded.camal_target) == (0.5, "energy", "greedy")
    assert max_param_diff(model, loaded) == 0.0
    env = ImageOnlyEnv(FindObjectEnv())
    image, _ = env.reset(seed=4)
    masked, _ = FindObjectEnv().reset(seed=4)
    action, _ = loaded.predict(image, deterministic=True)
    assert action == model.predict(masked, deterministic=True)[0]
    batch, _ = loaded.predict(np.stack([image, image]), deterministic=True)
    assert batch.shape == (2,)


def test_policy_scorer_matches_the_policy() -> None:
    model = CamalPPO("MultiInputPolicy", toy_env(), **TINY)
    obs, _ = FindObjectEnv().reset(seed=2)
    scorer = PolicyScorer(model)
    images = torch.as_tensor(obs["image"]).permute(2, 0, 1)[None].float()
    logits, maps = scorer.scores_and_maps(images)
    with torch.no_grad():
        probs = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.probs
        value = model.policy.predict_values(model.policy.obs_to_tensor(obs)[0])
    torch.testing.assert_close(torch.softmax(logits, 1), probs)
    torch.testing.assert_close(scorer.state_values(images), value.flatten())
    assert maps.shape == (1, 64, 2, 2)


def test_refusals() -> None:
    with pytest.raises(InputError, match="make_masked_env"):
        CamalPPO("MultiInputPolicy", make_vec_env(lambda: ImageOnlyEnv(FindObjectEnv())), **TINY)
    with pytest.raises(InputError, match=r"mask \(4x4\) must be the size of the image \(8x8\)"):
        CamalPPO("MultiInputPolicy", toy_env(mask_size=(4, 4)), **TINY)
    with pytest.raises(InputError, match="camal_coef must be a finite number >= 0"):
        CamalPPO("MultiInputPolicy", toy_env(), camal_coef=-1.0, **TINY)
    with pytest.raises(InputError, match="unknown camal_loss 'l2'"):
        CamalPPO("MultiInputPolicy", toy_env(), camal_loss="l2", **TINY)
    with pytest.raises(InputError, match="does not expose attention maps"):
        CamalPPO(
            "MultiInputPolicy", toy_env(), policy_kwargs={"features_extractor_class": torch.nn.Linear}, **TINY
        )


@pytest.mark.parametrize(("loss", "coef", "calls"), [("camal", 1.0, 16), ("none", 1.0, 8), ("camal", 0.0, 8)])
def test_grad_cam_only_for_the_log_runs_on_the_first_epoch(
    monkeypatch: pytest.MonkeyPatch, loss: str, coef: float, calls: int
) -> None:
    """2 updates of 64 samples in minibatches of 16 over 2 epochs: 8 minibatches each. An agent
    that trains its attention computes the term on all 16; one that does not (loss none,
    coefficient 0) only on the 8 of the first epochs, whose batch EPG it logs."""
    from camal_rl.agents.common import algorithm, attention

    seen: list[bool] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["train"])
        return attention.attention_term(*args, **kwargs)

    monkeypatch.setattr(algorithm, "attention_term", counting)
    model = CamalPPO("MultiInputPolicy", toy_env(), camal_loss=loss, camal_coef=coef, **TINY)
    logs = record_logs(model)
    model.learn(128)
    assert len(seen) == calls
    assert all(seen) is (calls == 16)  # the term trains the network only when asked to
    for key in ("camal/batch_epg", "camal/attention_loss", "camal/dead_cam_share"):
        assert logs.series(key), key
        assert np.isfinite(logs.series(key)).all(), key
