"""Evaluation: rollouts on the image alone, per-step scores, metrics.json, model loading."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from camal_rl.adapters import ModuleScorer
from camal_rl.envs import make_masked_env
from camal_rl.errors import InputError, Terminated
from camal_rl.evaluation import (
    Episode,
    EvaluateConfig,
    collect_episodes,
    evaluate,
    format_metrics_table,
    quick_evaluation,
    score_steps,
    scored_indices,
)
from camal_rl.loading import load_agent
from camal_rl.options import with_options
from tests.conftest import DEVICE


class ImageOnlyAgent:
    """Acts 'forward' (2) and fails if it is shown anything but the image (as a bare array, which
    CAMAL agents and stock SB3 models trained on images both take)."""

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        assert isinstance(obs, np.ndarray)
        assert (obs.shape, obs.dtype) == ((56, 56, 3), np.uint8)
        return np.array(2), None


def test_collect_episodes_acts_on_the_image_alone() -> None:
    episodes = collect_episodes(
        ImageOnlyAgent(),  # type: ignore[arg-type]
        lambda: make_masked_env("MiniGrid-Empty-5x5-v0"),
        2,
        seed=0,
    )
    assert len(episodes) == 2
    # Empty-5x5: the agent starts at (1, 1) facing east; forward twice reaches (3, 1), then it
    # bumps into the wall until max_steps = 4 * 5 * 5 = 100 truncates the episode.
    assert [e.length for e in episodes] == [100, 100]
    assert episodes[0].images.shape == (100, 56, 56, 3)
    assert episodes[0].masks.shape == (100, 56, 56)
    assert (episodes[0].actions == 2).all()


def test_scored_indices_are_evenly_spaced() -> None:
    def episode(n: int) -> Episode:
        return Episode(np.zeros((n, 1, 1, 3)), np.zeros((n, 1, 1)), np.zeros(n), np.zeros(n))

    index, ids = scored_indices([episode(3), episode(9)], 4)
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 6, 8, 11])  # 3 + linspace(0, 8, 4) rounded
    np.testing.assert_array_equal(ids, [0, 0, 0, 1, 1, 1, 1])


class RedChannelNet(nn.Module):
    """One map: the red channel average-pooled to 2x2 (in [0, 1]); scores = [sum(map), 0], so
    d score_0 / d map = 1 and Grad-CAM of action 0 is the map itself."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = nn.functional.avg_pool2d(x[:, :1], 4)
        return torch.stack([maps.sum(dim=(1, 2, 3)), torch.zeros(len(x))], dim=1), maps


def test_score_steps_alignment_by_hand() -> None:
    images = np.zeros((3, 8, 8, 3), np.uint8)
    images[0, :4, :4, 0] = 255  # red in the top-left quadrant
    images[1, 4:, 4:, 0] = 255  # red bottom-right
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[:, :4, :4] = 1  # the object is top-left in all three
    scores = score_steps(ModuleScorer(RedChannelNet()), images, masks, np.zeros(3, int), faithfulness=False)
    # Grad-CAM = the 2x2 map of red (1 in one quadrant), upsampled bilinearly to 8x8 with
    # align_corners=False: along each axis the profile of a (1, 0) source is
    # [1, 1, 0.875, 0.625, 0.375, 0.125, 0, 0] (sum 4: 3.5 in the first half, 0.5 in the second).
    # The 2-D map is the outer product (energy 16); inside the top-left quadrant: 3.5^2 = 12.25
    # for sample 0 and 0.5^2 = 0.25 for sample 1, so EPG = 12.25 / 16 and 0.25 / 16.
    # Sample 2 has no red: its map is 0 everywhere, so Grad-CAM is flat (0), scored at chance
    # (|M| / HW = 16 / 64) and counted by flat_share.
    np.testing.assert_allclose(scores["epg"], [12.25 / 16, 0.25 / 16, 0.25])
    np.testing.assert_allclose(scores["pointing_game"], [1.0, 0.0, 0.25])
    np.testing.assert_array_equal(scores["flat_share"], [0.0, 0.0, 1.0])


