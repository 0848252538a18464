"""TrainConfig resolution, hyperparameter merging, presets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from camal_rl import config
from camal_rl.agents import CamalDQN, CamalPPO
from camal_rl.config import TrainConfig, from_preset, get_preset
from camal_rl.errors import InputError
from camal_rl.hyperparams import PPO_MINIGRID, check_algo_kwargs, parse_assignments


def test_defaults_are_filled_in() -> None:
    cfg = TrainConfig().resolved()
    assert (cfg.steps, cfg.n_envs, cfg.camal_coef) == (100_000, 8, 1.0)
    assert dict(cfg.algo_kwargs) == PPO_MINIGRID
    assert TrainConfig(algo="dqn").resolved().n_envs == 4
    assert cfg.run_dir == Path("runs/MiniGrid-DoorKey-5x5-v0/ppo-camal/seed0")


def test_reward_scale_defaults_to_the_env_family() -> None:
    assert TrainConfig().resolved().reward_scale == 1.0
    assert TrainConfig(env="VizdoomBasic-v1").resolved().reward_scale == 0.01
    assert TrainConfig(env="camal_rl/VizdoomBasic-v1", reward_scale=0.1).resolved().reward_scale == 0.1
    assert TrainConfig(reward_scale=2).resolved().reward_scale == 2.0


def test_label_names_the_variant() -> None:
    assert TrainConfig(method="none", coef=0.5).label == "ppo-none"
    assert TrainConfig(coef=0.1).label == "ppo-camal-c0.1"
    assert TrainConfig(algo="dqn", method="energy", target="greedy").label == "dqn-energy-greedy"
    assert TrainConfig(method="none", coef=0.5).camal_coef == 0.0


def test_hyperparameters_merge_in_order() -> None:
    cfg = TrainConfig(hp=("learning_rate=1e-3", "n_steps=32", "policy_kwargs={net_arch: [32]}")).resolved()
    assert cfg.algo_kwargs["learning_rate"] == 0.001
    assert cfg.algo_kwargs["n_steps"] == 32
    assert cfg.algo_kwargs["policy_kwargs"] == {"net_arch": [32]}
    assert cfg.algo_kwargs["batch_size"] == PPO_MINIGRID["batch_size"]


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (TrainConfig(hp=("seed=3",)), "set seed with the options of `camal-rl train`"),
        (TrainConfig(hp=("learning_rate",)), "--hp takes KEY=VALUE pairs"),
        (TrainConfig(algo="dqn", target="value"), "--target value is for ppo only"),
        (TrainConfig(coef=-1.0), "--coef must be >= 0"),
        (TrainConfig(steps=0), "--steps and --n-envs must be >= 1"),
        (TrainConfig(tile_size=0), "--tile-size must be >= 1"),
        (TrainConfig(eval_freq=-5), "--eval-freq must be >= 0"),
        (TrainConfig(reward_scale=0.0), r"--reward-scale must be a finite number > 0, got 0.0"),
        (TrainConfig(reward_scale=-0.01), "--reward-scale must be a finite number > 0"),
        (TrainConfig(reward_scale=float("nan")), "--reward-scale must be a finite number > 0"),
        (TrainConfig(reward_scale=float("inf")), "--reward-scale must be a finite number > 0"),
    ],
)
def test_bad_values_are_refused(cfg: TrainConfig, match: str) -> None:
    with pytest.raises(InputError, match=match):
        cfg.resolved()


@pytest.mark.parametrize(
    ("hp", "match"),
    [
        ("n_steps=abc", "hyperparameter n_steps takes an integer >= 1, got 'abc' \\(--hp n_steps=VALUE\\)"),
        ("n_epochs=0", "n_epochs takes an integer >= 1, got 0"),
        ("batch_size=1.5", "batch_size takes an integer >= 1, got 1.5"),
        ("buffer_size=true", "buffer_size takes an integer >= 1, got True"),
        ("learning_rate=0", "learning_rate takes a number > 0, got 0"),
        ("learning_rate=abc", "learning_rate takes a number > 0, got 'abc'"),
        ("gamma=1.5", "gamma takes a number in \\[0, 1\\], got 1.5"),
        ("ent_coef=-0.1", "ent_coef takes a number >= 0, got -0.1"),
        ("clip_range=.inf", "clip_range takes a number > 0, got inf"),
        ("target_kl=0", "target_kl takes a number > 0 or null, got 0"),
        ("tau=0", "tau takes a number in \\(0, 1\\], got 0"),
        ("gradient_steps=-2", "gradient_steps takes an integer >= -1, got -2"),
    ],
)
def test_hyperparameter_values_are_checked(hp: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        TrainConfig(hp=(hp,)).resolved()


def test_checked_hyperparameters_keep_their_values_and_integers_written_as_floats_become_ints() -> None:
    hp = ("buffer_size=1e5", "learning_starts=0", "gamma=1", "exploration_final_eps=0")
    dqn = TrainConfig(algo="dqn", hp=hp).resolved().algo_kwargs
    assert dqn["buffer_size"] == 100_000
    assert isinstance(dqn["buffer_size"], int)
    assert (dqn["learning_starts"], dqn["gamma"], dqn["exploration_final_eps"]) == (0, 1, 0)
    hp = (
        "target_kl=null",
        "clip_range_vf=0.2",
        "policy_kwargs={net_arch: [32]}",
    )  # the last not checked here
    ppo = TrainConfig(hp=hp).resolved().algo_kwargs
    assert (ppo["target_kl"], ppo["clip_range_vf"], ppo["policy_kwargs"]) == (None, 0.2, {"net_arch": [32]})


def test_unknown_hyperparameter_names_close_matches() -> None:
    with pytest.raises(
        InputError, match=r"CamalPPO takes no hyperparameter learning_rat \(did you mean learning_rate"
    ):
        check_algo_kwargs(CamalPPO, {"learning_rat": 1e-3})
    check_algo_kwargs(CamalDQN, {"buffer_size": 10, "exploration_fraction": 0.1})


def test_assignments_are_yaml_scalars() -> None:
    assert parse_assignments(["a=1e-4", "b=true", "c=[1, 2]", "d=x"], "--hp") == {
        "a": 1e-4,
        "b": True,
        "c": [1, 2],
        "d": "x",
    }


def test_json_round_trip() -> None:
    cfg = TrainConfig(env_kwargs=("frame_skip=4",), hp=("n_steps=64",), out=Path("x/y")).resolved()
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def test_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = tmp_path / "presets.py"
    presets.write_text(
        "from camal_rl.config import TrainConfig\n"
        "PRESETS = {'tiny': TrainConfig(steps=512, hp=('n_steps=64',)), 'other': 3}\n"
    )
    monkeypatch.setenv("CAMAL_RL_PRESETS", str(presets))
    cfg = from_preset("tiny", seed=2, hp=("batch_size=32",))
    assert (cfg.steps, cfg.seed, cfg.preset) == (512, 2, "tiny")
    assert cfg.hp == ("n_steps=64", "batch_size=32")
    assert get_preset("doorkey-ppo", TrainConfig).steps == 300_000  # packaged, beside the file's
    available = "breakout-ppo, doorkey-dqn, doorkey-ppo, lavacrossing-ppo, pong-ppo, tiny, vizdoom-basic-ppo"
    with pytest.raises(
        InputError, match=rf"unknown preset 'tinny' \(did you mean tiny\?\); available: {available}$"
    ):
        get_preset("tinny", TrainConfig)
    monkeypatch.setenv("CAMAL_RL_PRESETS", str(tmp_path / "missing.py"))
    with pytest.raises(InputError, match="no presets file"):
        get_preset("tiny", TrainConfig)


def test_repository_presets_resolve() -> None:
    from camal_rl.compare import SweepConfig
    from camal_rl.config import load_presets

    for name, preset in load_presets().items():
        if isinstance(preset, TrainConfig):
            assert dataclasses.replace(preset, preset=name).resolved().steps, name
        else:
            assert isinstance(preset, SweepConfig), name
            runs = preset.run_configs()
            assert len({run.run_dir for run in runs}) == len(runs), name  # no two runs share a folder
            for run in runs:
                run.resolved()


def test_packaged_presets_need_no_presets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed wheel: no experiments/presets.py anywhere, --preset doorkey-ppo still resolves."""
    from camal_rl.cli import parse
    from camal_rl.compare import SweepConfig

    monkeypatch.delenv("CAMAL_RL_PRESETS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "SOURCE_PRESETS", tmp_path / "experiments" / "presets.py")
    assert config.presets_file() is None
    _, cfg = parse(["train", "--preset", "doorkey-ppo", "--seed", "3"])
    assert (cfg.env, cfg.steps, cfg.n_envs, cfg.seed, cfg.preset) == (
        "MiniGrid-DoorKey-5x5-v0",
        300_000,
        8,
        3,
        "doorkey-ppo",
    )
    assert sorted(config.load_presets()) == [
        "breakout-ppo",
        "doorkey-dqn",
        "doorkey-ppo",
        "lavacrossing-ppo",
        "pong-ppo",
        "vizdoom-basic-ppo",
    ]
    with pytest.raises(
        InputError, match=r"unknown preset 'study-sanity'; available: none; the study's sweep presets"
    ):
        get_preset("study-sanity", SweepConfig)
    monkeypatch.setenv("CAMAL_RL_PRESETS", str(tmp_path / "missing.py"))  # a packaged name reads no file
    assert get_preset("doorkey-dqn", TrainConfig).algo == "dqn"


def test_a_presets_file_may_not_change_a_packaged_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    presets = tmp_path / "presets.py"
    presets.write_text(
        "from camal_rl.config import TrainConfig\n"
        "from camal_rl.presets import PRESETS as PACKAGED\n"
        "PRESETS = {**PACKAGED, 'doorkey-dqn': TrainConfig(algo='dqn', steps=5)}\n"
    )
    with pytest.raises(InputError, match=r"presets.py gives the packaged preset doorkey-dqn other settings"):
        config.load_presets(presets)


def test_repository_presets_ship_the_single_agents() -> None:
    from camal_rl.presets import PRESETS as PACKAGED
    from experiments.presets import PRESETS

    assert {name: PRESETS[name] for name in PACKAGED} == PACKAGED
    assert all(
        not isinstance(preset, TrainConfig) for name, preset in PRESETS.items() if name not in PACKAGED
    )


TUNING_COEF_COMMANDS = {
    "loss-tune-coef-doorkey-ppo": "--train-preset doorkey-ppo --steps 150000 --methods camal:3 camal:10",
    "loss-tune-coef-lava-ppo": "--envs MiniGrid-LavaCrossingS9N1-v0 --train-preset lavacrossing-ppo "
    "--methods camal camal:3 camal:10 energy",
}
TUNING_COEF_SHARED = "--seeds 100 101 --run-order seeds --episodes 10 --max-steps-scored 32"


@pytest.mark.parametrize("preset", sorted(TUNING_COEF_COMMANDS))
def test_the_second_tuning_rounds_presets_are_its_explicit_commands(preset: str) -> None:
    """experiments/camal_loss/TUNING-COEF.md: its runs train with the confirmatory runs' code
    (commit 0fcd8bd, older than these presets), from the explicit commands it gives; each trains
    and evaluates what its preset does."""
    from camal_rl.cli import parse

    out = "experiments/camal_loss/runs/" + ("tune-lava-ppo" if "lava" in preset else "tune-doorkey-ppo")
    explicit = f"compare {TUNING_COEF_COMMANDS[preset]} {TUNING_COEF_SHARED} --out {out}"
    _, named = parse(["compare", "--preset", preset])
    _, given = parse(explicit.split())
    assert named.run_configs() == given.run_configs()
    assert (named.evaluation, named.pairs, named.baseline) == (given.evaluation, given.pairs, given.baseline)
    assert [(r.label, r.seed) for r in named.run_configs()][:2] == (
        [("ppo-camal", 100), ("ppo-camal-c3", 100)]
        if "lava" in preset
        else [("ppo-camal-c3", 100), ("ppo-camal-c10", 100)]
    )
    assert {r.steps for r in named.run_configs()} == {500_000 if "lava" in preset else 150_000}
