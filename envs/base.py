"""The observation contract every masked environment follows.

Observation: ``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}``. ``mask`` holds 0 for background
and k >= 1 for the k-th task-relevant object class, whose name is ``mask_classes[k - 1]``. The
mask is declared ``Box(0, n_classes, (H, W), uint8)``: two dimensions, so Stable-Baselines3 never
mistakes it for an image (no transposition, no /255 scaling).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class EnvInfo:
    """One row of ``camal-rl envs``."""

    env_id: str
    """Registered id, ``"camal_rl/" + base id``."""
    view: str
    """What the image shows: ``partial`` / ``full`` (MiniGrid), ``screen`` (ViZDoom)."""
    image_shape: tuple[int, int, int]
    """(H, W, 3) at the default settings."""
    mask_classes: tuple[str, ...]
    """Names of mask values 1..n."""
    available: bool = True
    """False where an optional extra is missing."""


def image_space(height: int, width: int) -> spaces.Box:
    """The ``image`` entry: uint8 (H, W, 3)."""
    return spaces.Box(0, 255, (height, width, 3), np.uint8)


def mask_space(height: int, width: int, n_classes: int) -> spaces.Box:
    """The ``mask`` entry: uint8 (H, W) in [0, n_classes]."""
    return spaces.Box(0, n_classes, (height, width), np.uint8)


def get_mask_classes(env: gym.Env) -> tuple[str, ...]:
    """Class names of a masked env's mask values 1..n, through any wrappers around it."""
    classes = env.get_wrapper_attr("mask_classes")
    return tuple(classes)