def test_the_periodic_evaluation_counts_flat_maps_per_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Episode 0: two frames with red (a Grad-CAM map each) and two without (flat), episode 1:
    one without. flat_share = mean over episodes of the per-episode share = (0.5 + 1) / 2 = 0.75
    (0.6 over steps); the flat frames score EPG at chance (16 / 64), a red top-left one 12.25 / 16."""
    red, black = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    red[:4, :4, 0] = 255
    masks = np.zeros((5, 8, 8), np.uint8)
    masks[:, :4, :4] = 1
    episodes = [
        Episode(np.stack([red, black, red, black]), masks[:4], np.zeros(4, int), np.array([0.0, 0, 0, 1])),
        Episode(black[None], masks[:1], np.zeros(1, int), np.array([3.0])),
    ]
    monkeypatch.setattr("camal_rl.evaluation.collect_episodes", lambda *args, **kwargs: episodes)
    row = quick_evaluation(None, ModuleScorer(RedChannelNet()), gym.Env, episodes=2)  # type: ignore[arg-type]
    assert row["flat_share"] == pytest.approx(0.75)
    assert row["epg"] == pytest.approx(((12.25 / 16 + 0.25) / 2 + 0.25) / 2)
    assert (row["return_mean"], row["length_mean"], row["coverage"]) == (2.0, 2.5, 1.0)


def test_evaluate_writes_metrics(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "metrics.json"
    report = evaluate(
        with_options(
            EvaluateConfig(run=tiny_run, out=out),
            episodes=2,
            max_steps_scored=3,
            distractors=1,
            device=DEVICE,
        )
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(report, default=float))
    assert report["label"] == "ppo-camal"
    assert report["num_timesteps"] == 256
    assert set(report["variants"]) == {"train", "distractors"}
    train = report["variants"]["train"]
    assert train["episodes"] == 2
    assert train["steps_scored"] == 6
    assert set(train["saliency"]) == {"gradcam", "perturbation"}
    gradcam: dict[str, Any] = train["saliency"]["gradcam"]
    for name in ("epg", "iou", "pointing_game", "deletion_auc", "insertion_auc"):
        assert 0 <= gradcam[name]["mean"] <= 1 or np.isnan(gradcam[name]["mean"]), name
    assert "occlusion_kl_log_ratio" in gradcam
    assert 0 <= gradcam["flat_share"]["mean"] <= 1
    assert {"comprehensiveness@0.05", "sufficiency@0.5"} <= set(gradcam)
    assert set(train["behaviour"]) == {"behaviour_kl_mask", "behaviour_kl_outside", "behaviour_log_ratio"}
    assert report["variants"]["distractors"]["env_kwargs"]["distractors"] == 1
    assert "[train] return" in capsys.readouterr().out


@pytest.mark.parametrize(("signal_raised", "status"), [(KeyboardInterrupt, 130), (Terminated, 143)])
def test_an_interrupted_evaluation_says_so_and_leaves_the_metrics_as_they_were(
    tiny_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signal_raised: type[KeyboardInterrupt],
    status: int,
) -> None:
    """Ctrl-C (130) or SIGTERM (143) during the rollouts: the command says the evaluation did not
    finish and an earlier metrics file at --out is untouched."""
    from camal_rl import evaluation
    from camal_rl.cli import main

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise signal_raised

    out = tmp_path / "metrics.json"
    out.write_text('{"earlier": true}\n')
    monkeypatch.setattr(evaluation, "evaluate_model", interrupted)
    args = ["evaluate", str(tiny_run), "--episodes", "1", "--device", DEVICE, "--out", str(out)]
    assert main(args) == status
    assert f"interrupted: the evaluation did not finish; {out} not written" in capsys.readouterr().err
    assert out.read_text() == '{"earlier": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_metrics_table_columns_fit_long_method_names() -> None:
    def summary(mean: float) -> dict[str, float]:
        return {"mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1}

    report = {
        "label": "ppo-camal",
        "env": "E",
        "num_timesteps": 8,
        "variants": {
            "train": {
                "return": {"mean": 0.5, "iqm": 0.5, "ci_low": 0.0, "ci_high": 1.0},
                "success_rate": 0.5,
                "episodes": 2,
                "coverage": 1.0,
                "saliency": {
                    "gradcam": {"epg": summary(0.25), "flat_share": summary(0.82)},
                    "integrated_gradients": {"epg": summary(0.75), "flat_share": summary(0.05)},
                },
                "behaviour": {"behaviour_log_ratio": summary(1.5)},
            }
        },
    }
    lines = format_metrics_table(report).splitlines()
    assert lines[2] == "  metric                           gradcam  integrated_gradients"
    assert lines[3] == "  epg                         0.250 ±0.100          0.750 ±0.100"
    assert lines[5] == "  behaviour_log_ratio         1.500 ±0.100"
    assert len(lines[2]) == len(lines[3])
    # Grad-CAM's 82% of flat maps is noted (from 10%); integrated gradients' 5% is not.
    assert lines[6:] == [
        "  note: 82% of the gradcam maps are flat (no pixel above another): they score chance on "
        "alignment and say nothing of where the agent looks (docs/metrics.md)"
    ]


def test_dqn_faithfulness_reads_the_chosen_action_distribution(tiny_run: Path, tmp_path: Path) -> None:
    """Epsilon 1 makes the epsilon-greedy policy uniform whatever the image, so every faithfulness
    and behaviour number is known by hand: f = 1/7 on every point of every curve (deletion and
    insertion AUC 1/7, comprehensiveness and sufficiency 0), and both KLs 0, so the log ratios are
    log10((0 + eps) / (0 + eps)) = 0. softmax(Q) of the same network is not constant."""
    from camal_rl.config import TrainConfig
    from camal_rl.train import train

    run = tmp_path / "dqn"
    hp = ("learning_starts=64", "buffer_size=1000", "batch_size=16")
    train(TrainConfig(out=run, algo="dqn", steps=128, n_envs=2, hp=hp, eval_freq=0, progress_bar=False))

    def faithfulness(**settings: Any) -> tuple[str, dict[str, Any]]:
        cfg = with_options(EvaluateConfig(run=run), episodes=1, max_steps_scored=3, device=DEVICE, **settings)
        report = evaluate(dataclasses.replace(cfg, out=tmp_path / "metrics.json"))
        return report["faithfulness_policy"], report["variants"]["train"]

    name, uniform = faithfulness(q_policy="epsilon-greedy", q_epsilon=1.0)
    assert name == "epsilon-greedy(Q), epsilon 1"
    for method in ("gradcam", "perturbation"):
        metrics = uniform["saliency"][method]
        for metric, value in (
            ("deletion_auc", 1 / 7),
            ("insertion_auc", 1 / 7),
            ("occlusion_kl_log_ratio", 0.0),
        ):
            assert metrics[metric]["mean"] == pytest.approx(value, abs=1e-9), (method, metric)
        assert metrics["comprehensiveness@0.2"]["mean"] == pytest.approx(0.0, abs=1e-9)
        assert metrics["sufficiency@0.2"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert uniform["behaviour"]["behaviour_log_ratio"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert uniform["behaviour"]["behaviour_kl_mask"]["mean"] == pytest.approx(0.0, abs=1e-9)

    name, softmax = faithfulness()
    assert name == "softmax(Q)"  # the default, as docs/design.md defines f for DQN
    assert softmax["saliency"]["gradcam"]["deletion_auc"]["mean"] != pytest.approx(1 / 7, abs=1e-9)
    # alignment does not depend on the action distribution
    assert softmax["saliency"]["gradcam"]["epg"]["mean"] == uniform["saliency"]["gradcam"]["epg"]["mean"]

    ppo = evaluate(
        with_options(
            EvaluateConfig(run=tiny_run, out=tmp_path / "ppo.json"),
            episodes=1,
            max_steps_scored=2,
            q_policy="epsilon-greedy",
            device=DEVICE,
        )
    )
    assert ppo["faithfulness_policy"] == "pi(a|x)"  # a policy-gradient agent's own distribution


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"q_epsilon": 0.0}, r"--q-epsilon must be in \(0, 1\], got 0.0"),
        ({"q_epsilon": 1.5}, r"--q-epsilon must be in \(0, 1\], got 1.5"),
        ({"q_policy": "greedy"}, "--q-policy must be one of softmax, epsilon-greedy, got 'greedy'"),
        ({"episodes": 0}, "--episodes must be >= 1, got 0"),
        ({"max_steps_scored": 0}, "--max-steps-scored must be >= 1, got 0"),
        ({"distractors": -1}, r"--distractors must be >= 0 \(0: none\), got -1"),
        (
            {"saliency": ("gradcam", "ig", "iou")},
            "unknown saliency methods 'ig', 'iou'; choose one of: gradcam,",
        ),
    ],
)
def test_bad_evaluation_settings_fail_before_loading(
    settings: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=message):
        evaluate(with_options(EvaluateConfig(run=tmp_path / "no-such-run"), **settings))


def test_load_agent_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_agent(tmp_path / "missing")
    with pytest.raises(InputError, match="not a run directory"):
        load_agent(tmp_path)
    garbage = tmp_path / "model.zip"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read model zip"):
        load_agent(garbage)


def test_a_run_without_its_model_says_how_to_train_it_again(tiny_run: Path, tmp_path: Path) -> None:
    """A study's run folder on a fresh clone: the records are there, the model zips are not."""
    run = tmp_path / "records-only"
    run.mkdir()
    for name in ("config.json", "status.json"):
        (run / name).write_bytes((tiny_run / name).read_bytes())
    hint = rf"no saved model .*`camal-rl train --resume --out {run}` trains it again"
    with pytest.raises(InputError, match=hint):
        load_agent(run)


