"""Saliency videos: exact pixels of the frame composition, decoded files of record(), bad input.

Composition tests use hand-made arrays; the record() tests share one tiny PPO run (128 steps on
DoorKey-5x5, untrained in effect). DoorKey-5x5's partial view is 56 x 56 pixels, so the default
scale is round(360 / 56) = 6 and one agent's tile is 336 tall and 336 + 56 + 224 = 616 wide.
"""

from __future__ import annotations

from pathlib import Path

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
from camal_rl.video import (
    BAR_COLUMN,
    BAR_X,
    OUTLINE_COLOR,
    PANEL_MIN_HEIGHT,
    PANEL_WIDTH,
    AgentRecording,
    RecordConfig,
    RecordedEpisode,
    action_names,
    compose_frame,
    default_scale,
    frame_schedule,
    heat_colors,
    normalize_saliency,
    outline_pixels,
    overlay_saliency,
    pad_even,
    record,
    record_agent,
    step_rows,
    still_index,
    tile_side_by_side,
    write_video,
)
from camal_rl.visual import GAP, SEPARATOR, upscale

ENV = "MiniGrid-DoorKey-5x5-v0"
JET_LOW, JET_HIGH = (0, 0, 128), (128, 0, 0)  # COLORMAP_JET at 0 and 1, in RGB
TILE = (336, 616)  # one DoorKey-5x5 agent's tile at the default scale 6


