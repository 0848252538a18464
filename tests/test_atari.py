"""Masked Atari envs: masks checked against the frames, the preprocessing's frame skip, max-pool,
resize and stacking, life loss, fire on reset, registration, and bad input; an agent trained on
stacked frames, then evaluated and recorded from its run directory.

Tests that build a game take the ``atari`` fixture and skip, saying what to install, where the
extra is missing; CI installs it (``make install``). The static ones run everywhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from camal_rl.envs import StackedImages, list_envs, make_masked_env
from camal_rl.envs.atari import AtariMaskedEnv, MissingAtariError, list_atari_envs
from camal_rl.envs.atari_classes import ATARI_GAMES, registered_id
from camal_rl.envs.atari_masks import max_pool, resize_mask
from camal_rl.errors import InputError
from tests.conftest import DEVICE

SKIP_REASON = "install the atari extra: pip install 'camal-rl[atari]' && pip install --no-deps ocatari==2.2.1"
RAW = {"screen_size": None, "frame_skip": 1, "noop_max": 0, "repeat_action_probability": 0.0}
"""One emulator frame a step, at the screen's 210x160, without sticky actions."""

# Where each game draws only its task-relevant objects, over a background of one colour: Pong's
# court between the walls; Breakout's between the side walls, below the top wall.
PLAYFIELDS = {
    "Pong": ((144, 72, 17), (slice(34, 194), slice(0, 160))),
    "Breakout": ((0, 0, 0), (slice(32, 196), slice(8, 152))),
}


@pytest.fixture
def atari() -> Any:
    pytest.importorskip("ale_py", reason=SKIP_REASON)
    return pytest.importorskip("ocatari", reason=SKIP_REASON)


@pytest.fixture
def raw_pong(atari: Any) -> Iterator[AtariMaskedEnv]:
    env = make_masked_env("ALE/Pong-v5", **RAW)
    assert isinstance(env, AtariMaskedEnv)
    yield env
    env.close()


