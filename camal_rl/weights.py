"""A run's trained policy as its weights alone: small enough to commit, enough to evaluate.

A model zip holds the policy, the optimizer's state and the pickled settings: 6 MB for a MiniGrid
agent, too much to commit for each run of a study. ``RUN/policy.weights.pt`` (:data:`WEIGHTS_FILE`)
holds the policy's ``state_dict`` alone, written by ``torch.save`` and read back by
``torch.load(weights_only=True)`` (tensors, strings and numbers: nothing is unpickled):

- each tensor once: SB3's actor-critic with a shared features extractor lists the same CNN under
  ``features_extractor.``, ``pi_features_extractor.`` and ``vf_features_extractor.``; the other
  names are recorded as aliases of the first;
- DQN's target network left out (:data:`OMITTED`): acting and scoring read the online network,
  and the target is rebuilt as a copy of it, as SB3 builds it;
- in the first encoding (:mod:`camal_rl.weights_encoding`) with which the policy then predicts as
  before (:mod:`camal_rl.weights_check`, on 256 observations of its env: the same greedy actions,
  the logits or Q-values within 1e-3 of the largest, the Grad-CAM maps within 1e-2 of their mean on
  average and 5e-2 of their largest anywhere): ``int10`` (each 2-D matrix of at least 65,536
  entries in 10-bit integers with a float32 scale for each 64 entries of a row, the other tensors
  in float16), ``float16``, else ``float32`` (exact). The check loads the weights exactly as they
  are read back;
- what the rest of the agent is rebuilt from: the run's ``config.json``, as training builds the
  agent (:func:`camal_rl.train.new_model`), plus the step count and DQN's exploration rate.

A MiniGrid agent (488,488 distinct parameters for PPO, 476,007 for DQN) takes 0.985 MB in float16
(DQN 0.958 MB), 82% of it the 128 x 3136 linear layer after the CNN, and 0.710 MB in int10 (DQN
0.682 MB). Measured on the three confirmatory DoorKey PPO agents of the camal-loss study (seed 0 of
ppo-none, ppo-camal and ppo-energy, 300k steps), their committed float16 files re-encoded in
int10: greedy actions, logits and Grad-CAM maps about as close to the float16 files' as those are
to the model zips' (:mod:`camal_rl.weights_check`); held-out evaluation (``camal-rl evaluate``, 20
episodes of the training and the one-distractor variants, Grad-CAM, perturbation and faithfulness,
as the study ran it) with identical returns, lengths and success, and every other number (497 an
agent: means, IQMs, CI bounds) within 4.4e-3 of the float16 file's (means 2.9e-3), as the float16
files' are within 4.1e-3 of the zips' (means 2.7e-3).

Why 10 bits: int8 (0.609 MB) moved the ppo-energy agent's held-out perturbation comprehensiveness by
1.1e-2 (a mean; its IQM 1.4e-2), and int8 with one scale a row (0.585 MB) the ppo-none agent's
Grad-CAM metrics by 1.4e-2 (means; a CI bound 4.2e-2). Why a scale for each 64 entries of a row, not
one a row: the largest of 64 weights is nearer the others than a row's, so they round finer; with
one scale a row, int10 moved the ppo-none agent's Grad-CAM maps 1.5 times as much on average and
switched a unit of the linear layer on or off on 13 of 1024 images, with a scale for each 64 on
none, for 25 kB (6,272 float32 scales). Only matrices of at least 65,536 entries are packed: the
conv layers compute the attention maps the study scores, which stay as float16 gives them, and the
MLP's matrices (8,192 entries and fewer) would save 17 kB. Scales are float32: no group is too small
for their range. bfloat16 is not tried: it keeps 8 significant bits to float16's 11. Lossless
compression of the float16 file saves 15% (lzma, bytes split by significance).

The weights rebuild an agent that acts, and is evaluated and recorded, as the zip's did (``camal-rl
evaluate`` and ``record`` fall back to them when the run holds no model zip:
:func:`camal_rl.loading.load_agent`); it is not a trainable model (no optimizer state, no replay
buffer), so ``train --resume`` needs the zip. Files of version 1 (float16 or float32, checked on
the scores alone) are read as they were, and re-encoded by :func:`camal_rl.export.reencode_weights`
(``camal-rl export-weights RUN --from-weights``) when the zip they came from is gone.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from torch import Tensor

from camal_rl.atomic import written_then_moved
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.weights_check import PredictionCheck, check_images, prediction_check
from camal_rl.weights_encoding import (
    ENCODINGS,
    INT10_MIN_ENTRIES,
    Encoded,
    Encoding,
    decode,
    encode,
    int10_names,
    packing_fits,
)

WEIGHTS_FILE = "policy.weights.pt"
"""The weights file's name in a run directory."""
FORMAT = "camal-rl policy weights"
"""The ``format`` entry of every weights file."""
FORMAT_VERSION = 2
"""The layout of the file this module writes: version 1's, and packed matrices with their scales and
high bits."""
READ_VERSIONS = (1, FORMAT_VERSION)
"""The layouts read: version 1 (float16 or float32 tensors alone) and this one."""
Dtype = Literal["auto", "int10", "float16", "float32"]
"""How to store the weights: ``auto`` takes the first of :data:`ENCODINGS` whose
:func:`~camal_rl.weights_check.prediction_check` passes (float32 when none of int10 and float16
does), another its encoding as asked."""
DTYPES: tuple[str, ...] = get_args(Dtype)
OMITTED: Mapping[str, str] = {"q_net_target.": "q_net."}
"""Parameters not stored, by name prefix, and the prefix of those they are rebuilt from: DQN's
target network, which only training reads, is loaded as a copy of the online network."""
ATTRIBUTES = ("num_timesteps", "exploration_rate")
"""Model attributes stored beside the weights: the steps trained (result files record them) and DQN's
final exploration rate (``--stochastic`` acts epsilon-greedy at it)."""


