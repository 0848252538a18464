"""Saliency videos (camal_rl.video): decoded files of write_video() and record(), action names,
bad input. The frame composition is tested in test_frames.py.

The record() tests share one tiny PPO run (128 steps on DoorKey-5x5, untrained in effect).
DoorKey-5x5's partial view is 56 x 56 pixels, so the default scale is round(360 / 56) = 6 and one
agent's tile is 336 tall and 336 + 56 + 224 = 616 wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch

from camal_rl.cli import main
from camal_rl.config import TrainConfig
from camal_rl.envs import make_masked_env
from camal_rl.errors import InputError
from camal_rl.evaluation import EVAL_SEED
from camal_rl.loading import load_agent
from camal_rl.options import with_options
from camal_rl.settings import RolloutSettings
from camal_rl.video import RecordConfig, action_names, default_out, record, record_agent, write_video
from camal_rl.visual import GAP
from tests.conftest import DEVICE

ENV = "MiniGrid-DoorKey-5x5-v0"
TILE = (336, 616)  # one DoorKey-5x5 agent's tile at the default scale 6


def decode_mp4(path: Path) -> tuple[dict, list[np.ndarray]]:
    """The ffmpeg metadata and every decoded frame of a video."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    return meta, frames


def test_write_video_mp4_gif_and_png(tmp_path: Path) -> None:
    frames = [np.full((24, 32, 3), 20 * i, np.uint8) for i in range(10)]
    out = tmp_path / "deep" / "v.mp4"
    written = write_video(iter(frames), out, fps=5, gif=True, still=3)
    assert written == [out, out.with_suffix(".gif"), out.with_suffix(".png")]
    meta, decoded = decode_mp4(out)
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == (32, 24)
    assert meta["fps"] == 5
    assert len(decoded) == 10
    # Flat grey frames survive H.264 within a few levels.
    assert abs(float(decoded[7].mean()) - 140) < 3
    gif = iio.imread(out.with_suffix(".gif"), index=None)
    assert gif.shape[:3] == (10, 24, 32)
    assert np.array_equal(iio.imread(out.with_suffix(".png")), frames[3])
    with pytest.raises(InputError, match="even H and W"):
        write_video(iter([np.zeros((5, 4, 3), np.uint8)]), tmp_path / "odd.mp4")
    with pytest.raises(InputError, match="must have one size"):
        write_video(
            iter([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)]), tmp_path / "two.mp4"
        )
    with pytest.raises(InputError, match="no frames"):
        write_video(iter([]), tmp_path / "empty.mp4")


