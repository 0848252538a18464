"""CamalDQN: parity with stock DQN, the attention loss at work, save/load, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

from camal_rl.agents import CamalDQN, MaskPackedDictReplayBuffer, MiniGridCNN
from camal_rl.agents.dqn.dqn import ALIGNMENT_EVERY
from camal_rl.errors import InputError
from tests.agent_utils import max_param_diff, record_logs
from tests.conftest import DEVICE
from tests.toy_envs import FindObjectEnv, ImageOnlyEnv

TINY: dict[str, Any] = {
    "buffer_size": 500,
    "learning_starts": 32,
    "batch_size": 16,
    "train_freq": 4,
    "target_update_interval": 50,
    "seed": 0,
    "device": DEVICE,
}


def toy_env(**kwargs: Any) -> Any:
    return make_vec_env(FindObjectEnv, n_envs=2, seed=0, env_kwargs=kwargs)


@pytest.mark.parametrize("camal", [{"camal_coef": 0.0}, {"camal_loss": "none"}])
def test_parity_with_stock_dqn(camal: dict[str, Any]) -> None:
    stock = DQN(
        "MultiInputPolicy",
        toy_env(),
        policy_kwargs={
            "features_extractor_class": MiniGridCNN,
            "features_extractor_kwargs": {"tile_size": 4},
        },
        **TINY,
    ).learn(200)
    ours = CamalDQN("MultiInputPolicy", toy_env(), **camal, **TINY).learn(200)
    assert isinstance(ours.replay_buffer, MaskPackedDictReplayBuffer)
    assert max_param_diff(stock, ours) <= 1e-6


def test_attention_loss_falls_and_epg_rises() -> None:
    model = CamalDQN(
        "MultiInputPolicy",
        toy_env(cells=3, distractor=True),
        camal_coef=1.0,
        buffer_size=2000,
        learning_starts=64,
        batch_size=32,
        train_freq=1,
        gradient_steps=1,
        learning_rate=1e-3,
        seed=0,
        device=DEVICE,
    )
    logs = record_logs(model)
    model.learn(600, log_interval=20)
    loss, epg = logs.series("camal/attention_loss"), logs.series("camal/batch_epg")
    assert len(loss) >= 5
    assert loss[-1] < 0.8 * loss[0]
    assert epg[-1] > epg[0] + 0.1


@pytest.mark.parametrize("target", ["action", "greedy"])
@pytest.mark.parametrize("loss", ["camal", "energy", "rrr", "none"])
def test_every_loss_learns_with_finite_losses(loss: str, target: str) -> None:
    model = CamalDQN("MultiInputPolicy", toy_env(), camal_loss=loss, camal_target=target, **TINY)
    logs = record_logs(model)
    model.learn(200, log_interval=10)
    for key in ("train/loss", "camal/attention_loss", "camal/batch_epg"):
        values = logs.series(key)
        assert values, key
        assert np.isfinite(values).all(), key


def test_mask_never_drives_action() -> None:
    model = CamalDQN("MultiInputPolicy", toy_env(), **TINY)
    obs, _ = FindObjectEnv().reset(seed=1)
    other = {"image": obs["image"], "mask": 1 - obs["mask"]}
    with torch.no_grad():
        q = [model.q_net(model.policy.obs_to_tensor(o)[0]) for o in (obs, other)]
    torch.testing.assert_close(q[0], q[1], rtol=0, atol=0)


def test_save_load_round_trip_and_image_only_prediction(tmp_path: Path) -> None:
    model = CamalDQN("MultiInputPolicy", toy_env(), camal_coef=0.25, camal_target="greedy", **TINY).learn(100)
    model.save(tmp_path / "dqn.zip")
    loaded = CamalDQN.load(tmp_path / "dqn.zip", device=DEVICE)
    assert (loaded.camal_coef, loaded.camal_loss, loaded.camal_target) == (0.25, "camal", "greedy")
    assert max_param_diff(model, loaded) == 0.0
    image, _ = ImageOnlyEnv(FindObjectEnv()).reset(seed=5)
    masked, _ = FindObjectEnv().reset(seed=5)
    assert loaded.predict(image, deterministic=True)[0] == model.predict(masked, deterministic=True)[0]


def test_n_step_returns_train_and_survive_save_load(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = CamalDQN("MultiInputPolicy", toy_env(), n_steps=3, gamma=0.9, **TINY).learn(200)
    assert not [w for w in caught if "n_steps" in str(w.message)]  # SB3's "ignored" warning is wrong here
    buffer = model.replay_buffer
    assert isinstance(buffer, MaskPackedDictReplayBuffer)
    assert (buffer.n_steps, buffer.gamma) == (3, 0.9)
    discounts = buffer.sample(64).discounts
    assert discounts is not None
    assert set(np.round(discounts.flatten().tolist(), 6)) <= {0.9, 0.81, 0.729}
    model.save(tmp_path / "dqn.zip")
    loaded = CamalDQN.load(tmp_path / "dqn.zip", env=toy_env(), device=DEVICE).learn(100)
    assert loaded.n_steps == 3
    assert isinstance(loaded.replay_buffer, MaskPackedDictReplayBuffer)
    assert loaded.replay_buffer.n_steps == 3


def test_batch_alignment_is_measured_on_every_10th_gradient_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from camal_rl.agents.common.attention import AttentionLog

    model = CamalDQN("MultiInputPolicy", toy_env(), **TINY).learn(100)
    flags: list[bool] = []
    original = AttentionLog.add

    def spy(self: AttentionLog, term: Any, mask: Any, *, alignment: bool = True) -> None:
        flags.append(alignment)
        original(self, term, mask, alignment=alignment)

    monkeypatch.setattr(AttentionLog, "add", spy)
    start = model._n_updates
    model.train(gradient_steps=25, batch_size=16)
    assert [start + i for i, flag in enumerate(flags) if flag] == [
        n for n in range(start, start + 25) if n % 10 == 0
    ]
    assert len(flags) == 25
    model.train(gradient_steps=1, batch_size=16)  # the count goes on across calls
    assert flags[-1] == ((start + 25) % 10 == 0)


def test_refusals() -> None:
    with pytest.raises(InputError, match="make_masked_env"):
        CamalDQN("MultiInputPolicy", make_vec_env(lambda: ImageOnlyEnv(FindObjectEnv())), **TINY)
    with pytest.raises(InputError, match="must be the size of the image"):
        CamalDQN("MultiInputPolicy", toy_env(mask_size=(4, 4)), **TINY)
    with pytest.raises(InputError, match="camal_coef"):
        CamalDQN("MultiInputPolicy", toy_env(), camal_coef=-0.5, **TINY)
    with pytest.raises(InputError, match="unknown camal_loss"):
        CamalDQN("MultiInputPolicy", toy_env(), camal_loss="gradcam", **TINY)
    with pytest.raises(InputError, match="unknown camal_target 'value'"):
        CamalDQN("MultiInputPolicy", toy_env(), camal_target="value", **TINY)


@pytest.mark.parametrize(("loss", "every"), [("camal", 1), ("none", ALIGNMENT_EVERY)])
def test_grad_cam_only_for_the_log_runs_on_the_alignment_steps(
    monkeypatch: pytest.MonkeyPatch, loss: str, every: int
) -> None:
    from camal_rl.agents.common import algorithm, attention

    calls: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return attention.attention_term(*args, **kwargs)

    monkeypatch.setattr(algorithm, "attention_term", counting)
    model = CamalDQN("MultiInputPolicy", toy_env(), camal_loss=loss, **TINY)
    model.learn(200)
    updates = model._n_updates
    assert updates > ALIGNMENT_EVERY
    assert len(calls) == -(-updates // every)  # steps 0, every, 2 every, ... of the updates
