"""MiniGrid wrappers that emit ``{"image", "mask"}`` observations (see :mod:`camal_rl.envs.base`).

The image is exactly what MiniGrid's ``RGBImgPartialObsWrapper`` (agent's view) or
``RGBImgObsWrapper`` (whole grid) draws. The mask comes from the same grid the renderer draws,
never from pixel colours: each cell is labelled with the class of the object drawn in it and the
label is repeated over the cell's ``tile_size x tile_size`` pixel block.

Partial view: the sub-grid from ``MiniGridEnv.gen_obs_grid`` (rotated so the agent looks up,
invisible cells emptied, the carried object placed on the agent's cell). Objects hidden behind
walls are absent from both image and mask; the carried object is labelled at the agent's cell.
Full view: every object on the grid is drawn and labelled.

With the ``"agent"`` class, the agent's cell is labelled ``agent``: the agent is drawn on top, so
it wins over the object beneath it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.world_object import WorldObj
from minigrid.minigrid_env import MiniGridEnv

from camal_rl.envs.base import image_space, mask_space
from camal_rl.envs.classes import AGENT, validate_classes
from camal_rl.errors import InputError, WrongEnvTypeError

MaskedObs = dict[str, Any]
"""``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}``."""

VIEWS = ("partial", "full")
"""``partial``: the agent's egocentric view; ``full``: the whole grid from above."""


def require_minigrid(env: gym.Env, wrapper: str) -> MiniGridEnv:
    """The ``MiniGridEnv`` under ``env``'s wrappers.

    :param env: environment to check.
    :param wrapper: name of the caller, for the message.
    :raises WrongEnvTypeError: ``env`` is not a MiniGrid env.
    """
    base = env.unwrapped
    if not isinstance(base, MiniGridEnv):
        raise WrongEnvTypeError(
            f"{wrapper} needs a MiniGrid env (minigrid.minigrid_env.MiniGridEnv), got "
            f"{type(base).__name__}. For ViZDoom use camal_rl.envs.make_masked_env('VizdoomBasic-v1'); "
            "for MiniGrid use camal_rl.envs.make_masked_env('MiniGrid-DoorKey-5x5-v0')."
        )
    return base


def check_tile_size(tile_size: int) -> int:
    """:param tile_size: pixels per grid cell; must be an int >= 1.
    :raises InputError: otherwise."""
    if isinstance(tile_size, bool) or not isinstance(tile_size, int | np.integer) or tile_size < 1:
        raise InputError(f"tile_size must be an integer >= 1 (pixels per grid cell), got {tile_size!r}")
    return int(tile_size)


def class_lookup(classes: Sequence[str]) -> dict[str, int]:
    """Object type -> mask value (1-based) for the object classes (``"agent"`` excluded)."""
    return {name: k for k, name in enumerate(classes, start=1) if name != AGENT}


def cell_classes(
    cells: Sequence[WorldObj | None], height: int, width: int, lookup: dict[str, int]
) -> np.ndarray:
    """Mask value of every grid cell.

    :param cells: a ``Grid.grid`` list (row-major: cell (i, j) at ``j * width + i``).
    :param height: grid height (rows).
    :param width: grid width (columns).
    :param lookup: object type -> mask value; other types and empty cells get 0.
    :return: uint8 (height, width), row j / column i = cell (i, j), as the image lays them out.
    """
    get = lookup.get
    values = [0 if cell is None else get(cell.type, 0) for cell in cells]
    return np.fromiter(values, np.uint8, count=height * width).reshape(height, width)


def expand_cells(cells: np.ndarray, tile_size: int) -> np.ndarray:
    """Repeat each cell's value over its ``tile_size x tile_size`` pixel block.

    :param cells: (h, w) per-cell values.
    :param tile_size: pixels per cell.
    :return: (h * tile_size, w * tile_size), same dtype.
    """
    return cells.repeat(tile_size, axis=0).repeat(tile_size, axis=1)


