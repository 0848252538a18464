"""A user's own masked env: any gymnasium id whose env renders {"image", "mask"} itself."""

from __future__ import annotations

import csv
import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from camal_rl.agents import CamalPPO, MiniGridCNN
from camal_rl.cli import main
from camal_rl.compare import SweepConfig, compare
from camal_rl.config import TrainConfig
from camal_rl.envcheck import check_env
from camal_rl.envs import get_mask_classes, make_masked_env
from camal_rl.errors import InputError, WrongEnvTypeError
from camal_rl.rundir import RunDir
from camal_rl.settings import EvaluationSettings
from camal_rl.statistics import load_results
from camal_rl.video import action_names
from tests.conftest import DEVICE
from tests.toy_envs import OWN_ENV_ID, FindObjectEnv

BY_MODULE = f"tests.toy_envs:{OWN_ENV_ID}"


def test_an_own_env_is_made_by_id_or_by_module_and_id() -> None:
    for env_id in (OWN_ENV_ID, BY_MODULE):
        env = make_masked_env(env_id)
        assert isinstance(env.unwrapped, FindObjectEnv)
        assert get_mask_classes(env) == ("object",)
        obs, _ = env.reset(seed=3)
        assert obs["image"].shape == (24, 24, 3)
        assert obs["mask"].shape == (24, 24)
        assert obs["mask"].sum() == 64  # the object's 8 x 8 cell, class 1
        env.close()


def test_options_an_own_env_does_not_take_are_refused() -> None:
    for options, named in [
        ({"view": "full"}, "view"),
        ({"tile_size": 4}, "tile_size"),
        ({"classes": ("object",)}, "classes"),
        ({"distractors": 1, "include_agent": True}, "include_agent, distractors"),
    ]:
        refused = f"^{named} only apply to MiniGrid envs; for {OWN_ENV_ID} the env renders its own"
        with pytest.raises(InputError, match=refused):
            make_masked_env(OWN_ENV_ID, **options)
    env = make_masked_env(OWN_ENV_ID, cells=2)  # its own keywords go to its constructor
    assert env.observation_space["image"].shape == (16, 16, 3)


def test_a_module_that_does_not_import() -> None:
    with pytest.raises(InputError, match="cannot import 'no_such_package' for env 'no_such_package:Own-v0'"):
        make_masked_env("no_such_package:Own-v0")
    with pytest.raises(InputError, match=r"unknown env id 'tests\.toy_envs:Nope-v0'"):
        make_masked_env("tests.toy_envs:Nope-v0")


def test_an_env_without_masks_says_what_an_own_env_needs() -> None:
    with pytest.raises(WrongEnvTypeError, match=r"got CartPoleEnv\. .*Your own environment"):
        make_masked_env("CartPole-v1")


class Broken(FindObjectEnv):
    """FindObjectEnv with one part of the contract broken."""

    def __init__(self, part: str) -> None:
        super().__init__(cells=2, tile=4)
        image, mask = self.observation_space["image"], self.observation_space["mask"]
        if part == "classes":
            self.mask_classes = ("object", "door")  # the mask declares one class
        if part == "dtype":
            image = spaces.Box(0, 1, image.shape, np.float32)
        if part == "channels first":
            image = spaces.Box(0, 255, (3, 8, 8), np.uint8)
        if part == "size":
            mask = spaces.Box(0, 1, (4, 4), np.uint8)
        self.observation_space = spaces.Dict({"image": image, "mask": mask})


@pytest.fixture
def broken_ids() -> Iterator[str]:
    yield "camal_tests/Broken-v0"
    gym.registry.pop("camal_tests/Broken-v0", None)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("classes", r"mask_classes \('object', 'door'\) must name each of the 1 mask values 1\.\.1"),
        ("dtype", r"declare image Box\(0, 255, \(H, W, 3\), uint8\) .* got image \(8, 8, 3\) float32"),
        ("channels first", r"got image \(3, 8, 8\) uint8"),
        ("size", r"the mask \(4x4\) must be the size of the image \(8x8\)"),
    ],
)
def test_an_own_env_that_breaks_the_contract_is_refused(broken_ids: str, part: str, message: str) -> None:
    gym.register(broken_ids, entry_point=Broken, kwargs={"part": part})
    with pytest.raises(InputError, match=message):
        make_masked_env(broken_ids)


def test_an_own_env_must_name_its_classes(broken_ids: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FindObjectEnv, "mask_classes")  # the env class itself names none
    gym.register(broken_ids, entry_point=Broken, kwargs={"part": ""})
    with pytest.raises(InputError, match="renders masks but does not name their classes: give the env"):
        make_masked_env(broken_ids)


