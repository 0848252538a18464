"""Options from a YAML or JSON file (train --config, compare --config): reading, checking, under a
preset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from camal_rl.config import TrainConfig
from camal_rl.configfile import read_config_file, start_config
from camal_rl.errors import InputError
from camal_rl.sweep import SweepConfig


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
    ("kind", "text", "reason"),
    [
        (
            TrainConfig,
            "sed: 3\nstpes: 10\nfoo: 1\n",
            "unknown keys 'foo', 'sed' (did you mean seed?), 'stpes' (did you mean steps?)",
        ),
        (TrainConfig, "- seed\n- 3\n", "it is a list, not a mapping of options to values"),
        (TrainConfig, "", "it is empty, not a mapping"),
        (TrainConfig, "algo: sac\n", "algo: 'sac' is not a valid value (one of ppo, dqn)"),
        (TrainConfig, "seed: [3\n", "while parsing a flow sequence"),
        (SweepConfig, "episdoes: 3\n", "unknown key 'episdoes' (did you mean episodes?)"),
        (SweepConfig, "cells: [{sed: 3}]\n", "cells[0]: unknown key 'sed' (did you mean seed?)"),
        (
            SweepConfig,
            "cells: [{algo: sac}]\n",
            "cells[0]: algo: 'sac' is not a valid value (one of ppo, dqn)",
        ),
        (SweepConfig, "cells: [3]\n", "cells: [3] is not a valid value"),
        (
            SweepConfig,
            "q_policy: greedy\n",
            "q_policy: 'greedy' is not a valid value (one of softmax, epsilon-greedy)",
        ),
    ],
)
def test_bad_config_files(kind: type, text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"^cannot read --config {path} \({re.escape(reason)}"):
        read_config_file(path, kind)
    with pytest.raises(
        InputError, match=rf"^cannot read --config {path.with_name('missing.json')} \(No such file"
    ):
        read_config_file(path.with_name("missing.json"), kind)


def test_a_sweep_file_for_compare(tmp_path: Path) -> None:
    """compare --config: the sweep's options by their command-line names, its cells as run configs
    (a run's config.json is one), its out read (a sweep file names its folder)."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "methods: [none, camal:0.5]\nseeds: [3]\nepisodes: 2\nsaliency: [gradcam]\nworkers: 1\n"
        "out: sweeps/x\nhp: [gamma=0.9]\n"
        "cells:\n  - {env: MiniGrid-Empty-5x5-v0, steps: 128, hp: [n_steps=64]}\n"
    )
    values = read_config_file(path, SweepConfig)
    assert values["cells"] == (TrainConfig(env="MiniGrid-Empty-5x5-v0", steps=128, hp=("n_steps=64",)),)
    assert (values["out"], values["episodes"], values["seeds"]) == (Path("sweeps/x"), 2, (3,))
    cfg = start_config(SweepConfig, config=path)
    assert (cfg.config, cfg.evaluation.episodes, cfg.evaluation.saliency) == (path, 2, ("gradcam",))
    assert cfg.evaluation.max_steps_scored == 32  # a sweep's default, not in the file
    assert (cfg.execution.workers, cfg.training.hp) == (1, ("gamma=0.9",))
    runs = cfg.run_configs()
    assert [(run.label, run.seed, run.steps, run.hp) for run in runs] == [
        ("ppo-none", 3, 128, ("n_steps=64", "gamma=0.9")),  # the cell's hp, then the sweep's
        ("ppo-camal-c0.5", 3, 128, ("n_steps=64", "gamma=0.9")),
    ]
    assert runs[0].run_dir == Path("sweeps/x/MiniGrid-Empty-5x5-v0/ppo-none/seed3")
    under = start_config(SweepConfig, preset="study-doorkey-dqn", config=path)
    assert (under.evaluation.q_policy, under.evaluation.episodes, under.preset) == (
        "epsilon-greedy",  # the preset's
        2,  # the file's, over the preset's 20
        "study-doorkey-dqn",
    )
