"""MiniGrid masked envs: pixel alignment, the registered ids, distractors and bad input."""

from __future__ import annotations

import pickle
from collections import deque
from functools import partial

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.constants import DIR_TO_VEC
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava, Wall, WorldObj
from minigrid.minigrid_env import MiniGridEnv
from minigrid.wrappers import RGBImgObsWrapper, RGBImgPartialObsWrapper

import camal_rl.envs as envs
from camal_rl.envs import (
    RGBMaskObsWrapper,
    RGBMaskPartialObsWrapper,
    family_of,
    format_env_table,
    get_mask_classes,
    list_envs,
    make_masked_env,
    minigrid_ids,
)
from camal_rl.errors import InputError, WrongEnvTypeError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

IDS = minigrid_ids()
VIEWS = ("partial", "full")
DIRECTIONS = (0, 1, 2, 3)  # right, down, left, up

# ---------------------------------------------------------------------------------------------
# A 9x9 room with known objects at known cells; the agent stands at (4, 4).
# The ball at (2, 2) is walled in on all eight sides: never visible in the agent's view.
# ---------------------------------------------------------------------------------------------
AGENT_POS = (4, 4)
HIDDEN = (2, 2)
ENCLOSURE = [(i, j) for i in (1, 2, 3) for j in (1, 2, 3) if (i, j) != HIDDEN]
OBJECTS: dict[tuple[int, int], WorldObj] = {
    (6, 3): Key("yellow"),
    (4, 6): Door("blue"),
    (7, 7): Goal(),
    (6, 6): Lava(),
    (5, 2): Box("purple"),
    (7, 4): Ball("green"),
    HIDDEN: Ball("red"),
}
CLASSES = ("key", "door", "goal", "lava", "box", "ball")
VALUE = {name: k for k, name in enumerate(CLASSES, start=1)}


class LayoutEnv(MiniGridEnv):
    """The room above, agent facing ``agent_dir``."""

    def __init__(self, agent_dir: int, **kwargs: object) -> None:
        self.start_dir = agent_dir
        super().__init__(
            mission_space=MissionSpace(mission_func=lambda: "look"), grid_size=9, max_steps=20, **kwargs
        )

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        for cell in ENCLOSURE:
            self.grid.set(*cell, Wall())
        for cell, obj in OBJECTS.items():
            self.grid.set(*cell, obj)
        self.agent_pos = AGENT_POS
        self.agent_dir = self.start_dir
        self.mission = "look"


def view_cell(agent_dir: int, cell: tuple[int, int], size: int = 7) -> tuple[int, int]:
    """(column, row) of world ``cell`` in the agent's view, by plain vector algebra: the agent sits
    at the bottom centre looking up; ``forward`` cells ahead is ``forward`` rows up, ``right``
    cells to its right is ``right`` columns right."""
    fx, fy = DIR_TO_VEC[agent_dir]
    rx, ry = -fy, fx
    dx, dy = cell[0] - AGENT_POS[0], cell[1] - AGENT_POS[1]
    forward, right = dx * fx + dy * fy, dx * rx + dy * ry
    return size // 2 + right, size - 1 - forward


def drawn_tile(
    obj: WorldObj | None, agent_dir: int | None = None, highlight: bool = False, tile_size: int = 8
) -> np.ndarray:
    """MiniGrid's own tile for ``obj``, as ``Grid.render`` pastes it into the uint8 frame
    (``render_tile`` returns the float supersampled mean; pasting truncates)."""
    return Grid.render_tile(obj, agent_dir=agent_dir, highlight=highlight, tile_size=tile_size).astype(
        np.uint8
    )


def block(array: np.ndarray, col: int, row: int, tile: int) -> np.ndarray:
    return array[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile]


