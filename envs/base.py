"""The observation contract every masked environment follows.

Observation: ``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}``. ``mask`` holds 0 for background
and k >= 1 for the k-th task-relevant object class, whose name is ``mask_classes[k - 1]``. The
mask is declared ``Box(0, n_classes, (H, W), uint8)``: two dimensions, so Stable-Baselines3 never
mistakes it for an image (no transposition, no /255 scaling).

The contract is defined here and only here: the keys, the spaces, and the checks that agents
(:func:`check_masked_observation_space`) and user envs (:func:`check_masked_env`) must pass.
Agents import it; nothing in ``camal_rl.envs`` imports the agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from camal_rl.errors import InputError

IMAGE_KEY = "image"
"""The observation entry of the frame the agent sees and acts on."""
MASK_KEY = "mask"
"""The observation entry of the segmentation mask, read by the attention loss and metrics only."""


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


def is_masked_space(observation_space: gym.Space[Any]) -> bool:
    """The space is a dict with a ``mask`` entry: the env means to follow the contract."""
    return isinstance(observation_space, spaces.Dict) and MASK_KEY in observation_space.spaces


def check_masked_observation_space(observation_space: gym.Space[Any]) -> None:
    """Refuse observation spaces that break the ``{"image", "mask"}`` contract, saying what to do.

    Accepts the image channel-last, as envs declare it, or channel-first, as Stable-Baselines3's
    ``VecTransposeImage`` hands it to agents and their buffers.

    :raises InputError: no ``mask`` or ``image`` entry, entries of the wrong rank, or a mask of
        another size than the image.
    """
    if not isinstance(observation_space, spaces.Dict) or MASK_KEY not in observation_space.spaces:
        raise InputError(
            f"CAMAL agents train on observations {{'{IMAGE_KEY}', '{MASK_KEY}'}}, but the env's observation "
            f"space is {observation_space}. Wrap the env so it renders masks: "
            "camal_rl.envs.make_masked_env('MiniGrid-DoorKey-5x5-v0') or "
            "gymnasium.make('camal_rl/MiniGrid-DoorKey-5x5-v0')"
        )
    if IMAGE_KEY not in observation_space.spaces:
        raise InputError(f"the observation space {observation_space} has a mask but no '{IMAGE_KEY}' entry")
    image, mask = observation_space[IMAGE_KEY], observation_space[MASK_KEY]
    assert isinstance(image, spaces.Box)
    assert isinstance(mask, spaces.Box)
    if len(image.shape) != 3 or len(mask.shape) != 2:
        raise InputError(
            f"expected image (H, W, 3) and mask (H, W), got image {image.shape} and mask {mask.shape}"
        )
    # SB3's own channel-first test, imported here so that importing the envs does not load torch
    from stable_baselines3.common.preprocessing import is_image_space_channels_first

    image_hw = image.shape[1:] if is_image_space_channels_first(image) else image.shape[:2]
    if tuple(image_hw) != tuple(mask.shape):
        raise InputError(
            f"the mask ({mask.shape[0]}x{mask.shape[1]}) must be the size of the image "
            f"({image_hw[0]}x{image_hw[1]}); render both at the same resolution"
        )


def check_masked_env(env: gym.Env[Any, Any], env_id: str) -> tuple[str, ...]:
    """Check that ``env`` (one of the user's, emitting its own masks) follows the contract, and
    return its mask classes.

    :raises InputError: saying what to change: the entries' shapes, sizes or dtypes, or
        ``mask_classes`` missing or not naming the mask's values 1..n.
    """
    space = env.observation_space
    check_masked_observation_space(space)
    assert isinstance(space, spaces.Dict)
    image, mask = space[IMAGE_KEY], space[MASK_KEY]
    assert isinstance(image, spaces.Box)
    assert isinstance(mask, spaces.Box)
    if image.shape[-1] != 3 or image.dtype != np.uint8 or mask.dtype != np.uint8:
        raise InputError(
            f"{env_id}: declare image Box(0, 255, (H, W, 3), uint8) and mask Box(0, n_classes, (H, W), "
            f"uint8); got image {image.shape} {image.dtype} and mask {mask.shape} {mask.dtype}"
        )
    try:
        classes = get_mask_classes(env)
    except AttributeError:
        raise InputError(
            f"{env_id} renders masks but does not name their classes: give the env an attribute "
            "mask_classes, a tuple of names where class k >= 1 of the mask is mask_classes[k - 1]"
        ) from None
    n_classes = int(np.max(mask.high))
    if len(classes) != n_classes or not all(isinstance(name, str) and name for name in classes):
        raise InputError(
            f"{env_id}: mask_classes {classes!r} must name each of the {n_classes} mask values "
            f"1..{n_classes} its space declares (mask Box(0, n_classes, (H, W), uint8), "
            "n_classes = len(mask_classes))"
        )
    return classes