@dataclass(frozen=True)
class SavedWeights:
    """A weights file as read back (:func:`read_weights`)."""

    path: Path
    version: int
    """The file's layout (:data:`READ_VERSIONS`)."""
    algo: str
    """``ppo`` or ``dqn``."""
    dtype: str
    """Its encoding (:data:`ENCODINGS`): ``int10``, ``float16`` or ``float32``."""
    tensors: dict[str, Tensor]
    """The stored tensors, each once, packed matrices decoded to float32
    (:func:`camal_rl.weights_encoding.decode`)."""
    aliases: dict[str, str]
    """Other names of stored tensors: name -> the stored name."""
    omitted: dict[str, str]
    """Prefixes of parameters rebuilt as copies: prefix -> the prefix copied (:data:`OMITTED`)."""
    attributes: dict[str, int | float]
    """Model attributes (:data:`ATTRIBUTES`) the file records."""
    source: str
    """Where the weights came from: the model zip, relative to the run (and the weights file they
    were re-encoded from, if they were)."""
    checks: dict[str, dict[str, Any]]
    """:meth:`PredictionCheck.to_json` of each check made at export, by encoding (none for float32
    asked for)."""

    @property
    def num_timesteps(self) -> int:
        return int(self.attributes.get("num_timesteps", 0))

    def state_dict(self, names: Sequence[str]) -> dict[str, Tensor]:
        """The policy's full ``state_dict`` for the parameter ``names`` a model has
        (:func:`full_state_dict`).

        :raises InputError: a name the file has no tensor for, or a tensor no name takes (the file
            does not fit the model).
        """
        state, missing, unused = full_state_dict(self.tensors, self.aliases, self.omitted, names)
        for what, listed in (("no weights for", missing), ("weights for no parameter:", unused)):
            if listed:
                raise self.misfit(f"it has {what} {', '.join(listed[:3])}{' ...' * (len(listed) > 3)}")
        return state

    def misfit(self, why: str) -> InputError:
        """The error of a file that does not fit the model its run's config builds."""
        return InputError(
            f"{self.path} does not fit the {self.algo} agent its run's config.json builds ({why}); "
            "export it again from the run's model zip (camal-rl export-weights RUN), or restore config.json"
        )


