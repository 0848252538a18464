"""Tiny envs with known answers, for agent tests that must run in seconds."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FindObjectEnv(gym.Env[dict[str, np.ndarray], int]):
    """One-step task on a ``cells x cells`` grid of ``tile``-pixel tiles: a white object sits in a
    random cell and the action must name that cell (reward 1, else 0). Every other cell holds dim
    random clutter, and optionally a red distractor that is not in the mask. The mask marks the
    object's cell with class 1, so a CAMAL agent's Grad-CAM has a checkable target.

    :param cells: grid side, in cells.
    :param tile: pixels per cell (the MiniGridCNN tile size).
    :param distractor: add a red, non-relevant block in another cell.
    :param mask_size: render the mask at this (H, W) instead of the image's (to test refusals).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    mask_classes = ("object",)

    def __init__(
        self,
        cells: int = 2,
        tile: int = 4,
        distractor: bool = False,
        mask_size: tuple[int, int] | None = None,
    ) -> None:
        self.cells, self.tile, self.distractor = cells, tile, distractor
        self.tile_size = tile
        side = cells * tile
        mask_shape = mask_size or (side, side)
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (side, side, 3), np.uint8),
                "mask": spaces.Box(0, 1, mask_shape, np.uint8),
            }
        )
        self.action_space = spaces.Discrete(cells * cells)
        self._target = 0
        self._obs: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed, options=options)
        n = self.cells * self.cells
        self._target = int(self.np_random.integers(n))
        side, t = self.cells * self.tile, self.tile
        image = self.np_random.integers(0, 60, (side, side, 3), dtype=np.uint8)
        mask = np.zeros(self.observation_space["mask"].shape, np.uint8)
        row, col = divmod(self._target, self.cells)
        image[row * t : (row + 1) * t, col * t : (col + 1) * t] = 255
        mask[row * t : (row + 1) * t, col * t : (col + 1) * t] = 1
        if self.distractor:
            other = (self._target + 1 + int(self.np_random.integers(n - 1))) % n
            r, c = divmod(other, self.cells)
            image[r * t : (r + 1) * t, c * t : (c + 1) * t] = (255, 0, 0)
        self._obs = {"image": image, "mask": mask}
        return self._obs, {}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward = float(int(action) == self._target)
        return {key: value.copy() for key, value in self._obs.items()}, reward, True, False, {}


class ImageOnlyEnv(gym.ObservationWrapper[np.ndarray, int, dict[str, np.ndarray]]):
    """The same task without the mask: observations are the image alone."""

    def __init__(self, env: gym.Env[dict[str, np.ndarray], int]) -> None:
        super().__init__(env)
        assert isinstance(env.observation_space, spaces.Dict)
        self.observation_space = env.observation_space["image"]

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return observation["image"]


OWN_ENV_ID = "camal_tests/FindObject-v0"
"""FindObjectEnv registered with gymnasium on import, as a user's own masked env would be: train
it with ``camal-rl train --env tests.toy_envs:camal_tests/FindObject-v0``."""

if OWN_ENV_ID not in gym.registry:
    gym.register(OWN_ENV_ID, entry_point=FindObjectEnv, kwargs={"cells": 3, "tile": 8, "distractor": True})
