"""The settings evaluate, record, compare and tune share: one definition each, the same flags on
every command, each command's own defaults, and the old spellings refused by name."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pytest

from camal_rl.cli import COMMANDS, main, parse
from camal_rl.evaluation import EvaluateConfig
from camal_rl.options import option_fields
from camal_rl.settings import EVAL_SEED, AgentSettings, EvaluationSettings, RolloutSettings
from camal_rl.sweep import ExecutionSettings, SweepConfig, TrainingSettings
from camal_rl.tune import TuneConfig
from camal_rl.video import RecordConfig

CONFIGS = {"evaluate": EvaluateConfig, "record": RecordConfig, "compare": SweepConfig, "tune": TuneConfig}


DIFFERENT = {
    "out": "each command's own output",
    "device": "one agent's (auto) or every run of a sweep's, in training and evaluation (cpu)",
    "env": "the env a loaded agent plays instead of its run's, or the env tune trains on",
    "algo": "compare's is ignored when a preset gives cells",
    "methods": "attention losses: compare's variants METHOD[:COEF], tune's losses to tune",
    "seeds": "compare's seeds of every variant, tune's tuning seeds",
}
"""Options of one name that two of evaluate, record, compare and tune define apart, and why."""


def defined_in(kind: type, name: str) -> type:
    """The dataclass whose own field is option ``name`` of config class ``kind``."""
    *nested, field = option_fields(kind)[name]
    for part in nested:
        hint = get_type_hints(kind, include_extras=True)[part]
        kind = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    return next(base for base in kind.__mro__ if field in getattr(base, "__annotations__", {}))


def test_each_option_is_defined_once() -> None:
    """An option two commands share comes from the one class that defines it (their settings),
    with the defaults of each command (:data:`DIFFERENT` lists the names that mean other things)."""
    for (a, first), (b, second) in itertools.combinations(CONFIGS.items(), 2):
        shared = set(option_fields(first)) & set(option_fields(second))
        apart = {name for name in shared if defined_in(first, name) is not defined_in(second, name)}
        assert apart <= set(DIFFERENT), (a, b, apart - set(DIFFERENT))
    assert defined_in(SweepConfig, "saliency") is defined_in(RecordConfig, "saliency") is RolloutSettings
    assert defined_in(TuneConfig, "q_policy") is defined_in(EvaluateConfig, "q_policy") is EvaluationSettings
    assert defined_in(TuneConfig, "workers") is defined_in(SweepConfig, "workers") is ExecutionSettings
    assert defined_in(TuneConfig, "hp") is defined_in(SweepConfig, "hp") is TrainingSettings
    assert defined_in(RecordConfig, "checkpoint") is defined_in(EvaluateConfig, "checkpoint") is AgentSettings


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["evaluate", "RUN", "--episodes", "3", "--saliency", "gradcam", "--max-steps-scored", "7"],
            {"episodes": 3, "saliency": ("gradcam",), "max_steps_scored": 7, "faithfulness": True},
        ),
        (
            ["evaluate", "RUN", "--seed", "5", "--checkpoint", "128", "--no-faithfulness", "--saliency"],
            {"seed": 5, "checkpoint": 128, "faithfulness": False, "saliency": ()},
        ),
        (
            ["record", "R1", "R2", "--episodes", "2", "--saliency", "gradcam", "perturbation"],
            {"episodes": 2, "saliency": ("gradcam", "perturbation"), "checkpoint": None},
        ),
        (
            ["record", "RUN", "--checkpoint", "256", "--distractors", "1", "--stochastic", "--fps", "3"],
            {"checkpoint": 256, "distractors": 1, "stochastic": True, "fps": 3},
        ),
        (
            ["compare", "--episodes", "4", "--saliency", "gradcam", "--workers", "3", "--steps", "512"],
            {"episodes": 4, "saliency": ("gradcam",), "workers": 3, "steps": 512, "max_steps_scored": 32},
        ),
        (
            ["compare", "--q-policy", "epsilon-greedy", "--q-epsilon", "0.1", "--hp", "gamma=0.9"],
            {"q_policy": "epsilon-greedy", "q_epsilon": 0.1, "hp": ("gamma=0.9",), "device": "cpu"},
        ),
        (
            ["tune", "--episodes", "5", "--max-runs", "2", "--reward-scale", "0.5", "--device", "cuda"],
            {"episodes": 5, "max_runs": 2, "reward_scale": 0.5, "device": "cuda", "saliency": ()},
        ),
    ],
)
def test_nested_settings_parse_from_the_command_line_with_their_flags(
    argv: list[str], expected: dict[str, Any]
) -> None:
    _, cfg = parse(argv)
    fields = option_fields(type(cfg))
    got = {}
    for name in expected:
        value = cfg
        for part in fields[name]:
            value = getattr(value, part)
        got[name] = value
    assert got == expected


def test_each_command_keeps_its_defaults() -> None:
    """One definition, each command's defaults: evaluate scores 20 episodes x 64 steps, a sweep 20 x
    32, tune 10 x 32 with its criterion's method alone; record plays 3 episodes with Grad-CAM."""
    evaluate, compare, tune = (
        EvaluateConfig(Path("r")).evaluation,
        SweepConfig().evaluation,
        TuneConfig().evaluation,
    )
    assert (evaluate.episodes, evaluate.max_steps_scored, evaluate.saliency) == (
        20,
        64,
        ("gradcam", "perturbation"),
    )
    assert (compare.episodes, compare.max_steps_scored, compare.saliency) == (
        20,
        32,
        ("gradcam", "perturbation"),
    )
    assert (tune.episodes, tune.max_steps_scored, tune.saliency, tune.faithfulness) == (10, 32, (), False)
    record = RecordConfig(runs=(Path("r"),))
    assert (record.rollouts.episodes, record.rollouts.saliency, record.agent.seed) == (
        3,
        ("gradcam",),
        EVAL_SEED,
    )
    assert SweepConfig().evaluate_config(Path("r")).agent.device == "cpu"  # the sweep's device