@dataclass(frozen=True)
class ExportedWeights:
    """A weights file written by :func:`write_weights`."""

    path: Path
    size: int
    """Bytes."""
    dtype: str
    """Its encoding (:data:`ENCODINGS`)."""
    checks: dict[str, PredictionCheck]
    """The :func:`~camal_rl.weights_check.prediction_check` of each encoding tried, in the order
    tried (none for float32 asked for)."""

    @property
    def check(self) -> PredictionCheck | None:
        """The check of the encoding written (None for float32)."""
        return self.checks.get(self.dtype)

    def describe(self) -> str:
        """One line: the file, its size, its encoding and why."""
        failed = "".join(
            f"; not {name}: {check.describe()}" for name, check in self.checks.items() if name != self.dtype
        )
        if self.check is None:
            why = f"float32{failed or ', as asked'}"
        else:
            asked = "" if self.check.passed else " as asked, though it fails the check"
            why = f"{self.dtype}{asked}: {self.check.describe()}{failed}"
        return f"wrote {self.path} ({self.size / 1e6:.3f} MB, {why})"


def algo_name(model: BaseAlgorithm) -> str:
    """``ppo`` or ``dqn``: the camal-rl algorithm of a model."""
    from camal_rl.loading import algorithm_classes

    for name, cls in algorithm_classes().items():
        if isinstance(model, cls):
            return name
    raise InputError(
        f"{type(model).__name__} is not a camal-rl agent (CamalPPO, CamalDQN): only a run's agent is "
        "stored as weights, since its run's config rebuilds it"
    )