def random_steps(env: gym.Env, n: int, seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Observations of ``n`` random steps after a seeded reset (resetting when an episode ends)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, _ = env.reset()
        yield obs


@pytest.mark.parametrize("game", sorted(PLAYFIELDS))
def test_colour_masks_are_the_drawn_objects(atari: Any, game: str) -> None:
    """Inside the playfield every pixel that is not background belongs to a task-relevant object, so
    the mask must be exactly the non-background pixels there: found from the frame alone, without
    OCAtari's boxes or colours."""
    background, field = PLAYFIELDS[game]
    env = make_masked_env(f"ALE/{game}-v5", **RAW)
    checked = labelled = 0
    for obs in random_steps(env, 400):
        drawn = np.any(obs["image"][field] != background, axis=-1)
        if drawn.mean() > 0.5:  # the first frame of a game is drawn in another palette
            continue
        np.testing.assert_array_equal(obs["mask"][field] > 0, drawn)
        checked += 1
        labelled += int(drawn.sum())
    env.close()
    assert checked > 390
    assert labelled > 100 * checked  # paddles (and bricks) on every frame


def test_mask_classes_are_the_objects_of_their_colour(raw_pong: AtariMaskedEnv) -> None:
    """Pong's ball is white, its paddle green, the opponent's orange: each class's pixels have
    its object's colour."""
    colours = {1: (236, 236, 236), 2: (92, 186, 92), 3: (213, 130, 74)}
    seen = set()
    for obs in random_steps(raw_pong, 200):
        for k, rgb in colours.items():
            pixels = obs["image"][obs["mask"] == k]
            assert (pixels == rgb).all()
            seen |= {k} if len(pixels) else set()
    assert seen == {1, 2, 3}


def test_step_max_pools_the_last_two_frames_and_unions_their_masks(atari: Any) -> None:
    """One 84x84 step of 4 frames against the same 4 frames taken one at a time at 210x160, from
    the same emulator state: the image is the resized max of frames 3 and 4, the mask the resized
    union of their masks (the first class winning), the reward the sum."""
    skip = make_masked_env("ALE/Pong-v5", noop_max=0, repeat_action_probability=0.0)
    raw = make_masked_env("ALE/Pong-v5", **RAW)
    assert isinstance(skip, AtariMaskedEnv)
    assert isinstance(raw, AtariMaskedEnv)
    skip.reset(seed=0)
    raw.reset(seed=0)
    rng = np.random.default_rng(1)
    unions = 0
    for _ in range(150):
        action = int(rng.integers(skip.action_space.n))
        state = skip._ale.cloneState()
        obs, reward, terminated, *_ = skip.step(action)
        raw._ale.restoreState(state)
        frames = [raw.step(action) for _ in range(4)]
        third, fourth = frames[2][0], frames[3][0]
        expected_image = cv2.resize(
            np.maximum(third["image"], fourth["image"]), (84, 84), interpolation=cv2.INTER_AREA
        )
        union = third["mask"].copy()
        later = (fourth["mask"] > 0) & ((union == 0) | (fourth["mask"] < union))
        union[later] = fourth["mask"][later]
        np.testing.assert_array_equal(obs["image"], expected_image)
        np.testing.assert_array_equal(obs["mask"], resize_mask(union, (84, 84), 3))
        assert reward == sum(f[1] for f in frames)
        unions += not np.array_equal(third["mask"], fourth["mask"])
        assert not terminated
    assert unions > 50  # the objects moved between the two frames on most steps
    skip.close()
    raw.close()


def test_resized_mask_keeps_the_ball(atari: Any) -> None:
    """The 2x4-pixel ball is in the 84x84 mask on every step it is in the screen-size mask."""
    small = make_masked_env(
        "ALE/Pong-v5", screen_size=84, frame_skip=1, noop_max=0, repeat_action_probability=0.0
    )
    full = make_masked_env("ALE/Pong-v5", **RAW)
    balls = 0
    for a, b in zip(random_steps(small, 300), random_steps(full, 300), strict=True):
        assert (a["mask"] == 1).any() == (b["mask"] == 1).any()
        balls += bool((b["mask"] == 1).any())
    assert balls > 100
    assert max_pool([a["image"]]).shape == (84, 84, 3)


def test_stacked_frames_carry_the_newest_mask(atari: Any) -> None:
    plain = make_masked_env("ALE/Breakout-v5")
    stacked = StackedImages(make_masked_env("ALE/Breakout-v5"), 4)
    assert stacked.observation_space["image"].shape == (84, 84, 12)
    for a, b in zip(random_steps(plain, 20), random_steps(stacked, 20), strict=True):
        np.testing.assert_array_equal(b["mask"], a["mask"])
        np.testing.assert_array_equal(b["image"][..., 9:], a["image"])


def test_frame_stack_stacks_the_images_and_keeps_the_newest_mask(atari: Any) -> None:
    """``frame_stack=4`` is the env's own keyword (a run's env_kwargs, so evaluate and record
    rebuild it): the same observations as StackedImages around the plain env, 12 channels."""
    plain = make_masked_env("ALE/Pong-v5")
    stacked = make_masked_env("ALE/Pong-v5", frame_stack=4)
    registered = gym.make("camal_rl/ALE-Pong-v5", frame_stack=4)
    assert stacked.observation_space["image"].shape == (84, 84, 12)  # type: ignore[index]
    assert registered.observation_space["image"].shape == (84, 84, 12)  # type: ignore[index]
    assert isinstance(stacked, StackedImages)
    assert isinstance(stacked.unwrapped, AtariMaskedEnv)
    assert stacked.get_wrapper_attr("mask_classes") == ("ball", "paddle", "opponent")
    first = True
    for a, b in zip(random_steps(plain, 12), random_steps(stacked, 12), strict=True):
        np.testing.assert_array_equal(b["mask"], a["mask"])
        np.testing.assert_array_equal(b["image"][..., 9:], a["image"])
        if first:  # the first step after a reset: the three older frames are the reset's and zeros
            assert not b["image"][..., :6].any()
            first = False
    for env in (plain, stacked, registered):
        env.close()


@pytest.mark.parametrize("fire_reset", [False, True])
def test_fire_reset_serves_breakouts_ball(atari: Any, fire_reset: bool) -> None:
    """Breakout waits for FIRE: under a no-op policy its ball never enters the mask, unless the
    reset presses FIRE (SB3's FireResetEnv), which serves it at once; after a lost life too, when
    the reset continues the game (terminal_on_life_loss)."""
    env = make_masked_env(
        "ALE/Breakout-v5",
        fire_reset=fire_reset,
        terminal_on_life_loss=True,
        repeat_action_probability=0.0,
    )
    ball = env.get_wrapper_attr("mask_classes").index("ball") + 1

    def steps_to_the_ball(obs: dict[str, np.ndarray], limit: int = 50) -> int | None:
        for t in range(limit):
            if (obs["mask"] == ball).any():
                return t
            obs, *_ = env.step(0)
        return None

    obs, info = env.reset(seed=0)
    assert info["lives"] == 5
    if not fire_reset:
        assert steps_to_the_ball(obs) is None
        return
    assert steps_to_the_ball(obs) in (0, 1, 2, 3)
    for _ in range(500):  # the paddle stays still and soon misses the ball
        _, _, terminated, _, info = env.step(0)
        if terminated:
            break
    assert terminated
    obs, info = env.reset()
    assert info["lives"] == 4  # the same game goes on, and the next ball is served
    assert steps_to_the_ball(obs) in (0, 1, 2, 3)
    env.close()


def test_fire_reset_serves_after_a_lost_life_within_the_game(atari: Any) -> None:
    """Without terminal_on_life_loss an episode is the whole game, and Breakout waits for FIRE after
    each lost life: fire_reset serves within the step that lost it, so a no-op policy loses its 5
    lives one ball after another and the game ends, instead of stalling after the first lost life
    until ALE truncates it at 27000 steps."""
    env = make_masked_env("ALE/Breakout-v5", fire_reset=True, repeat_action_probability=0.0)
    ball = env.get_wrapper_attr("mask_classes").index("ball") + 1
    _, info = env.reset(seed=0)
    lives: list[int] = [info["lives"]]
    served: list[bool] = []
    terminated = truncated = False
    for _ in range(2000):
        obs, _, terminated, truncated, info = env.step(0)
        if info["lives"] != lives[-1]:
            lives.append(info["lives"])
            served.append(bool((obs["mask"] == ball).any()))
        if terminated or truncated:
            break
    assert terminated
    assert not truncated
    assert lives == [5, 4, 3, 2, 1, 0]
    assert served[:4] == [True] * 4  # the step that lost a life returns the served ball
    env.close()


def test_terminal_on_life_loss_ends_the_episode_and_the_game_goes_on(atari: Any) -> None:
    env = make_masked_env("ALE/Breakout-v5", terminal_on_life_loss=True, repeat_action_probability=0.0)
    _, info = env.reset(seed=0)
    assert info["lives"] == 5
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(1)  # fires, never moves: soon misses the ball
        if terminated or truncated:
            break
    assert terminated
    assert info["lives"] == 4
    _, info = env.reset()
    assert info["lives"] == 4  # the same game, one life fewer
    _, info = env.reset(seed=0)
    assert info["lives"] == 5  # a seeded reset starts a new game


def test_seeded_resets_repeat(raw_pong: AtariMaskedEnv) -> None:
    first = list(random_steps(raw_pong, 30, seed=3))
    again = list(random_steps(raw_pong, 30, seed=3))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["mask"], b["mask"])


