"""Options from a file: ``camal-rl train --config FILE`` and ``camal-rl compare --config FILE``.

A YAML or JSON file maps a command's options (named as on the command line, ``_`` for ``-``) to
values. ``train``'s is keyed as a run's ``config.json`` (:meth:`camal_rl.config.TrainConfig.to_json`),
so a run's own config trains it again: ``camal-rl train --config runs/x/config.json --seed 3``.
``compare``'s holds the sweep's options (``episodes: 10``, ``workers: 4``), and may give its cells
as a list of run configs keyed as ``train``'s. The command line puts its explicit options over the
file, and the file over its preset (:func:`start_config`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml

from camal_rl.config import TrainConfig, get_preset
from camal_rl.errors import InputError
from camal_rl.options import check_json_values, get_option, json_field_values, option_hints, with_options

RUN_SPECIFIC = ("out", "resume", "overwrite", "config")
"""Keys of a ``train`` config file that :func:`read_config_file` does not read: where a run goes and
whether it resumes or replaces one are the command line's to say (and ``config`` is where a run's
own options came from). A ``compare`` file's ``out`` is read: a sweep file names its folder."""
_EXPONENT_FLOAT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")


def _yaml_floats(value: Any) -> Any:
    """``value`` read by ``yaml.safe_load`` with ``1e-4`` as the float it means (PyYAML follows YAML
    1.1, which needs a dot: ``1.0e-4``) in any mapping or list."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        return float(value)
    if isinstance(value, dict):
        return {key: _yaml_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_floats(item) for item in value]
    return value


def read_config_file(path: Path, kind: type = TrainConfig) -> dict[str, Any]:
    """The option values of a YAML or JSON file (``--config``) for config class ``kind``, checked as
    :meth:`TrainConfig.load` checks a run's. A ``train`` file's keys are a run's ``config.json``'s,
    less :data:`RUN_SPECIFIC` (a run's config.json records them, and they are not read); one that
    holds ``algo_kwargs`` is a run's resolved config, and one recorded before ``reward_scale``
    existed trained unscaled, as :meth:`TrainConfig.from_json` reads it. A ``compare`` file's
    ``cells`` are such run configs.

    :param path: a ``.json`` file, else YAML (read with ``yaml.safe_load``).
    :param kind: :class:`TrainConfig`, or :class:`camal_rl.sweep.SweepConfig`.
    :return: option name -> value, as :func:`camal_rl.options.with_options` takes them.
    :raises InputError: the file cannot be read, is not a mapping, has a key that is not an option
        (listing the close ones) or a value its option cannot take.
    """
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else _yaml_floats(yaml.safe_load(text))
        if not isinstance(data, dict):
            kind_of = "empty" if data is None else f"a {type(data).__name__}"
            raise ValueError(f"it is {kind_of}, not a mapping of options to values")
        values = _option_values(data, kind)
    except (OSError, ValueError, yaml.YAMLError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        command, run = ("train", "a run's config.json, or ") if kind is TrainConfig else ("compare", "")
        raise InputError(
            f"cannot read --config {path} ({reason}); pass {run}a YAML or JSON mapping of {command} "
            f"options to values (`camal-rl {command} --help` lists them, _ for -)"
        ) from error
    skipped = RUN_SPECIFIC if kind is TrainConfig else ("config",)
    return {key: value for key, value in values.items() if key not in skipped}


def _option_values(data: Mapping[str, Any], kind: type, where: str = "") -> dict[str, Any]:
    """The checked and converted option values of mapping ``data`` for config class ``kind``; a
    list of run configs (a sweep's ``cells``) becomes :class:`TrainConfig` objects.

    :raises ValueError: naming the key (``cells[0]: ...`` within a cell) and what is wrong.
    """
    hints = option_hints(kind)
    unknown = sorted(str(key) for key in data if key not in hints)
    if unknown:
        named = ", ".join(f"{key!r}{_close_matches(key, list(hints))}" for key in unknown)
        raise ValueError(f"{where}unknown key{'s' * (len(unknown) > 1)} {named}")
    try:
        check_json_values(data, kind)
    except ValueError as error:
        raise ValueError(f"{where}{error}") from None
    values = json_field_values(data, kind)
    for name, value in data.items():
        if _holds_run_configs(hints[name]):
            values[name] = tuple(_run_config(cell, f"{where}{name}[{i}]: ") for i, cell in enumerate(value))
    if kind is TrainConfig and "algo_kwargs" in values:
        values.setdefault("reward_scale", 1.0)
        values.setdefault("reward_clip", False)
    return values


def _holds_run_configs(hint: Any) -> bool:
    """A field typed ``hint`` holds run configs (``tuple[TrainConfig, ...]``, a sweep's cells)."""
    if get_origin(hint) is Annotated:
        return _holds_run_configs(get_args(hint)[0])
    return get_origin(hint) is tuple and get_args(hint)[:1] == (TrainConfig,)


def _run_config(data: Mapping[str, Any], where: str) -> TrainConfig:
    """A sweep cell from its mapping of ``train`` options (a run's config.json's keys)."""
    values = _option_values(data, TrainConfig, where)
    return with_options(TrainConfig(), **values)


def _close_matches(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def start_config(kind: type[Any], *, preset: str | None = None, config: Path | None = None) -> Any:
    """What the command line's explicit options override (train and compare take it as their
    parser's default): the preset ``preset`` (else the one ``config``'s file names), under the
    values of the file ``config`` (:func:`read_config_file`). The file's ``hp`` add to the
    preset's, less the preset's own that they begin with (a run's config.json records both).

    :return: that config, with ``preset`` and ``config`` recorded; None with neither.
    :raises InputError: as :func:`get_preset` and :func:`read_config_file`.
    """
    if preset is None and config is None:
        return None
    values = read_config_file(config, kind) if config is not None else {}
    name = preset or values.pop("preset", None)
    values.pop("preset", None)
    try:
        start = get_preset(name, kind) if name else kind()
    except InputError as error:
        raise InputError(f"{config} names a preset: {error}" if preset is None else str(error)) from error
    if "hp" in values:
        own, preset_hp = values["hp"], get_option(start, "hp")
        values["hp"] = preset_hp + (own[len(preset_hp) :] if own[: len(preset_hp)] == preset_hp else own)
    if config is not None:
        values["config"] = config
    return with_options(start, preset=name, **values)