def test_view_cell_by_hand() -> None:
    # Facing up, the key at (6, 3) is 1 ahead and 2 right: column 3 + 2, row 6 - 1.
    assert view_cell(3, (6, 3)) == (5, 5)
    # Facing right, it is 2 ahead and 1 to the left.
    assert view_cell(0, (6, 3)) == (2, 4)
    # Facing down, the door at (4, 6) is 2 straight ahead.
    assert view_cell(1, (4, 6)) == (3, 4)
    # Facing left, the walled-in ball at (2, 2) is 2 ahead and 2 right.
    assert view_cell(2, HIDDEN) == (5, 4)


@pytest.mark.parametrize("tile", [8, 5])
@pytest.mark.parametrize("agent_dir", DIRECTIONS)
@pytest.mark.parametrize("carrying", [False, True])
def test_partial_view_alignment(agent_dir: int, tile: int, carrying: bool) -> None:
    env = RGBMaskPartialObsWrapper(LayoutEnv(agent_dir), (*CLASSES, "agent"), tile)
    env.reset(seed=0)
    if carrying:
        env.unwrapped.carrying = Key("grey")
    obs = env.observation(None)
    image, mask = obs["image"], obs["mask"]
    assert image.shape == (7 * tile, 7 * tile, 3)
    assert mask.shape == (7 * tile, 7 * tile)

    expected = np.zeros_like(mask)
    in_view = {cell: view_cell(agent_dir, cell) for cell in OBJECTS}
    in_view = {cell: (c, r) for cell, (c, r) in in_view.items() if 0 <= c < 7 and 0 <= r < 7}
    for cell, (col, row) in in_view.items():
        obj = OBJECTS[cell]
        if cell == HIDDEN:
            # Hidden behind walls: drawn as an unseen (empty, unhighlighted) tile, not in the mask.
            np.testing.assert_array_equal(block(image, col, row, tile), drawn_tile(None, tile_size=tile))
            continue
        expected[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = VALUE[obj.type]
        drawn = drawn_tile(obj, highlight=True, tile_size=tile)
        np.testing.assert_array_equal(block(image, col, row, tile), drawn)
    # The agent is drawn on top at the bottom centre (over the carried key) and labelled "agent".
    agent_tile = drawn_tile(Key("grey") if carrying else None, agent_dir=3, highlight=True, tile_size=tile)
    np.testing.assert_array_equal(block(image, 3, 6, tile), agent_tile)
    expected[6 * tile :, 3 * tile : 4 * tile] = len(CLASSES) + 1
    np.testing.assert_array_equal(mask, expected)
    # The walled-in ball is in view (geometrically) facing left and up, and never in the mask.
    assert (HIDDEN in in_view) == (agent_dir in (2, 3))

    # Without the agent class, the agent's cell shows what it carries.
    plain = RGBMaskPartialObsWrapper(env.unwrapped, CLASSES, tile).observation(None)["mask"]
    assert (block(plain, 3, 6, tile) == (VALUE["key"] if carrying else 0)).all()


@pytest.mark.parametrize("tile", [8, 5])
@pytest.mark.parametrize("agent_dir", DIRECTIONS)
def test_full_view_alignment(agent_dir: int, tile: int) -> None:
    env = RGBMaskObsWrapper(LayoutEnv(agent_dir, highlight=False), CLASSES, tile)
    obs, _ = env.reset(seed=0)
    image, mask = obs["image"], obs["mask"]
    assert image.shape == (9 * tile, 9 * tile, 3)
    assert mask.shape == (9 * tile, 9 * tile)

    expected = np.zeros_like(mask)
    for (col, row), obj in OBJECTS.items():  # in the full view, everything is drawn, hidden ball too
        expected[row * tile : (row + 1) * tile, col * tile : (col + 1) * tile] = VALUE[obj.type]
        np.testing.assert_array_equal(block(image, col, row, tile), drawn_tile(obj, tile_size=tile))
    np.testing.assert_array_equal(mask, expected)
    agent_tile = drawn_tile(None, agent_dir=agent_dir, tile_size=tile)
    np.testing.assert_array_equal(block(image, *AGENT_POS, tile), agent_tile)
    assert mask.sum() == tile * tile * sum(VALUE[obj.type] for obj in OBJECTS.values())


@pytest.mark.parametrize("agent_dir", DIRECTIONS)
def test_images_equal_minigrid_wrappers_on_layout(agent_dir: int) -> None:
    for view, ours, theirs in (
        ("partial", RGBMaskPartialObsWrapper, RGBImgPartialObsWrapper),
        ("full", RGBMaskObsWrapper, RGBImgObsWrapper),
    ):
        for tile in (8, 5, 1):
            a = ours(LayoutEnv(agent_dir), CLASSES, tile).reset(seed=0)[0]["image"]
            b = theirs(LayoutEnv(agent_dir), tile_size=tile).reset(seed=0)[0]["image"]
            np.testing.assert_array_equal(a, b, err_msg=f"{view} tile {tile}")


# ---------------------------------------------------------------------------------------------
# Every registered id
# ---------------------------------------------------------------------------------------------


def relevant_layout(env: gym.Env) -> list[tuple[int, int, str]]:
    """(column, row, type) of every task-relevant object on the grid, read from the grid."""
    grid = env.unwrapped.grid
    classes = get_mask_classes(env)
    return [
        (i, j, obj.type)
        for j in range(grid.height)
        for i in range(grid.width)
        if (obj := grid.get(i, j)) is not None and obj.type in classes
    ]


def mask_from_layout(
    layout: list[tuple[int, int, str]], classes: tuple[str, ...], shape: tuple[int, ...], tile: int
) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for i, j, kind in layout:
        mask[j * tile : (j + 1) * tile, i * tile : (i + 1) * tile] = classes.index(kind) + 1
    return mask


def test_registered_families() -> None:
    assert len(IDS) == 75
    assert "MiniGrid-Playground-v0" not in IDS
    assert not [i for i in IDS if i.startswith("MiniGrid-WFC")]
    assert all(f"camal_rl/{i}" in gym.registry for i in IDS)
    assert family_of("MiniGrid-UnlockPickup-v0") == "UnlockPickup"
    assert family_of("camal_rl/MiniGrid-Unlock-v0") == "Unlock"
    assert family_of("MiniGrid-BlockedUnlockPickup-v0") == "BlockedUnlockPickup"
    assert family_of("MiniGrid-Dynamic-Obstacles-Random-6x6-v0") == "DynamicObstacles"
    assert family_of("MiniGrid-LavaCrossingS9N1-v0") == "LavaCrossing"
    assert family_of("MiniGrid-SimpleCrossingS9N1-v0") == "SimpleCrossing"
    assert family_of("MiniGrid-Playground-v0") is None
    assert family_of("CartPole-v1") is None


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("view", VIEWS)
def test_check_env(env_id: str, view: str) -> None:
    env = gym.make(f"camal_rl/{env_id}", view=view)
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_determinism_spaces_and_rgb_parity(env_id: str) -> None:
    """Same seed and actions: identical observations, inside their spaces, and images equal to
    MiniGrid's own RGB wrappers step by step."""
    actions = np.random.default_rng(1).integers(0, 6, size=6)
    for view, rgb in (("partial", RGBImgPartialObsWrapper), ("full", RGBImgObsWrapper)):
        a, b = make_masked_env(env_id, view=view), make_masked_env(env_id, view=view)
        reference = rgb(gym.make(env_id, disable_env_checker=True))
        obs_a, obs_b, obs_ref = a.reset(seed=3)[0], b.reset(seed=3)[0], reference.reset(seed=3)[0]
        for action in [None, *actions]:
            if action is not None:
                obs_a, obs_b, obs_ref = (e.step(int(action))[0] for e in (a, b, reference))
            assert set(obs_a) == {"image", "mask"}
            assert a.observation_space.contains(obs_a)
            np.testing.assert_array_equal(obs_a["image"], obs_b["image"])
            np.testing.assert_array_equal(obs_a["mask"], obs_b["mask"])
            np.testing.assert_array_equal(obs_a["image"], obs_ref["image"])


@pytest.mark.parametrize("env_id", IDS)
def test_full_mask_is_the_relevant_object_layout(env_id: str) -> None:
    """Full view: the mask is exactly the relevant objects' cells, so it changes exactly when
    they do (pick-ups, drops, moving obstacles), not when the agent turns or walks."""
    tile = 4
    env = make_masked_env(env_id, view="full", tile_size=tile)
    classes = get_mask_classes(env)
    obs, _ = env.reset(seed=0)
    layout = relevant_layout(env)
    np.testing.assert_array_equal(obs["mask"], mask_from_layout(layout, classes, obs["image"].shape, tile))
    for action in np.random.default_rng(0).integers(0, 6, size=8):
        previous_mask, previous_layout = obs["mask"], layout
        obs, _, terminated, truncated, _ = env.step(int(action))
        layout = relevant_layout(env)
        np.testing.assert_array_equal(
            obs["mask"], mask_from_layout(layout, classes, obs["image"].shape, tile)
        )
        assert np.array_equal(obs["mask"], previous_mask) == (layout == previous_layout)
        if terminated or truncated:
            break


def test_turning_in_place_changes_image_not_mask() -> None:
    env = gym.make("camal_rl/MiniGrid-Empty-5x5-v0", view="full")
    obs, _ = env.reset(seed=0)
    turned, *_ = env.step(env.unwrapped.actions.left)
    assert not np.array_equal(obs["image"], turned["image"])  # the agent's triangle turned
    np.testing.assert_array_equal(obs["mask"], turned["mask"])
    # The goal (class 1) sits at (3, 3): one 8x8 block.
    assert obs["mask"].sum() == 64
    assert (obs["mask"][24:32, 24:32] == 1).all()
    # With the agent class, the agent's block (1, 1) turns from 0 to 2 and stays when turning.
    with_agent = gym.make("camal_rl/MiniGrid-Empty-5x5-v0", view="full", include_agent=True)
    mask = with_agent.reset(seed=0)[0]["mask"]
    assert get_mask_classes(with_agent) == ("goal", "agent")
    assert (mask[8:16, 8:16] == 2).all()
    assert mask.sum() == 64 + 2 * 64


def test_pickle_round_trip() -> None:
    for view in VIEWS:
        env = make_masked_env("MiniGrid-KeyCorridorS3R2-v0", view=view, distractors=1)
        env.reset(seed=2)
        for dump in (pickle.dumps, cloudpickle.dumps):
            clone = pickle.loads(dump(env))
            for action in (2, 1, 2, 3):
                ours, theirs = env.step(action)[0], clone.step(action)[0]
                np.testing.assert_array_equal(ours["image"], theirs["image"])
                np.testing.assert_array_equal(ours["mask"], theirs["mask"])
            assert get_mask_classes(clone) == ("key", "door", "ball")


def test_subproc_vec_env() -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env_fn = partial(make_masked_env, "MiniGrid-DoorKey-5x5-v0", view="partial", tile_size=4)
    vec = SubprocVecEnv([env_fn, env_fn], start_method="fork")
    try:
        vec.seed(0)
        obs = vec.reset()
        assert obs["image"].shape == (2, 28, 28, 3)
        assert obs["mask"].shape == (2, 28, 28)
        obs, *_ = vec.step(np.array([2, 1]))
        assert obs["mask"].dtype == np.uint8
        assert obs["mask"].max() <= 3
        assert vec.get_attr("mask_classes") == [("key", "door", "goal")] * 2
    finally:
        vec.close()


# ---------------------------------------------------------------------------------------------
# Registration, factory, listing
# ---------------------------------------------------------------------------------------------


def test_gymnasium_make_takes_factory_keywords() -> None:
    env = gym.make("camal_rl/MiniGrid-DoorKey-5x5-v0", view="full", tile_size=3, classes=("key", "door"))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (15, 15, 3)
    assert obs["mask"].shape == (15, 15)
    assert get_mask_classes(env) == ("key", "door") == env.unwrapped.mask_classes
    assert env.observation_space["mask"] == gym.spaces.Box(0, 2, (15, 15), np.uint8)
    # DoorKey-5x5 has one key and one door, each one 3x3 block; the goal is not a class here.
    assert np.bincount(obs["mask"].ravel(), minlength=3).tolist() == [225 - 18, 9, 9]
    same = make_masked_env("camal_rl/MiniGrid-DoorKey-5x5-v0", view="full", tile_size=3, classes="key,door")
    np.testing.assert_array_equal(same.reset(seed=0)[0]["mask"], obs["mask"])


def test_any_minigrid_id_with_explicit_classes() -> None:
    env = make_masked_env("MiniGrid-Playground-v0", view="full", classes=("door",))
    obs, _ = env.reset(seed=0)
    assert get_mask_classes(env) == ("door",)
    assert obs["mask"].max() == 1
    with pytest.raises(InputError, match="no default task-relevant classes"):
        make_masked_env("MiniGrid-Playground-v0")


def test_list_envs_and_table() -> None:
    rows = [row for row in list_envs() if "MiniGrid" in row.env_id]
    assert len(rows) == 2 * len(IDS)
    by_key = {(row.env_id, row.view): row for row in rows}
    assert by_key[("camal_rl/MiniGrid-DoorKey-5x5-v0", "partial")].image_shape == (56, 56, 3)
    assert by_key[("camal_rl/MiniGrid-DoorKey-5x5-v0", "full")].image_shape == (40, 40, 3)
    assert by_key[("camal_rl/MiniGrid-KeyCorridorS3R1-v0", "full")].image_shape == (24, 56, 3)
    assert by_key[("camal_rl/MiniGrid-DoorKey-5x5-v0", "full")].mask_classes == ("key", "door", "goal")
    table = format_env_table(rows[:2]).splitlines()
    assert table[0].split()[:2] == ["id", "view"]
    assert table[1].split() == [
        "camal_rl/MiniGrid-BlockedUnlockPickup-v0",
        "partial",
        "56x56x3",
        "key,",
        "door,",
        "box,",
        "ball",
    ]


# ---------------------------------------------------------------------------------------------
# Distractors
# ---------------------------------------------------------------------------------------------


def reachable_objects(
    grid: Grid, start: tuple[int, int], blocked: set[tuple[int, int]]
) -> set[tuple[int, int]]:
    """Non-wall objects (``blocked`` excluded) the agent can enter or stand next to, walking
    through empty cells, doors, goals, and keys / balls / boxes it can pick up unless ``blocked``."""
    seen, queue = {start}, deque([start])
    while queue:
        i, j = queue.popleft()
        for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if n in seen or not (0 <= n[0] < grid.width and 0 <= n[1] < grid.height):
                continue
            obj = grid.get(*n)
            kind = "empty" if obj is None else obj.type
            if kind in ("empty", "door", "goal") or (kind in ("key", "ball", "box") and n not in blocked):
                seen.add(n)
                queue.append(n)
    return {
        (i, j)
        for i in range(grid.width)
        for j in range(grid.height)
        if (obj := grid.get(i, j)) is not None
        and obj.type != "wall"
        and (i, j) not in blocked
        and {(i, j), (i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)} & seen
    }


def distractors_of(env: gym.Env) -> list[tuple[int, int, str, str]]:
    grid = env.unwrapped.grid
    cells = env.get_wrapper_attr("distractor_cells")
    return [(i, j, grid.get(i, j).type, grid.get(i, j).color) for i, j in cells]


@pytest.mark.parametrize("view", VIEWS)
def test_distractors_doorkey(view: str) -> None:
    tile = 8
    env = make_masked_env("MiniGrid-DoorKey-8x8-v0", view=view, distractors=3)
    twin = make_masked_env("MiniGrid-DoorKey-8x8-v0", view=view, distractors=3)
    clean = make_masked_env("MiniGrid-DoorKey-8x8-v0", view="full")
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        placed = distractors_of(env)
        twin.reset(seed=seed)
        assert placed == distractors_of(twin)  # same seed, same cells, types and colours
        # Three objects, of types that are not classes of DoorKey (key, door, goal).
        assert len(placed) == 3
        assert {kind for *_, kind, _ in placed} <= {"ball", "box"}
        grid = env.unwrapped.grid
        kinds = [obj.type for obj in grid.grid if obj is not None and obj.type != "wall"]
        assert sorted(kinds) == sorted(["key", "door", "goal"] + [kind for *_, kind, _ in placed])
        # The agent still reaches the key, the door and the goal.
        start = tuple(int(v) for v in env.unwrapped.agent_pos)
        relevant = {(i, j) for i, j, _ in relevant_layout(env)}
        assert relevant <= reachable_objects(grid, start, {(i, j) for i, j, *_ in placed})
        if view == "full":
            # Never in the mask; the image differs from the clean env exactly at the distractors.
            assert all((block(obs["mask"], i, j, tile) == 0).all() for i, j, *_ in placed)
            plain = clean.reset(seed=seed)[0]["image"]
            differs = {
                (i, j)
                for i in range(8)
                for j in range(8)
                if not np.array_equal(block(obs["image"], i, j, tile), block(plain, i, j, tile))
            }
            assert differs == {(i, j) for i, j, *_ in placed}
            np.testing.assert_array_equal(obs["mask"], clean.reset(seed=seed)[0]["mask"])
    env.reset(seed=5)
    cells_5 = [c[:2] for c in distractors_of(env)]
    env.reset(seed=6)
    assert cells_5 != [c[:2] for c in distractors_of(env)]


NO_ROOM = {"MiniGrid-KeyCorridorS3R1-v0"}  # 7x3: three one-cell rooms joined by doors


@pytest.mark.parametrize("env_id", IDS)
def test_one_distractor_never_blocks(env_id: str) -> None:
    classes = envs.default_classes(env_id)
    if {"ball", "box", "key"} <= set(classes):
        with pytest.raises(InputError, match="no distractor type is left"):
            make_masked_env(env_id, distractors=1)
        return
    env = make_masked_env(env_id, view="full", distractors=1)
    clean = make_masked_env(env_id, view="full")
    if env_id in NO_ROOM:
        with pytest.raises(InputError, match="only 0 of the 1 requested distractors fit"):
            env.reset(seed=0)
        return
    seed = 1 if env_id == "MiniGrid-DoorKey-5x5-v0" else 0  # seed 0 of DoorKey-5x5 has no room
    obs, _ = env.reset(seed=seed)
    clean_obs, _ = clean.reset(seed=seed)
    ((i, j, kind, _),) = distractors_of(env)
    assert kind not in classes
    start = tuple(int(v) for v in env.unwrapped.agent_pos)
    before = reachable_objects(clean.unwrapped.grid, start, set())
    assert before <= reachable_objects(env.unwrapped.grid, start, {(i, j)})
    np.testing.assert_array_equal(obs["mask"], clean_obs["mask"])
    assert not np.array_equal(obs["image"], clean_obs["image"])


def test_cramped_doorkey_5x5_redraws_exactly_when_no_cell_fits() -> None:
    """DoorKey-5x5 has 9 inner cells in two one-cell-wide rooms. For each seed, brute force every
    free cell with the test's own search: where a cell keeps the key, door and goal reachable,
    reset keeps the seed's layout and places a distractor in such a cell; where none does, reset
    draws another layout (deterministically: the same seed gives the same one) that has room."""
    env = make_masked_env("MiniGrid-DoorKey-5x5-v0", view="full", distractors=1)
    again = make_masked_env("MiniGrid-DoorKey-5x5-v0", view="full", distractors=1)
    clean = make_masked_env("MiniGrid-DoorKey-5x5-v0", view="full")
    outcomes = []
    for seed in range(20):
        clean_obs, _ = clean.reset(seed=seed)
        grid = clean.unwrapped.grid
        start = tuple(int(v) for v in clean.unwrapped.agent_pos)
        relevant = {(i, j) for i, j, _ in relevant_layout(clean)}
        fitting = []
        for i in range(grid.width):
            for j in range(grid.height):
                if grid.get(i, j) is None and (i, j) != start:
                    grid.set(i, j, Ball())
                    if relevant <= reachable_objects(grid, start, {(i, j)}):
                        fitting.append((i, j))
                    grid.set(i, j, None)
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs["image"], again.reset(seed=seed)[0]["image"])
        ((i, j, *_),) = distractors_of(env)
        if fitting:
            assert (i, j) in fitting
            np.testing.assert_array_equal(obs["mask"], clean_obs["mask"])
        else:
            assert not np.array_equal(obs["mask"], clean_obs["mask"])  # another layout
            start = tuple(int(v) for v in env.unwrapped.agent_pos)
            assert {(a, b) for a, b, _ in relevant_layout(env)} <= reachable_objects(
                env.unwrapped.grid, start, {(i, j)}
            )
        outcomes.append(bool(fitting))
    assert True in outcomes
    assert False in outcomes