def distinct_tensors(policy: BasePolicy) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The policy's ``state_dict`` with each tensor once, less :data:`OMITTED`; and the other names
    of each kept tensor (name -> kept name). Tensors are the same when they are views of the same
    memory with the same shape and strides (a module registered under several names)."""
    kept: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple[Any, ...], str] = {}
    for name, tensor in policy.state_dict().items():
        if any(name.startswith(prefix) for prefix in OMITTED):
            continue
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
        )
        if tensor.numel() and key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
            kept[name] = tensor.detach().cpu()
    return kept, aliases


def full_state_dict(
    tensors: Mapping[str, Tensor],
    aliases: Mapping[str, str],
    omitted: Mapping[str, str],
    names: Sequence[str],
) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """A ``state_dict`` of the parameter ``names`` from distinct tensors (:func:`distinct_tensors`):
    a name takes its own tensor, its alias's, or (under an ``omitted`` prefix) its copy's.

    :return: the ``state_dict``; the names no tensor was found for; the tensors no name took.
    """
    state: dict[str, Tensor] = {}
    missing: list[str] = []
    for name in names:
        stored = aliases.get(name, name)
        for prefix, copied in omitted.items():
            if stored.startswith(prefix) and stored not in tensors:
                source = copied + stored.removeprefix(prefix)
                stored = aliases.get(source, source)
        if stored in tensors:
            state[name] = tensors[stored]
        else:
            missing.append(name)
    taken = {id(tensor) for tensor in state.values()}
    return state, missing, sorted(name for name, tensor in tensors.items() if id(tensor) not in taken)


def write_weights(
    model: BaseAlgorithm,
    path: Path,
    make_env: Callable[[], gym.Env],
    *,
    dtype: Dtype = "auto",
    source: str = "",
) -> ExportedWeights:
    """Write ``model``'s policy weights to ``path`` (atomically: a kill leaves any earlier file).

    :param model: a CamalPPO or CamalDQN agent.
    :param path: the weights file (a run's :data:`WEIGHTS_FILE`).
    :param make_env: builds one env of the model (for the observations of the check).
    :param dtype: ``auto`` (the first of :data:`ENCODINGS` whose
        :func:`~camal_rl.weights_check.prediction_check` passes);
        ``int10`` or ``float16`` (that encoding, its check made and reported all the same);
        ``float32`` (exact: no check).
    :param source: where the model came from (its model zip, relative to the run), recorded in the
        file.
    :raises InputError: not a camal-rl agent, a dtype not in :data:`DTYPES`, or int10 asked for a
        policy with no matrix to pack.
    """
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    algo = algo_name(model)
    tensors, aliases = distinct_tensors(model.policy)
    names = list(model.policy.state_dict())
    omitted = {
        prefix: copied for prefix, copied in OMITTED.items() if any(n.startswith(prefix) for n in names)
    }
    has_packed = bool(int10_names(tensors))
    if dtype == "int10" and not has_packed:
        raise InputError(
            f"the {algo} agent has no 2-D weight matrix of {INT10_MIN_ENTRIES:,} entries or more to store "
            "in int10; store it as float16 or float32 (or auto)"
        )
    if dtype == "auto":
        tried: list[Encoding] = ["int10", "float16"] if has_packed else ["float16"]
    else:
        tried = [dtype] if dtype != "float32" else []
    chosen, encoded, checks = _checked_encoding(
        model,
        make_env,
        tensors,
        tried,
        lambda state: full_state_dict(state, aliases, omitted, names)[0],
        asked=dtype != "auto",
    )
    attributes = {name: getattr(model, name) for name in ATTRIBUTES if hasattr(model, name)}
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "algo": algo,
        "dtype": chosen,
        "tensors": encoded.tensors,
        "scales": encoded.scales,
        "high_bits": encoded.high_bits,
        "aliases": aliases,
        "omitted": omitted,
        "attributes": {name: _plain_number(value) for name, value in attributes.items()},
        "source": source,
        "checks": {name: check.to_json() for name, check in checks.items()},
    }
    with written_then_moved(path, durable=True) as tmp:
        torch.save(payload, tmp)
    return ExportedWeights(path, path.stat().st_size, chosen, checks)


def _checked_encoding(
    model: BaseAlgorithm,
    make_env: Callable[[], gym.Env],
    tensors: Mapping[str, Tensor],
    tried: Sequence[Encoding],
    full_state: Callable[[dict[str, Tensor]], dict[str, Tensor]],
    *,
    asked: bool,
) -> tuple[Encoding, Encoded, dict[str, PredictionCheck]]:
    """The first encoding of ``tried`` whose :func:`~camal_rl.weights_check.prediction_check`
    passes, else float32; its encoded tensors; and the check of each encoding tried, in order.

    :param full_state: the policy's whole ``state_dict`` from its decoded distinct tensors.
    :param asked: the encoding was asked for: the first of ``tried`` is taken whatever its check.
    """
    checks: dict[str, PredictionCheck] = {}
    images = check_images(model, make_env) if tried else None
    for encoding in tried:
        assert images is not None
        trial = encode(tensors, encoding)
        checks[encoding] = prediction_check(model.policy, full_state(decode(trial)), images)
        if asked or checks[encoding].passed:
            return encoding, trial, checks
    return "float32", encode(tensors, "float32"), checks


def _plain_number(value: Any) -> int | float:
    number = value.item() if isinstance(value, (np.generic, Tensor)) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return number


def read_weights(path: Path) -> SavedWeights:
    """Read a weights file (of any of :data:`READ_VERSIONS`) with ``torch.load(weights_only=True)``,
    check its layout, and decode its packed matrices.

    :raises InputError: not readable, not a camal-rl weights file, of another version, or damaged.
    """
    data = _load_file(path)
    version = data["version"]
    damaged = InputError(
        f"{path} is a damaged camal-rl weights file; export it again from the run's model zip"
    )
    tensors = _entries(data.get("tensors"), Tensor)
    aliases = _entries(data.get("aliases"), str)
    omitted = _entries(data.get("omitted"), str)
    attributes = _entries(data.get("attributes"), (int, float))
    if version == 1:  # float16 or float32, and the float16 check alone
        unpacked = "scales" not in data and "high_bits" not in data
        scales: dict[str, Any] | None = {} if unpacked else None
        high_bits: dict[str, Any] | None = {} if unpacked else None
        encodings: tuple[str, ...] = ("float16", "float32")
        check = data.get("check")
        checks = ({"float16": check} if check else {}) if isinstance(check, dict) else None
    else:
        scales = _entries(data.get("scales"), Tensor)
        high_bits = _entries(data.get("high_bits"), Tensor)
        encodings = ENCODINGS
        checks = _entries(data.get("checks"), dict)
    if (
        tensors is None
        or aliases is None
        or omitted is None
        or attributes is None
        or scales is None
        or high_bits is None
        or not set(attributes) <= set(ATTRIBUTES)
        or not all(math.isfinite(value) for value in attributes.values())
        or data.get("algo") not in ("ppo", "dqn")
        or data.get("dtype") not in encodings
        or not isinstance(checks, dict)
        or not set(checks) <= set(ENCODINGS)
        or not packing_fits(Encoded(tensors, scales, high_bits), packed=data.get("dtype") == "int10")
    ):
        raise damaged
    return SavedWeights(
        path=path,
        version=int(version),
        algo=str(data["algo"]),
        dtype=str(data["dtype"]),
        tensors=decode(Encoded(tensors, scales, high_bits)),
        aliases=aliases,
        omitted=omitted,
        attributes=attributes,
        source=str(data.get("source", "")),
        checks=checks,
    )


def _load_file(path: Path) -> dict[str, Any]:
    """A weights file's dict, once its format and version are ones :func:`read_weights` reads.

    :raises InputError: not readable, not a camal-rl weights file, or of another version.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"cannot read {path} as policy weights ({first_line}); export it again from the run's model "
            "zip (camal-rl export-weights RUN)"
        ) from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a camal-rl policy weights file (camal-rl export-weights RUN writes one)"
        )
    version = data.get("version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise InputError(
            f"{path} is a weights file of version {version!r}; this camal-rl reads versions "
            f"{' and '.join(map(str, READ_VERSIONS))}: export it again from the run's model zip, or "
            "read it with the camal-rl that wrote it"
        )
    return data


