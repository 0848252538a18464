"""ViZDoom's scenario env with the labels buffer on: the unwrapped env of every masked ViZDoom env.

This module imports ``vizdoom`` at the top; reach it through :mod:`camal_rl.envs.vizdoom`, which
imports it only once vizdoom is known to be installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

# vizdoom's gymnasium wrapper imports pygame, which prints a banner on import unless told not to.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import vizdoom as vzd
from gymnasium.utils import EzPickle
from vizdoom.gymnasium_wrapper.gymnasium_env_defns import VizdoomScenarioEnv

from camal_rl.errors import InputError

FORCED_OPTIONS = ("labels_buffer_enabled", "screen_format", "screen_resolution")
"""DoomGame options the masked env sets itself (``screen_resolution`` through ``resolution``)."""

VIZDOOM_INIT_OPTIONS = (
    "frame_skip",
    "max_buttons_pressed",
    "render_mode",
    "treat_episode_timeout_as_truncation",
    "use_multi_binary_action_space",
)
"""Keywords of vizdoom's ``VizdoomEnv.__init__``; every other keyword is a DoomGame option."""


def engine_resolutions() -> dict[tuple[int, int], vzd.ScreenResolution]:
    """The screen sizes the engine renders natively, as ``(height, width) -> ScreenResolution``."""
    sizes = {}
    for name, member in vzd.ScreenResolution.__members__.items():
        width, height = name.removeprefix("RES_").split("X")
        sizes[int(height), int(width)] = member
    return dict(sorted(sizes.items()))


def screen_resolution(resolution: Sequence[int]) -> vzd.ScreenResolution:
    """The engine resolution for ``resolution`` = (height, width).

    Only sizes the engine renders natively are accepted, so image and mask never need resizing.

    :raises InputError: ``resolution`` is not a (height, width) pair of one of those sizes.
    """
    sizes = engine_resolutions()
    try:
        height, width = (int(side) for side in resolution)
        valid = all(int(side) == side for side in resolution)
    except (TypeError, ValueError):
        valid = False
    if not valid or (height, width) not in sizes:
        listed = ", ".join(f"({h}, {w})" for h, w in sizes)
        raise InputError(
            f"resolution must be a (height, width) pair ViZDoom renders natively, got {resolution!r}; "
            f"use one of {listed}"
        )
    return sizes[height, width]


def check_game_options(options: Mapping[str, Any]) -> None:
    """Check DoomGame options before any game is built.

    :param options: DoomGame config keys and values (as in a scenario ``.cfg`` file).
    :raises InputError: an option the masked env sets itself, or one ViZDoom rejects.
    """
    for key, value in options.items():
        if key in FORCED_OPTIONS:
            hint = (
                "pass resolution=(height, width)" if key == "screen_resolution" else "it is always on/RGB24"
            )
            raise InputError(f"the masked ViZDoom env sets {key} itself ({hint}); drop it from the keywords")
        if not vzd.DoomGame().set_config({key: value}):
            raise InputError(
                f"ViZDoom rejected the option {key}={value!r} (its warning above says why); valid keys "
                f"are DoomGame config keys (e.g. episode_timeout, doom_skill, render_hud) and "
                f"{', '.join(VIZDOOM_INIT_OPTIONS)}"
            )


class LabelledScenarioEnv(VizdoomScenarioEnv):
    """A ViZDoom scenario with the labels buffer on, an RGB24 screen at a native engine resolution,
    no window and no sound (the last two can be overridden); it names its mask classes.

    Observations are vizdoom's own (``screen``, ``labels`` and the scenario's ``gamevariables``);
    :class:`camal_rl.envs.vizdoom.VizdoomMaskWrapper` turns them into ``{"image", "mask"}``.
    Pickles through ``EzPickle``: the copy is a fresh game built from the same arguments.

    :param scenario_config_file: ``.cfg`` file in ``vizdoom.scenarios_path`` (e.g. ``basic.cfg``).
    :param object_classes: mask class name -> ViZDoom object names (``Label.object_name``) it
        covers, in mask-value order.
    :param resolution: (height, width) of image and mask, a size the engine renders natively.
    :param frame_skip: game tics per step, as in vizdoom's env.
    :param max_buttons_pressed: 1 (vizdoom's default for its ``-v1`` ids) gives a ``Discrete`` space.
    :param render_mode: ``None``, ``"rgb_array"`` or ``"human"``, as in vizdoom's env.
    :param kwargs: more vizdoom env keywords or DoomGame options (``episode_timeout=...``).
    """

    def __init__(
        self,
        scenario_config_file: str,
        object_classes: Mapping[str, Sequence[str]],
        resolution: tuple[int, int] = (120, 160),
        frame_skip: int = 1,
        max_buttons_pressed: int = 1,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_game_options({k: v for k, v in kwargs.items() if k not in VIZDOOM_INIT_OPTIONS})
        config = {
            "window_visible": False,
            "sound_enabled": False,
            **kwargs,
            "labels_buffer_enabled": True,
            "screen_format": vzd.ScreenFormat.RGB24,
            "screen_resolution": screen_resolution(resolution),
        }
        super().__init__(
            scenario_config_file,
            frame_skip=frame_skip,
            max_buttons_pressed=max_buttons_pressed,
            render_mode=render_mode,
            **config,
        )
        # After super().__init__, whose EzPickle records vizdoom's arguments instead of ours.
        EzPickle.__init__(
            self,
            scenario_config_file,
            object_classes,
            resolution,
            frame_skip,
            max_buttons_pressed,
            render_mode,
            **kwargs,
        )
        self.object_classes: dict[str, tuple[str, ...]] = {
            name: tuple(objects) for name, objects in object_classes.items()
        }
        """Mask class name -> the ViZDoom object names it covers."""
        self.mask_classes: tuple[str, ...] = tuple(self.object_classes)
        """Names of mask values 1..n: value k is ``mask_classes[k - 1]``."""