def test_train_evaluate_and_record_an_own_env_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "own"
    train = ["train", "--env", BY_MODULE, "--method", "camal", "--steps", "256", "--n-envs", "4"]
    train += ["--hp", "n_steps=64", "batch_size=64", "n_epochs=1"]
    train += ["--eval-freq", "128", "--eval-episodes", "2"]
    assert main([*train, "--no-progress-bar", "--device", DEVICE, "--out", str(out)]) == 0
    run = RunDir(out)
    assert run.is_trained()
    assert [row["step"] for row in run.read_evaluations()] == [0, 128, 256]
    evaluate = ["evaluate", str(out), "--episodes", "4", "--max-steps-scored", "1", "--device", DEVICE]
    assert main(evaluate) == 0
    metrics: dict[str, Any] = json.loads(run.metrics.read_text())
    assert metrics["env"] == BY_MODULE
    scored = metrics["variants"]["train"]
    assert (scored["episodes"], scored["steps_scored"]) == (4, 4)  # one step an episode
    assert len(scored["per_episode_return"]) == 4
    assert set(scored["per_episode_return"]) <= {0.0, 1.0}  # 1 for naming the object's cell
    assert scored["success_rate"] == sum(scored["per_episode_return"]) / 4
    assert main([*evaluate, "--distractors", "1"]) == 2  # MiniGrid's distractor variant: refused
    (result,) = load_results([out])
    assert result.env == "camal_tests-FindObject-v0"  # the name in tables and plots
    record = ["record", str(out), "--episodes", "1", "--frame-png", "--out", str(tmp_path / "own.mp4")]
    assert main([*record, "--device", DEVICE]) == 0
    assert (tmp_path / "own.png").exists()


def test_folders_and_tables_name_an_own_env_without_its_module_and_slash() -> None:
    assert TrainConfig(env=BY_MODULE).env_name == "camal_tests-FindObject-v0"
    assert TrainConfig(env=BY_MODULE).run_dir == Path("runs/camal_tests-FindObject-v0/ppo-camal/seed0")
    assert TrainConfig(env="camal_rl/MiniGrid-DoorKey-5x5-v0").env_name == "MiniGrid-DoorKey-5x5-v0"
    assert TrainConfig(env="VizdoomBasic-v1").env_name == "VizdoomBasic-v1"
    (run,) = SweepConfig(envs=(BY_MODULE,), methods=("none",), seeds=(0,), out=Path("s")).run_configs()
    assert run.run_dir == Path("s/camal_tests-FindObject-v0/ppo-none/seed0")


class Misbehaving(FindObjectEnv):
    """FindObjectEnv that misbehaves once checked: ``leaves_space`` after 40 steps (a mask value the
    space does not declare), or with an ``empty`` mask."""

    def __init__(self, fault: str) -> None:
        super().__init__(cells=3, tile=8)
        self.fault, self.calls = fault, 0

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self.calls += 1
        if self.fault == "leaves_space" and self.calls > 40:
            obs["mask"][0, 0] = 2
        if self.fault == "shares":
            obs = self._obs
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = super().reset(**kwargs)
        if self.fault == "empty":
            obs["mask"][:] = 0
        return obs, info