def _entries(value: Any, kind: type | tuple[type, ...]) -> dict[str, Any] | None:
    """``value`` when it is a dict of names to ``kind`` (not bools), else None."""
    if not isinstance(value, dict):
        return None
    fits = all(
        isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool) for k, v in value.items()
    )
    return value if fits else None


def load_weights(
    run: RunDir, path: Path | None = None, *, device: str = "auto"
) -> tuple[BaseAlgorithm, SavedWeights]:
    """Rebuild a run's agent from its ``config.json``, as training builds it (on one env of the run,
    for its spaces, closed again), and load its weights file into the policy.

    :param run: the run directory.
    :param path: the weights file (default: the run's :data:`WEIGHTS_FILE`).
    :param device: torch device.
    :raises InputError: the file is not readable, or does not fit the agent the config builds.
    """
    from camal_rl.config import TrainConfig
    from camal_rl.loading import algorithm_classes
    from camal_rl.train import env_factory, new_model

    path = path or run.path / WEIGHTS_FILE
    saved = read_weights(path)
    config = TrainConfig.load(run.config)
    if config.algo != saved.algo:
        raise saved.misfit(f"it holds {saved.algo} weights, the config says {config.algo}")
    # as saved (resolved by train): defaults that changed since do not change the agent
    cfg = dataclasses.replace(config, device=device, verbose=0)
    with warnings.catch_warnings():  # PPO's note that batch_size does not divide n_steps x 1 env
        warnings.filterwarnings("ignore", "You have specified a mini-batch size", UserWarning)
        model = new_model(cfg, algorithm_classes()[cfg.algo], env_factory(cfg)())
    env = model.get_env()
    if env is not None:
        env.close()
    model.env = None
    names = list(model.policy.state_dict())
    try:
        model.policy.load_state_dict(saved.state_dict(names))
    except RuntimeError as error:  # a shape that differs
        raise saved.misfit(str(error).strip().splitlines()[-1].strip()) from error
    for name, value in saved.attributes.items():
        setattr(model, name, value)
    return model, saved
