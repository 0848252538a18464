"""Distractor variants: the same MiniGrid task with extra objects that are not task-relevant.

After every reset, :class:`DistractorWrapper` drops ``n`` objects (types among ball / box / key
that are not mask classes, random colours) into free cells, drawn from the env's ``np_random`` so
that ``reset(seed=...)`` fixes them. They never block the solution: a placement is kept only if
every object the agent could reach before (keys, doors, goals, boxes, balls, lava, ...) is still
reachable, by a breadth-first search in which doors, goals and floors are passable, the task's
own keys, balls and boxes are too (the agent can pick them up and carry them away), and walls,
lava and the distractors block. Being of non-relevant types, distractors
never appear in the mask; they test whether attention generalises to clutter.

In small envs some layouts have no room (DoorKey-5x5 with one distractor: about a third of
them). Such a layout is regenerated, up to :data:`MAX_LAYOUT_TRIES` times, by resetting again
from the env's own random stream, so ``reset(seed=...)`` stays deterministic; the distractor
variant therefore draws from the layouts that have room for its distractors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from minigrid.core.constants import COLOR_NAMES
from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Box, Key, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from camal_rl.envs.minigrid import require_minigrid
from camal_rl.errors import InputError

DISTRACTOR_TYPES: tuple[str, ...] = ("ball", "box", "key")
"""Object types a distractor may take (those not among the env's mask classes)."""

PASSABLE_TYPES = frozenset({"door", "goal", "floor"})
"""Object types the reachability search walks through (doors whatever their state: keys exist)."""

_CONSTRUCTORS: dict[str, Callable[[str], WorldObj]] = {"ball": Ball, "box": Box, "key": Key}

Cell = tuple[int, int]

MAX_LAYOUT_TRIES = 100
"""Layouts tried per reset before giving up on an env too small for the distractors."""


def distractor_types(mask_classes: Sequence[str]) -> tuple[str, ...]:
    """Distractor types available when ``mask_classes`` are task-relevant: ball / box / key minus
    those classes."""
    return tuple(t for t in DISTRACTOR_TYPES if t not in mask_classes)


def reachable_cells(
    grid: Grid, start: Cell, obstacles: frozenset[Cell] | set[Cell] = frozenset()
) -> set[Cell]:
    """Cells the agent can walk to from ``start`` (4-connected).

    Enterable: empty cells, :data:`PASSABLE_TYPES`, and objects the agent can pick up and carry
    away (keys, balls, boxes of the task) unless their cell is in ``obstacles`` (the distractors).
    Walls, lava and ``obstacles`` block.
    """
    seen = {start}
    queue = deque([start])
    while queue:
        i, j = queue.popleft()
        for ni, nj in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if not (0 <= ni < grid.width and 0 <= nj < grid.height) or (ni, nj) in seen:
                continue
            cell = grid.get(ni, nj)
            if (
                cell is None
                or cell.type in PASSABLE_TYPES
                or (cell.can_pickup() and (ni, nj) not in obstacles)
            ):
                seen.add((ni, nj))
                queue.append((ni, nj))
    return seen


def reachable_objects(
    grid: Grid, start: Cell, obstacles: frozenset[Cell] | set[Cell] = frozenset()
) -> set[Cell]:
    """Cells holding a non-wall object, ``obstacles`` excluded, that the agent can enter or stand
    next to from ``start`` (see :func:`reachable_cells`)."""
    cells = reachable_cells(grid, start, obstacles)
    found = set()
    for j in range(grid.height):
        for i in range(grid.width):
            obj = grid.get(i, j)
            if obj is None or obj.type == "wall" or (i, j) in obstacles:
                continue
            near = ((i, j), (i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1))
            if any(c in cells for c in near):
                found.add((i, j))
    return found


def place_distractors(env: MiniGridEnv, n: int, types: Sequence[str], rng: np.random.Generator) -> list[Cell]:
    """Put ``n`` distractors in free cells of ``env.grid`` without cutting the agent off from any
    object it could reach before.

    Free cells (empty, not the agent's) are tried in a random order; each gets a random type and
    colour and is kept if :func:`reachable_objects`, with the distractors as obstacles, still
    covers everything it did before.

    :param env: a MiniGrid env just after its reset.
    :param n: number of distractors.
    :param types: object types to draw from (see :func:`distractor_types`).
    :param rng: random generator (the env's ``np_random``, for seeded resets).
    :return: the (i, j) cells that received a distractor, in placement order.
    :raises InputError: fewer than ``n`` cells can take a distractor; the grid is left unchanged.
    """
    grid = env.grid
    start = (int(env.agent_pos[0]), int(env.agent_pos[1]))
    free = [(i, j) for j in range(grid.height) for i in range(grid.width) if grid.get(i, j) is None]
    free = [cell for cell in free if cell != start]
    before = reachable_objects(grid, start)
    placed: list[Cell] = []
    for index in rng.permutation(len(free)):
        if len(placed) == n:
            break
        i, j = free[index]
        kind = types[int(rng.integers(len(types)))]
        obj = _CONSTRUCTORS[kind](COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))])
        grid.set(i, j, obj)
        if before <= reachable_objects(grid, start, {*placed, (i, j)}):
            obj.init_pos = obj.cur_pos = (i, j)
            placed.append((i, j))
        else:
            grid.set(i, j, None)
    if len(placed) < n:
        for i, j in placed:
            grid.set(i, j, None)
        raise InputError(
            f"only {len(placed)} of the {n} requested distractors fit in {_env_name(env)} "
            f"({grid.width}x{grid.height}) without blocking the way to the task's objects; "
            f"use distractors<={len(placed)} or a larger env"
        )
    return placed