def test_check_reports_what_the_losses_will_see(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = check_env(BY_MODULE, steps=50)
    assert report.mask_classes == ("object",)
    assert report.image_shape == (24, 24, 3)
    assert (report.steps, report.episodes, report.observations) == (50, 50, 101)  # 1-step episodes
    assert report.coverage == 1.0
    assert report.class_shares == pytest.approx((64 / 576,))  # one 8 x 8 cell of 24 x 24
    assert report.warnings == ()
    assert (report.extractor, report.attention_maps) == ("MiniGridCNN", (3, 3))  # its tile_size: 8
    doorkey = check_env("MiniGrid-DoorKey-5x5-v0", steps=20)  # a built-in env passes too
    assert doorkey.mask_classes == ("key", "door", "goal")
    assert doorkey.coverage > 0
    assert (doorkey.extractor, doorkey.attention_maps) == ("MiniGridCNN", (7, 7))  # 56 px, 8 a cell
    png = tmp_path / "check.png"
    assert main(["envs", "--check", BY_MODULE, "--steps", "9", "--png", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "object: 11.11% of the pixels" in printed
    assert "agents use MiniGridCNN by default: attention maps 3x3 (Grad-CAM's resolution, 8x8" in printed
    assert "9 steps, 9 episode(s) ended, 19 observations; the mask marks something in 100%" in printed
    assert png.exists()


class Untiled(FindObjectEnv):
    """Grid frames without a tile_size attribute: agents take NatureCamCNN for them."""

    def __init__(self, cells: int) -> None:
        super().__init__(cells=cells, tile=8)
        del self.tile_size


def test_check_names_the_attention_maps_and_refuses_frames_too_small_for_them(broken_ids: str) -> None:
    """NatureCamCNN on 48 px: (48 - 8) // 4 + 1 = 11 -> (11 - 4) // 2 + 1 = 4 -> 2 positions; on 40
    px one position, which training refuses: so does the check."""
    gym.register(broken_ids, entry_point=Untiled, kwargs={"cells": 6})
    report = check_env(broken_ids, steps=5)
    assert (report.extractor, report.attention_maps) == ("NatureCamCNN", (2, 2))
    assert "attention maps 2x2 (Grad-CAM's resolution, 24x24 pixels a position)" in report.format()
    gym.registry.pop(broken_ids)
    gym.register(broken_ids, entry_point=Untiled, kwargs={"cells": 5})
    with pytest.raises(InputError, match=r"at least 44x44 pixels, got 40x40: .*a tile_size attribute"):
        check_env(broken_ids, steps=5)


def test_check_finds_what_breaks_the_contract(broken_ids: str, capsys: pytest.CaptureFixture[str]) -> None:
    for fault, message in [
        ("shares", "fails gymnasium's env checker: The observations returned by"),
        ("leaves_space", "observation [0-9]+ of the random rollout .* lies outside the observation space"),
    ]:
        gym.register(broken_ids, entry_point=Misbehaving, kwargs={"fault": fault})
        with pytest.raises(InputError, match=message):
            check_env(broken_ids, steps=60)
        gym.registry.pop(broken_ids)
    gym.register(broken_ids, entry_point=Misbehaving, kwargs={"fault": "empty"})
    empty = check_env(broken_ids, steps=10)
    assert (empty.coverage, empty.class_shares) == (0.0, (0.0,))
    assert "warning: the mask is empty in every observation" in empty.format()
    assert main(["envs", "--check", "CartPole-v1"]) == 2
    assert "Your own environment" in capsys.readouterr().err
    assert main(["envs", "--check", BY_MODULE, "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert main(["envs", "--contains", "Key", "--png", "key.png"]) == 2  # a listing takes no check options
    assert "--steps, --env-kwargs and --png go with --check ID" in capsys.readouterr().err


def test_the_documented_example_env_passes_the_check_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "environments.md").read_text()
    (block,) = re.findall(r"```python\n(# my_envs/__init__\.py\n.*?)```", docs, flags=re.S)
    module = types.ModuleType("my_envs")
    monkeypatch.setitem(sys.modules, "my_envs", module)
    exec(compile(block, "docs/environments.md", "exec"), module.__dict__)  # registers the id
    registered = gym.registry.pop("my_envs/FindTheKey-v0")
    monkeypatch.setitem(gym.registry, "my_envs/FindTheKey-v0", registered)  # gone after the test
    report = check_env("my_envs:my_envs/FindTheKey-v0", steps=300)
    assert report.mask_classes == ("key",)
    assert report.coverage > 0.9  # the key is hidden only under the agent, at the episode's end
    assert report.class_shares[0] == pytest.approx(report.coverage / 25)  # one 8 x 8 cell of 40 x 40
    env = make_masked_env("my_envs/FindTheKey-v0")
    assert action_names(env) == ("right", "down", "left", "up")  # the env's own, for record
    env.close()
    out = tmp_path / "key"
    train = ["train", "--env", "my_envs:my_envs/FindTheKey-v0", "--steps", "128", "--n-envs", "2"]
    train += ["--hp", "n_steps=64", "batch_size=64", "n_epochs=1", "--eval-freq", "0"]
    assert main([*train, "--no-progress-bar", "--device", DEVICE, "--out", str(out)]) == 0
    assert RunDir(out).is_trained()
    extractor = CamalPPO.load(out / "model.zip", device=DEVICE).policy.features_extractor
    assert isinstance(extractor, MiniGridCNN)  # its tile_size attribute: one map position a cell
    assert extractor.tile_size == 8


def test_a_sweep_asking_an_own_env_for_distractors_fails_before_training(tmp_path: Path) -> None:
    sweep = SweepConfig(
        envs=(BY_MODULE,),
        methods=("none",),
        seeds=(0,),
        out=tmp_path / "s",
        evaluation=EvaluationSettings(distractors=1),
    )
    with pytest.raises(InputError, match="distractors only apply to MiniGrid envs"):
        compare(sweep)
    assert not (tmp_path / "s").exists()


def test_a_dqn_agent_trains_on_an_own_env(tmp_path: Path) -> None:
    out = tmp_path / "dqn"
    train = ["train", "--algo", "dqn", "--env", BY_MODULE, "--steps", "256", "--n-envs", "2"]
    train += ["--hp", "learning_starts=64", "buffer_size=512", "batch_size=32", "--eval-freq", "0"]
    assert main([*train, "--no-progress-bar", "--device", DEVICE, "--out", str(out)]) == 0
    assert RunDir(out).read_status()["num_timesteps"] == 256
    rows = list(csv.DictReader((out / "progress.csv").open()))
    assert float(rows[-1]["train/n_updates"]) > 0  # gradient steps ran, on the env's masks
