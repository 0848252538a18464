"""camal_rl.hyperparams: rl-zoo3's ``lin_<number>`` schedules, from the value to the model built
and resumed, and the refusals of bad values."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from stable_baselines3.common.utils import LinearSchedule

from camal_rl.agents import CamalPPO
from camal_rl.config import TrainConfig, from_preset
from camal_rl.configfile import start_config
from camal_rl.errors import InputError
from camal_rl.hyperparams import algo_schedules, check_hyperparams, linear_schedule, linear_start
from camal_rl.loading import load_agent
from camal_rl.rundir import RunDir
from camal_rl.train import new_model, train
from tests.conftest import DEVICE
from tests.test_train import interrupt_at

LINEAR_HP = ("n_steps=64", "batch_size=64", "n_epochs=1", "learning_rate=lin_1e-3", "clip_range=lin_0.2")
"""Tiny PPO (2 envs x 64 steps: an update every 128 env steps) with linear schedules from 1e-3
and 0.2."""


def test_linear_schedule_by_hand() -> None:
    """lin_2.5e-4: 2.5e-4 at the start (progress remaining 1), half way 1.25e-4, 0 at the end."""
    learning_rate = linear_schedule(2.5e-4)
    assert [learning_rate(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([2.5e-4, 1.25e-4, 0.0], abs=1e-15)
    clip_range = linear_schedule(0.1)
    assert [clip_range(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([0.1, 0.05, 0.0], abs=1e-15)
    assert (linear_start("lin_2.5e-4"), linear_start("lin_0.1"), linear_start("lin_3")) == (2.5e-4, 0.1, 3.0)
    assert linear_start("lin_abc") is linear_start(0.1) is linear_start("0.1") is None


def test_lin_values_are_kept_as_written_and_built_into_schedules() -> None:
    hp = ("learning_rate=lin_1e-3", "clip_range=lin_0.2", "clip_range_vf=lin_0.5")
    cfg = TrainConfig(hp=hp).resolved()
    kwargs = cfg.algo_kwargs
    assert (kwargs["learning_rate"], kwargs["clip_range"], kwargs["clip_range_vf"]) == (
        "lin_1e-3",
        "lin_0.2",
        "lin_0.5",
    )
    assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))).algo_kwargs == kwargs
    built = algo_schedules(kwargs)
    assert isinstance(built["learning_rate"], LinearSchedule)
    assert built["clip_range_vf"](0.5) == pytest.approx(0.25)
    assert built["n_steps"] == kwargs["n_steps"] == 128  # the rest as they were
    assert algo_schedules({"learning_rate": 3e-4}) == {"learning_rate": 3e-4}


@pytest.mark.parametrize("preset", ["pong-ppo", "breakout-ppo"])
def test_the_atari_presets_are_rl_zoo3s_schedules(preset: str) -> None:
    kwargs = from_preset(preset).resolved().algo_kwargs
    assert (kwargs["learning_rate"], kwargs["clip_range"]) == ("lin_2.5e-4", "lin_0.1")
    # an explicit --hp still replaces them, with a number or a schedule
    cfg = from_preset(preset, hp=("learning_rate=1e-4", "clip_range=lin_0.2")).resolved()
    assert (cfg.algo_kwargs["learning_rate"], cfg.algo_kwargs["clip_range"]) == (1e-4, "lin_0.2")


def test_a_config_file_gives_lin_values(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("env: MiniGrid-DoorKey-5x5-v0\nhp: [learning_rate=lin_3e-4, clip_range=lin_0.1]\n")
    kwargs = start_config(TrainConfig, config=path).resolved().algo_kwargs
    assert (kwargs["learning_rate"], kwargs["clip_range"]) == ("lin_3e-4", "lin_0.1")


def test_the_model_built_follows_the_schedule() -> None:
    from camal_rl.envs import make_masked_env

    cfg = TrainConfig(hp=LINEAR_HP, device=DEVICE).resolved()
    model = new_model(cfg, CamalPPO, make_masked_env(cfg.env, **cfg.env_make_kwargs))
    assert [model.lr_schedule(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([1e-3, 5e-4, 0.0])
    assert [model.clip_range(p) for p in (1.0, 0.5, 0.0)] == pytest.approx([0.2, 0.1, 0.0])  # type: ignore[operator]


@pytest.mark.parametrize(
    ("hp", "match"),
    [
        ("learning_rate=lin_abc", r"learning_rate takes a number > 0, got 'lin_abc' .*or lin_ and such a"),
        ("learning_rate=lin_", r"learning_rate takes a number > 0, got 'lin_'"),
        ("learning_rate=lin_0", r"learning_rate takes a number > 0, got 'lin_0'"),
        ("clip_range=lin_-0.1", r"clip_range takes a number > 0, got 'lin_-0.1'"),
        ("clip_range_vf=lin_x", r"clip_range_vf takes a number > 0 or null, got 'lin_x'"),
        (
            "n_steps=lin_128",
            r"n_steps takes an integer >= 1, got 'lin_128' .*; lin_<number>, a linear schedule, is "
            "for learning_rate, clip_range, clip_range_vf only",
        ),
        ("gamma=lin_0.99", r"gamma takes a number in \[0, 1\], got 'lin_0.99'.*is for learning_rate"),
    ],
)
def test_bad_lin_values_say_what_is_allowed(hp: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        TrainConfig(hp=(hp,)).resolved()
    assert check_hyperparams({"learning_rate": "lin_1e-3", "clip_range_vf": None}) == {
        "learning_rate": "lin_1e-3",
        "clip_range_vf": None,
    }


def test_a_bad_lin_value_is_one_line_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from camal_rl.cli import main

    out = tmp_path / "run"
    assert main(["train", "--steps", "64", "--hp", "learning_rate=lin_abc", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("camal-rl: error:") == 1
    assert "Traceback" not in err
    assert "got 'lin_abc'" in err
    assert not out.exists()


def test_a_resumed_run_keeps_its_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """512 steps, an update every 128, stopped at 256 and resumed. SB3 measures the progress over
    the run's 512 steps in the resumed session too: its update at step 384 runs at progress
    remaining 1 - 384 / 512 = 0.25, so at lr 1e-3 x 0.25 = 2.5e-4 and clip range 0.2 x 0.25 = 0.05
    (over the session's own 256 steps it would be 0.5: 5e-4 and 0.1). The row logged at step 512
    holds that update's values."""
    out = tmp_path / "run"
    cfg = TrainConfig(
        steps=512,
        n_envs=2,
        method="none",
        hp=LINEAR_HP,
        eval_freq=0,
        checkpoint_freq=0,
        progress_bar=False,
        device=DEVICE,
        out=out,
    )
    with monkeypatch.context() as patch:
        interrupt_at(patch, 256, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    train(TrainConfig(out=out, resume=True, progress_bar=False, device=DEVICE))
    run = RunDir(out)
    assert json.loads(run.config.read_text())["algo_kwargs"]["learning_rate"] == "lin_1e-3"
    with (out / "progress.1.csv").open() as f:
        rows = {int(row["time/total_timesteps"]): row for row in csv.DictReader(f)}
    assert float(rows[512]["train/learning_rate"]) == pytest.approx(2.5e-4)
    assert float(rows[512]["train/clip_range"]) == pytest.approx(0.05)
    # the saved model holds the schedule, and loads without unpickling code (evaluate's way)
    model = load_agent(out, device=DEVICE).model
    assert isinstance(model, CamalPPO)
    assert model.lr_schedule(0.5) == pytest.approx(5e-4)
    assert model.clip_range(0.5) == pytest.approx(0.1)  # type: ignore[operator]
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.0  # its last update, at progress 0
