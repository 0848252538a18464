"""Every loss kind x {PPO, DQN} x {MiniGrid DoorKey, ViZDoom basic} learns a few hundred steps
with finite losses, and saved models round-trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from camal_rl.agents import CamalDQN, CamalPPO, MiniGridCNN, NatureCamCNN
from camal_rl.envs import make_masked_env
from tests.agent_utils import max_param_diff, record_logs
from tests.conftest import DEVICE

ENVS = {
    "MiniGrid-DoorKey-5x5-v0": ({"max_steps": 32}, MiniGridCNN),  # short episodes: DQN logs per episode
    "VizdoomBasic-v1": ({"frame_skip": 4}, NatureCamCNN),
}
ALGOS: dict[str, tuple[type[CamalPPO] | type[CamalDQN], dict[str, Any]]] = {
    "ppo": (CamalPPO, {"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
    "dqn": (CamalDQN, {"buffer_size": 512, "learning_starts": 64, "batch_size": 16, "train_freq": 4}),
}


@pytest.mark.parametrize("loss", ["camal", "energy", "rrr", "none"])
@pytest.mark.parametrize("algo", list(ALGOS))
@pytest.mark.parametrize(  # ViZDoom trains slowly: `make test-all` runs it
    "env_id", [pytest.param(env, marks=[pytest.mark.slow] if "Vizdoom" in env else []) for env in ENVS]
)
def test_smoke(env_id: str, algo: str, loss: str, tmp_path: Path) -> None:
    if env_id.startswith("Vizdoom"):
        pytest.importorskip("vizdoom", reason="install the vizdoom extra: pip install 'camal-rl[vizdoom]'")
    env_kwargs, extractor = ENVS[env_id]
    algo_class, hp = ALGOS[algo]
    venv = make_vec_env(lambda: make_masked_env(env_id, **env_kwargs), n_envs=2, seed=0)
    model = algo_class("MultiInputPolicy", venv, camal_loss=loss, seed=0, device=DEVICE, **hp)
    network = model.policy.q_net if isinstance(model, CamalDQN) else model.policy
    assert isinstance(network.features_extractor, extractor)  # picked from the env
    logs = record_logs(model)
    model.learn(320, log_interval=1)
    for key in ("train/loss", "camal/attention_loss", "camal/mask_coverage"):
        values = logs.series(key)
        assert values, key
        assert np.isfinite(values).all(), key
    model.save(tmp_path / "model.zip")
    loaded = algo_class.load(tmp_path / "model.zip", device=DEVICE)
    assert max_param_diff(model, loaded) == 0.0
    assert loaded.camal_loss == loss
    image = venv.reset()["image"][0]
    action, _ = loaded.predict(image, deterministic=True)
    assert 0 <= int(action) < venv.action_space.n
    venv.close()