def _env_name(env: MiniGridEnv) -> str:
    return env.spec.id if env.spec is not None else type(env).__name__


class DistractorWrapper(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """Add ``n`` non-relevant objects to a MiniGrid env after every reset (see the module doc).

    Put it directly on the MiniGrid env, under any observation wrapper: its reset returns the
    env's own (symbolic) observation, regenerated after the distractors are placed.

    :param env: a MiniGrid env.
    :param n: number of distractors per episode.
    :param types: object types to draw from; by default ball / box / key.
    """

    def __init__(self, env: gym.Env, n: int, types: Sequence[str] = DISTRACTOR_TYPES) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, n=n, types=tuple(types))
        self._minigrid = require_minigrid(env, "DistractorWrapper")
        super().__init__(env)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise InputError(f"distractors must be an integer >= 0, got {n!r}")
        self.types = tuple(types)
        if n > 0 and not self.types:
            raise InputError(
                "no distractor type is left: ball, box and key are all task-relevant classes of "
                f"{_env_name(self._minigrid)}; use distractors=0 or pass classes= without one of them"
            )
        unknown = [t for t in self.types if t not in DISTRACTOR_TYPES]
        if unknown:
            raise InputError(f"distractor types must be among {', '.join(DISTRACTOR_TYPES)}, got {unknown}")
        if env.observation_space is not self._minigrid.observation_space:
            raise InputError(
                "apply DistractorWrapper directly on the MiniGrid env, before any observation wrapper"
            )
        self.n = int(n)
        self.distractor_cells: list[Cell] = []
        """Cells (i, j) of this episode's distractors."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        env = self._minigrid
        for attempt in range(MAX_LAYOUT_TRIES):
            try:
                self.distractor_cells = place_distractors(env, self.n, self.types, env.np_random)
                return env.gen_obs(), info
            except InputError:
                if attempt == MAX_LAYOUT_TRIES - 1:
                    raise
                # No room in this layout: draw another one from the env's own random stream.
                _, info = self.env.reset(options=options)
        raise AssertionError("unreachable")
