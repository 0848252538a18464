"""Models trained elsewhere with stock Stable-Baselines3 (PPO, A2C, DQN on image observations):
loaded, scored through a hook on their extractor, evaluated and recorded like CAMAL agents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from minigrid.wrappers import ImgObsWrapper, RGBImgPartialObsWrapper
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import VecFrameStack
from torch import nn

from camal_rl.agents import CamalPPO, CamFeaturesExtractor, PolicyScorer
from camal_rl.agents.common.scorer import LayerMaps, default_attention_layer
from camal_rl.cli import main
from camal_rl.envs import StackedImages, make_masked_env
from camal_rl.errors import InputError
from camal_rl.evaluation import EvaluateConfig, collect_episodes
from camal_rl.loading import LoadedAgent, load_agent, read_zip_model
from camal_rl.options import with_options
from camal_rl.video import RecordConfig, agent_label, record

from .conftest import DEVICE

DOORKEY = "MiniGrid-DoorKey-5x5-v0"


def image_env() -> gym.Env:
    """DoorKey-5x5 as a stock SB3 user trains on it: the agent's 56x56 RGB view, no mask."""
    return ImgObsWrapper(RGBImgPartialObsWrapper(gym.make(DOORKEY)))


@pytest.fixture(scope="module")
def stock_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PPO, A2C and DQN with SB3's CnnPolicy (NatureCNN), 64 steps each, saved as zips."""
    out = tmp_path_factory.mktemp("stock")
    venv = make_vec_env(image_env, n_envs=2, seed=0)
    models = {
        "ppo": PPO("CnnPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device=DEVICE),
        "a2c": A2C("CnnPolicy", venv, n_steps=8, seed=0, device=DEVICE),
        "dqn": DQN("CnnPolicy", venv, buffer_size=64, learning_starts=16, seed=0, device=DEVICE),
    }
    paths = {}
    for name, model in models.items():
        model.learn(64)
        paths[name] = out / f"{name}.zip"
        model.save(paths[name])
    venv.close()
    return paths


def grey_image_env() -> gym.Env:
    """The same view in greyscale, (56, 56, 1)."""
    return gym.wrappers.GrayscaleObservation(image_env(), keep_dim=True)


@pytest.fixture(scope="module")
def stacked_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PPO with CnnPolicy on 2 RGB frames stacked by SB3's VecFrameStack (6 channels), 64 steps."""
    path = tmp_path_factory.mktemp("stacked") / "stacked.zip"
    venv = VecFrameStack(make_vec_env(image_env, n_envs=2, seed=0), n_stack=2)
    PPO("CnnPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device=DEVICE).learn(64).save(path)
    venv.close()
    return path


def first_image() -> tuple[np.ndarray, torch.Tensor]:
    """The masked env's first observation image (H, W, 3) and as a raw (1, 3, H, W) batch."""
    env = make_masked_env(DOORKEY)
    obs, _ = env.reset(seed=3)
    env.close()
    return obs["image"], torch.as_tensor(obs["image"]).permute(2, 0, 1)[None].float()


def test_read_zip_model_tells_the_algorithm(stock_zips: dict[str, Path], tiny_run: Path) -> None:
    for name, path in stock_zips.items():
        saved = read_zip_model(path)
        assert (saved.algo, saved.camal) == (name, False)
    saved = read_zip_model(tiny_run / "model.zip")
    assert (saved.algo, saved.camal) == ("ppo", True)


def test_read_zip_model_refuses_other_algorithms(tmp_path: Path) -> None:
    SAC("MlpPolicy", gym.make("Pendulum-v1"), buffer_size=8, device="cpu").save(tmp_path / "sac.zip")
    with pytest.raises(InputError, match="holds a SACPolicy policy; camal-rl loads PPO, A2C and DQN"):
        read_zip_model(tmp_path / "sac.zip")


@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn"])
def test_scorer_reads_the_stock_policy(stock_zips: dict[str, Path], name: str) -> None:
    """Scores and values are the policy's own; the maps are NatureCNN's third conv after its
    ReLU (3x3 on 56x56 frames: (56 - 8) / 4 + 1 = 13, (13 - 4) / 2 + 1 = 5, 5 - 3 + 1 = 3)."""
    agent = load_agent(stock_zips[name], env=DOORKEY, device=DEVICE)
    assert agent.stock
    assert agent.algo == name
    assert agent.describe()["trained_by"] == "stable-baselines3"
    policy = agent.model.policy
    scorer = PolicyScorer(agent.model)
    image, images = first_image()
    obs = policy.obs_to_tensor(image)[0]  # SB3 transposes the (H, W, 3) image itself
    with torch.no_grad():
        scores, maps = scorer.scores_and_maps(images)
        extractor = cast(
            NatureCNN, policy.q_net.features_extractor if name == "dqn" else policy.features_extractor
        )
        pre = preprocess_obs(obs, policy.observation_space)
        assert isinstance(pre, torch.Tensor)
        torch.testing.assert_close(maps, extractor.cnn[:6](pre))
        if name == "dqn":
            torch.testing.assert_close(scores, policy.q_net(obs))
            torch.testing.assert_close(scorer.state_values(images), policy.q_net(obs).max(dim=1).values)
        else:
            probs = policy.get_distribution(obs).distribution.probs
            torch.testing.assert_close(torch.softmax(scores, 1), probs)
            torch.testing.assert_close(scorer.state_values(images), policy.predict_values(obs).flatten())
    assert maps.shape == (1, 64, 3, 3)
    assert bool((maps >= 0).all())
    assert scorer.is_q_network == (name == "dqn")
    greedy = int(scores.argmax(1)[0])
    assert int(agent.model.predict(image, deterministic=True)[0]) == greedy


def test_hooked_maps_carry_the_gradient_of_the_scores(stock_zips: dict[str, Path]) -> None:
    """d score / d maps through the hook equals the gradient through the extractor's tail,
    computed by hand from detached maps."""
    agent = load_agent(stock_zips["ppo"], env=DOORKEY, device=DEVICE)
    policy = agent.model.policy
    scorer = PolicyScorer(agent.model)
    _, images = first_image()
    scores, maps = scorer.scores_and_maps(images)
    (through_hook,) = torch.autograd.grad(scores[0, 2], maps)
    extractor = cast(NatureCNN, policy.features_extractor)
    pre = preprocess_obs(images.to(policy.device), policy.observation_space)
    assert isinstance(pre, torch.Tensor)
    detached = extractor.cnn[:6](pre).detach().requires_grad_()
    logits = policy.action_net(
        policy.mlp_extractor.forward_actor(extractor.linear(extractor.cnn[6](detached)))
    )
    (by_hand,) = torch.autograd.grad(logits[0, 2], detached)
    torch.testing.assert_close(through_hook, by_hand)
    assert float(through_hook.abs().sum()) > 0


def one_conv(weight: float = 2.0, bias: float = -1.0) -> nn.Sequential:
    conv = nn.Conv2d(1, 1, kernel_size=1)
    with torch.no_grad():
        conv.weight.fill_(weight)
        conv.bias.fill_(bias)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten())


def test_layer_maps_by_hand() -> None:
    """2x - 1 on [[0, 1], [2, 0.25]] is [[-1, 1], [3, -0.5]]; after the ReLU [[0, 1], [3, 0]]."""
    x = torch.tensor([[[[0.0, 1.0], [2.0, 0.25]]]])
    extractor = one_conv()
    after_relu = LayerMaps(extractor)
    assert after_relu.layer_name == "1"
    features, maps = after_relu.forward_with_maps(x)
    torch.testing.assert_close(maps, torch.tensor([[[[0.0, 1.0], [3.0, 0.0]]]]))
    torch.testing.assert_close(features, torch.tensor([[0.0, 1.0, 3.0, 0.0]]))
    _, conv_out = LayerMaps(extractor, "0").forward_with_maps(x)
    torch.testing.assert_close(conv_out, torch.tensor([[[[-1.0, 1.0], [3.0, -0.5]]]]))
    assert not extractor[1]._forward_hooks  # the hook is removed after each pass


class TopLevelConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.unused = nn.Conv2d(1, 1, 1)
        self.head = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))


