"""Stacked frames, as SB3's ``VecFrameStack`` stacks image observations: for CAMAL agents that
train on them (the Atari envs' ``frame_stack`` keyword) and for stock models trained with
``VecFrameStack``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from camal_rl.envs.base import IMAGE_KEY
from camal_rl.errors import InputError


class StackedImages(gym.Wrapper[dict[str, np.ndarray], Any, dict[str, np.ndarray], Any]):
    """The last ``frames`` images of a masked env side by side in the channels, oldest first, as
    Stable-Baselines3's ``VecFrameStack`` stacks channels-last images: an episode starts with
    zeros in the older frames' channels. ``image`` becomes (H, W, 3 x frames); the mask (and any
    other key) is the newest frame's, so attention is scored against what is in view now.

    Every observation is a new array: the images of an episode can be kept without copying.
    """

    def __init__(self, env: gym.Env[dict[str, np.ndarray], Any], frames: int) -> None:
        super().__init__(env)
        if frames < 1:
            raise InputError(f"frames to stack must be >= 1, got {frames}")
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        image = space[IMAGE_KEY]
        assert isinstance(image, spaces.Box)
        height, width, channels = image.shape
        shape = (height, width, channels * frames)
        self.frames = frames
        self._channels: int = channels
        self.observation_space = spaces.Dict({**space.spaces, IMAGE_KEY: spaces.Box(0, 255, shape, np.uint8)})
        self._stack: np.ndarray = np.zeros(shape, np.uint8)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._stack = np.zeros_like(self._stack)
        return self._push(obs), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._push(obs), reward, terminated, truncated, info

    def _push(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._stack = np.concatenate([self._stack[..., self._channels :], obs[IMAGE_KEY]], axis=-1)
        return {**obs, IMAGE_KEY: self._stack}
