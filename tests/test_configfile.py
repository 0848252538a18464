"""Options from a YAML or JSON file (train --config): reading, checking, under a preset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from camal_rl.config import TrainConfig
from camal_rl.configfile import read_config_file, start_config
from camal_rl.errors import InputError


def test_config_files_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "small.yaml"
    yaml_file.write_text(
        "algo: dqn\nsteps: 512\ncoef: 1e-1\nhp: [learning_rate=1e-4]\nout: runs/elsewhere\nresume: true\n"
    )
    assert read_config_file(yaml_file) == {
        "algo": "dqn",
        "steps": 512,
        "coef": 0.1,
        "hp": ("learning_rate=1e-4",),
    }
    json_file = tmp_path / "small.json"
    json_file.write_text(
        '{"algo": "dqn", "steps": 512, "coef": 0.1, "hp": ["learning_rate=1e-4"], "overwrite": true}'
    )
    assert read_config_file(json_file) == read_config_file(yaml_file)
    cfg = start_config(TrainConfig, config=json_file)
    assert (cfg.algo, cfg.steps, cfg.coef, cfg.out, cfg.resume, cfg.overwrite) == (
        "dqn",
        512,
        0.1,
        None,
        False,
        False,
    )
    assert cfg.config == json_file


def test_a_config_file_under_its_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's preset is where its values start (a run's config.json repeats the preset's hp: they
    are not added twice); --preset on the command line comes first."""
    own = tmp_path / "own.yaml"
    own.write_text("preset: lavacrossing-ppo\nseed: 4\n")
    cfg = start_config(TrainConfig, config=own)
    assert (cfg.env, cfg.steps, cfg.seed, cfg.preset) == (
        "MiniGrid-LavaCrossingS9N1-v0",
        500_000,
        4,
        "lavacrossing-ppo",
    )
    assert start_config(TrainConfig, preset="doorkey-dqn", config=own).algo == "dqn"
    presets = tmp_path / "presets.py"
    presets.write_text(
        "from camal_rl.config import TrainConfig\nPRESETS = {'with-hp': TrainConfig(hp=('gamma=0.9',))}\n"
    )
    monkeypatch.setenv("CAMAL_RL_PRESETS", str(presets))
    own.write_text("preset: with-hp\nhp: [gamma=0.9, n_steps=64]\n")  # as a run's config.json records it
    assert start_config(TrainConfig, config=own).hp == ("gamma=0.9", "n_steps=64")
    own.write_text("preset: with-hp\nhp: [n_steps=64]\n")
    assert start_config(TrainConfig, config=own).hp == ("gamma=0.9", "n_steps=64")
    own.write_text("preset: mine\n")
    with pytest.raises(InputError, match=r"own.yaml names a preset: unknown preset 'mine'"):
        start_config(TrainConfig, config=own)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "sed: 3\nstpes: 10\nfoo: 1\n",
            "unknown keys 'foo', 'sed' (did you mean seed?), 'stpes' (did you mean steps?)",
        ),
        ("- seed\n- 3\n", "it is a list, not a mapping of options to values"),
        ("", "it is empty, not a mapping"),
        ("algo: sac\n", "algo: 'sac' is not a valid value (one of ppo, dqn)"),
        ("seed: [3\n", "while parsing a flow sequence"),
    ],
)
def test_bad_config_files(text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"^cannot read --config {path} \({re.escape(reason)}"):
        read_config_file(path)
    with pytest.raises(
        InputError, match=rf"^cannot read --config {path.with_name('missing.json')} \(No such file"
    ):
        read_config_file(path.with_name("missing.json"))
