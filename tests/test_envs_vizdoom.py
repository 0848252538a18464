"""Masked ViZDoom envs: labels-buffer masks, spaces, determinism, pickling and bad input.

Tests that build a game take the ``vizdoom`` fixture and skip where the extra is missing; the
static ones (listing, registration, validation, the missing-extra error) run everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from camal_rl.envs.base import get_mask_classes
from camal_rl.envs.vizdoom import (
    DEFAULT_RESOLUTION,
    VIZDOOM_SCENARIOS,
    VizdoomMaskWrapper,
    list_vizdoom_envs,
    make_vizdoom_masked_env,
    register_vizdoom_envs,
    resolve_object_classes,
)
from camal_rl.errors import InputError, MissingExtraError, WrongEnvTypeError

SKIP_REASON = "install the vizdoom extra: pip install 'camal-rl[vizdoom]'"
SCENARIOS = sorted(VIZDOOM_SCENARIOS)

# Discrete action indices of VizdoomBasic-v1 (buttons MOVE_LEFT, MOVE_RIGHT, ATTACK; one at a time).
BASIC_NOOP, BASIC_ATTACK, BASIC_RIGHT, BASIC_LEFT = 0, 1, 2, 3
# VizdoomMyWayHome-v1: buttons TURN_LEFT, TURN_RIGHT, MOVE_FORWARD, MOVE_LEFT, MOVE_RIGHT.
MY_WAY_HOME_TURN_LEFT = 5


@pytest.fixture
def vizdoom() -> Any:
    return pytest.importorskip("vizdoom", reason=SKIP_REASON)


@pytest.fixture
def basic(vizdoom: Any) -> Iterator[gym.Env]:
    env = make_vizdoom_masked_env("VizdoomBasic-v1")
    yield env
    env.close()


def rollout(env: gym.Env, seed: int, actions: list[int]) -> list[dict[str, np.ndarray]]:
    """Observations of a seeded reset and ``actions`` (resetting, unseeded, when an episode ends)."""
    obs, _ = env.reset(seed=seed)
    observations = [obs]
    for action in actions:
        obs, _, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
            observations.append(obs)
    return observations


def same(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x["image"], y["image"]) and np.array_equal(x["mask"], y["mask"])
        for x, y in zip(a, b, strict=True)
    )


def reference_mask(env: gym.Env) -> np.ndarray:
    """The mask, computed the slow, obvious way from the game's current labels."""
    state = env.unwrapped.state
    classes = env.unwrapped.object_classes
    if state is None:
        return np.zeros(env.observation_space["mask"].shape, np.uint8)
    mask = np.zeros(state.labels_buffer.shape, np.uint8)
    for label in state.labels:
        for k, objects in enumerate(classes.values(), 1):
            if label.object_name in objects:
                mask[state.labels_buffer == label.value] = k
    return mask


def label_named(env: gym.Env, name: str) -> Any:
    """The first label of the current frame whose object is ``name``, or None."""
    return next((label for label in env.unwrapped.state.labels if label.object_name == name), None)


# --- static: no vizdoom needed ------------------------------------------------------------------


def test_listing_is_static_and_marks_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = list_vizdoom_envs()
    assert [row.env_id for row in rows] == ["camal_rl/" + base_id for base_id in VIZDOOM_SCENARIOS]
    basic = rows[0]
    assert (basic.view, basic.image_shape, basic.mask_classes) == ("screen", (120, 160, 3), ("monster",))
    assert rows[1].mask_classes == ("monster", "armor")  # deadly corridor
    assert all(row.available == (importlib.util.find_spec("vizdoom") is not None) for row in rows)
    monkeypatch.setitem(sys.modules, "vizdoom", None)
    assert not any(row.available for row in list_vizdoom_envs())


