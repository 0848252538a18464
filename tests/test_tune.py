"""camal-rl tune: the coefficient rule by hand on synthetic runs, its options, and a tiny sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from camal_rl.cli import main
from camal_rl.errors import InputError
from camal_rl.options import with_options
from camal_rl.statistics import load_results
from camal_rl.tune import TuneConfig, criterion_settings, same_settings, select_coefficients
from tests.synthetic_runs import metrics_report, write_run

EPISODES = 2


def variant(
    root: Path, method: str, coef: float | None, returns: list[float], epg: float, deletion: float = 0.5
) -> None:
    """One run per tuning seed (100, 101, ...), seed i with return ``returns[i]``."""
    for i, ret in enumerate(returns):
        saliency = {"gradcam": {"epg": [epg] * EPISODES, "deletion_auc": [deletion] * EPISODES}}
        metrics = metrics_report([ret] * EPISODES, saliency=saliency, method=method, seed=100 + i)
        write_run(root, method=method, coef=coef, seed=100 + i, metrics=metrics)


def test_rule_by_hand(tmp_path: Path) -> None:
    """Baseline returns 0.8 and 0.9: B = 0.85, floor = 0.85 - 0.05 x 0.85 = 0.8075."""
    variant(tmp_path, "none", None, [0.8, 0.9], epg=0.1)
    variant(tmp_path, "camal", 0.1, [0.85, 0.85], epg=0.5)
    variant(tmp_path, "camal", 1.0, [0.80, 0.82], epg=0.7)  # mean 0.81 >= 0.8075: qualifies, best EPG
    variant(tmp_path, "camal", 10.0, [0.80, 0.81], epg=0.9)  # mean 0.805 < 0.8075: out, despite its EPG
    variant(tmp_path, "energy", 0.1, [0.4, 0.4], epg=0.2)  # none qualifies: the highest return,
    variant(tmp_path, "energy", 1.0, [0.4, 0.4], epg=0.3)  # then among equal returns the best EPG
    variant(tmp_path, "energy", 10.0, [0.2, 0.2], epg=0.9)
    tuning = select_coefficients(load_results([tmp_path]))
    assert tuning.baseline_return == pytest.approx(0.85)
    assert tuning.floor == pytest.approx(0.8075)
    assert tuning.chosen == {"camal": 1.0, "energy": 1.0}
    assert tuning.by_return_alone == ("energy",)
    assert tuning.direction == "higher"
    rows = {(row.method, row.coef): row for row in tuning.rows}
    assert next(iter(rows)) == ("none", 0.0)  # the baseline's row first
    assert rows[("camal", 1.0)].mean_return == pytest.approx(0.81)
    assert [rows[("camal", c)].qualifies for c in (0.1, 1.0, 10.0)] == [True, True, False]
    assert [row.coef for row in tuning.rows if row.chosen] == [1.0, 1.0]
    # a criterion where lower is better: the lowest deletion AUC among the qualifying ones
    lower = select_coefficients(load_results([tmp_path]), "gradcam/deletion_auc")
    assert lower.direction == "lower"
    assert lower.chosen["camal"] == 0.1  # all three 0.5: a tie keeps the first, the smallest


def test_lower_is_better_and_tolerance(tmp_path: Path) -> None:
    variant(tmp_path, "none", None, [0.5, 0.5], epg=0.1)
    variant(tmp_path, "camal", 0.1, [0.5, 0.5], epg=0.5, deletion=0.6)
    variant(tmp_path, "camal", 1.0, [0.4, 0.4], epg=0.6, deletion=0.3)
    results = load_results([tmp_path])
    assert select_coefficients(results, "gradcam/deletion_auc").chosen == {"camal": 0.1}
    # tolerance 0.2: floor 0.4, so camal 1 qualifies and has the lower deletion AUC
    assert select_coefficients(results, "gradcam/deletion_auc", return_tolerance=0.2).chosen == {"camal": 1.0}


def test_negative_baseline_return_floor_lies_below_it(tmp_path: Path) -> None:
    """B = -100: floor = -100 - 0.05 x 100 = -105 (not 0.95 x B = -95, above the baseline)."""
    variant(tmp_path, "none", None, [-100.0], epg=0.1)
    variant(tmp_path, "camal", 1.0, [-104.0], epg=0.5)
    variant(tmp_path, "camal", 10.0, [-106.0], epg=0.9)
    tuning = select_coefficients(load_results([tmp_path]))
    assert tuning.floor == pytest.approx(-105.0)
    assert tuning.chosen == {"camal": 1.0}


def test_undefined_criterion_ranks_last_and_refusals(tmp_path: Path) -> None:
    variant(tmp_path, "none", None, [1.0], epg=0.1)
    variant(tmp_path, "camal", 1.0, [1.0], epg=math.nan)
    variant(tmp_path, "camal", 10.0, [1.0], epg=0.2)
    assert select_coefficients(load_results([tmp_path])).chosen == {"camal": 10.0}
    only_camal = [r for r in load_results([tmp_path]) if r.method == "camal"]
    with pytest.raises(InputError, match=r"no evaluated baseline \(none\) run"):
        select_coefficients(only_camal)
    only_baseline = [r for r in load_results([tmp_path]) if r.method == "none"]
    with pytest.raises(InputError, match="no evaluated run of a tuned method"):
        select_coefficients(only_baseline)


def test_criterion_settings() -> None:
    assert criterion_settings("gradcam/epg") == (("gradcam",), False)
    assert criterion_settings("perturbation/iou") == (("perturbation",), False)
    assert criterion_settings("integrated_gradients/deletion_auc") == (("integrated_gradients",), True)
    assert criterion_settings("return") == (("gradcam",), False)
    with pytest.raises(InputError, match="tune scores the training env only"):
        criterion_settings("distractors/return")
    for bad in ("gradcam/nope", "saliency/epg", "gradcam"):
        with pytest.raises(InputError, match="is not a metric tune can choose by"):
            criterion_settings(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"methods": ("none", "camal")}, "the baseline .none. is always trained"),
        ({"methods": ()}, "got nothing"),
        ({"coefs": ()}, "--coefs must be finite numbers > 0"),
        ({"coefs": (1.0, -0.1)}, "--coefs must be finite numbers > 0, got 1.0 -0.1"),
        ({"seeds": ()}, "at least one tuning seed"),
        ({"return_tolerance": 1.5}, r"--return-tolerance must lie in \[0, 1\]"),
        ({"criterion": "gradcam/nope"}, "not a metric tune can choose by"),
        ({"q_epsilon": 0.0}, r"--q-epsilon must be in \(0, 1\], got 0.0"),
    ],
)
def test_bad_options_fail_before_any_run(options: dict[str, object], message: str, tmp_path: Path) -> None:
    cfg = with_options(TuneConfig(out=tmp_path / "tune"), **options)
    with pytest.raises(InputError, match=message):
        cfg.check()
    assert main(["tune", *_flags(options), "--out", str(tmp_path / "tune")]) == 2
    assert not (tmp_path / "tune").exists()


def _flags(options: dict[str, object]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flags.append("--" + key.replace("_", "-"))
        flags += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    return flags


def test_sweep_holds_the_baseline_and_every_coefficient(tmp_path: Path) -> None:
    cfg = TuneConfig(methods=("camal", "energy"), coefs=(0.1, 1.0), criterion="perturbation/deletion_auc")
    sweep = cfg.sweep()
    assert sweep.methods == ("none", "camal:0.1", "camal:1", "energy:0.1", "energy:1")
    assert (sweep.seeds, sweep.run_order) == ((100, 101), "seeds")
    assert (sweep.evaluation.saliency, sweep.evaluation.faithfulness) == (("perturbation",), True)
    assert (sweep.evaluation.episodes, sweep.evaluation.max_steps_scored) == (10, 32)  # tune's defaults
    extra = with_options(cfg, saliency=("gradcam", "perturbation"), faithfulness=False).sweep()
    assert (extra.evaluation.saliency, extra.evaluation.faithfulness) == (("perturbation", "gradcam"), True)
    assert [run.label for run in sweep.run_configs()[:5]] == [
        "ppo-none",
        "ppo-camal-c0.1",
        "ppo-camal",
        "ppo-energy-c0.1",
        "ppo-energy",
    ]


def test_a_dqn_faithfulness_criterion_can_read_the_epsilon_greedy_policy() -> None:
    """softmax(Q) is near uniform at MiniGrid's reward scale; the study's DQN cell read the
    epsilon-greedy policy. The option reaches every run's evaluation and the suggested command."""
    cfg = with_options(
        TuneConfig(algo="dqn", criterion="gradcam/deletion_auc"), q_policy="epsilon-greedy", q_epsilon=0.1
    )
    evaluation = cfg.sweep().evaluate_config(Path("run")).evaluation
    assert (evaluation.q_policy, evaluation.q_epsilon) == ("epsilon-greedy", 0.1)
    assert evaluation.faithfulness
    assert same_settings(cfg) == ["--q-policy epsilon-greedy --q-epsilon 0.1"]
    assert same_settings(with_options(TuneConfig(), q_policy="epsilon-greedy")) == []  # PPO: no Q-policy
    quoted = same_settings(
        with_options(TuneConfig(), hp=("policy_kwargs=dict(net_arch=[64, 64])", "gamma=0.9"))
    )
    assert quoted == ["--hp 'policy_kwargs=dict(net_arch=[64, 64])' gamma=0.9"]  # as a shell reads it
    tuned = with_options(TuneConfig(), steps=150_000, reward_scale=0.5, train_preset="study-doorkey-ppo")
    assert same_settings(tuned) == [
        "--steps 150000",
        "--train-preset study-doorkey-ppo",
        "--reward-scale 0.5",
    ]