def test_an_interrupted_video_leaves_the_earlier_one_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "v.mp4"
    write_video(iter([np.full((24, 32, 3), 200, np.uint8)] * 4), out, gif=True, still=0)
    names = ["v.gif", "v.mp4", "v.png"]
    earlier = {name: (tmp_path / name).read_bytes() for name in names}

    def frames_then_ctrl_c() -> Iterator[np.ndarray]:
        yield from [np.zeros((24, 32, 3), np.uint8)] * 3
        raise KeyboardInterrupt

    def unchanged() -> bool:
        return sorted(p.name for p in tmp_path.iterdir()) == names and all(
            (tmp_path / name).read_bytes() == content for name, content in earlier.items()
        )

    with pytest.raises(KeyboardInterrupt):  # after the still frame (1) was seen
        write_video(frames_then_ctrl_c(), out, gif=True, still=1)
    assert unchanged()  # the recording it interrupted went to other files, which are gone
    with pytest.raises(InputError, match="must have one size"):
        write_video(iter([np.zeros((24, 32, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)]), out, still=0)
    assert unchanged()

    def ctrl_c_in_the_gif(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:  # the MP4 is complete: it waits for the GIF
        patched.setattr(iio, "imwrite", ctrl_c_in_the_gif)
        with pytest.raises(KeyboardInterrupt):
            write_video(iter([np.zeros((24, 32, 3), np.uint8)] * 2), out, gif=True)
    assert unchanged()
    write_video(iter([np.zeros((24, 32, 3), np.uint8)] * 2), out, gif=True, still=1)
    assert len(decode_mp4(out)[1]) == 2  # a complete one replaces them
    assert iio.imread(out.with_suffix(".png")).max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_action_names_minigrid() -> None:
    env = make_masked_env(ENV)
    assert action_names(env) == ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    env.close()


def test_action_names_vizdoom() -> None:
    pytest.importorskip("vizdoom", reason="install the vizdoom extra: pip install 'camal-rl[vizdoom]'")
    from camal_rl.envs.vizdoom import make_vizdoom_masked_env

    env = make_vizdoom_masked_env("VizdoomBasic-v1")
    # Buttons MOVE_LEFT, MOVE_RIGHT, ATTACK, at most one pressed: vizdoom's button_map is
    # (0,0,0), (0,0,1), (0,1,0), (1,0,0).
    assert action_names(env) == ("noop", "attack", "move_right", "move_left")
    env.close()


def test_action_names_rejects_continuous_actions() -> None:
    env = gym.make("MountainCarContinuous-v0")
    with pytest.raises(InputError, match="discrete action space"):
        action_names(env)
    env.close()


# ---------------------------------------------------------------------------------------------
# record() on a tiny trained run
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from camal_rl.train import train

    out = tmp_path_factory.mktemp("video") / "run"
    cfg = TrainConfig(
        env=ENV,
        steps=128,
        n_envs=2,
        eval_freq=0,
        checkpoint_freq=0,
        progress_bar=False,
        hp=("n_steps=64", "batch_size=64"),
        out=out,
    )
    return train(cfg).path


def test_record_one_run_writes_mp4_gif_and_png(run: Path) -> None:
    cfg = RecordConfig(runs=(run,), max_steps=4, gif=True, frame_png=True)
    written = record(with_options(cfg, episodes=2))
    mp4 = run / "videos" / f"gradcam_seed{EVAL_SEED}.mp4"
    assert written == [mp4, mp4.with_suffix(".gif"), mp4.with_suffix(".png")]
    # DoorKey needs a key, a door and a walk to the goal: no episode ends within 4 steps, so the
    # video has 2 episodes x 4 steps = 8 frames of one 336 x 616 tile.
    meta, frames = decode_mp4(mp4)
    assert meta["size"] == (TILE[1], TILE[0])
    assert meta["fps"] == 6
    assert len(frames) == 8
    assert iio.imread(mp4.with_suffix(".gif"), index=None).shape[:3] == (8, *TILE)
    assert iio.imread(mp4.with_suffix(".png")).shape == (*TILE, 3)


def test_record_a_checkpoint_of_a_run(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`record RUN --checkpoint N`: the run's checkpoint at N steps, with the run's env, its video
    beside the checkpoint (the run's own videos/ is its final model's)."""
    import shutil

    from camal_rl.settings import AgentSettings

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("metrics.json", "videos", ".lock"))
    agent = AgentSettings(checkpoint=128, device=DEVICE).load(run)
    assert (agent.checkpoint, agent.describe()["num_timesteps"]) == (128, 128)  # not the final 256
    argv = [
        "record",
        str(run),
        "--checkpoint",
        "128",
        "--episodes",
        "1",
        "--max-steps",
        "2",
        "--device",
        DEVICE,
    ]
    assert main(argv) == 0
    mp4 = run / "checkpoints" / "videos" / f"step_128_gradcam_seed{EVAL_SEED}.mp4"
    assert f"wrote {mp4}" in capsys.readouterr().out
    meta, frames = decode_mp4(mp4)
    assert (meta["size"], len(frames)) == ((TILE[1], TILE[0]), 2)  # 1 episode x 2 steps, one tile
    assert not (run / "videos").exists()
    # the checkpoint's zip itself gives the same video
    again = tmp_path / "again.mp4"
    checkpoint = str(run / "checkpoints" / "step_128.zip")
    assert main(["record", checkpoint, *argv[4:], "--out", str(again)]) == 0
    assert np.array_equal(np.stack(decode_mp4(again)[1]), np.stack(frames))
    assert main(["record", str(run), "--checkpoint", "200"]) == 2
    err = capsys.readouterr().err
    assert "has no checkpoint at step 200" in err
    assert err.rstrip().endswith("its checkpoints are at steps 128, 256")


def test_record_tiles_each_saliency_method(run: Path, tmp_path: Path) -> None:
    """`--saliency gradcam perturbation`: the agent once per method, side by side, on the same steps."""
    out = tmp_path / "two.mp4"
    argv = [
        "record",
        str(run),
        "--saliency",
        "gradcam",
        "perturbation",
        "--episodes",
        "1",
        "--max-steps",
        "2",
    ]
    assert main([*argv, "--device", DEVICE, "--out", str(out)]) == 0
    meta, frames = decode_mp4(out)
    assert (meta["size"], len(frames)) == ((2 * TILE[1] + GAP, TILE[0]), 2)  # two tiles and the gap
    agent = load_agent(run, device=DEVICE)
    default = RecordConfig(runs=(run,), rollouts=RolloutSettings(saliency=("gradcam", "perturbation")))
    assert (
        default_out(default, [agent], ["x"]) == run / "videos" / f"gradcam_perturbation_seed{EVAL_SEED}.mp4"
    )


def test_an_interrupted_record_says_so_and_writes_nothing(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C during the rollouts: exit 130, a message, no video."""
    from camal_rl import video

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "record_agent", interrupted)
    out = tmp_path / "v.mp4"
    assert main(["record", str(run), "--device", DEVICE, "--out", str(out)]) == 130
    assert "interrupted: the recording did not finish; no video written" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_record_agent_values_and_probabilities_match_the_policy(run: Path) -> None:
    agent = load_agent(run, device=DEVICE)
    rec = record_agent(agent, "gradcam", episodes=1, max_steps=5)
    assert rec.label == "ppo-camal seed 0"
    assert (rec.value_name, rec.prob_name) == ("V(s)", "pi(a|s)")
    (episode,) = rec.episodes
    assert episode.length == 5
    assert episode.saliency.shape == (5, 56, 56)
    assert (episode.saliency >= 0).all()
    policy = agent.model.policy
    obs = torch.as_tensor(episode.images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        features = policy.extract_features({"image": obs}, policy.vf_features_extractor)
        values = policy.value_net(policy.mlp_extractor.forward_critic(features)).flatten().numpy()
        dist = policy.get_distribution({"image": obs})
        probs = dist.distribution.probs.numpy()
    np.testing.assert_allclose(episode.values, values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(episode.probs, probs[np.arange(5), episode.actions], rtol=1e-5, atol=1e-6)
    # The deterministic policy takes its most probable action.
    assert np.array_equal(episode.actions, probs.argmax(axis=1))


def test_record_agent_dqn_shows_max_q_and_softmax_q(tmp_path: Path) -> None:
    from camal_rl.train import train

    cfg = TrainConfig(
        algo="dqn",
        env=ENV,
        steps=64,
        n_envs=1,
        eval_freq=0,
        checkpoint_freq=0,
        progress_bar=False,
        hp=("learning_starts=16", "buffer_size=200"),
        out=tmp_path / "dqn",
    )
    agent = load_agent(train(cfg).path, device=DEVICE)
    rec = record_agent(agent, "gradcam", episodes=1, max_steps=3)
    assert rec.label == "dqn-camal seed 0"
    assert (rec.value_name, rec.prob_name) == ("max Q", "softmax Q")
    (episode,) = rec.episodes
    obs = torch.as_tensor(episode.images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        q = agent.model.policy.q_net({"image": obs}).numpy()
    np.testing.assert_allclose(episode.values, q.max(axis=1), rtol=1e-5, atol=1e-6)
    softmax = np.exp(q - q.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(episode.probs, softmax[np.arange(3), episode.actions], rtol=1e-5, atol=1e-6)
    assert np.array_equal(episode.actions, q.argmax(axis=1))


def test_record_tiles_two_agents_side_by_side(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = with_options(
        RecordConfig(runs=(run, run / "model.zip"), max_steps=3),
        env=ENV,
        episodes=1,
        saliency=("input_x_gradient",),
    )
    (mp4,) = record(cfg)
    # a run's own model.zip is labelled by its run, like the run directory
    assert (
        mp4 == Path("videos") / f"ppo-camal-seed-0_vs_ppo-camal-seed-0_input_x_gradient_seed{EVAL_SEED}.mp4"
    )
    meta, frames = decode_mp4(tmp_path / mp4)
    assert meta["size"] == (2 * TILE[1] + GAP, TILE[0])  # width doubles, plus the separator
    assert len(frames) == 3
    # Both agents are the same model on the same seed: the two frame areas match.
    left, right = (
        frames[1][:, :336].astype(int),
        frames[1][:, TILE[1] + GAP : TILE[1] + GAP + 336].astype(int),
    )
    assert np.abs(left - right).mean() < 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"saliency": ("grad-cam",)},
            "unknown saliency method 'grad-cam'; choose one of: gradcam, gradcam\\+\\+",
        ),
        ({"saliency": ()}, "--saliency named no method: record draws at least one"),
        ({"episodes": 0}, "--episodes must be >= 1"),
        ({"fps": 0}, "--fps must be >= 1"),
        ({"scale": 0}, "--scale must be >= 1"),
        ({"max_steps": 0}, "--max-steps must be >= 1"),
        ({"distractors": -1}, "--distractors must be >= 0"),
        ({"alpha": 1.5}, "--alpha must lie in"),
        ({"out": Path("v.avi")}, "--out must be an .mp4 path"),
        ({"runs": ()}, "at least one run directory"),
    ],
)
def test_record_rejects_bad_options(run: Path, changes: dict, message: str) -> None:
    cfg = with_options(RecordConfig(runs=(run,), max_steps=1), **changes)
    with pytest.raises(InputError, match=message):
        record(cfg)


def test_record_rejects_missing_and_unreadable_models(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; pass a run directory or a model zip"):
        record(RecordConfig(runs=(tmp_path / "missing",)))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read model zip"):
        record(with_options(RecordConfig(runs=(bad,)), env=ENV))


def test_cli_record(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mp4"
    argv = ["record", str(run), "--episodes", "1", "--max-steps", "2", "--fps", "4", "--out", str(out)]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    meta, frames = decode_mp4(out)
    assert len(frames) == 2
    assert meta["fps"] == 4
    assert main(["record", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "camal-rl: error:" in err
    assert "missing does not exist; pass a run directory or a model zip" in err
    assert "Traceback" not in err
    assert main(["record", str(run), "--saliency", "nope"]) == 2
    assert "unknown saliency method 'nope'" in capsys.readouterr().err