def test_registration_adds_namespaced_ids() -> None:
    register_vizdoom_envs()
    register_vizdoom_envs()  # idempotent
    for base_id in VIZDOOM_SCENARIOS:
        # camal_rl.envs.register_envs may have registered it first, through make_masked_env.
        assert gym.spec("camal_rl/" + base_id).kwargs in ({"base_id": base_id}, {"env_id": base_id})


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vizdoom", None)  # `import vizdoom` now fails
    monkeypatch.delitem(sys.modules, "camal_rl.envs.vizdoom_scenario", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'camal-rl\[vizdoom\]'"):
        make_vizdoom_masked_env("VizdoomBasic-v1")
    register_vizdoom_envs()
    with pytest.raises(MissingExtraError, match=r"pip install 'camal-rl\[vizdoom\]'"):
        gym.make("camal_rl/VizdoomHealthGathering-v1")


@pytest.mark.parametrize(
    ("base_id", "expected"),
    [
        ("VizdoomBasic-v2", "close matches: VizdoomBasic-v1"),
        ("VizdoomDefendTheCenter-v1", "close matches: VizdoomDefendCenter-v1"),
        ("Pong-v5", "no close match"),
        ("VizdoomDeathmatch-v1", "supported: VizdoomBasic-v1, VizdoomDeadlyCorridor-v1"),
    ],
)
def test_unknown_scenario_lists_close_matches(base_id: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        make_vizdoom_masked_env(base_id)


def test_classes_pick_reorder_or_define() -> None:
    corridor = "VizdoomDeadlyCorridor-v1"
    assert resolve_object_classes(corridor, None) == VIZDOOM_SCENARIOS[corridor]
    assert resolve_object_classes(corridor, "armor, monster") == {
        "armor": ("GreenArmor",),
        "monster": ("Zombieman", "ShotgunGuy", "ChaingunGuy"),
    }
    assert resolve_object_classes(corridor, ["armor"]) == {"armor": ("GreenArmor",)}
    assert resolve_object_classes("VizdoomBasic-v1", {"corpse": "DeadCacodemon", "me": ["DoomPlayer"]}) == {
        "corpse": ("DeadCacodemon",),
        "me": ("DoomPlayer",),
    }


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (["monsters"], "unknown class name for VizdoomBasic-v1 'monsters' .close matches: monster"),
        ({"monster": ["Cacodaemon"]}, "unknown ViZDoom object name 'Cacodaemon' .close matches: Cacodemon"),
        ({"a": ["Cacodemon"], "b": ["Cacodemon"]}, "no object in two classes"),
        ({"a": []}, "each covering at least one object"),
        (["monster", "monster"], "no class twice"),
        ([], "at least one class"),
    ],
)
def test_bad_classes_say_what_is_known(classes: Any, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        make_vizdoom_masked_env("VizdoomBasic-v1", classes=classes)


def test_wrapper_rejects_non_vizdoom_env() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(WrongEnvTypeError, match=r"make_masked_env with a MiniGrid id"):
        VizdoomMaskWrapper(env)
    assert issubclass(WrongEnvTypeError, TypeError)


# --- with vizdoom -------------------------------------------------------------------------------


@pytest.mark.parametrize("base_id", SCENARIOS)
def test_scenario_contract_determinism_and_pickling(vizdoom: Any, base_id: str) -> None:
    env = make_vizdoom_masked_env(base_id)
    n_classes = len(VIZDOOM_SCENARIOS[base_id])
    assert env.observation_space == gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (120, 160, 3), np.uint8),
            "mask": gym.spaces.Box(0, n_classes, (120, 160), np.uint8),
        }
    )
    assert isinstance(env.action_space, gym.spaces.Discrete)
    assert get_mask_classes(env) == env.unwrapped.mask_classes == tuple(VIZDOOM_SCENARIOS[base_id])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version")
        check_env(env, skip_render_check=True)

    # 80 steps: in take cover the seed first shows at step 60 (when the imps' first shots differ).
    actions = [int(a) for a in np.random.default_rng(0).integers(env.action_space.n, size=80)]
    first = rollout(env, 3, actions)
    assert all(env.observation_space.contains(obs) for obs in first)
    assert same(first, rollout(env, 3, actions))  # same seed, same actions
    assert not same(first, rollout(env, 4, actions))  # the seed reaches the game
    env.reset(seed=5)
    for action in actions[:30]:
        obs, _, terminated, truncated, _ = env.step(action)
        np.testing.assert_array_equal(obs["mask"], reference_mask(env))
        if terminated or truncated:
            break

    copy = pickle.loads(pickle.dumps(env))  # a fresh game, built from the same arguments
    assert copy.mask_classes == env.mask_classes
    assert same(first, rollout(copy, 3, actions))
    copy.close()
    env.close()


def test_registered_id_builds_the_masked_env(vizdoom: Any) -> None:
    register_vizdoom_envs()
    env = gym.make("camal_rl/VizdoomTakeCover-v1", resolution=(240, 320))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (240, 320, 3)
    assert obs["mask"].shape == (240, 320)
    assert get_mask_classes(env) == ("monster", "fireball")
    env.close()