def test_tune_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three tiny runs on the toy env, then the rule on their metrics; a partial sweep chooses nothing."""
    out = tmp_path / "tune"
    args = ["tune", "--env", "tests.toy_envs:camal_tests/FindObject-v0", "--coefs", "0.1", "1"]
    args += ["--seeds", "100", "--steps", "128", "--episodes", "2", "--out", str(out), "--workers", "1"]
    args += ["--hp", "n_steps=32", "batch_size=64", "n_epochs=1"]
    assert main([*args, "--select-only"]) == 2
    assert f"--select-only: {out} holds none of this sweep's 3 runs" in capsys.readouterr().err
    assert not out.exists()
    (out / "camal_tests-FindObject-v0" / "ppo-none" / "seed100").mkdir(parents=True)  # started, no more
    assert main([*args, "--select-only"]) == 2
    assert "3 of 3 tuning runs are not complete" in capsys.readouterr().err
    assert main(args) == 0
    saved = json.loads((out / "tuning.json").read_text())
    again = select_coefficients(load_results([out]))
    assert saved["chosen"] == again.chosen
    assert [row["coef"] for row in saved["rows"]] == [0.0, 0.1, 1.0]
    assert saved["floor"] == pytest.approx(0.95 * saved["baseline_return"])  # toy returns are >= 0
    text = (out / "tuning.md").read_text()
    assert "| none | - | 1 |" in text
    assert f"Chosen: camal {again.chosen['camal']:g}." in text
    assert text.rstrip().endswith(  # fresh seeds trained as the tuning runs were
        "--seeds 0 1 2 3 4 --steps 128 --hp n_steps=32 batch_size=64 n_epochs=1`."
    )
    assert (out / "comparison.md").exists()
