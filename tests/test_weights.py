"""A run's policy as weights alone (camal_rl.weights): export, size, and evaluate / record without
the model zip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from camal_rl.agents import CamalDQN
from camal_rl.cli import main
from camal_rl.config import Algo, Method, TrainConfig
from camal_rl.errors import InputError
from camal_rl.loading import algorithm_classes, load_agent
from camal_rl.train import env_factory, new_model, train
from camal_rl.weights import WEIGHTS_FILE, read_weights, write_weights
from tests.conftest import DEVICE, TINY_PPO_HP

TINY_HP = {"ppo": TINY_PPO_HP, "dqn": ("learning_starts=64", "buffer_size=1000", "batch_size=16")}
EVALUATE = ["--episodes", "1", "--max-steps-scored", "3", "--device", DEVICE]
METRIC_ATOL = 1e-2
"""How far float16 weights may move an attention metric of ``evaluate``. Rounding a weight to
float16 moves it by at most 2^-11 of itself, and the export checks that no logit or Q-value moved by
more than 1e-3 of the largest. Metrics smooth in the scores and maps move by about as much: over
every metric (mean, IQM, CI bounds) of the 7 DoorKey PPO tuning agents evaluated as the study does
(10 episodes, 32 steps scored), the weights gave returns identical to the zips' and metrics within
5.6e-3 of their metrics.json (a CI bound of an occlusion KL log ratio of 1.3; means within 2.9e-3);
the tiny agents here: within 1e-3. Those that rank cells (IoU of the top-k cells, ROC AUC) move by
a step when a near tie swaps two cells (1e-3 on the tiny DQN agent's IoU). 1e-2 holds all of these."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny PPO-camal and DQN-energy run (256 steps on DoorKey-5x5), read-only: copy to change."""
    sweep = tmp_path_factory.mktemp("weights")
    runs: dict[str, Path] = {}
    agents: tuple[tuple[Algo, Method], ...] = (("ppo", "camal"), ("dqn", "energy"))
    for algo, method in agents:
        cfg = TrainConfig(
            algo=algo,
            method=method,
            steps=256,
            n_envs=2,
            hp=TINY_HP[algo],
            eval_freq=0,
            checkpoint_freq=0,
            progress_bar=False,
            device=DEVICE,
            out=sweep / algo,
        )
        runs[algo] = train(cfg, argv=["camal-rl", "train", "(fixture)"]).path
    return runs


def copy_runs(trained: dict[str, Path], into: Path) -> dict[str, Path]:
    return {algo: Path(shutil.copytree(path, into / algo)) for algo, path in trained.items()}


def numbers(report: dict[str, Any]) -> dict[str, Any]:
    """A metrics.json's results, without what names the file or times the evaluation."""
    return {k: v for k, v in report.items() if k not in ("model", "weights", "evaluation_seconds")}


def flat(tree: Any, path: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in flat(value, f"{path}/{key}").items()}
    return {path: tree}


def test_a_sweep_exports_and_evaluates_and_records_without_its_zips(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = copy_runs(trained, tmp_path / "sweep")
    for algo, run in runs.items():
        assert main(["evaluate", str(run), *EVALUATE, "--out", str(tmp_path / f"{algo}-zip.json")]) == 0
    capsys.readouterr()

    assert main(["export-weights", str(tmp_path / "sweep")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in printed] == [
        f"wrote {runs[a] / WEIGHTS_FILE}" for a in ("dqn", "ppo")
    ]
    for line, algo in zip(printed, ("dqn", "ppo"), strict=True):
        size = (runs[algo] / WEIGHTS_FILE).stat().st_size
        assert f"({size / 1e6:.3f} MB, float16: greedy actions identical on 256 observations" in line

    for algo, run in runs.items():
        (run / "model.zip").unlink()
        out = tmp_path / f"{algo}-weights.json"
        assert main(["evaluate", str(run), *EVALUATE, "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert (
            f"loaded {run / WEIGHTS_FILE}: the policy's weights alone (float16, from model.zip at 256 "
            "steps), not a trainable model (no optimizer state)"
        ) in said
        from_zip = numbers(json.loads((tmp_path / f"{algo}-zip.json").read_text()))
        from_weights = json.loads(out.read_text())
        assert (from_weights["model"], from_weights["weights"]) == (str(run / WEIGHTS_FILE), "float16")
        from_weights = numbers(from_weights)
        zip_train, weights_train = from_zip["variants"].pop("train"), from_weights["variants"].pop("train")
        assert from_weights == from_zip  # identity: algo, method, seed, num_timesteps, settings
        saliency_zip, saliency_weights = flat(zip_train.pop("saliency")), flat(weights_train.pop("saliency"))
        behaviour_zip, behaviour_weights = (
            flat(zip_train.pop("behaviour")),
            flat(weights_train.pop("behaviour")),
        )
        assert weights_train == zip_train  # returns, lengths, per-episode returns, success, steps scored
        assert saliency_weights.keys() == saliency_zip.keys()
        assert behaviour_weights.keys() == behaviour_zip.keys()
        for name, value in {**saliency_zip, **behaviour_zip}.items():
            got = {**saliency_weights, **behaviour_weights}[name]
            assert got == pytest.approx(value, abs=METRIC_ATOL, nan_ok=True), name

        video = tmp_path / f"{algo}.mp4"
        argv = ["record", str(run), "--episodes", "1", "--max-steps", "3", "--device", DEVICE]
        assert main([*argv, "--out", str(video)]) == 0
        assert video.stat().st_size > 0
        assert capsys.readouterr().out.startswith(f"loaded {run / WEIGHTS_FILE}: the policy's weights alone")

    # the zips are gone: exporting again keeps the weights
    assert main(["export-weights", str(runs["ppo"])]) == 0
    assert capsys.readouterr().out.startswith(
        f"kept {runs['ppo'] / WEIGHTS_FILE}: the run holds no model zip"
    )


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_float32_weights_restore_the_policy_exactly(
    trained: dict[str, Path], tmp_path: Path, algo: str
) -> None:
    run = copy_runs(trained, tmp_path)[algo]
    zipped = load_agent(run, device=DEVICE)
    assert main(["export-weights", str(run), "--dtype", "float32"]) == 0
    agent = load_agent(run / WEIGHTS_FILE, device=DEVICE)  # the weights, though the zip is there
    assert (agent.model_path, agent.weights_dtype, agent.algo) == (run / WEIGHTS_FILE, "float32", algo)
    assert type(agent.model) is type(zipped.model)
    expected, got = zipped.model.policy.state_dict(), agent.model.policy.state_dict()
    assert got.keys() == expected.keys()
    policy = agent.model.policy
    if algo == "ppo":  # 16 aliases: the shared CNN's 8 tensors under pi_ and vf_features_extractor
        assert len(read_weights(run / WEIGHTS_FILE).aliases) == 16
        assert policy.pi_features_extractor is policy.features_extractor is policy.vf_features_extractor
        assert all(torch.equal(got[name], expected[name]) for name in expected)
    else:  # the target network is rebuilt as a copy of the online one
        assert read_weights(run / WEIGHTS_FILE).omitted == {"q_net_target.": "q_net."}
        for name in expected:
            source = name.replace("q_net_target.", "q_net.", 1)
            assert torch.equal(got[name], expected[source]), name
        assert isinstance(agent.model, CamalDQN)
        assert isinstance(zipped.model, CamalDQN)
        assert agent.model.exploration_rate == zipped.model.exploration_rate > 0
    assert agent.model.num_timesteps == zipped.model.num_timesteps == 256


@pytest.mark.filterwarnings("ignore:You have specified a mini-batch size")  # 1 env, not trained
@pytest.mark.parametrize(("algo", "params"), [("ppo", 488_488), ("dqn", 476_007)])
def test_a_doorkey_agent_weighs_under_1_mb(tmp_path: Path, algo: Algo, params: int) -> None:
    """The study's MiniGrid network (56x56 images, 7 actions), untrained: 2 bytes a distinct
    parameter in float16, plus a few kB of names and metadata."""
    cfg = TrainConfig(algo=algo, env="MiniGrid-DoorKey-5x5-v0", device=DEVICE).resolved()
    model = new_model(cfg, algorithm_classes()[algo], env_factory(cfg)())
    path = tmp_path / WEIGHTS_FILE
    exported = write_weights(model, path, env_factory(cfg), dtype="float16")
    saved = read_weights(path)
    assert sum(t.numel() for t in saved.tensors.values()) == params
    assert all(t.dtype == torch.float16 for t in saved.tensors.values())
    assert 2 * params < exported.size == path.stat().st_size < 2 * params + 10_000 < 1_000_000


def test_a_run_with_neither_zip_nor_weights_is_one_message(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_runs(trained, tmp_path)["ppo"]
    (run / "model.zip").unlink()
    said = {}
    for command in ("evaluate", "record", "export-weights"):
        assert main([command, str(run)]) == 2
        said[command] = capsys.readouterr().err
        assert said[command].count("\n") == 1, said[command]
        assert "Traceback" not in said[command]
    missing = f"{run} holds no saved model (model.zip or checkpoints/step_*.zip) and no {WEIGHTS_FILE}"
    assert missing in said["evaluate"]
    assert missing in said["record"]
    assert f"{run} holds no model zip to export" in said["export-weights"]

    (run / WEIGHTS_FILE).write_bytes(b"not a torch file")
    assert main(["evaluate", str(run)]) == 2
    assert f"cannot read {run / WEIGHTS_FILE} as policy weights" in capsys.readouterr().err
    torch.save({"format": "something else"}, run / WEIGHTS_FILE)
    assert main(["evaluate", str(run)]) == 2
    assert "is not a camal-rl policy weights file" in capsys.readouterr().err
    outside = tmp_path / "elsewhere" / WEIGHTS_FILE
    outside.parent.mkdir()
    shutil.copy(run / WEIGHTS_FILE, outside)
    assert main(["evaluate", str(outside)]) == 2
    assert "is a weights file outside its run directory" in capsys.readouterr().err


def test_weights_that_do_not_fit_the_runs_config_are_refused(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    runs = copy_runs(trained, tmp_path)
    assert main(["export-weights", str(runs["dqn"])]) == 0
    shutil.copy(runs["dqn"] / WEIGHTS_FILE, runs["ppo"] / WEIGHTS_FILE)
    with pytest.raises(InputError, match="holds dqn weights, the config says ppo"):
        load_agent(runs["ppo"] / WEIGHTS_FILE)
    config = json.loads((runs["dqn"] / "config.json").read_text())
    config["algo_kwargs"]["policy_kwargs"] = {"net_arch": [32]}
    (runs["dqn"] / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InputError,
        match=r"does not fit the dqn agent its run's config\.json builds "
        r"\(it has weights for no parameter: q_net\.q_net\.4",
    ):
        load_agent(runs["dqn"] / WEIGHTS_FILE)
