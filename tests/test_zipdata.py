"""Loading a model zip runs none of the code it could carry: its pickled objects are rebuilt from an
allowlist, and a pickle that names anything else is refused before it runs."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import torch
from stable_baselines3.common import save_util

from camal_rl.agents import CamalPPO
from camal_rl.agents.common.extractors import MiniGridCNN
from camal_rl.cli import main
from camal_rl.errors import InputError
from camal_rl.loading import load_agent, read_zip_model
from camal_rl.zipdata import SERIALIZED, read_zip_data, saved_objects
from tests.conftest import DEVICE

DOORKEY = "MiniGrid-DoorKey-5x5-v0"


class MakesFolder:
    """A pickle that runs code: unpickled, it creates the folder ``path`` (``os.mkdir``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.path),)


class OwnExtractor(MiniGridCNN):
    """A features extractor of the user's: a class the allowlist does not know."""


def with_entry(source: Path, out: Path, key: str, value: Any) -> Path:
    """A copy of the zip ``source`` whose saved ``key`` is ``value``, cloudpickled as SB3 saves it."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data[key] = {":type:": str(type(value)), SERIALIZED: base64.b64encode(cloudpickle.dumps(value)).decode()}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out


def refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on in the test, SB3's own unpickling of a saved object fails it."""

    def refuse(payload: bytes) -> Any:
        raise AssertionError("SB3 unpickled a saved object")

    monkeypatch.setattr(save_util.cloudpickle, "loads", refuse)


def test_a_camal_agent_loads_without_unpickling_and_acts_as_saved(
    tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock = CamalPPO.load(tiny_run / "model.zip", device=DEVICE)  # SB3's own load, unpickling
    refuse_unpickling(monkeypatch)
    data = read_zip_data(tiny_run / "model.zip")
    serialized = {key for key, entry in data.items() if isinstance(entry, dict) and SERIALIZED in entry}
    objects = saved_objects(data, tiny_run / "model.zip")
    assert set(objects) == serialized  # every pickled entry is given to SB3's load, which unpickles none
    assert objects["policy_kwargs"]["features_extractor_class"] is MiniGridCNN
    assert objects["_last_obs"] is None  # rollout state is not read
    assert read_zip_model(tiny_run / "model.zip").algo == "ppo"
    agent = load_agent(tiny_run, device=DEVICE)
    assert agent.model.observation_space == stock.observation_space
    assert agent.model.action_space == stock.action_space
    theirs = stock.policy.state_dict()
    for name, mine in agent.model.policy.state_dict().items():
        assert torch.equal(mine, theirs[name]), name
    obs = stock.observation_space.sample()
    assert agent.model.predict(obs, deterministic=True)[0] == stock.predict(obs, deterministic=True)[0]


def test_a_pickle_that_runs_code_is_refused_before_it_runs(tiny_run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(MakesFolder(marker)))  # the payload is live: unpickled, it runs
    assert marker.is_dir()
    marker.rmdir()
    evil = with_entry(tiny_run / "model.zip", tmp_path / "evil.zip", "policy_class", MakesFolder(marker))
    refused = rf"its policy_class is a pickle that refers to {os.mkdir.__module__}\.mkdir, which camal-rl"
    with pytest.raises(InputError, match=refused):
        load_agent(evil, env=DOORKEY, device=DEVICE)
    with pytest.raises(InputError, match="if you trust the file, pass --allow-pickle"):
        read_zip_model(evil)
    assert main(["evaluate", str(evil), "--env", DOORKEY, "--out", str(tmp_path / "m.json")]) == 2
    assert main(["record", str(evil), "--env", DOORKEY, "--out", str(tmp_path / "v.mp4")]) == 2
    assert not marker.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["evil.zip"]


def test_an_own_class_needs_allow_pickle(tiny_run: Path, tmp_path: Path) -> None:
    kwargs = {"features_extractor_class": OwnExtractor, "features_extractor_kwargs": {"tile_size": 8}}
    own = with_entry(tiny_run / "model.zip", tmp_path / "own.zip", "policy_kwargs", kwargs)
    with pytest.raises(InputError, match=r"its policy_kwargs .* refers to tests\.test_zipdata\.OwnExtractor"):
        load_agent(own, env=DOORKEY, device=DEVICE)
    agent = load_agent(own, env=DOORKEY, device=DEVICE, allow_pickle=True)  # a file the user trusts
    assert isinstance(agent.model.policy.features_extractor, OwnExtractor)


def test_a_schedule_written_as_a_function_is_replaced_by_a_constant(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learning-rate schedule of the user's is a function: only training reads it, so the model
    loads with a constant in its place (0) and acts as saved."""
    linear = with_entry(tiny_run / "model.zip", tmp_path / "linear.zip", "learning_rate", lambda f: 3e-4 * f)
    refuse_unpickling(monkeypatch)
    objects = saved_objects(read_zip_data(linear), linear)
    assert objects["learning_rate"] == 0.0
    agent = load_agent(linear, env=DOORKEY, device=DEVICE)
    assert agent.model.lr_schedule(1.0) == 0.0
    saved = load_agent(tiny_run, device=DEVICE)
    obs = saved.model.observation_space.sample()
    assert agent.model.predict(obs, deterministic=True)[0] == saved.model.predict(obs, deterministic=True)[0]
