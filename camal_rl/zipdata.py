"""Read a Stable-Baselines3 model zip without running code it carries.

An SB3 zip holds its parameters as torch files, which SB3 itself reads with
``torch.load(weights_only=True)``, and its other attributes in ``data``: JSON, in which each
object JSON cannot hold (the policy class, the spaces, the schedules, ...) is a base64 cloudpickle
under ``":serialized:"``. Unpickling one runs whatever the pickle says, so a zip from elsewhere
could run any code on loading. :func:`saved_objects` unpickles those entries with
:class:`AllowlistUnpickler` instead, which builds only the objects SB3 and camal-rl save (classes
of SB3, camal-rl, ``torch.nn`` and ``torch.optim``; gymnasium spaces; numpy arrays and generators;
SB3's schedules) and refuses any other; its result goes to SB3's ``load(custom_objects=...)``,
which then unpickles nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from camal_rl.errors import InputError

SERIALIZED = ":serialized:"
"""The key under which SB3's ``data`` holds an entry's cloudpickle (base64)."""

ALLOWED_GLOBALS = frozenset(
    {
        ("builtins", "object"),
        ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        *(
            (f"numpy.{core}.multiarray", name)
            for core in ("core", "_core")
            for name in ("_reconstruct", "scalar")
        ),
        *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
        *(
            ("numpy.random._pickle", f"__{kind}_ctor")
            for kind in ("generator", "bit_generator", "randomstate")
        ),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        *(
            (f"gymnasium.spaces.{module}", name)
            for module, name in [
                ("box", "Box"),
                ("dict", "Dict"),
                ("discrete", "Discrete"),
                ("multi_binary", "MultiBinary"),
                ("multi_discrete", "MultiDiscrete"),
                ("tuple", "Tuple"),
            ]
        ),
        ("stable_baselines3.common.utils", "ConstantSchedule"),
        ("stable_baselines3.common.utils", "FloatSchedule"),
        ("stable_baselines3.common.utils", "LinearSchedule"),
        ("stable_baselines3.common.type_aliases", "TrainFreq"),
        ("stable_baselines3.common.type_aliases", "TrainFrequencyUnit"),
    }
)
"""Functions and classes a saved attribute is rebuilt with, beyond the classes of
:data:`TRUSTED_PACKAGES`: containers, numpy arrays and random generators, gymnasium spaces, SB3's
schedules and train frequency."""

TRUSTED_PACKAGES = ("stable_baselines3", "camal_rl", "torch.nn", "torch.optim")
"""Packages whose classes a pickle may name when they are torch modules (policies, features
extractors, activations), optimizers or replay / rollout buffers, from a module already imported
(an unpickler imports nothing: importing some modules runs a program, ``camal_rl.__main__``)."""

TRAINING_ONLY: Mapping[str, Any] = {
    "_last_obs": None,
    "_last_original_obs": None,
    "_last_episode_starts": None,
    "ep_info_buffer": None,
    "ep_success_buffer": None,
}
"""Rollout state that ``learn()`` rebuilds: not read, whatever the file holds."""

REPLACEABLE: Mapping[str, Any] = {
    "learning_rate": 0.0,
    "lr_schedule": 0.0,
    "clip_range": 0.0,
    "clip_range_vf": None,
    "exploration_schedule": 0.0,
    "rollout_buffer_class": None,
    "rollout_buffer_kwargs": {},
    "replay_buffer_class": None,
    "replay_buffer_kwargs": {},
}
"""Attributes that only training reads, and their stand-ins where the file holds an object
:class:`AllowlistUnpickler` refuses (a schedule written as a lambda, a buffer class of the user's):
the model then acts, and is evaluated, as saved, but is not fit to train on."""


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle refers to a function or class outside the allowlist; the message names it."""


class AllowlistUnpickler(pickle.Unpickler):
    """An unpickler that builds only :data:`ALLOWED_GLOBALS` and the torch-module, optimizer and
    buffer classes of :data:`TRUSTED_PACKAGES` (Python's "restricting globals" recipe); any other
    reference (a function, ``os.system``, a class of the user's) raises :class:`RefusedGlobal`
    naming it, before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        trusted = any(module == package or module.startswith(package + ".") for package in TRUSTED_PACKAGES)
        if trusted and module in sys.modules:  # imported already: a pickle imports nothing
            import torch
            from stable_baselines3.common.buffers import BaseBuffer

            found = super().find_class(module, name)
            if isinstance(found, type) and issubclass(
                found, (torch.nn.Module, torch.optim.Optimizer, BaseBuffer)
            ):
                return found
        raise RefusedGlobal(f"{module}.{name}")


def read_zip_data(path: Path) -> dict[str, Any]:
    """The JSON of a model zip's ``data`` entry, its pickles left as they are (base64 strings).

    :raises InputError: not a zip, no ``data`` entry (not a saved SB3 model), or not JSON.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode())
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise InputError(
            f"cannot read model zip {path}: {error}; "
            "pass a run directory, or a model zip saved by camal-rl or Stable-Baselines3"
        ) from error
    if not isinstance(data, dict):
        raise InputError(
            f"cannot read model zip {path}: its data is a JSON {type(data).__name__}, not an object"
        )
    return data


def saved_objects(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The pickled entries of a zip's ``data`` (:func:`read_zip_data`), rebuilt by
    :class:`AllowlistUnpickler`: SB3's ``load(path, custom_objects=...)`` given them unpickles
    nothing. Rollout state (:data:`TRAINING_ONLY`) is left out; a training-only attribute the
    unpickler refuses gets its stand-in (:data:`REPLACEABLE`).

    :raises InputError: an attribute the model needs (its policy class, its keywords, its spaces)
        refers to a class or function outside the allowlist; the message names it and says how to
        load the file anyway (``--allow-pickle``, for a file you trust).
    """
    import camal_rl.agents  # noqa: F401  (the classes a pickle may name are imported, not the pickle's)

    objects: dict[str, Any] = {}
    for key, entry in data.items():
        if not (isinstance(entry, Mapping) and SERIALIZED in entry):
            continue
        if key in TRAINING_ONLY:
            objects[key] = TRAINING_ONLY[key]
            continue
        try:
            payload = base64.b64decode(str(entry[SERIALIZED]).encode(), validate=True)
            objects[key] = AllowlistUnpickler(io.BytesIO(payload)).load()
        except (
            pickle.UnpicklingError,
            binascii.Error,
            AttributeError,
            EOFError,
            ImportError,
            TypeError,
            ValueError,
        ) as error:
            if key in REPLACEABLE:
                objects[key] = REPLACEABLE[key]
                continue
            if isinstance(error, RefusedGlobal):
                why = f"refers to {error}, which camal-rl does not unpickle"
            else:
                why = f"camal-rl cannot rebuild safely ({error})"
            raise InputError(
                f"{path}: its {key} is a pickle that {why} (unpickling runs whatever code a file "
                "carries); if you trust the file, pass --allow-pickle"
            ) from error
    return objects
