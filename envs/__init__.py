"""Masked environments (installed as ``camal_rl.envs``).

Every env here emits ``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}`` (see
:mod:`camal_rl.envs.base`). Importing this package registers ``"camal_rl/" + id`` with gymnasium for
every supported MiniGrid id (and the ViZDoom scenarios), without constructing any env::

    import gymnasium as gym
    import camal_rl.envs

    env = gym.make("camal_rl/MiniGrid-DoorKey-5x5-v0", view="full", tile_size=8)
    env = camal_rl.envs.make_masked_env("MiniGrid-DoorKey-8x8-v0", distractors=2)
"""

from camal_rl.envs.base import EnvInfo, get_mask_classes, image_space, mask_space
from camal_rl.envs.classes import FAMILY_CLASSES, MASKABLE_TYPES, default_classes, family_of, resolve_classes
from camal_rl.envs.distractors import DistractorWrapper
from camal_rl.envs.minigrid import VIEWS, RGBMaskObsWrapper, RGBMaskPartialObsWrapper, mask_wrapper
from camal_rl.envs.registry import (
    format_env_table,
    list_envs,
    make_masked_env,
    minigrid_ids,
    register_envs,
    registered_ids,
)
from camal_rl.envs.stacking import StackedImages

register_envs()

__all__ = [
    "FAMILY_CLASSES",
    "MASKABLE_TYPES",
    "VIEWS",
    "DistractorWrapper",
    "EnvInfo",
    "RGBMaskObsWrapper",
    "RGBMaskPartialObsWrapper",
    "StackedImages",
    "default_classes",
    "family_of",
    "format_env_table",
    "get_mask_classes",
    "image_space",
    "list_envs",
    "make_masked_env",
    "mask_space",
    "mask_wrapper",
    "minigrid_ids",
    "register_envs",
    "registered_ids",
    "resolve_classes",
]
