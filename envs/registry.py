"""The masked-env factory, its gymnasium ids and the ``camal-rl envs`` listing.

Every MiniGrid id whose family has default classes (:mod:`camal_rl.envs.classes`) is registered as
``"camal_rl/" + id`` with :func:`make_masked_env` as entry point, so
``gymnasium.make("camal_rl/MiniGrid-DoorKey-5x5-v0", view="full")`` takes the factory's keywords.
Registration constructs no env; :mod:`camal_rl.envs.vizdoom` registers the ViZDoom ids and
:mod:`camal_rl.envs.atari` the Atari ids.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids with gymnasium)

from camal_rl.envs.atari_classes import is_atari_id
from camal_rl.envs.base import EnvInfo, check_masked_env, is_masked_space
from camal_rl.envs.classes import MINIGRID_PREFIX, family_of, resolve_classes
from camal_rl.envs.distractors import DistractorWrapper, distractor_types
from camal_rl.envs.minigrid import VIEWS, check_tile_size, mask_wrapper, require_minigrid
from camal_rl.errors import InputError, WrongEnvTypeError

NAMESPACE = "camal_rl/"
ENTRY_POINT = "camal_rl.envs.registry:make_masked_env"
DEFAULT_TILE_SIZE = 8
VIZDOOM_PREFIX = "Vizdoom"


def base_id(env_id: str) -> str:
    """``env_id`` without the ``camal_rl/`` namespace."""
    return env_id[len(NAMESPACE) :] if env_id.startswith(NAMESPACE) else env_id


def make_masked_env(
    env_id: str,
    *,
    view: str = "partial",
    tile_size: int = DEFAULT_TILE_SIZE,
    classes: Sequence[str] | str | None = None,
    include_agent: bool = False,
    distractors: int = 0,
    **env_kwargs: Any,
) -> gym.Env:
    """An env whose observations are ``{"image": uint8 (H, W, 3), "mask": uint8 (H, W)}``.

    :param env_id: ``"MiniGrid-DoorKey-5x5-v0"``, ``"camal_rl/MiniGrid-DoorKey-5x5-v0"``, any other
        MiniGrid id with explicit ``classes``, a ViZDoom id (``"VizdoomBasic-v1"``, extra
        ``vizdoom``), an Atari id (``"ALE/Pong-v5"``, extra ``atari``), or the id of an env of the
        user's that renders the contract itself
        (``"my_envs:my_envs/Key-v0"`` imports ``my_envs`` first; checked by
        :func:`camal_rl.envs.base.check_masked_env`, returned unwrapped).
    :param view: ``"partial"`` (the agent's view) or ``"full"`` (the whole grid); MiniGrid only.
    :param tile_size: pixels per grid cell, >= 1; MiniGrid only.
    :param classes: task-relevant object types in mask-value order (default: the family's, see
        :mod:`camal_rl.envs.classes`); a comma-separated string also works.
    :param include_agent: label the agent's cell with an extra last class ``"agent"``; MiniGrid only.
    :param distractors: non-relevant objects added after each reset; MiniGrid only.
    :param env_kwargs: passed to ``gymnasium.make`` of the base MiniGrid env (``render_mode``,
        ``size``, ...) or of the user's env, or to
        :func:`camal_rl.envs.vizdoom.make_vizdoom_masked_env` (``resolution``, ``frame_skip``, ...) or
        :func:`camal_rl.envs.atari.make_atari_masked_env` (``screen_size``, ``frame_skip``, ...).
    :raises InputError: unknown id (the message lists close matches), view, tile size or class name;
        a module that does not import; a MiniGrid option for another env; an env of the user's
        that breaks the contract; ``env_kwargs`` the env refuses (:func:`refused_keywords`).
    :raises WrongEnvTypeError: the id is neither a MiniGrid nor a ViZDoom env, and renders no mask.
    """
    base = base_id(env_id)
    check_class_names(classes)
    minigrid_only = {
        "view": view != "partial",
        "tile_size": tile_size != DEFAULT_TILE_SIZE,
        "include_agent": include_agent,
        "distractors": distractors != 0,
    }
    if is_atari_id(base):
        refuse_options(minigrid_only, base, "set the screen size with screen_size=N")
        from camal_rl.envs.atari import make_atari_masked_env

        with refused_keywords(base, env_kwargs):
            return make_atari_masked_env(base, classes=classes, **env_kwargs)
    if base.startswith(VIZDOOM_PREFIX):
        refuse_options(minigrid_only, base, "set the screen size with resolution=(height, width)")
        from camal_rl.envs.vizdoom import make_vizdoom_masked_env

        with refused_keywords(base, env_kwargs):
            return make_vizdoom_masked_env(base, classes=classes, **env_kwargs)

    if view not in VIEWS:
        raise InputError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")
    tile_size = check_tile_size(tile_size)
    base = import_env_module(base)
    if base not in gym.registry:
        raise InputError(unknown_id_message(env_id))
    with refused_keywords(base, env_kwargs):
        env = gym.make(base, disable_env_checker=True, **env_kwargs)
    try:
        if is_masked_space(env.observation_space):  # an env of the user's that renders its own masks
            hint = "the env renders its own image and mask; pass its own options as keywords"
            refuse_options({**minigrid_only, "classes": classes is not None}, base, hint)
            check_masked_env(env, env_id)
            return env
        require_minigrid_env(env, env_id)
        mask_classes = resolve_classes(base, classes, include_agent)
        if distractors:
            env = DistractorWrapper(env, distractors, distractor_types(mask_classes))
        return mask_wrapper(env, view, mask_classes, tile_size)
    except Exception:
        env.close()
        raise


def require_minigrid_env(env: gym.Env, env_id: str) -> None:
    """Raise :class:`WrongEnvTypeError`, saying what an env of the user's needs, unless ``env`` is
    a MiniGrid env (:func:`make_masked_env`)."""
    try:
        require_minigrid(env, f"make_masked_env({env_id!r})")
    except WrongEnvTypeError as error:
        raise WrongEnvTypeError(
            f"{error} An env of your own needs observations {{'image', 'mask'}} and mask_classes "
            "(docs/environments.md, Your own environment)."
        ) from None


def check_class_names(classes: object) -> None:
    """Refuse ``classes`` (of :func:`make_masked_env`) that are not names: ``classes=7``.

    :raises InputError: saying what to pass.
    """
    names = classes.split(",") if isinstance(classes, str) else classes
    if isinstance(names, Mapping):  # ViZDoom: {class name: object names}
        names = list(names)
    if names is not None and not (
        isinstance(names, Sequence) and all(isinstance(name, str) for name in names)
    ):
        raise InputError(
            f"classes must be object type names, e.g. classes=key,door or classes=[key, door]; "
            f"got {classes!r}"
        )


@contextmanager
def refused_keywords(env_id: str, env_kwargs: Mapping[str, Any]) -> Iterator[None]:
    """Within the block an env is built with the user's ``env_kwargs``: the ``TypeError``,
    ``ValueError`` or ``AssertionError`` its constructor raises (a keyword it does not take, a value
    of the wrong type or out of range) becomes an :class:`InputError` naming the keywords. Without
    keywords the error is the env's own and passes unchanged.

    :raises InputError: the env refused the keywords.
    """
    try:
        yield
    except InputError:
        raise
    except (TypeError, ValueError, AssertionError) as error:
        if not env_kwargs:
            raise
        detail = str(error).partition(" was raised from the environment creator")[0]  # gymnasium's suffix
        raise InputError(
            f"{env_id} refused the keywords {dict(env_kwargs)} ({detail or type(error).__name__}); pass "
            "only keywords the env takes, with values of their types and ranges (--env-kwargs KEY=VALUE)"
        ) from error


def refuse_options(given: dict[str, bool], env_id: str, hint: str) -> None:
    """Raise :class:`InputError` naming the options set (``given[name]`` true) that ``env_id`` does
    not take, with ``hint`` saying what to do instead."""
    names = [name for name, changed in given.items() if changed]
    if names:
        raise InputError(f"{', '.join(names)} only apply to MiniGrid envs; for {env_id} {hint}")


def import_env_module(env_id: str) -> str:
    """``"pkg.module:Name-v0"`` (gymnasium's form for an env a module registers on import):
    import ``pkg.module`` and return ``"Name-v0"``; other ids are returned as they are.

    :raises InputError: the module does not import.
    """
    module, colon, name = env_id.rpartition(":")
    if not colon:
        return env_id
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise InputError(
            f"cannot import {module!r} for env {env_id!r} ({error}); install the package that "
            "registers the env, or put its folder on PYTHONPATH"
        ) from error
    return name


def minigrid_ids() -> list[str]:
    """Base ids of the MiniGrid envs with default classes, in gymnasium's registration order."""
    return [
        env_id
        for env_id in gym.registry
        if env_id.startswith(MINIGRID_PREFIX) and family_of(env_id) is not None
    ]


def registered_ids() -> list[str]:
    """Every ``camal_rl/`` id in gymnasium's registry."""
    return [env_id for env_id in gym.registry if env_id.startswith(NAMESPACE)]


def register_envs() -> None:
    """Register ``camal_rl/<id>`` for every MiniGrid id with default classes (and, through
    :func:`camal_rl.envs.vizdoom.register_vizdoom_envs`, every supported ViZDoom scenario, and
    through :func:`camal_rl.envs.atari.register_atari_envs` every supported Atari game); ids already
    registered are left alone."""
    for env_id in minigrid_ids():
        if NAMESPACE + env_id not in gym.registry:
            gym.register(id=NAMESPACE + env_id, entry_point=ENTRY_POINT, kwargs={"env_id": env_id})
    vizdoom = _vizdoom_module()
    if vizdoom is not None:
        vizdoom.register_vizdoom_envs()
    from camal_rl.envs.atari import register_atari_envs

    register_atari_envs()


def unknown_id_message(env_id: str) -> str:
    """Message for an unknown id, with up to five close matches among the registered ids."""
    known = [base_id(known_id) for known_id in registered_ids()]
    matches = difflib.get_close_matches(base_id(env_id), known, n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(NAMESPACE + m for m in matches)}" if matches else "no close match"
    return f"unknown env id {env_id!r} ({hint}); `camal-rl envs` lists every masked env"


@functools.cache
def _minigrid_image_shapes(env_id: str) -> dict[str, tuple[int, int, int]]:
    """Image shape per view at the default tile size (constructs the env once, cached)."""
    with warnings.catch_warnings():  # a listing need not warn that v0 ids have a v1
        warnings.simplefilter("ignore", DeprecationWarning)
        made = gym.make(env_id, disable_env_checker=True)
    env = require_minigrid(made, env_id)
    full = (env.height * DEFAULT_TILE_SIZE, env.width * DEFAULT_TILE_SIZE, 3)
    partial = (env.agent_view_size * DEFAULT_TILE_SIZE, env.agent_view_size * DEFAULT_TILE_SIZE, 3)
    made.close()
    return {"partial": partial, "full": full}


def list_envs() -> list[EnvInfo]:
    """One row per registered MiniGrid id and view, then the ViZDoom and Atari rows (marked
    unavailable where their extra is missing)."""
    rows = [
        EnvInfo(NAMESPACE + env_id, view, _minigrid_image_shapes(env_id)[view], resolve_classes(env_id))
        for env_id in minigrid_ids()
        for view in VIEWS
    ]
    vizdoom = _vizdoom_module()
    if vizdoom is not None:
        rows += list(vizdoom.list_vizdoom_envs())
    from camal_rl.envs.atari import list_atari_envs

    return rows + list_atari_envs()


def format_env_table(rows: Sequence[EnvInfo]) -> str:
    """Plain-text table of :func:`list_envs` rows: id, view, image size, mask classes."""
    header = ("id", "view", "image (HxWx3)", "mask classes")
    lines = [
        (
            row.env_id + ("" if row.available else "  [needs extra]"),
            row.view,
            "x".join(map(str, row.image_shape)),
            ", ".join(row.mask_classes),
        )
        for row in rows
    ]
    widths = [max(len(line[k]) for line in [header, *lines]) for k in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)) + "  " + line[3]
        for line in [header, *lines]
    )


def _vizdoom_module() -> ModuleType | None:
    """:mod:`camal_rl.envs.vizdoom` (importable without vizdoom), or None while it does not exist."""
    try:
        return importlib.import_module("camal_rl.envs.vizdoom")
    except ModuleNotFoundError as error:
        if error.name == "camal_rl.envs.vizdoom":
            return None
        raise