def test_bare_zip_needs_an_env(tiny_run: Path, tmp_path: Path) -> None:
    bare = tmp_path / "model.zip"  # outside its run: nothing says what it was trained on
    bare.write_bytes((tiny_run / "model.zip").read_bytes())
    with pytest.raises(InputError, match="pass --env"):
        load_agent(bare)
    agent = load_agent(bare, env="MiniGrid-DoorKey-5x5-v0", device=DEVICE)
    assert agent.algo == "ppo"
    assert (agent.run, agent.config, agent.describe()["num_timesteps"]) == (None, None, 256)
    assert isinstance(make_masked_env(agent.env_id), gym.Env)
    own = load_agent(tiny_run / "model.zip", device=DEVICE)  # in its run: the run's env and settings
    assert (own.env_id, own.checkpoint, own.metrics_path) == (
        "MiniGrid-DoorKey-5x5-v0",
        None,
        tiny_run / "metrics.json",
    )


def test_a_checkpoint_is_evaluated_with_its_run(tiny_run: Path, tmp_path: Path) -> None:
    """`evaluate RUN/checkpoints/step_N.zip` and `evaluate RUN --checkpoint N`: the run's env, no
    --env; the metrics beside the checkpoint, the run's metrics.json (its final model's) untouched."""
    from camal_rl.video import RecordConfig, default_out

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("metrics.json", "videos", ".lock"))
    checkpoint = run / "checkpoints" / "step_128.zip"
    agent = load_agent(checkpoint, device=DEVICE)
    assert (agent.env_id, agent.checkpoint, agent.describe()["num_timesteps"]) == (
        "MiniGrid-DoorKey-5x5-v0",
        128,
        128,
    )
    assert agent.describe()["run"] == str(run)
    assert default_out(RecordConfig(runs=(checkpoint,)), [agent], ["x"]) == (
        run / "checkpoints" / "videos" / "step_128_gradcam_seed1000000.mp4"
    )
    quick = {
        "episodes": 1,
        "saliency": ("gradcam",),
        "faithfulness": False,
        "max_steps_scored": 2,
        "device": DEVICE,
    }
    report = evaluate(with_options(EvaluateConfig(run=checkpoint), **quick))
    assert (report["model"], report["num_timesteps"]) == (str(checkpoint), 128)
    assert json.loads((run / "checkpoints" / "step_128.metrics.json").read_text())["num_timesteps"] == 128
    report = evaluate(with_options(EvaluateConfig(run=run), checkpoint=256, **quick))
    assert (report["model"], report["num_timesteps"]) == (str(run / "checkpoints" / "step_256.zip"), 256)
    assert (run / "checkpoints" / "step_256.metrics.json").exists()
    assert not (run / "metrics.json").exists()
    with pytest.raises(
        InputError, match=r"has no checkpoint at step 200 .*; its checkpoints are at steps 128, 256$"
    ):
        evaluate(with_options(EvaluateConfig(run=run), checkpoint=200))
    with pytest.raises(InputError, match="--checkpoint 128 takes a run directory"):
        evaluate(with_options(EvaluateConfig(run=checkpoint), checkpoint=128))
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(InputError, match=r"has no checkpoint at step 128 .*; it holds none"):
        evaluate(with_options(EvaluateConfig(run=run), checkpoint=128))