def test_default_attention_layer() -> None:
    image_space = spaces.Box(0, 255, (3, 56, 56), np.uint8)
    assert default_attention_layer(NatureCNN(image_space)) == "cnn.5"
    assert default_attention_layer(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten())) == "0"
    assert default_attention_layer(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1), nn.ReLU())) == "0"
    assert default_attention_layer(nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 1), nn.ELU()))) == "0.1"
    assert default_attention_layer(TopLevelConv()) == "unused"  # the last registered conv
    with pytest.raises(InputError, match="Linear has no Conv2d layer"):
        default_attention_layer(nn.Linear(2, 2))


def test_layer_maps_refusals() -> None:
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(InputError, match="has no layer named 'nope'; its layers are: 0, 1, 2"):
        LayerMaps(one_conv(), "nope")
    with pytest.raises(InputError, match=r"layer '2' of Sequential outputs \(1, 4\), not \(batch"):
        LayerMaps(one_conv(), "2").forward_with_maps(x)
    with pytest.raises(InputError, match="layer 'unused' of TopLevelConv did not run"):
        LayerMaps(TopLevelConv()).forward_with_maps(x)
    _, maps = LayerMaps(TopLevelConv(), "conv").forward_with_maps(x)
    assert maps.shape == (1, 2, 2, 2)


