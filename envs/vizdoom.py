"""Masked ViZDoom environments (optional extra ``vizdoom``).

The mask comes from the engine's labels buffer (Kempka et al., "ViZDoom", CIG 2016): each frame,
the engine writes into a (H, W) byte buffer the label value of the object drawn at every pixel
and lists the labelled objects (``state.labels``: ``object_name``, ``value``, bounding box).
:class:`VizdoomMaskWrapper` maps the label values of the scenario's task-relevant objects to their
class index, so the mask is exact and aligned pixel for pixel with the screen.

Task-relevant objects per scenario (:data:`VIZDOOM_SCENARIOS`) were read from the labels of random
play in vizdoom 1.3.2's bundled scenarios. Not in any mask: the player's own weapon sprite
(``DoomPlayer``), bullet puffs, blood, corpses (``DeadCacodemon``, ...) and dropped items.

This module imports without vizdoom: listing and registration are static; building an env raises
:class:`camal_rl.errors.MissingExtraError` when the extra is missing.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from camal_rl.envs.base import EnvInfo, image_space, mask_space
from camal_rl.envs.classes import check_name, pick_classes
from camal_rl.errors import InputError, MissingExtraError, WrongEnvTypeError

NAMESPACE = "camal_rl/"
ENTRY_POINT = "camal_rl.envs.vizdoom:make_vizdoom_masked_env"
DEFAULT_RESOLUTION = (120, 160)
"""(height, width) of image and mask by default (the engine's ``RES_160X120``)."""

VIZDOOM_SCENARIOS: dict[str, dict[str, tuple[str, ...]]] = {
    "VizdoomBasic-v1": {"monster": ("Cacodemon",)},
    "VizdoomDeadlyCorridor-v1": {
        "monster": ("Zombieman", "ShotgunGuy", "ChaingunGuy"),
        "armor": ("GreenArmor",),
    },
    "VizdoomDefendCenter-v1": {"monster": ("MarineChainsawVzd", "Demon")},
    "VizdoomDefendLine-v1": {"monster": ("DoomImp", "Demon"), "fireball": ("DoomImpBall",)},
    "VizdoomHealthGathering-v1": {"medkit": ("Medikit",)},
    "VizdoomHealthGatheringSupreme-v1": {"medkit": ("CustomMedikit",), "poison": ("Poison",)},
    "VizdoomMyWayHome-v1": {"armor": ("GreenArmor",)},
    "VizdoomPredictPosition-v1": {"monster": ("Cacodemon",)},
    "VizdoomTakeCover-v1": {"monster": ("DoomImp",), "fireball": ("DoomImpBall",)},
}
"""Base id -> {mask class name -> ViZDoom object names it covers}, in mask-value order."""

VIZDOOM_OBJECT_NAMES = frozenset(
    {
        *(name for classes in VIZDOOM_SCENARIOS.values() for names in classes.values() for name in names),
        *("Blood", "BulletPuff", "Clip", "DeadCacodemon", "DeadShotgunGuy", "DeadZombieman"),
        *("DoomPlayer", "Rocket", "RocketSmokeTrail", "Shotgun"),
    }
)
"""Every object name seen in the labels of the supported scenarios (random play, vizdoom 1.3.2)."""


def list_vizdoom_envs() -> list[EnvInfo]:
    """One row per supported scenario, at the default resolution; static, so it also works without
    vizdoom (``available=False`` then)."""
    available = _vizdoom_installed()
    height, width = DEFAULT_RESOLUTION
    return [
        EnvInfo(NAMESPACE + base_id, "screen", (height, width, 3), tuple(classes), available)
        for base_id, classes in VIZDOOM_SCENARIOS.items()
    ]


def register_vizdoom_envs() -> None:
    """Register ``"camal_rl/" + base id`` with gymnasium for every supported scenario.

    Builds no env and works without vizdoom; ids already registered are left alone.
    """
    for base_id in VIZDOOM_SCENARIOS:
        if NAMESPACE + base_id not in gym.registry:
            gym.register(id=NAMESPACE + base_id, entry_point=ENTRY_POINT, kwargs={"base_id": base_id})


def make_vizdoom_masked_env(
    base_id: str,
    *,
    resolution: tuple[int, int] = DEFAULT_RESOLUTION,
    classes: Sequence[str] | Mapping[str, Sequence[str]] | str | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """A ViZDoom scenario whose observations are ``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}``.

    Headless and silent by default; the action space is vizdoom's (``Discrete`` for these ids).
    Seeded resets are deterministic: the same seed and actions give the same observations.

    :param base_id: a key of :data:`VIZDOOM_SCENARIOS` (``"VizdoomBasic-v1"``), with or without the
        ``camal_rl/`` prefix.
    :param resolution: (height, width) of image and mask; one of the sizes the engine renders
        natively (``(120, 160)``, ``(240, 320)``, ...), so nothing is resized.
    :param classes: default: the scenario's classes. Class names of the scenario (a subset or a new
        order, e.g. ``("monster",)``; a comma-separated string also works), or a mapping
        ``{class name: ViZDoom object names}`` for classes of your own.
    :param env_kwargs: vizdoom env keywords (``frame_skip``, ``render_mode``, ...) or DoomGame
        options (``episode_timeout``, ``doom_skill``, ``window_visible``, ...).
    :raises InputError: unknown id (the message lists close matches), resolution, class or object
        name, or an option ViZDoom rejects.
    :raises MissingExtraError: vizdoom is not installed.
    """
    base_id = base_id.removeprefix(NAMESPACE)
    if base_id not in VIZDOOM_SCENARIOS:
        matches = difflib.get_close_matches(base_id, VIZDOOM_SCENARIOS, n=3, cutoff=0.6)
        hint = f"close matches: {', '.join(matches)}" if matches else "no close match"
        raise InputError(
            f"unknown ViZDoom scenario {base_id!r} ({hint}); supported: {', '.join(VIZDOOM_SCENARIOS)}"
        )
    object_classes = resolve_object_classes(base_id, classes)
    try:
        # Also imports vizdoom.gymnasium_wrapper, which registers vizdoom's own ids.
        from camal_rl.envs.vizdoom_scenario import LabelledScenarioEnv
    except ImportError as error:
        if error.name is None or error.name.partition(".")[0] != "vizdoom":
            raise
        raise MissingExtraError("vizdoom", f"the ViZDoom env {base_id!r}") from error

    vizdoom_kwargs = gym.spec(base_id).kwargs
    env_kwargs.setdefault("max_buttons_pressed", vizdoom_kwargs["max_buttons_pressed"])
    env = LabelledScenarioEnv(
        vizdoom_kwargs["scenario_config_file"], object_classes, resolution=resolution, **env_kwargs
    )
    return VizdoomMaskWrapper(env)


def resolve_object_classes(
    base_id: str, classes: Sequence[str] | Mapping[str, Sequence[str]] | str | None
) -> dict[str, tuple[str, ...]]:
    """Mask class name -> ViZDoom object names, for :func:`make_vizdoom_masked_env`'s ``classes``.

    :raises InputError: an unknown class or object name (the message lists close matches), an
        object in two classes, or no class at all.
    """
    defaults = VIZDOOM_SCENARIOS[base_id]
    if classes is None:
        return dict(defaults)
    if isinstance(classes, Mapping):
        resolved = {
            str(name): (objects,) if isinstance(objects, str) else tuple(objects)
            for name, objects in classes.items()
        }
        for objects in resolved.values():
            for obj in objects:
                check_name(obj, VIZDOOM_OBJECT_NAMES, "ViZDoom object name")
        n_names = len(resolved)
    else:
        resolved = pick_classes(classes, defaults, f"class name for {base_id}")
        n_names = len(resolved)
    seen = [obj for objects in resolved.values() for obj in objects]
    if not resolved or n_names != len(resolved) or len(seen) != len(set(seen)) or not all(resolved.values()):
        raise InputError(
            f"classes must name at least one class, no class twice, each covering at least one "
            f"object, no object in two classes; got {classes!r}"
        )
    return resolved


# WrapperObsType dict[str, Any]: gymnasium types spaces.Dict as Space[dict[str, Space]].
class VizdoomMaskWrapper(gym.ObservationWrapper[dict[str, Any], Any, Any]):
    """Turns a ViZDoom env's ``screen`` and labels buffer into ``{"image", "mask"}``.

    ``mask[i, j] = k`` where the object drawn at pixel (i, j) is one of class k's object names
    (``mask_classes[k - 1]``), 0 elsewhere; other observation entries are dropped. On the final
    step of an episode vizdoom returns an all-zero observation, and the mask is all zeros too.

    :param env: a vizdoom gymnasium env with the labels buffer on and an RGB24 screen, such as
        :class:`camal_rl.envs.vizdoom_scenario.LabelledScenarioEnv` (what
        :func:`make_vizdoom_masked_env` builds).
    :param object_classes: mask class name -> ViZDoom object names; default: the unwrapped env's
        ``object_classes``.
    :raises WrongEnvTypeError: ``env`` is not a vizdoom env.
    :raises InputError: the labels buffer is off, the screen is not RGB24, or no classes are known.
    """

    def __init__(self, env: gym.Env, object_classes: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(env)
        self._game_env = _require_vizdoom(env)
        if not self._game_env.labels or self._game_env.channels != 3:
            raise InputError(
                "VizdoomMaskWrapper needs the labels buffer on and an RGB24 screen: build the env "
                "with camal_rl.envs.make_masked_env('VizdoomBasic-v1') (or pass "
                "labels_buffer_enabled=True, screen_format=vizdoom.ScreenFormat.RGB24 to gymnasium.make)"
            )
        if object_classes is None:
            object_classes = getattr(self._game_env, "object_classes", None)
            if object_classes is None:
                raise InputError(
                    "VizdoomMaskWrapper needs object_classes={class name: ViZDoom object names} for an "
                    "env that does not name them; make_masked_env sets them per scenario"
                )
        self.mask_classes: tuple[str, ...] = tuple(object_classes)
        """Names of mask values 1..n: value k is ``mask_classes[k - 1]``."""
        self._class_of = {obj: k for k, objs in enumerate(object_classes.values(), 1) for obj in objs}
        height, width = self._game_env.game.get_screen_height(), self._game_env.game.get_screen_width()
        self.observation_space = spaces.Dict(
            {"image": image_space(height, width), "mask": mask_space(height, width, len(self.mask_classes))}
        )

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, Any]:
        """:param observation: vizdoom's observation, whose labels belong to the game's current state."""
        labels = observation["labels"][..., 0]
        state = self._game_env.state  # None after the final step, whose observation is all zeros
        relevant: list[tuple[int, int]] = []
        if state is not None:
            relevant = [
                (label.value, self._class_of[label.object_name])
                for label in state.labels
                if label.object_name in self._class_of
            ]
        # Cheapest exact path per case (120x160): no relevant object ~1 us, one object (basic, my way
        # home, ...) one comparison ~4 us, several a 256-entry cv2.LUT ~13 us (numpy indexing: ~65 us).
        mask: np.ndarray
        if not relevant:
            mask = np.zeros(labels.shape, np.uint8)
        elif len(relevant) == 1:
            value, k = relevant[0]
            mask = (labels == value).view(np.uint8) * np.uint8(k)
        else:
            value_to_class = np.zeros(256, np.uint8)
            for value, k in relevant:
                value_to_class[value] = k
            mask = cv2.LUT(labels, value_to_class)
        return {"image": observation["screen"], "mask": mask}


def _require_vizdoom(env: gym.Env) -> Any:
    """The vizdoom ``VizdoomEnv`` under ``env``'s wrappers.

    :raises WrongEnvTypeError: there is none.
    """
    base = env.unwrapped
    # A VizdoomEnv exists only once its module is loaded: no need to import vizdoom to check.
    module = sys.modules.get("vizdoom.gymnasium_wrapper.base_gymnasium_env")
    if module is not None and isinstance(base, module.VizdoomEnv):
        return base
    raise WrongEnvTypeError(
        f"VizdoomMaskWrapper needs a ViZDoom env (vizdoom.gymnasium_wrapper VizdoomEnv), got "
        f"{type(base).__name__}. For ViZDoom use camal_rl.envs.make_masked_env('VizdoomBasic-v1'); "
        "for MiniGrid use camal_rl.envs.make_masked_env with a MiniGrid id "
        "('MiniGrid-DoorKey-5x5-v0')."
    )


def _vizdoom_installed() -> bool:
    try:
        return importlib.util.find_spec("vizdoom") is not None
    except ValueError:  # sys.modules["vizdoom"] is None: importing it is blocked
        return False
