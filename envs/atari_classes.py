"""Task-relevant object classes of the Atari games, from OCAtari's object categories.

OCAtari (Delfosse et al., "OCAtari: Object-Centric Atari 2600 Reinforcement Learning
Environments", 2024) reads each object's category, box (``xywh``) and colour (``rgb``) from the
emulator's RAM. A mask class here names the categories it covers and how its pixels are found:

- ``colour``: the pixels inside the object's box drawn exactly in the object's colour. Exact on
  Pong and Breakout: where those games draw only their task-relevant objects, the mask is the
  pixels that are not background, on every frame (tests/test_atari.py); the other games' colour
  classes were measured (experiments/atari/mask_agreement.py, docs/atari.md), not proven.
- ``box``: the whole box. For sprites drawn in several colours, or whose colour OCAtari does not
  know, the box is what the mask is: it covers the object and some background around it.

This module is static: it imports neither ale-py nor OCAtari.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from camal_rl.envs.classes import check_name, pick_classes
from camal_rl.errors import InputError


@dataclass(frozen=True)
class AtariClass:
    """One mask class of an Atari game."""

    categories: tuple[str, ...]
    """OCAtari object categories (class names, e.g. ``"Ball"``) the class covers."""
    colour: bool
    """Label the object's own colour inside its box (exact), not the whole box."""
    margin: int = 0
    """Pixels the box is grown by on every side before the colour is looked for, where OCAtari's
    box is a row short of what is drawn on some frames (Pong's paddles and ball)."""
    rows: tuple[int, int] | None = None
    """Screen rows [top, bottom) the class is drawn in; boxes are clipped to them (Pong's ball,
    whose colour the walls above and below the court share)."""

    @property
    def refinement(self) -> str:
        """``colour`` or ``box``, as the class table prints it."""
        return "colour" if self.colour else "box"


def _colour(*categories: str, margin: int = 0, rows: tuple[int, int] | None = None) -> AtariClass:
    return AtariClass(categories, colour=True, margin=margin, rows=rows)


def _box(*categories: str) -> AtariClass:
    return AtariClass(categories, colour=False)


ATARI_GAMES: dict[str, dict[str, AtariClass]] = {
    # The court is rows 34-193; OCAtari's ball box is a row low, its paddle boxes up to two short.
    "Pong": {
        "ball": _colour("Ball", margin=1, rows=(34, 194)),
        "paddle": _colour("Player", margin=2),
        "opponent": _colour("Enemy", margin=2),
    },
    "Breakout": {"ball": _colour("Ball"), "paddle": _colour("Player"), "brick": _colour("Block")},
    # OCAtari's player colour is not the one drawn; bullets are drawn in two colours.
    "SpaceInvaders": {"player": _box("Player"), "alien": _colour("Alien"), "bullet": _box("Bullet")},
    "Freeway": {"chicken": _box("Chicken"), "car": _box("Car")},
    "MsPacman": {
        "pacman": _box("Player"),
        "ghost": _box("Ghost"),
        "power_pill": _colour("PowerPill"),
        "pill": _colour("Pill"),
    },
    "Boxing": {"player": _colour("Player"), "opponent": _colour("Enemy")},
    "Skiing": {
        "skier": _box("Player"),
        "flag": _box("Flag"),
        "tree": _colour("Tree"),
        "mogul": _box("Mogul"),
    },
}
"""OCAtari game name -> {mask class name -> :class:`AtariClass`}, in mask-value order: value k is
the k-th class; where two classes overlap a pixel the one listed first wins. The games whose RAM
readers run under numpy 2 and whose boxes were checked against the frames."""

ALE_PREFIX = "ALE/"
REGISTERED_PREFIX = "ALE-"
"""ALE's ``/`` in camal-rl's registered ids: gymnasium ids take one namespace (``camal_rl/``)."""
ALE_VERSION = "-v5"


def game_of(env_id: str) -> str | None:
    """``"ALE/Pong-v5"`` or ``"ALE-Pong-v5"`` (the registered form, ``camal_rl/`` optional) ->
    ``"Pong"``; None for other ids."""
    base = env_id.removeprefix("camal_rl/")
    for prefix in (ALE_PREFIX, REGISTERED_PREFIX):
        if base.startswith(prefix) and base.endswith(ALE_VERSION):
            return base[len(prefix) : -len(ALE_VERSION)]
    return None


def is_atari_id(env_id: str) -> bool:
    """The id names an Atari game the ALE way (``ALE/...``, ``camal_rl/ALE-...``)."""
    base = env_id.removeprefix("camal_rl/")
    return base.startswith((ALE_PREFIX, REGISTERED_PREFIX))


def ale_id(game: str) -> str:
    """``"Pong"`` -> ``"ALE/Pong-v5"``."""
    return f"{ALE_PREFIX}{game}{ALE_VERSION}"


def registered_id(game: str) -> str:
    """``"Pong"`` -> ``"camal_rl/ALE-Pong-v5"`` (gymnasium ids take one namespace, so ALE's ``/``
    becomes ``-``)."""
    return f"camal_rl/{REGISTERED_PREFIX}{game}{ALE_VERSION}"


def resolve_atari_classes(
    game: str,
    classes: Sequence[str] | Mapping[str, Sequence[str] | str] | str | None,
    categories: Sequence[str] = (),
) -> dict[str, AtariClass]:
    """The mask classes of ``game`` for :func:`camal_rl.envs.atari.make_atari_masked_env`.

    :param game: OCAtari game name (``"Pong"``).
    :param classes: None for the game's defaults (:data:`ATARI_GAMES`); class names of the game
        (a subset or a new order; a comma-separated string also works); or a mapping
        ``{class name: OCAtari categories}`` for classes of your own, which label whole boxes
        unless one default class of the game covers all their categories (they are then found
        as that class finds them).
    :param categories: the game's OCAtari categories, to check a mapping's names against.
    :raises InputError: an unknown class or category name (with close matches), a category in
        two classes, or no class at all.
    """
    defaults = ATARI_GAMES.get(game, {})
    if classes is None:
        return dict(defaults)
    if isinstance(classes, Mapping):
        owner = {cat: cls for cls in defaults.values() for cat in cls.categories}
        resolved = {}
        for name, cats in classes.items():
            names = (cats,) if isinstance(cats, str) else tuple(cats)
            for category in names:
                check_name(category, categories, f"OCAtari category of {game}")
            owners = {owner.get(category) for category in names}
            template = owners.pop() if len(owners) == 1 else None
            resolved[str(name)] = (
                dataclasses.replace(template, categories=names)
                if template is not None
                else AtariClass(names, colour=False)
            )
        n_names = len(classes)
    else:
        resolved = pick_classes(classes, defaults, f"class name for {game}")
        n_names = len(resolved)
    seen = [cat for cls in resolved.values() for cat in cls.categories]
    if not resolved or n_names != len(resolved) or len(seen) != len(set(seen)) or not all(seen):
        raise InputError(
            "classes must name at least one class, no class twice, each covering at least one OCAtari "
            f"category, no category in two classes; got {classes!r}"
        )
    return resolved