def test_layer_of_a_camal_agent() -> None:
    """A CAMAL agent's default maps are its attention layer's; layer= hooks another one
    (MiniGridCNN on 56x56 frames: 7x7 cells, 32 channels after the first conv's ReLU)."""
    masked = make_vec_env(lambda: make_masked_env(DOORKEY), n_envs=1)
    model = CamalPPO("MultiInputPolicy", masked, n_steps=16, batch_size=16, device="cpu")
    masked.close()
    extractor = model.policy.features_extractor
    assert isinstance(extractor, CamFeaturesExtractor)
    _, images = first_image()
    pre = images / 255.0
    with torch.no_grad():
        own_scores, own_maps = PolicyScorer(model).scores_and_maps(images)
        scores, first = PolicyScorer(model, layer="to_attention.1").scores_and_maps(images)
        _, last = PolicyScorer(model, layer="to_attention.5").scores_and_maps(images)
        torch.testing.assert_close(first, extractor.to_attention[:2](pre))
    assert first.shape == (1, 32, 7, 7)
    torch.testing.assert_close(last, own_maps)
    torch.testing.assert_close(scores, own_scores)


def test_scorer_refusals(stock_zips: dict[str, Path]) -> None:
    masked = make_vec_env(lambda: make_masked_env(DOORKEY), n_envs=1)
    with pytest.raises(InputError, match=r"keys \['image', 'mask'\], not the image alone"):
        PolicyScorer(PPO("MultiInputPolicy", masked, n_steps=16, batch_size=16, device="cpu"))
    masked.close()
    flat = make_vec_env(image_env, n_envs=1)
    with pytest.raises(InputError, match="FlattenExtractor has no Conv2d layer"):
        PolicyScorer(PPO("MlpPolicy", flat, n_steps=16, batch_size=16, device="cpu"))
    flat.close()
    with pytest.raises(InputError, match=r"an actor-critic \(PPO, A2C\) or DQN policy, got SACPolicy"):
        PolicyScorer(SAC("MlpPolicy", gym.make("Pendulum-v1"), buffer_size=8, device="cpu"))
    second_conv = PolicyScorer(load_agent(stock_zips["ppo"], env=DOORKEY, device=DEVICE).model, layer="cnn.2")
    assert second_conv.scores_and_maps(first_image()[1])[1].shape == (1, 64, 5, 5)


