"""Options from a file: ``camal-rl train --config FILE``.

A YAML or JSON file holds TrainConfig field values keyed as a run's ``config.json``
(:meth:`camal_rl.config.TrainConfig.to_json`), so a run's own config trains it again: ``camal-rl
train --config runs/x/config.json --seed 3``. The command line puts its explicit options over the
file, and the file over its preset (:func:`start_config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from camal_rl.config import TrainConfig, check_json_values, get_preset, json_field_values
from camal_rl.errors import InputError

RUN_SPECIFIC = ("out", "resume", "overwrite", "config")
"""Keys of a config file that :func:`read_config_file` does not read: where a run goes and whether
it resumes or replaces one are the command line's to say (and ``config`` is where a run's own
options came from)."""
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


def read_config_file(path: Path) -> dict[str, Any]:
    """The TrainConfig field values of a YAML or JSON file (``train --config``), whose keys are a
    run's ``config.json``'s: any of them, checked as :meth:`TrainConfig.load` checks a run's, less
    :data:`RUN_SPECIFIC` (a run's config.json records them, and they are not read). A file that
    holds ``algo_kwargs`` is a run's resolved config; one recorded before ``reward_scale`` existed
    trained unscaled, as :meth:`TrainConfig.from_json` reads it.

    :param path: a ``.json`` file, else YAML (read with ``yaml.safe_load``).
    :return: field name -> value, as :func:`dataclasses.replace` takes them.
    :raises InputError: the file cannot be read, is not a mapping, has a key that is not an option
        (listing the close ones) or a value its option cannot take.
    """
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else _yaml_floats(yaml.safe_load(text))
        if not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise ValueError(f"it is {kind}, not a mapping of options to values")
        options = [f.name for f in dataclasses.fields(TrainConfig)]
        unknown = sorted(str(key) for key in data if key not in options)
        if unknown:
            named = ", ".join(f"{key!r}{_close_matches(key, options)}" for key in unknown)
            raise ValueError(f"unknown key{'s' * (len(unknown) > 1)} {named}")
        check_json_values(data)
    except (OSError, ValueError, yaml.YAMLError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise InputError(
            f"cannot read --config {path} ({reason}); pass a run's config.json, or a YAML or JSON "
            "mapping of train options to values (`camal-rl train --help` lists them, _ for -)"
        ) from error
    if "algo_kwargs" in data:
        data.setdefault("reward_scale", 1.0)
    return json_field_values({key: value for key, value in data.items() if key not in RUN_SPECIFIC})


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
    values = read_config_file(config) if config is not None else {}
    name = preset or values.pop("preset", None)
    values.pop("preset", None)
    try:
        start = get_preset(name, kind) if name else kind()
    except InputError as error:
        raise InputError(f"{config} names a preset: {error}" if preset is None else str(error)) from error
    if "hp" in values:
        own = values["hp"]
        values["hp"] = start.hp + (own[len(start.hp) :] if own[: len(start.hp)] == start.hp else own)
    if config is not None:
        values["config"] = config
    return dataclasses.replace(start, preset=name, **values)
