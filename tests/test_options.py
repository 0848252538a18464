"""Options by name across nested settings classes, and their values read from JSON."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from camal_rl.config import TrainConfig
from camal_rl.options import check_json_values, get_option, json_field_values, option_fields, with_options
from camal_rl.sweep import SweepConfig


def test_options_of_nested_settings_go_by_their_own_names() -> None:
    assert option_fields(SweepConfig)["episodes"] == ("evaluation", "episodes")
    assert option_fields(SweepConfig)["workers"] == ("execution", "workers")
    assert option_fields(TrainConfig)["seed"] == ("seed",)
    cfg = with_options(SweepConfig(), episodes=3, workers=5, methods=("none",), hp=("gamma=0.9",))
    assert (cfg.evaluation.episodes, cfg.execution.workers, cfg.methods) == (3, 5, ("none",))
    assert (get_option(cfg, "hp"), get_option(cfg, "max_steps_scored")) == (("gamma=0.9",), 32)
    assert cfg.evaluation.saliency == SweepConfig().evaluation.saliency  # the others untouched
    with pytest.raises(TypeError, match="SweepConfig has no option episdoes"):
        with_options(cfg, episdoes=3)


def test_json_values_become_the_options_types() -> None:
    data = {"out": "runs/x", "seeds": [0, 1], "reward_scale": 1, "q_epsilon": 0.1, "unknown": [1]}
    assert json_field_values(data, SweepConfig) == {
        "out": Path("runs/x"),
        "seeds": (0, 1),
        "reward_scale": 1,
        "q_epsilon": 0.1,
        "unknown": [1],  # not an option: let be
    }
    check_json_values(data, SweepConfig)
    for bad, message in (
        ({"episodes": "ten"}, "episodes: 'ten' is not a valid value"),
        ({"q_policy": "greedy"}, "q_policy: 'greedy' is not a valid value (one of softmax, epsilon-greedy)"),
        ({"seeds": [0, "1"]}, "seeds: [0, '1'] is not a valid value"),
        ({"faithfulness": 1}, "faithfulness: 1 is not a valid value"),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check_json_values(bad, SweepConfig)