def test_evaluate_a_stock_model_from_the_command_line(
    stock_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics.json"
    argv = ["evaluate", str(stock_zips["ppo"]), "--env", DOORKEY, "--episodes", "1"]
    main([*argv, "--max-steps-scored", "2", "--device", DEVICE, "--out", str(out)])
    report: dict[str, Any] = json.loads(out.read_text())
    assert (report["algo"], report["trained_by"], report["method"]) == ("ppo", "stable-baselines3", None)
    assert "env_kwargs" not in report["settings"]
    scored = report["variants"]["train"]["saliency"]
    for method in ("gradcam", "perturbation"):
        assert 0.0 <= scored[method]["epg"]["mean"] <= 1.0
        assert np.isfinite(scored[method]["deletion_auc"]["mean"])
    assert report["label"] == "ppo"  # the zip's name
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        f"evaluating {stock_zips['ppo']} on 1 episode of {DOORKEY} (train): "
        "gradcam, perturbation, faithfulness"
    )
    assert printed[1].startswith("ppo  MiniGrid-DoorKey-5x5-v0  steps=64")
    assert printed[-1].startswith(f"wrote {out} (evaluated in ")
    assert 0 < report["evaluation_seconds"] < 600


def test_evaluate_and_record_stock_dqn_and_a2c(stock_zips: dict[str, Path], tmp_path: Path) -> None:
    from camal_rl.evaluation import evaluate

    cfg = with_options(
        EvaluateConfig(run=stock_zips["dqn"], out=tmp_path / "dqn.json"),
        env=DOORKEY,
        episodes=1,
        saliency=("gradcam",),
        faithfulness=False,
        max_steps_scored=2,
        q_policy="epsilon-greedy",
        device=DEVICE,
    )
    report = evaluate(cfg)
    assert report["faithfulness_policy"] == "epsilon-greedy(Q), epsilon 0.05"
    assert report["variants"]["train"]["episodes"] == 1
    written = record(
        with_options(
            RecordConfig(
                runs=(stock_zips["a2c"], stock_zips["dqn"]),
                max_steps=3,
                out=tmp_path / "both.mp4",
                frame_png=True,
            ),
            env=DOORKEY,
            episodes=1,
            device=DEVICE,
        )
    )
    assert [path.suffix for path in written] == [".mp4", ".png"]
    assert all(path.stat().st_size > 0 for path in written)


def test_stock_model_acts_on_the_masked_envs_image(stock_zips: dict[str, Path]) -> None:
    """Evaluation rolls out the stock model on the image alone, as it was trained."""
    agent = load_agent(stock_zips["a2c"], env=DOORKEY, device=DEVICE)
    (episode,) = collect_episodes(
        agent.model, lambda: gym.wrappers.TimeLimit(make_masked_env(DOORKEY), 5), 1, seed=7
    )
    assert episode.length == 5
    expected = [int(agent.model.predict(image, deterministic=True)[0]) for image in episode.images]
    assert episode.actions.tolist() == expected


