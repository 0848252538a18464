"""Task-relevant object classes per MiniGrid env family.

A mask labels the objects an agent must look at to solve the task. Which objects those are is a
per-family choice; this module holds the defaults and validates user overrides. Names are
MiniGrid object types (``minigrid.core.constants.OBJECT_TO_IDX``), so ``classes=("key", "door")``
labels every key and every door, whatever its colour or state.

Families whose objects all play a role (ObstructedMaze, Fetch, PutNear, ...) list every object
type they contain; families with no task (Playground) or whose generator does not run in this
install (WFC) are left out, and can still be masked with explicit ``classes=``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import TypeVar

from minigrid.core.constants import OBJECT_TO_IDX

from camal_rl.errors import InputError

AGENT = "agent"
"""Class name of the agent itself (``include_agent=True``); the agent is drawn on top of its cell."""

MASKABLE_TYPES: tuple[str, ...] = tuple(t for t in OBJECT_TO_IDX if t not in ("unseen", "empty"))
"""Every name a mask class may take: MiniGrid's drawable object types, ``"agent"`` included."""

FAMILY_CLASSES: dict[str, tuple[str, ...]] = {
    "Empty": ("goal",),
    "DoorKey": ("key", "door", "goal"),
    "Unlock": ("key", "door"),
    "UnlockPickup": ("key", "door", "box"),
    # The ball blocks the door and must be moved out of the way.
    "BlockedUnlockPickup": ("key", "door", "box", "ball"),
    "KeyCorridor": ("key", "door", "ball"),
    "LavaCrossing": ("lava", "goal"),
    "LavaGap": ("lava", "goal"),
    "SimpleCrossing": ("goal",),
    "DynamicObstacles": ("ball", "goal"),
    "FourRooms": ("goal",),
    "MultiRoom": ("door", "goal"),
    "LockedRoom": ("key", "door", "goal"),
    "DistShift": ("lava", "goal"),
    "GoToDoor": ("door",),
    "RedBlueDoors": ("door",),
    "Fetch": ("key", "ball"),
    "GoToObject": ("key", "ball", "box"),
    "PutNear": ("key", "ball", "box"),
    # The object seen in the start room and the two candidates at the end of the hallway.
    "Memory": ("key", "ball"),
    # Target ball, keys (some in boxes), locked doors, and balls that block doors.
    "ObstructedMaze": ("key", "door", "ball", "box"),
}
"""Default task-relevant classes per family; mask value k is ``classes[k - 1]``."""

MINIGRID_PREFIX = "MiniGrid-"


def family_of(env_id: str) -> str | None:
    """The family of a MiniGrid id, or ``None`` if it has no entry in :data:`FAMILY_CLASSES`.

    The family is the longest registered name that starts the id once ``"MiniGrid-"``, the version
    and dashes are dropped, and is not followed by a lower-case letter: ``MiniGrid-LavaCrossingS9N1-v0`` ->
    ``LavaCrossing``, ``MiniGrid-Dynamic-Obstacles-5x5-v0`` -> ``DynamicObstacles``,
    ``MiniGrid-UnlockPickup-v0`` -> ``UnlockPickup`` (not ``Unlock``).

    :param env_id: base id, with or without the ``camal_rl/`` namespace.
    """
    base = env_id.split("/", 1)[-1]
    if not base.startswith(MINIGRID_PREFIX):
        return None
    body = re.sub(r"-v\d+$", "", base[len(MINIGRID_PREFIX) :]).replace("-", "")
    best: str | None = None
    for family in FAMILY_CLASSES:
        if not body.startswith(family):
            continue
        rest = body[len(family) :]
        if rest and rest[0].islower():
            continue
        if best is None or len(family) > len(best):
            best = family
    return best


def default_classes(env_id: str) -> tuple[str, ...]:
    """Default task-relevant classes of a MiniGrid id.

    :param env_id: base id, with or without the ``camal_rl/`` namespace.
    :raises InputError: the id's family has no defaults.
    """
    family = family_of(env_id)
    if family is None:
        raise InputError(
            f"camal-rl has no default task-relevant classes for {env_id!r}; pass them explicitly, "
            f"e.g. classes=('key', 'door'). Valid names: {', '.join(MASKABLE_TYPES)}"
        )
    return FAMILY_CLASSES[family]


def resolve_classes(
    env_id: str,
    classes: Sequence[str] | str | None = None,
    include_agent: bool = False,
) -> tuple[str, ...]:
    """The mask classes of an env: the user's names if given, else the family defaults, plus
    ``"agent"`` (last) if ``include_agent`` and not already named.

    :param env_id: base id (only used when ``classes`` is None, and in messages).
    :param classes: object type names, or one comma-separated string (``"key,door"``).
    :param include_agent: add the ``"agent"`` class.
    :raises InputError: unknown, duplicate or no names.
    """
    if classes is None:
        names = default_classes(env_id)
    elif isinstance(classes, str):
        names = tuple(name.strip() for name in classes.split(",") if name.strip())
    else:
        names = tuple(classes)
    return validate_classes(names + ((AGENT,) if include_agent and AGENT not in names else ()))


def validate_classes(names: Sequence[str]) -> tuple[str, ...]:
    """Check mask class names against :data:`MASKABLE_TYPES`.

    :param names: class names, in mask-value order.
    :raises InputError: unknown, duplicate or no names.
    """
    names = tuple(names)
    if not names:
        raise InputError(
            f"give at least one mask class, e.g. classes=('goal',); valid names: {', '.join(MASKABLE_TYPES)}"
        )
    unknown = [name for name in names if name not in MASKABLE_TYPES]
    if unknown:
        raise InputError(
            f"unknown MiniGrid object name(s) {', '.join(map(repr, unknown))}; "
            f"valid names: {', '.join(MASKABLE_TYPES)}"
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(f"mask class(es) {', '.join(map(repr, duplicates))} given more than once")
    return names


Member = TypeVar("Member")


def check_name(name: str, known: Collection[str], what: str) -> None:
    """Raise :class:`InputError` for a ``name`` not in ``known``, naming up to 3 close matches.

    :param what: what the name is, for the message (``"class name for Pong"``).
    """
    if name not in known:
        matches = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = f"close matches: {', '.join(matches)}" if matches else "no close match"
        raise InputError(f"unknown {what} {name!r} ({hint}); known: {', '.join(sorted(known))}")


def pick_classes(
    classes: str | Sequence[str], defaults: Mapping[str, Member], what: str
) -> dict[str, Member]:
    """The default classes named by ``classes`` (a subset or a new order; a comma-separated string
    also works), in that order; raises :class:`InputError` for an unknown name or a name given
    twice (``what`` names them in the message)."""
    listed = [n.strip() for n in classes.split(",")] if isinstance(classes, str) else list(classes)
    for name in listed:
        check_name(name, defaults, what)
    if len(set(listed)) != len(listed):
        raise InputError(f"classes must name no class twice; got {classes!r}")
    return {name: defaults[name] for name in listed}
