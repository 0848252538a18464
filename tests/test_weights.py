"""A run's policy as weights alone (camal_rl.weights): export, size, and evaluate / record without
the model zip."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

import camal_rl.weights
import camal_rl.weights_encoding
from camal_rl.agents import CamalDQN
from camal_rl.cli import main
from camal_rl.config import Algo, Method, TrainConfig
from camal_rl.errors import InputError
from camal_rl.export import reencode_weights
from camal_rl.loading import algorithm_classes, load_agent
from camal_rl.train import env_factory, new_model, train
from camal_rl.weights import (
    FORMAT,
    WEIGHTS_FILE,
    Dtype,
    distinct_tensors,
    read_weights,
    write_weights,
)
from camal_rl.weights_check import check_images
from camal_rl.weights_encoding import INT10_MIN_ENTRIES
from tests.conftest import DEVICE, TINY_PPO_HP

TINY_HP = {"ppo": TINY_PPO_HP, "dqn": ("learning_starts=64", "buffer_size=1000", "batch_size=16")}
EVALUATE = ["--episodes", "1", "--max-steps-scored", "3", "--device", DEVICE]
ENCODED = {"ppo": "float16", "dqn": "int10"}
"""How ``export-weights`` stores the tiny agents: int10 moves the PPO agent's Grad-CAM maps by 1.1e-2
of their mean and one by 9.4e-2 of the largest (a tiny agent's maps hang on units of the linear
layer whose input to the ReLU is near 0), so float16; the DQN agent's maps are all 0, and its
Q-values move by next to nothing, so int10."""
METRIC_ATOL = 1e-2
"""How far weights stored in float16 or int10 may move an attention metric of ``evaluate``. The export
checks that no logit or Q-value moved by more than 1e-3 of the largest and the Grad-CAM maps by 1e-2
of their mean. Metrics smooth in the scores and maps move by about as much: over every metric
(mean, IQM, CI bounds) of the 7 DoorKey PPO tuning agents evaluated as the study does (10 episodes,
32 steps scored), float16 weights gave returns identical to the zips' and metrics within 5.6e-3 of
their metrics.json (a CI bound of an occlusion KL log ratio of 1.3; means within 2.9e-3); on the
three confirmatory DoorKey PPO agents (20 episodes, with distractors), int10 re-encoded from their
float16 files gave metrics within 4.4e-3 of those files' (means 2.9e-3); the tiny agents here:
within 1e-3. Those that rank cells (IoU of the top-k cells, ROC AUC) move by a step when a near tie
swaps two cells (1e-3 on the tiny DQN agent's IoU). 1e-2 holds all of these."""


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
        assert f"({size / 1e6:.3f} MB, {ENCODED[algo]}: greedy actions identical on 256 observations" in line

    for algo, run in runs.items():
        (run / "model.zip").unlink()
        out = tmp_path / f"{algo}-weights.json"
        assert main(["evaluate", str(run), *EVALUATE, "--out", str(out)]) == 0
        said = capsys.readouterr().out
        assert (
            f"loaded {run / WEIGHTS_FILE}: the policy's weights alone ({ENCODED[algo]}, from model.zip "
            "at 256 steps), not a trainable model (no optimizer state)"
        ) in said
        from_zip = numbers(json.loads((tmp_path / f"{algo}-zip.json").read_text()))
        from_weights = json.loads(out.read_text())
        assert (from_weights["model"], from_weights["weights"]) == (str(run / WEIGHTS_FILE), ENCODED[algo])
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
        f"kept {runs['ppo'] / WEIGHTS_FILE}: the run holds no model zip to export it from again "
        "(--from-weights re-encodes it)"
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


def untrained(algo: Algo) -> tuple[BaseAlgorithm, Callable[[], gym.Env]]:
    """The study's MiniGrid agent (56x56 images, 7 actions), untrained, and its env."""
    cfg = TrainConfig(algo=algo, env="MiniGrid-DoorKey-5x5-v0", device=DEVICE).resolved()
    with warnings.catch_warnings():  # 1 env: batch_size does not divide n_steps
        warnings.filterwarnings("ignore", "You have specified a mini-batch size", UserWarning)
        return new_model(cfg, algorithm_classes()[algo], env_factory(cfg)()), env_factory(cfg)


LINEAR = 128 * 3136
"""Entries of the linear layer after the CNN: the one matrix of a MiniGrid agent packed in 10 bits."""


@pytest.mark.parametrize(("algo", "params"), [("ppo", 488_488), ("dqn", 476_007)])
@pytest.mark.parametrize("dtype", ["int10", "float16"])
def test_a_doorkey_agent_weighs_well_under_1_mb(
    tmp_path: Path, algo: Algo, params: int, dtype: Dtype
) -> None:
    """2 bytes a distinct parameter in float16; in int10, 10 bits for each of the linear layer's
    401,408 (a byte and a quarter) and a float32 scale for each 64 of them (49 a row of 3136, 128
    rows): 701,008 bytes for PPO, 676,046 for DQN, plus a few kB of names and metadata."""
    model, make_env = untrained(algo)
    path = tmp_path / WEIGHTS_FILE
    exported = write_weights(model, path, make_env, dtype=dtype)
    saved = read_weights(path)
    assert (saved.version, saved.dtype, exported.dtype) == (2, dtype, dtype)
    assert sum(t.numel() for t in saved.tensors.values()) == params
    stored = torch.load(path, weights_only=True)
    packed = [name for name, t in stored["tensors"].items() if t.dtype == torch.uint8]
    if dtype == "int10":
        assert [stored["tensors"][name].shape for name in packed] == [(128, 3136)]
        assert [stored["high_bits"][name].shape for name in packed] == [(LINEAR // 4,)]
        assert [stored["scales"][name].shape for name in packed] == [(128, 49)]
        assert LINEAR >= INT10_MIN_ENTRIES
        data = 2 * params - 2 * LINEAR + LINEAR + LINEAR // 4 + 4 * 128 * 49
        assert data == {"ppo": 701_008, "dqn": 676_046}[algo]
    else:
        assert packed == []
        data = 2 * params
    assert data < exported.size == path.stat().st_size < data + 10_000 < 1_000_000
    assert all(saved.tensors[name].dtype == torch.float32 for name in packed)  # decoded
    floats = [t.dtype for name, t in stored["tensors"].items() if name not in packed]
    assert set(floats) == {torch.float16}


def stored_exactly(model: BaseAlgorithm) -> None:
    """Make every weight of the policy one that int10 and float16 both store exactly, so that its
    check finds no difference at all (an untrained agent's Grad-CAM maps hang on units of the linear
    layer whose input to the ReLU is near 0: float16 alone moves them by up to 6e-2 of the largest):
    the linear layer's groups of 64 get a power of 2 for scale and an entry of -511 or 511 each,
    every entry an integer times that; the other tensors are rounded to float16."""
    with torch.no_grad():
        for name, parameter in model.policy.named_parameters():
            if name != "features_extractor.linear.0.weight":
                parameter.copy_(parameter.half().float())
                continue
            groups = parameter.reshape(128, 49, 64)
            scales = 2 ** torch.ceil(torch.log2(groups.abs().amax(dim=2, keepdim=True) / 511))
            integers = torch.round(groups / scales)
            largest = groups.abs().argmax(dim=2, keepdim=True)
            integers.scatter_(2, largest, 511 * torch.sign(groups.gather(2, largest)))
            parameter.copy_((integers * scales).reshape(128, 3136))


def test_auto_takes_float16_when_int10_moves_the_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 7 levels a group (-3 to 3) instead of 1023, the packed matrix moves the scores and the
    Grad-CAM maps far past the check's tolerances: auto takes float16."""
    monkeypatch.setattr(camal_rl.weights_encoding, "LEVELS", 3)
    model, make_env = untrained("ppo")
    path = tmp_path / WEIGHTS_FILE
    exported = write_weights(model, path, make_env)
    assert exported.dtype == "float16"
    assert list(exported.checks) == ["int10", "float16"]
    failed = exported.checks["int10"]
    assert not failed.passed
    assert failed.mean_map_diff > failed.map_tolerances[0] == 1e-2
    assert failed.max_map_diff > failed.map_tolerances[1] == 5e-2
    assert exported.checks["float16"].passed
    said = exported.describe()
    assert said.startswith(f"wrote {path} (0.98")
    assert " MB, float16: greedy actions identical on 256 observations, largest score difference " in said
    assert "; not int10: greedy actions " in said
    saved = read_weights(path)
    assert (saved.dtype, list(saved.checks)) == ("float16", ["int10", "float16"])
    assert saved.checks["int10"] == failed.to_json()

    # asked for, int10 is written all the same, its failed check said
    exported = write_weights(model, path, make_env, dtype="int10")
    assert exported.dtype == "int10"
    assert " MB, int10 as asked, though it fails the check: greedy actions " in exported.describe()


def test_auto_takes_int10_when_the_policy_then_predicts_as_before(tmp_path: Path) -> None:
    model, make_env = untrained("ppo")
    stored_exactly(model)
    path = tmp_path / WEIGHTS_FILE
    exported = write_weights(model, path, make_env)
    assert (exported.dtype, list(exported.checks)) == ("int10", ["int10"])
    assert exported.check is not None
    assert exported.check.passed
    assert exported.check.max_abs_diff == exported.check.max_map_diff == 0
    assert exported.describe().startswith(f"wrote {path} (0.71")
    assert " MB, int10: greedy actions identical on 256 observations" in exported.describe()
    saved = read_weights(path)
    for name, parameter in model.policy.named_parameters():
        assert torch.equal(saved.tensors[name].float(), parameter.detach()), name


def test_auto_takes_float32_when_float16_overflows(tmp_path: Path) -> None:
    """Logits of 1e5 are inf in float16 (largest 65504), whether the matrix after the CNN is packed or
    not: neither check passes."""
    model, make_env = untrained("ppo")
    bias = dict(model.policy.named_parameters())["action_net.bias"]
    with torch.no_grad():
        bias.copy_(1e5 + torch.arange(7.0))
    exported = write_weights(model, tmp_path / WEIGHTS_FILE, make_env)
    assert exported.dtype == "float32"
    assert exported.check is None
    assert [check.passed for check in exported.checks.values()] == [False, False]
    assert "MB, float32; not int10: greedy actions " in exported.describe()
    assert "; not float16: greedy actions " in exported.describe()
    saved = read_weights(tmp_path / WEIGHTS_FILE)
    assert saved.dtype == "float32"
    assert torch.equal(saved.tensors["action_net.bias"], bias.detach())


def test_a_policy_without_a_large_matrix_is_not_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (camal_rl.weights, camal_rl.weights_encoding):
        monkeypatch.setattr(module, "INT10_MIN_ENTRIES", LINEAR + 1)
    model, make_env = untrained("ppo")
    exported = write_weights(model, tmp_path / WEIGHTS_FILE, make_env)
    assert (exported.dtype, list(exported.checks)) == ("float16", ["float16"])
    with pytest.raises(
        InputError,
        match=r"^the ppo agent has no 2-D weight matrix of 401,409 entries or more to store in int10; "
        r"store it as float16 or float32 \(or auto\)$",
    ):
        write_weights(model, tmp_path / WEIGHTS_FILE, make_env, dtype="int10")
    with pytest.raises(InputError, match=r"^dtype must be one of auto, int10, float16, float32, got 'int4'$"):
        write_weights(model, tmp_path / WEIGHTS_FILE, make_env, dtype="int4")  # type: ignore[arg-type]


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


def write_version_1(model: BaseAlgorithm, path: Path) -> None:
    """A float16 file as camal-rl wrote it before int10 (version 1: the entries of the three committed
    in experiments/camal_loss/runs, a float16 check, no scales)."""
    tensors, aliases = distinct_tensors(model.policy)
    torch.save(
        {
            "format": FORMAT,
            "version": 1,
            "algo": "ppo",
            "dtype": "float16",
            "tensors": {name: tensor.half().clone() for name, tensor in tensors.items()},
            "aliases": aliases,
            "omitted": {},
            "attributes": {"num_timesteps": model.num_timesteps},
            "source": "model.zip",
            "check": {"observations": 256, "greedy_agreement": 1.0, "max_abs_diff": 1e-4, "tolerance": 1e-3},
        },
        path,
    )


def test_a_version_1_file_is_read_and_re_encoded_in_int10(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file of a tiny agent whose weights int10 and float16 both store exactly
    (:func:`stored_exactly`), so that its check passes."""
    run = copy_runs(trained, tmp_path)["ppo"]
    zipped = load_agent(run, device=DEVICE)
    stored_exactly(zipped.model)
    weights = run / WEIGHTS_FILE
    write_version_1(zipped.model, weights)
    (run / "model.zip").unlink()
    v1_size = weights.stat().st_size
    saved = read_weights(weights)
    assert (saved.version, saved.dtype, saved.source) == (1, "float16", "model.zip")
    assert saved.checks == {
        "float16": {"observations": 256, "greedy_agreement": 1.0, "max_abs_diff": 1e-4, "tolerance": 1e-3}
    }
    v1 = load_agent(weights, device=DEVICE)
    assert v1.weights_dtype == "float16"
    for name, tensor in v1.model.policy.state_dict().items():
        assert torch.equal(tensor, zipped.model.policy.state_dict()[name].half().float()), name

    assert main(["export-weights", str(run)]) == 0  # no zip: kept
    assert "(--from-weights re-encodes it)" in capsys.readouterr().out
    assert main(["export-weights", str(run), "--from-weights"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"loaded {weights}: the policy's weights alone (float16, from model.zip at 256")
    assert said[1].startswith(f"wrote {weights} (0.71")
    assert " MB, int10: greedy actions identical on 256 observations" in said[1]
    assert weights.stat().st_size < 0.73 * v1_size
    saved = read_weights(weights)
    assert (saved.version, saved.dtype, list(saved.checks)) == (2, "int10", ["int10"])
    assert saved.source == "model.zip by way of float16 weights"
    assert saved.num_timesteps == 256

    int10 = load_agent(weights, device=DEVICE)
    assert "(int10, from model.zip by way of float16 weights at 256 steps)" in capsys.readouterr().out
    images = check_images(v1.model, lambda: v1.make_env(v1.env_kwargs))
    for image in images:
        assert (
            int10.model.predict(image, deterministic=True)[0]
            == v1.model.predict(image, deterministic=True)[0]
        )


def test_re_encoding_needs_a_weights_file(trained: dict[str, Path], tmp_path: Path) -> None:
    run = copy_runs(trained, tmp_path)["ppo"]
    with pytest.raises(
        InputError, match=f"holds no {WEIGHTS_FILE} to re-encode; export it from the run's model zip"
    ):
        reencode_weights(run)
    with pytest.raises(InputError, match="is not a run directory"):
        reencode_weights(tmp_path)


def damage(payload: dict[str, Any], how: str) -> None:
    """Damage a version-2 int10 file's entries in one way."""
    linear = "features_extractor.linear.0.weight"
    if how == "version 3":
        payload["version"] = 3
    elif how == "scales in version 1":
        payload.update(version=1, dtype="float16", check=payload.pop("checks")["int10"])
    elif how == "packed matrices in version 1":
        payload.update(version=1, dtype="float16", check=payload.pop("checks")["int10"])
        del payload["scales"], payload["high_bits"]
    elif how == "no scales":
        payload["scales"] = {}
    elif how == "no high bits":
        del payload["high_bits"]
    elif how == "a zero scale":
        payload["scales"][linear][3, 5] = 0.0
    elif how == "a high bit short":
        payload["high_bits"][linear] = payload["high_bits"][linear][:-1]
    elif how == "scales of a float matrix":
        payload["tensors"][linear] = payload["tensors"][linear].half()
    elif how == "packed in a float16 file":
        payload["dtype"] = "float16"
    elif how == "an unknown dtype":
        payload["dtype"] = "int4"
    elif how == "checks not a dict":
        payload["checks"] = {"int10": 0.5}
    else:
        raise AssertionError(how)


DAMAGED = r"is a damaged camal-rl weights file; export it again from the run's model zip"
DAMAGES = {
    "version 3": r"is a weights file of version 3; this camal-rl reads versions 1 and 2: export it again",
    "scales in version 1": DAMAGED,
    "packed matrices in version 1": DAMAGED,
    "no scales": DAMAGED,
    "no high bits": DAMAGED,
    "a zero scale": DAMAGED,
    "a high bit short": DAMAGED,
    "scales of a float matrix": DAMAGED,
    "packed in a float16 file": DAMAGED,
    "an unknown dtype": DAMAGED,
    "checks not a dict": DAMAGED,
}


def test_bad_weights_files_are_refused_saying_what_to_do(tmp_path: Path) -> None:
    model, make_env = untrained("ppo")
    good = tmp_path / "good.pt"
    assert write_weights(model, good, make_env, dtype="int10").dtype == "int10"
    read_weights(good)
    for how, message in DAMAGES.items():
        payload = torch.load(good, weights_only=True)
        damage(payload, how)
        bad = tmp_path / f"{how}.pt"
        torch.save(payload, bad)
        with pytest.raises(InputError, match=message):
            read_weights(bad)
    bad = tmp_path / "not torch.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"cannot read .* as policy weights \("):
        read_weights(bad)
    torch.save({"format": "something else"}, bad)
    with pytest.raises(InputError, match="is not a camal-rl policy weights file"):
        read_weights(bad)