def test_too_many_distractors() -> None:
    env = make_masked_env("MiniGrid-DoorKey-5x5-v0", distractors=20)
    with pytest.raises(InputError, match=r"of the 20 requested distractors fit .* use distractors<="):
        env.reset(seed=0)
    with pytest.raises(InputError, match="integer >= 0"):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", distractors=-1)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_unknown_id_lists_close_matches() -> None:
    with pytest.raises(InputError, match=r"close matches: camal_rl/MiniGrid-DoorKey-5x5-v0") as info:
        make_masked_env("MiniGrid-DoorKey-5x5-v1")
    assert "camal-rl envs" in str(info.value)
    with pytest.raises(InputError, match="MiniGrid-DoorKey-8x8-v0"):
        make_masked_env("camal_rl/MiniGrid-DorKey-8x8-v0")


def test_unknown_object_name() -> None:
    with pytest.raises(
        InputError, match=r"unknown MiniGrid object name\(s\) 'keys'; valid names: wall, floor, door, key"
    ):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", classes=("keys", "door"))
    with pytest.raises(InputError, match="more than once"):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", classes=("key", "key"))
    with pytest.raises(InputError, match="at least one"):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", classes=())


def test_non_minigrid_env() -> None:
    for wrapper in (RGBMaskPartialObsWrapper, RGBMaskObsWrapper):
        with pytest.raises(TypeError, match=r"needs a MiniGrid env .*make_masked_env\('VizdoomBasic-v1'\)"):
            wrapper(gym.make("CartPole-v1"), ("key",))
    with pytest.raises(WrongEnvTypeError, match="got CartPoleEnv"):
        make_masked_env("CartPole-v1")
    with pytest.raises(WrongEnvTypeError):
        envs.DistractorWrapper(gym.make("CartPole-v1"), 1)


@pytest.mark.parametrize("tile_size", [0, -1, 2.5, True])
def test_bad_tile_size(tile_size: int) -> None:
    with pytest.raises(InputError, match="tile_size must be an integer >= 1"):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", tile_size=tile_size)
    with pytest.raises(InputError, match="tile_size must be an integer >= 1"):
        RGBMaskObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), ("key",), tile_size)


def test_bad_view() -> None:
    with pytest.raises(InputError, match="unknown view 'top'; use one of partial, full"):
        make_masked_env("MiniGrid-DoorKey-5x5-v0", view="top")
    with pytest.raises(InputError, match="unknown view"):
        envs.mask_wrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), "egocentric", ("key",))


def test_vizdoom_id_rejects_minigrid_options() -> None:
    with pytest.raises(InputError, match="tile_size, distractors only apply to MiniGrid envs"):
        make_masked_env("VizdoomBasic-v1", tile_size=4, distractors=1)