def test_env_that_does_not_fit_the_model_is_refused(
    stock_zips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", str(stock_zips["ppo"]), "--env", DOORKEY, "--env-kwargs", "view=full"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the model takes 56x56 images with 3 channels, but MiniGrid-DoorKey-5x5-v0 with" in err
    assert "{'view': 'full'} renders 40x40 with 3" in err
    assert "stacked" not in err
    grey = VecFrameStack(make_vec_env(grey_image_env, n_envs=1), n_stack=4)
    PPO("CnnPolicy", grey, n_steps=16, batch_size=16, device="cpu").save(tmp_path / "grey.zip")
    grey_agent = load_agent(tmp_path / "grey.zip", env=DOORKEY)
    with pytest.raises(InputError, match=r"takes 56x56 images with 4 channels, .* 3: .*render RGB"):
        grey_agent.check_env(grey_agent.make_env({}))
    agent = load_agent(stock_zips["ppo"], env=DOORKEY, device=DEVICE)
    three_actions = gym.Env()
    three_actions.observation_space = spaces.Dict({"image": spaces.Box(0, 255, (56, 56, 3), np.uint8)})
    three_actions.action_space = spaces.Discrete(3)
    with pytest.raises(InputError, match="the model has 7 actions, but MiniGrid-DoorKey-5x5-v0 has 3"):
        agent.check_env(three_actions)
    assert main(["record", str(stock_zips["ppo"]), "--env", DOORKEY, "--env-kwargs", "view"]) == 2
    assert "--env-kwargs takes KEY=VALUE pairs" in capsys.readouterr().err


def test_probe_hands_out_a_checked_env_and_always_closes_it(
    stock_zips: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed: list[gym.Env] = []

    class Closing(gym.Wrapper):  # type: ignore[type-arg]
        def close(self) -> None:
            closed.append(self)
            super().close()

    make_env = LoadedAgent.make_env
    monkeypatch.setattr(LoadedAgent, "make_env", lambda agent, kwargs: Closing(make_env(agent, kwargs)))
    agent = load_agent(stock_zips["ppo"], env=DOORKEY, device=DEVICE)
    with pytest.raises(InputError, match="renders 40x40"), agent.probe({"view": "full"}):
        pytest.fail("a refused env is handed out")
    assert len(closed) == 1
    with agent.probe({}) as env:
        assert env.observation_space["image"].shape == (56, 56, 3)  # type: ignore[index]
        assert not closed[1:]
    assert closed[1:] == [env]
    argv = ["record", str(stock_zips["ppo"]), "--env", DOORKEY, "--env-kwargs", "view=full"]
    assert main([*argv, "--out", str(tmp_path / "refused.mp4")]) == 2  # before any rollout
    assert not list(tmp_path.iterdir())
    assert "the model takes 56x56 images with 3 channels" in capsys.readouterr().err
    assert len(closed) == 3


def test_env_kwargs_go_over_the_runs_own(tiny_run: Path) -> None:
    agent = load_agent(tiny_run, env_kwargs={"view": "full"}, device=DEVICE)
    assert agent.env_kwargs == {**agent.config.env_make_kwargs, "view": "full"}  # type: ignore[union-attr]
    assert not agent.stock
    assert "trained_by" not in agent.describe()
    settings = with_options(EvaluateConfig(run=tiny_run), env_kwargs=("view=full",)).settings("ppo")
    assert settings["env_kwargs"] == ["view=full"]  # a sweep evaluates such a run again
    assert "env_kwargs" not in EvaluateConfig(run=tiny_run).settings("ppo")


def test_layer_from_the_command_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--layer`` reaches the scorer of evaluate and record, is recorded in the settings (a sweep
    evaluates such a run again), and an unknown name lists the extractor's layers."""
    out = tmp_path / "first.json"
    common = ["--episodes", "1", "--saliency", "gradcam", "--no-faithfulness", "--max-steps-scored", "2"]
    main(
        [
            "evaluate",
            str(tiny_run),
            *common,
            "--layer",
            "to_attention.1",
            "--device",
            DEVICE,
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert report["settings"]["layer"] == "to_attention.1"
    assert 0.0 <= report["variants"]["train"]["saliency"]["gradcam"]["epg"]["mean"] <= 1.0
    assert main(["evaluate", str(tiny_run), *common, "--layer", "cnn.5", "--out", str(out)]) == 2
    assert "MiniGridCNN has no layer named 'cnn.5'; its layers are: to_attention, to_attention.0" in (
        capsys.readouterr().err
    )
    video = tmp_path / "first.mp4"
    main(["record", str(tiny_run), "--layer", "to_attention.3", "--max-steps", "2", "--out", str(video)])
    assert video.stat().st_size > 0


def test_stacked_images_by_hand() -> None:
    """Zeros before the first frame, oldest first, the newest frame's mask, a new array each step."""
    inner, stacked = make_masked_env(DOORKEY), StackedImages(make_masked_env(DOORKEY), 3)
    assert stacked.observation_space["image"].shape == (56, 56, 9)
    first, _ = inner.reset(seed=5)
    obs, _ = stacked.reset(seed=5)
    assert not obs["image"][..., :6].any()
    assert np.array_equal(obs["image"][..., 6:], first["image"])
    held = obs["image"]
    second, *_ = inner.step(2)  # forward
    obs, *_ = stacked.step(2)
    assert not obs["image"][..., :3].any()
    assert np.array_equal(obs["image"][..., 3:6], first["image"])
    assert np.array_equal(obs["image"][..., 6:], second["image"])
    assert np.array_equal(obs["mask"], second["mask"])
    assert not held[..., :6].any()  # the earlier observation is not overwritten
    obs, _ = stacked.reset(seed=5)
    assert not obs["image"][..., :6].any()  # a new episode starts from zeros again
    with pytest.raises(InputError, match="frames to stack must be >= 1"):
        StackedImages(inner, 0)


def test_a_frame_stacked_model_sees_what_sb3_showed_it(stacked_zip: Path) -> None:
    """Rolled out in SB3's own VecFrameStack and in the masked env with StackedImages, from the
    same seed, the model gets the same stacked images and takes the same actions."""
    agent = load_agent(stacked_zip, env=DOORKEY, device=DEVICE)
    assert agent.frame_stack == 2
    assert agent.describe()["frame_stack"] == 2
    (episode,) = collect_episodes(
        agent.model, lambda: gym.wrappers.TimeLimit(agent.make_env({}), 6), 1, seed=11
    )
    venv = VecFrameStack(make_vec_env(image_env, n_envs=1), n_stack=2)
    venv.seed(11)
    obs = venv.reset()
    for image, action in zip(episode.images, episode.actions, strict=True):
        assert np.array_equal(obs[0], image)
        assert int(agent.model.predict(obs, deterministic=True)[0][0]) == action
        obs, *_ = venv.step(np.array([action]))
    venv.close()
    assert episode.images.shape == (6, 56, 56, 6)


def test_evaluate_and_record_a_frame_stacked_model(
    stacked_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics.json"
    argv = ["evaluate", str(stacked_zip), "--env", DOORKEY, "--episodes", "1", "--max-steps-scored", "2"]
    assert main([*argv, "--device", DEVICE, "--out", str(out)]) == 0
    assert "steps=64  faithfulness on pi(a|x)  2 frames stacked\n" in capsys.readouterr().out
    report: dict[str, Any] = json.loads(out.read_text())
    assert (report["trained_by"], report["frame_stack"]) == ("stable-baselines3", 2)
    for method in ("gradcam", "perturbation"):
        scored = report["variants"]["train"]["saliency"][method]
        assert 0.0 <= scored["epg"]["mean"] <= 1.0
        assert np.isfinite(scored["deletion_auc"]["mean"])
    video = tmp_path / "stacked.mp4"
    argv = ["record", str(stacked_zip), "--env", DOORKEY, "--episodes", "1", "--max-steps", "3"]
    assert main([*argv, "--device", DEVICE, "--out", str(video), "--frame-png"]) == 0
    assert video.stat().st_size > 0
    assert video.with_suffix(".png").stat().st_size > 0
    assert agent_label(load_agent(stacked_zip, env=DOORKEY, device=DEVICE)) == "stacked, 2 frames stacked"