def test_stochastic_rollouts_are_sampled_and_seeded(tiny_run: Path, tmp_path: Path) -> None:
    """The 256-step agent's policy is far from deterministic: sampled actions differ from the
    greedy ones, and the same seed samples the same episodes again."""
    agent = load_agent(tiny_run, device=DEVICE)

    def make_env() -> gym.Env:
        return gym.wrappers.TimeLimit(make_masked_env("MiniGrid-DoorKey-5x5-v0"), 40)

    greedy = collect_episodes(agent.model, make_env, 2, seed=5)
    sampled = collect_episodes(agent.model, make_env, 2, seed=5, deterministic=False)
    again = collect_episodes(agent.model, make_env, 2, seed=5, deterministic=False)
    other = collect_episodes(agent.model, make_env, 2, seed=6, deterministic=False)
    assert [e.actions.tolist() for e in sampled] == [e.actions.tolist() for e in again]
    assert [e.actions.tolist() for e in sampled] != [e.actions.tolist() for e in greedy]
    assert sampled[0].actions.tolist() != other[0].actions.tolist()
    out = tmp_path / "sampled.json"
    cfg = with_options(
        EvaluateConfig(run=tiny_run, out=out),
        episodes=1,
        saliency=("gradcam",),
        faithfulness=False,
        max_steps_scored=2,
        stochastic=True,
        device=DEVICE,
    )
    report = evaluate(cfg)
    assert report["settings"]["stochastic"] is True
    assert "stochastic" not in EvaluateConfig(run=tiny_run).settings("ppo")
    assert format_metrics_table(report).splitlines()[0].endswith("actions sampled")


def test_a_returns_only_report_prints_its_returns() -> None:
    """Evaluated with no saliency method (returns only): the table has the return line alone."""
    summary = {"mean": 0.5, "iqm": 0.5, "ci_low": 0.25, "ci_high": 0.75}
    variant = {"return": summary, "success_rate": 0.5, "episodes": 2, "coverage": 1.0, "saliency": {}}
    report = {
        "label": "ppo-camal",
        "env": "MiniGrid-DoorKey-6x6-v0",
        "num_timesteps": 10,
        "variants": {"train": variant},
    }
    lines = format_metrics_table(report).splitlines()
    assert lines[1] == (
        "[train] return 0.500 (IQM 0.500, 95% CI 0.250..0.750), success 50%, 2 episodes, mask coverage 100%"
    )
    assert len(lines) == 2