@pytest.mark.parametrize("resolution", [(240, 320), (125, 200), (480, 640)])
def test_resolution_sets_engine_size_no_resize(vizdoom: Any, resolution: tuple[int, int]) -> None:
    env = make_vizdoom_masked_env("VizdoomBasic-v1", resolution=resolution)
    obs, _ = env.reset(seed=0)
    labels = env.unwrapped.state.labels_buffer
    assert obs["image"].shape == (*resolution, 3)
    assert obs["mask"].shape == labels.shape == resolution
    assert (obs["mask"] == 1).sum() == (labels == label_named(env, "Cacodemon").value).sum() > 0
    env.close()


@pytest.mark.parametrize("resolution", [(100, 100), (160, 120), (120,), "RES_160X120", (120.5, 160)])
def test_bad_resolution_lists_native_sizes(vizdoom: Any, resolution: Any) -> None:
    with pytest.raises(InputError, match=r"use one of \(120, 160\), \(125, 200\)"):
        make_vizdoom_masked_env("VizdoomBasic-v1", resolution=resolution)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ({"labels_buffer_enabled": False}, "sets labels_buffer_enabled itself"),
        ({"screen_resolution": "RES_320X240"}, r"pass resolution=\(height, width\)"),
        ({"view": "full"}, "ViZDoom rejected the option view='full'"),
    ],
)
def test_options_the_env_owns_or_vizdoom_rejects(vizdoom: Any, option: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        make_vizdoom_masked_env("VizdoomBasic-v1", **option)


def test_wrapper_needs_labels_buffer(vizdoom: Any) -> None:
    import vizdoom.gymnasium_wrapper  # noqa: F401

    env = gym.make("VizdoomBasic-v1")  # vizdoom's own env: labels buffer off
    with pytest.raises(InputError, match="labels buffer on"):
        VizdoomMaskWrapper(env)
    env.close()


def test_mask_is_the_monsters_labels_buffer_pixels(basic: gym.Env) -> None:
    obs, _ = basic.reset(seed=0)
    monster, weapon = label_named(basic, "Cacodemon"), label_named(basic, "DoomPlayer")
    labels = basic.unwrapped.state.labels_buffer
    is_monster = obs["mask"] == 1
    # Exactly the engine's pixels for the monster: 149 of them at seed 0, class 1, nothing else.
    np.testing.assert_array_equal(is_monster, labels == monster.value)
    assert is_monster.sum() == 149
    assert set(np.unique(obs["mask"])) == {0, 1}
    # The pixels fill the label's bounding box edge to edge (x, y, width, height in pixels).
    rows, cols = np.nonzero(is_monster)
    assert (cols.min(), rows.min()) == (monster.x, monster.y)
    assert (cols.max() + 1, rows.max() + 1) == (monster.x + monster.width, monster.y + monster.height)
    # The image shows something else there than the wall behind it, inside the same box.
    in_box = np.zeros_like(is_monster)
    in_box[monster.y : monster.y + monster.height, monster.x : monster.x + monster.width] = True
    image = obs["image"].astype(float)
    assert np.abs(image[is_monster].mean(0) - image[in_box & ~is_monster].mean(0)).mean() > 15
    # The player's own weapon sprite is labelled but not task-relevant.
    assert (labels == weapon.value).sum() > 0
    assert not obs["mask"][labels == weapon.value].any()


def test_every_medkit_in_view_is_masked(vizdoom: Any) -> None:
    env = make_vizdoom_masked_env("VizdoomHealthGathering-v1")
    obs, _ = env.reset(seed=0)
    labels = env.unwrapped.state.labels
    assert [label.object_name for label in labels] == ["Medikit"] * 6
    # 256 + 29 + 126 + 6 + 10 + 10 pixels, one entry per medkit
    buffer = env.unwrapped.state.labels_buffer
    assert [int((buffer == label.value).sum()) for label in labels] == [256, 29, 126, 6, 10, 10]
    assert (obs["mask"] == 1).sum() == 437
    np.testing.assert_array_equal(obs["mask"], reference_mask(env))
    env.close()


def test_two_classes_get_their_own_values(vizdoom: Any) -> None:
    env = make_vizdoom_masked_env("VizdoomDeadlyCorridor-v1")
    obs, _ = env.reset(seed=0)
    buffer = env.unwrapped.state.labels_buffer
    pixels = {label.object_name: int((buffer == label.value).sum()) for label in env.unwrapped.state.labels}
    assert pixels == {"GreenArmor": 3, "Zombieman": 287, "ShotgunGuy": 280}
    assert (obs["mask"] == 1).sum() == 287 + 280  # monster
    assert (obs["mask"] == 2).sum() == 3  # armor, far down the corridor
    env.close()
    # Classes picked in another order swap the values.
    env = make_vizdoom_masked_env("VizdoomDeadlyCorridor-v1", classes=("armor", "monster"))
    swapped, _ = env.reset(seed=0)
    np.testing.assert_array_equal(swapped["mask"], np.choose(obs["mask"], [0, 2, 1]).astype(np.uint8))
    assert get_mask_classes(env) == ("armor", "monster")
    env.close()
    # A lone object of class 2 gets value 2 (basic at seed 0: no corpse yet, 149 monster pixels).
    env = make_vizdoom_masked_env(
        "VizdoomBasic-v1", classes={"corpse": "DeadCacodemon", "monster": "Cacodemon"}
    )
    obs, _ = env.reset(seed=0)
    assert (obs["mask"] == 2).sum() == obs["mask"].astype(bool).sum() == 149
    env.close()


def test_mask_moves_only_with_the_monster_on_screen(basic: gym.Env) -> None:
    obs, _ = basic.reset(seed=0)
    for _ in range(5):  # standing still: the (static) monster's mask does not change
        new, *_ = basic.step(BASIC_NOOP)
        np.testing.assert_array_equal(new["mask"], obs["mask"])
    before = np.nonzero(obs["mask"])[1].mean()
    for _ in range(8):  # strafing left: the monster slides right on screen
        obs, *_ = basic.step(BASIC_LEFT)
    assert np.nonzero(obs["mask"])[1].mean() > before + 2


def test_bullet_puffs_are_labelled_but_not_masked(basic: gym.Env) -> None:
    basic.reset(seed=0)
    for _ in range(20):
        obs, *_ = basic.step(BASIC_ATTACK)
        puff = label_named(basic, "BulletPuff")
        labels = basic.unwrapped.state.labels_buffer
        if puff is not None and (labels == puff.value).any():
            assert not obs["mask"][labels == puff.value].any()
            return
    pytest.fail("no bullet puff on screen in 20 shots at seed 0")


def test_turning_without_the_goal_in_view_keeps_the_mask_empty(vizdoom: Any) -> None:
    env = make_vizdoom_masked_env("VizdoomMyWayHome-v1")
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        new, *_ = env.step(MY_WAY_HOME_TURN_LEFT)
        assert not np.array_equal(new["image"], obs["image"])  # the view turns
        assert not new["mask"].any()  # no armor in view
        obs = new
    env.close()


def test_goal_armor_is_masked_when_in_view(vizdoom: Any) -> None:
    env = make_vizdoom_masked_env("VizdoomMyWayHome-v1")
    env.reset(seed=10)  # this start faces the armor after two steps
    env.step(2)
    obs, *_ = env.step(2)
    armor = label_named(env, "GreenArmor")
    assert armor is not None
    np.testing.assert_array_equal(obs["mask"] == 1, env.unwrapped.state.labels_buffer == armor.value)
    assert obs["mask"].sum() > 0
    env.close()


def test_final_observation_has_an_empty_mask(vizdoom: Any) -> None:
    env = make_vizdoom_masked_env("VizdoomBasic-v1", episode_timeout=20)  # a DoomGame option
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        obs, _, terminated, truncated, _ = env.step(BASIC_NOOP)
        steps, done = steps + 1, terminated or truncated
    assert steps == 20  # the timeout counts the tics after basic.cfg's episode_start_time
    assert env.unwrapped.state is None
    assert not obs["image"].any()
    assert not obs["mask"].any()
    env.close()


def test_subproc_vec_env_builds_games_in_workers(vizdoom: Any) -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    thunk = functools.partial(make_vizdoom_masked_env, "VizdoomBasic-v1")
    venv = SubprocVecEnv([thunk, thunk], start_method="forkserver")  # SB3's default: the thunk is pickled
    try:
        venv.seed(7)  # worker i resets with seed 7 + i
        obs = venv.reset()
        assert obs["image"].shape == (2, *DEFAULT_RESOLUTION, 3)
        assert obs["mask"].shape == (2, *DEFAULT_RESOLUTION)
        local = make_vizdoom_masked_env("VizdoomBasic-v1")
        for i in range(2):
            expected, _ = local.reset(seed=7 + i)
            np.testing.assert_array_equal(obs["image"][i], expected["image"])
            np.testing.assert_array_equal(obs["mask"][i], expected["mask"])
        local.close()
        obs, _, _, _ = venv.step(np.array([BASIC_LEFT, BASIC_RIGHT]))
        assert obs["mask"].sum(axis=(1, 2)).min() > 0
    finally:
        venv.close()