@pytest.mark.parametrize("game", list(ATARI_GAMES))
def test_every_registered_game_follows_the_contract(atari: Any, game: str) -> None:
    env = gym.make(registered_id(game))
    assert env.unwrapped.mask_classes == tuple(ATARI_GAMES[game])  # type: ignore[attr-defined]
    labelled = 0
    for obs in random_steps(env, 100):
        assert env.observation_space.contains(obs)
        labelled += int((obs["mask"] > 0).any())
    assert labelled > 50
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_listing_and_registration() -> None:
    rows = {row.env_id: row for row in list_envs()}
    assert rows["camal_rl/ALE-Pong-v5"].mask_classes == ("ball", "paddle", "opponent")
    assert rows["camal_rl/ALE-Pong-v5"].image_shape == (84, 84, 3)
    assert {row.env_id for row in list_atari_envs()} <= set(gym.registry)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("ALE/Pongg-v5", {}, "close matches: ALE/Pong-v5"),
        ("ALE/Seaquest-v5", {}, r"Seaquest-v5 has no default mask classes.*classes=\{'name'"),
        ("ALE/Pong-v5", {"classes": "ball,paddel"}, "close matches: paddle"),
        ("ALE/Pong-v5", {"frameskip": 4}, "frame_skip=N"),
        ("ALE/Pong-v5", {"frame_skip": 0}, "frame_skip must be an integer >= 1"),
        ("ALE/Pong-v5", {"screen_size": 4}, "screen_size must be"),
        ("ALE/Pong-v5", {"frame_stack": 0}, "frame_stack must be an integer >= 1, got 0"),
        ("ALE/Freeway-v5", {"fire_reset": True}, "Freeway-v5's actions are noop, up, down: leave fire_reset"),
        ("ALE/Pong-v5", {"view": "full"}, "only apply to MiniGrid"),
        ("ALE/Pong-v5", {"no_such_option": 1}, "refused the keywords"),
    ],
)
def test_bad_input_says_what_to_do(atari: Any, env_id: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_masked_env(env_id, **kwargs)


def test_a_game_without_a_table_masks_the_boxes_it_is_given(atari: Any) -> None:
    env = make_masked_env("ALE/Seaquest-v5", classes={"shark": "Shark", "player": "Player"})
    assert env.unwrapped.mask_classes == ("shark", "player")  # type: ignore[attr-defined]
    assert any((obs["mask"] == 2).any() for obs in random_steps(env, 50))
    env.close()


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ocatari", None)
    monkeypatch.setitem(sys.modules, "ocatari.core", None)
    with pytest.raises(MissingAtariError, match=r"camal-rl\[atari\]'.*--no-deps ocatari==2.2.1"):
        make_masked_env("ALE/Pong-v5")
    assert not [row for row in list_atari_envs() if row.available]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--env", "ALE/Seaquest-v5", "--steps", "64"], "has no default mask classes"),
        (["envs", "--check", "ALE/Pongg-v5"], "close matches: ALE/Pong-v5"),
        (["train", "--env", "ALE/Pong-v5", "--env-kwargs", "classes=net"], "unknown class name for Pong"),
    ],
)
def test_the_cli_says_it_in_one_line(
    atari: Any, argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from camal_rl.cli import main

    assert main([*argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else [])]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.count("camal-rl: error:") == 1
    assert message in err
    assert not (tmp_path / "run").exists()


def test_the_cli_says_how_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from camal_rl.cli import main

    monkeypatch.setitem(sys.modules, "ocatari", None)
    monkeypatch.setitem(sys.modules, "ocatari.core", None)
    assert main(["train", "--env", "ALE/Pong-v5", "--steps", "64", "--out", str(tmp_path / "run")]) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "pip install --no-deps ocatari==2.2.1" in err


STACKED_RUN_ENV = ("frame_stack=4", "fire_reset=true", "max_num_frames_per_episode=200")
"""Pong as the presets play it (4 frames, FIRE at reset), its episodes cut at 200 emulator frames
(50 agent steps) so that evaluation and recording stay short."""


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CAMAL PPO agent trained 256 steps on 4 stacked frames (2 envs x 64 steps, 2 updates)."""
    pytest.importorskip("ale_py", reason=SKIP_REASON)
    pytest.importorskip("ocatari", reason=SKIP_REASON)
    from camal_rl.config import TrainConfig
    from camal_rl.train import train

    cfg = TrainConfig(
        env="ALE/Pong-v5",
        steps=256,
        n_envs=2,
        env_kwargs=STACKED_RUN_ENV,
        hp=("n_steps=64", "batch_size=64", "n_epochs=1"),
        eval_freq=128,
        eval_episodes=1,
        checkpoint_freq=0,
        progress_bar=False,
        device=DEVICE,
        out=tmp_path_factory.mktemp("atari") / "pong",
    )
    return train(cfg).path


def test_a_run_on_stacked_frames_trains_evaluates_and_records(stacked_run: Path, tmp_path: Path) -> None:
    """The run's config.json holds the stacking, so evaluate and record rebuild the 12-channel env
    from the run directory alone; Grad-CAM is one 7x7 map per step (84 -> 20 -> 9 -> 7), scored
    against the newest frame's mask, and the video shows the newest frame: the frames a plain,
    unstacked env gives for the same seed and actions."""
    from camal_rl.evaluation import EVAL_SEED, EvaluateConfig, evaluate, format_metrics_table
    from camal_rl.loading import load_agent
    from camal_rl.options import with_options
    from camal_rl.rundir import RunDir
    from camal_rl.video import RecordConfig, agent_label, record, record_agent

    run = RunDir(stacked_run)
    config = json.loads(run.config.read_text())
    assert config["env_kwargs"] == list(STACKED_RUN_ENV)
    assert (config["algo_kwargs"]["learning_rate"], config["algo_kwargs"]["clip_range"]) == (
        "lin_2.5e-4",
        "lin_0.1",
    )
    assert [int(row["step"]) for row in run.read_evaluations()] == [0, 128, 256]
    agent = load_agent(stacked_run, device=DEVICE)
    assert agent.model.observation_space["image"].shape == (12, 84, 84)  # type: ignore[index]
    assert agent.frame_stack == 1  # the env stacks; loading does not stack again
    assert agent.frames_seen == 4
    assert agent_label(agent) == "ppo-camal seed 0, 4 frames stacked"
    report = evaluate(
        with_options(
            EvaluateConfig(run=stacked_run, out=tmp_path / "metrics.json"),
            episodes=1,
            max_steps_scored=4,
            device=DEVICE,
        )
    )
    result = report["variants"]["train"]
    assert result["env_kwargs"]["frame_stack"] == 4
    assert report["frame_stack"] == 4
    assert "  4 frames stacked\n" in format_metrics_table(report)
    assert result["episodes"] == 1
    assert (result["steps_scored"], result["coverage"]) == (4, 1.0)  # the ball and paddles always in view
    assert 0 <= result["saliency"]["gradcam"]["epg"]["mean"] <= 1

    recording = record_agent(agent, episodes=1, max_steps=12)
    (episode,) = recording.episodes
    assert episode.images.shape == (12, 84, 84, 3)
    assert episode.saliency.shape == (12, 84, 84)
    plain = make_masked_env("ALE/Pong-v5", fire_reset=True, max_num_frames_per_episode=200)
    obs, _ = plain.reset(seed=EVAL_SEED)
    for image, mask, action in zip(episode.images, episode.masks, episode.actions, strict=True):
        np.testing.assert_array_equal(image, obs["image"])
        np.testing.assert_array_equal(mask, obs["mask"])
        obs, *_ = plain.step(int(action))
    plain.close()
    (mp4,) = record(with_options(RecordConfig(runs=(stacked_run,), max_steps=6), device=DEVICE))
    assert mp4 == run.videos / f"gradcam_seed{EVAL_SEED}.mp4"
    assert mp4.stat().st_size > 0