class _MaskObsWrapper(
    gym.ObservationWrapper[MaskedObs, Any, Any],
    gym.utils.RecordConstructorArgs,
):
    """Shared set-up of the two views; subclasses override :meth:`observation` only."""

    view: str

    def __init__(self, env: gym.Env, classes: Sequence[str], tile_size: int = 8) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, classes=tuple(classes), tile_size=tile_size)
        self._minigrid = require_minigrid(env, type(self).__name__)
        gym.ObservationWrapper.__init__(self, env)
        self.tile_size = check_tile_size(tile_size)
        self.mask_classes: tuple[str, ...] = validate_classes(classes)
        """Names of mask values 1..n: value k is ``mask_classes[k - 1]``."""
        self._lookup = class_lookup(self.mask_classes)
        self._agent_value = self.mask_classes.index(AGENT) + 1 if AGENT in self.mask_classes else 0
        height, width = self._grid_shape()
        self.observation_space = spaces.Dict(
            {
                "image": image_space(height * self.tile_size, width * self.tile_size),
                "mask": mask_space(height * self.tile_size, width * self.tile_size, len(self.mask_classes)),
            }
        )
        # docs/design.md: `env.unwrapped.mask_classes` names the classes too.
        setattr(self._minigrid, "mask_classes", self.mask_classes)  # noqa: B010

    def _grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid this view draws."""
        raise NotImplementedError

    def _mask(
        self, cells: Sequence[WorldObj | None], shape: tuple[int, int], agent: tuple[int, int]
    ) -> np.ndarray:
        """Pixel mask of a drawn grid whose agent sits at cell ``agent`` = (column, row)."""
        values = cell_classes(cells, shape[0], shape[1], self._lookup)
        if self._agent_value:
            values[agent[1], agent[0]] = self._agent_value
        return expand_cells(values, self.tile_size)


class RGBMaskPartialObsWrapper(_MaskObsWrapper):
    """The agent's view as ``RGBImgPartialObsWrapper`` draws it, with its mask of task-relevant
    objects (CAMAL, Hundal et al. 2026: the mask is the ground-truth attention region).

    :param env: a MiniGrid env (possibly wrapped).
    :param classes: mask class names, in mask-value order (see :mod:`camal_rl.envs.classes`).
    :param tile_size: pixels per grid cell.
    """

    view = "partial"

    def _grid_shape(self) -> tuple[int, int]:
        size = self._minigrid.agent_view_size
        return size, size

    def observation(self, observation: Any) -> MaskedObs:
        env = self._minigrid
        # One obs grid per step, shared by image and mask; the drawing is get_pov_render's.
        grid, vis_mask = env.gen_obs_grid()
        size = env.agent_view_size
        agent = (size // 2, size - 1)
        image = grid.render(self.tile_size, agent_pos=agent, agent_dir=3, highlight_mask=vis_mask)
        return {"image": image, "mask": self._mask(grid.grid, (grid.height, grid.width), agent)}


class RGBMaskObsWrapper(_MaskObsWrapper):
    """The whole grid as ``RGBImgObsWrapper`` draws it, with its mask of task-relevant objects.

    :param env: a MiniGrid env (possibly wrapped).
    :param classes: mask class names, in mask-value order (see :mod:`camal_rl.envs.classes`).
    :param tile_size: pixels per grid cell.
    """

    view = "full"

    def _grid_shape(self) -> tuple[int, int]:
        return self._minigrid.height, self._minigrid.width

    def observation(self, observation: Any) -> MaskedObs:
        env = self._minigrid
        image = env.get_frame(highlight=env.highlight, tile_size=self.tile_size)
        agent = (int(env.agent_pos[0]), int(env.agent_pos[1]))
        return {"image": image, "mask": self._mask(env.grid.grid, (env.height, env.width), agent)}


def mask_wrapper(env: gym.Env, view: str, classes: Sequence[str], tile_size: int = 8) -> _MaskObsWrapper:
    """Wrap a MiniGrid env in the masked-observation wrapper of ``view``.

    :param env: a MiniGrid env (possibly wrapped).
    :param view: ``"partial"`` or ``"full"``.
    :param classes: mask class names.
    :param tile_size: pixels per grid cell.
    :raises InputError: unknown view or bad tile size or class names.
    :raises WrongEnvTypeError: ``env`` is not a MiniGrid env.
    """
    if view == "partial":
        return RGBMaskPartialObsWrapper(env, classes, tile_size)
    if view == "full":
        return RGBMaskObsWrapper(env, classes, tile_size)
    raise InputError(f"unknown view {view!r} for a MiniGrid env; use one of {', '.join(VIEWS)}")