def test_metrics_json_records_the_settings_under_their_old_keys() -> None:
    """metrics.json keeps the keys it always had ("methods" for the saliency methods), so a sweep
    does not evaluate its runs again for a renamed option."""
    settings = EvaluateConfig(Path("r"), agent=AgentSettings(seed=7)).settings("dqn")
    assert settings == {
        "episodes": 20,
        "seed": 7,
        "distractors": 0,
        "methods": ["gradcam", "perturbation"],
        "faithfulness": True,
        "max_steps_scored": 64,
        "q_policy": "softmax",
    }


def test_presets_evaluate_as_their_committed_runs_were() -> None:
    """Every committed run of a sweep preset whose metrics.json records its settings is evaluated
    as the preset asks: none is evaluated again for this layout of the options."""
    from camal_rl.config import load_presets
    from camal_rl.rundir import RunDir

    checked = 0
    for preset in load_presets().values():
        if not isinstance(preset, SweepConfig):
            continue
        for run, evaluation in preset.jobs():
            metrics = run.run_dir / "metrics.json"
            if metrics.exists() and "settings" in json.loads(metrics.read_text()):
                checked += 1
                assert RunDir(run.run_dir).needs(run, evaluation.settings(run.algo)).evaluation_changes == {}
    if not checked:
        pytest.skip("no committed sweep run records its evaluation settings here")


@pytest.mark.parametrize(
    ("argv", "old"),
    [
        (["evaluate", "RUN", "--methods", "gradcam"], "--methods"),
        (["evaluate", "RUN", "--method", "gradcam"], "--method"),
        (["record", "RUN", "--method", "gradcam"], "--method"),
        (["record", "RUN", "--method=perturbation"], "--method"),
        (["record", "RUN", "--episodes", "1", "--methods", "gradcam"], "--methods"),
    ],
)
def test_old_spellings_name_the_new_one(
    argv: list[str], old: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"camal-rl: error: camal-rl {argv[0]} takes its saliency methods as --saliency, not {old} "
        "(--method and --methods name attention losses, in train, compare and tune)\n"
    )


def test_help_names_saliency_methods_saliency_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("evaluate", "record", "compare", "tune"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--saliency" in text, command
        assert ("--methods" in text) == (command in ("compare", "tune")), command  # attention losses
    assert set(CONFIGS) <= set(COMMANDS)