def decode_mp4(path: Path) -> tuple[dict, list[np.ndarray]]:
    """The ffmpeg metadata and every decoded frame of a video."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    return meta, frames


# ---------------------------------------------------------------------------------------------
# Pure composition
# ---------------------------------------------------------------------------------------------


def test_default_scale() -> None:
    assert default_scale(56) == 6  # 336 px
    assert default_scale(40) == 9  # 360 px
    assert default_scale(120) == 3  # 360 px
    assert default_scale(1000) == 1
    with pytest.raises(InputError, match="frame height must be >= 1"):
        default_scale(0)


def test_normalize_saliency() -> None:
    s = normalize_saliency(np.array([[0.0, 2.0], [4.0, np.nan], [-1.0, 1.0]]))
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, [[0.0, 0.5], [1.0, 0.0], [0.0, 0.25]])
    zeros = normalize_saliency(np.zeros((2, 3)))
    assert (zeros == 0).all()


def test_heat_colors_endpoints() -> None:
    colors = heat_colors(np.array([[0.0, 1.0]]))
    assert colors.dtype == np.uint8
    assert colors.tolist() == [[list(JET_LOW), list(JET_HIGH)]]


def test_overlay_keeps_frame_where_saliency_is_zero() -> None:
    frame = np.full((2, 2, 3), 100, np.uint8)
    saliency = np.array([[0.0, 1.0], [0.5, 0.0]], np.float32)
    out = overlay_saliency(frame, saliency, alpha=0.6)
    # s = 0: weight 0, the frame's exact values.
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[1, 1].tolist() == [100, 100, 100]
    # s = 1: 0.4 * 100 + 0.6 * (128, 0, 0) = (116.8, 40, 40) -> (117, 40, 40).
    assert out[0, 1].tolist() == [117, 40, 40]
    # s = 0.5: weight 0.3 on heat_colors(0.5).
    half = heat_colors(np.array([[0.5]]))[0, 0].astype(float)
    assert out[1, 0].tolist() == np.rint(0.7 * 100 + 0.3 * half).astype(int).tolist()
    with pytest.raises(InputError, match=r"alpha must lie in \[0, 1\]"):
        overlay_saliency(frame, saliency, alpha=1.5)
    with pytest.raises(InputError, match="does not match frame shape"):
        overlay_saliency(frame, np.zeros((3, 3), np.float32))


def test_outline_pixels() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[1:7, 1:7] = 3  # a 6x6 block
    assert outline_pixels(mask, 1).sum() == 36 - 16  # rim of 6x6 around the 4x4 interior
    assert outline_pixels(mask, 2).sum() == 36 - 4  # two rims around the 2x2 interior
    assert not outline_pixels(mask, 2)[3:5, 3:5].any()
    with pytest.raises(InputError, match="outline width must be >= 1"):
        outline_pixels(mask, 0)


def test_compose_frame_layout_overlay_and_outline() -> None:
    """An 8 x 10 frame at scale 40: 320 x 400 frame, then the 56-pixel colour-bar column and the
    224-pixel text panel: 320 x 680. Saliency is 1 on columns 5..9 (pixels 200..399 once
    upscaled) and 0 elsewhere; the mask is a 2 x 2 block at rows 2..3, columns 1..2 (pixels
    80..159 x 40..119)."""
    rng = np.random.default_rng(0)
    image = rng.integers(10, 100, size=(8, 10, 3), dtype=np.uint8)
    saliency = np.zeros((8, 10), np.float32)
    saliency[:, 5:] = 3.0  # normalised to 1
    mask = np.zeros((8, 10), np.uint8)
    mask[2:4, 1:3] = 1
    tile = compose_frame(image, saliency, mask, "ppo-camal seed 0", [("action", "forward")], scale=40)
    assert tile.shape == (320, 400 + BAR_COLUMN + PANEL_WIDTH, 3) == (320, 680, 3)
    assert tile.dtype == np.uint8
    raw = upscale(image, 40)
    frame = tile[:, :400]

    # Outline: the 2-pixel rim of the 80 x 80 block, 80*80 - 76*76 = 624 pixels, all white.
    rim = np.zeros((320, 400), bool)
    rim[80:160, 40:120] = True
    rim[82:158, 42:118] = False
    assert rim.sum() == 624
    assert (frame[rim] == OUTLINE_COLOR).all()
    # Zero saliency (left half), away from the rim: exactly the raw upscaled frame.
    left = ~rim
    left[:, 200:] = False
    assert np.array_equal(frame[left], raw[left])
    # Saliency 1 (right half): every pixel changed, to round(0.4 * raw + 0.6 * (128, 0, 0)).
    right = frame[:, 200:].astype(int)
    assert (right != raw[:, 200:]).any(axis=2).all()
    expected = np.rint(0.4 * raw[:, 200:] + 0.6 * np.array(JET_HIGH)).astype(int)
    assert np.array_equal(right, expected)

    # Colour bar: high (dark red) on the top row, low (dark blue) on the bottom row.
    bar = tile[:, 400 + BAR_X[0] : 400 + BAR_X[1]]
    assert (bar[0] == JET_HIGH).all()
    assert (bar[-1] == JET_LOW).all()
    # The text panel holds text (non-black pixels) and nothing from the frame.
    assert tile[:, 400 + BAR_COLUMN :].any()


def test_compose_frame_is_at_least_as_tall_as_the_panel() -> None:
    image = np.full((4, 4, 3), 200, np.uint8)
    tile = compose_frame(image, np.zeros((4, 4)), np.zeros((4, 4), np.uint8), "x", [], scale=2)
    assert tile.shape == (PANEL_MIN_HEIGHT, 8 + BAR_COLUMN + PANEL_WIDTH, 3) == (236, 288, 3)
    assert (tile[:8, :8] == 200).all()  # zero saliency, empty mask: the raw frame
    assert not tile[8:, :8].any()  # black below the frame
    with pytest.raises(InputError, match="must match the frame"):
        compose_frame(image, np.zeros((5, 4)), np.zeros((4, 4), np.uint8), "x", [], scale=2)


def test_tile_side_by_side_and_pad_even() -> None:
    a = np.full((3, 2, 3), 7, np.uint8)
    b = np.full((5, 4, 3), 9, np.uint8)
    tiled = tile_side_by_side([a, b])
    assert tiled.shape == (5, 2 + GAP + 4, 3)
    assert (tiled[:3, :2] == 7).all()
    assert not tiled[3:, :2].any()  # the shorter tile is padded with black
    assert (tiled[:, 2 : 2 + GAP] == SEPARATOR).all()
    assert (tiled[:, 2 + GAP :] == 9).all()
    with pytest.raises(InputError, match="at least one image"):
        tile_side_by_side([])
    padded = pad_even(tiled)  # (5, 10) -> (6, 10)
    assert padded.shape == (6, 10, 3)
    assert np.array_equal(padded[:5], tiled)
    assert not padded[5].any()
    even = np.zeros((4, 6, 3), np.uint8)
    assert pad_even(even) is even


def test_frame_schedule_holds_the_last_frame_of_shorter_episodes() -> None:
    schedule = frame_schedule([[3, 1], [2, 2]])
    assert [(f.episode, f.t, f.steps) for f in schedule] == [
        (0, 0, (0, 0)),
        (0, 1, (1, 1)),
        (0, 2, (2, 1)),  # agent 1 finished episode 0 after 2 steps: holds step 1
        (1, 0, (0, 0)),
        (1, 1, (0, 1)),  # agent 0's episode 1 lasted 1 step
    ]
    assert len(frame_schedule([[4, 5, 6]])) == 15  # one agent: the sum of its episode lengths
    with pytest.raises(InputError, match="same number of episodes"):
        frame_schedule([[3], [2, 2]])
    with pytest.raises(InputError, match="must be >= 1"):
        frame_schedule([[0]])


def fake_episode(masks_any: list[bool], rewards: list[float]) -> RecordedEpisode:
    n = len(masks_any)
    masks = np.zeros((n, 2, 2), np.uint8)
    masks[np.array(masks_any), 0, 0] = 1
    epg = np.where(masks_any, 0.25, np.nan)
    return RecordedEpisode(
        images=np.zeros((n, 2, 2, 3), np.uint8),
        masks=masks,
        saliency=np.ones((n, 2, 2), np.float32),
        actions=np.array([2, 5, 9][:n] + [0] * max(0, n - 3)),
        values=np.linspace(0.5, 1.0, n),
        probs=np.full(n, 0.75),
        rewards=np.array(rewards),
        epg=epg,
    )


def fake_recording(*episodes: RecordedEpisode) -> AgentRecording:
    names = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    return AgentRecording("ppo-camal seed 0", "gradcam", names, "V(s)", "pi(a|s)", tuple(episodes))


def test_step_rows() -> None:
    rec = fake_recording(fake_episode([False, True, True], [0.0, 0.0, 0.9]), fake_episode([True], [0.0]))
    rows = dict(step_rows(rec, 0, 2, done=True))
    assert rows == {
        "method": "gradcam",
        "episode": "1/2",
        "step": "2 (done)",
        "action": "9",  # outside the 7 named actions: its number
        "V(s)": "1.000",
        "pi(a|s)": "0.750",
        "reward": "+0.900",
        "return": "0.900",  # rewards up to and including this step
        "EPG": "0.25",
    }
    first = dict(step_rows(rec, 0, 0, done=False))
    assert first["step"] == "0"
    assert first["action"] == "forward"
    assert first["EPG"] == "- (no mask)"


def test_still_index_prefers_steps_with_a_mask_in_view() -> None:
    a = fake_recording(fake_episode([False, True, True, True, False], [0.0] * 5))
    b = fake_recording(fake_episode([False, False, True, True], [0.0] * 4))
    assert still_index([a]) == 2  # masks at frames 1, 2, 3: the middle one
    assert still_index([a, b]) == 2  # both masked at frames 2, 3: the first of the middle two
    none = fake_recording(fake_episode([False] * 5, [0.0] * 5), fake_episode([True], [0.0]))
    assert still_index([none]) == 2  # no mask in episode 0: its middle frame


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
    written = record(RecordConfig(runs=(run,), episodes=2, max_steps=4, gif=True, frame_png=True))
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


def test_record_agent_values_and_probabilities_match_the_policy(run: Path) -> None:
    agent = load_agent(run, device="cpu")
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
    agent = load_agent(train(cfg).path, device="cpu")
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
    cfg = RecordConfig(
        runs=(run, run / "model.zip"), env=ENV, episodes=1, max_steps=3, method="input_x_gradient"
    )
    (mp4,) = record(cfg)
    assert mp4 == Path("videos") / f"ppo-camal-seed-0_vs_model_input_x_gradient_seed{EVAL_SEED}.mp4"
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
        ({"method": "grad-cam"}, "unknown saliency method 'grad-cam'; choose one of: gradcam, gradcam\\+\\+"),
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
    cfg = RecordConfig(**{"runs": (run,), "max_steps": 1, **changes})
    with pytest.raises(InputError, match=message):
        record(cfg)


def test_record_rejects_missing_and_unreadable_models(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; pass a run directory or a model zip"):
        record(RecordConfig(runs=(tmp_path / "missing",)))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read model zip"):
        record(RecordConfig(runs=(bad,), env=ENV))


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
    assert main(["record", str(run), "--method", "nope"]) == 2
    assert "unknown saliency method 'nope'" in capsys.readouterr().err
