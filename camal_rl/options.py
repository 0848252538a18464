"""The options of a config dataclass by name, and their values read from JSON or YAML.

A command's config may nest settings classes whose options the command line gives without a
prefix (``compare --episodes`` is ``SweepConfig.evaluation.episodes``, tyro's ``OmitArgPrefixes``).
Files and presets name options the same way: :func:`option_fields` maps each name to its field,
:func:`with_options` replaces values by name, and :func:`check_json_values` and
:func:`json_field_values` check and convert the values of a JSON or YAML mapping of them.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints


def option_fields(kind: type) -> dict[str, tuple[str, ...]]:
    """Every option of config class ``kind`` by name -> the fields that lead to it. A nested
    settings class (``SweepConfig.evaluation``, an :class:`~camal_rl.settings.EvaluationSettings`)
    gives its fields as options of their own names, as the command line does (``--episodes``)."""
    hints = get_type_hints(kind, include_extras=True)
    paths: dict[str, tuple[str, ...]] = {}
    for f in dataclasses.fields(kind):
        nested = _settings_class(hints[f.name])
        if nested is None:
            paths[f.name] = (f.name,)
        else:
            paths.update({name: (f.name, *path) for name, path in option_fields(nested).items()})
    return paths


def option_hints(kind: type) -> dict[str, Any]:
    """Every option of config class ``kind`` (:func:`option_fields`) by name -> its type."""
    hints: dict[str, Any] = {}
    for name, hint in get_type_hints(kind, include_extras=True).items():
        nested = _settings_class(hint)
        hints.update(option_hints(nested) if nested is not None else {name: hint})
    return hints


def _settings_class(hint: Any) -> type | None:
    """The dataclass a field typed ``hint`` nests (``Annotated`` unwrapped), else None."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def get_option(cfg: Any, name: str) -> Any:
    """The value of option ``name`` of config ``cfg``, in whichever nested settings it is."""
    value = cfg
    for part in option_fields(type(cfg))[name]:
        value = getattr(value, part)
    return value


def with_options(cfg: Any, **values: Any) -> Any:
    """:func:`dataclasses.replace` by option name: the value of an option of a nested settings class
    (``episodes`` of ``SweepConfig.evaluation``) goes into it.

    :raises TypeError: a name that is not an option of ``cfg``.
    """
    paths = option_fields(type(cfg))
    unknown = sorted(set(values) - set(paths))
    if unknown:
        raise TypeError(f"{type(cfg).__name__} has no option {', '.join(unknown)}")
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        path = paths[name]
        if len(path) == 1:
            direct[name] = value
        else:
            nested.setdefault(path[0], {})[name] = value
    for field_name, options in nested.items():
        direct[field_name] = with_options(getattr(cfg, field_name), **options)
    return dataclasses.replace(cfg, **direct)


def json_field_values(data: Mapping[str, Any], kind: type) -> dict[str, Any]:
    """Option values of config class ``kind`` (:func:`option_fields`) from their JSON values (paths
    from strings, tuples from lists, dicts from objects), as :func:`with_options` takes them; keys
    that are not options are let be."""
    hints = option_hints(kind)
    return {name: _from_json(value, hints[name]) if name in hints else value for name, value in data.items()}


def _from_json(value: Any, hint: Any) -> Any:
    """``value`` read from JSON as a field typed ``hint`` holds it."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _from_json(value, args[0])
    if origin in (Union, types.UnionType):
        fits = [arg for arg in args if arg is not type(None) and _json_fits(value, arg)]
        return _from_json(value, fits[0]) if value is not None and fits else value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(_from_json(item, args[0]) for item in value)
    if origin is Mapping and isinstance(value, Mapping):
        return dict(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    return value


def check_json_values(data: Mapping[str, Any], kind: type) -> None:
    """Check the JSON values of the options of config class ``kind`` (keys that are not options
    are let be).

    :raises ValueError: a value of ``data`` that its option cannot take (an unknown algorithm, a
        seed that is not a number), naming the choices of an option that has some."""
    hints = option_hints(kind)
    for name, value in data.items():
        if name in hints and not _json_fits(value, hints[name]):
            choices = get_args(hints[name]) if get_origin(hints[name]) is Literal else ()
            one_of = f" (one of {', '.join(map(str, choices))})" if choices else ""
            raise ValueError(f"{name}: {value!r} is not a valid value{one_of}")


def _json_fits(value: Any, hint: Any) -> bool:
    """``value``, read from JSON, is one a field typed ``hint`` takes (tuples as lists, paths as
    strings, mappings as objects)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _json_fits(value, args[0])
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(_json_fits(value, arg) for arg in args)
    if origin is tuple:
        return isinstance(value, list) and all(_json_fits(item, args[0]) for item in value)
    if origin is Mapping:
        return isinstance(value, dict)
    if _settings_class(hint) is not None:  # a run's config in a sweep's cells: checked by its reader
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint in (str, Path):
        return isinstance(value, str)
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        return isinstance(value, int if hint is int else int | float) and not isinstance(value, bool)
    return True
