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
- float16 when the policy then predicts as before (:func:`prediction_check`: the same greedy action
  on :data:`CHECK_OBSERVATIONS` observations of its env, every logit or Q-value within
  :data:`TOLERANCE` of the original's), else float32;
- what the rest of the agent is rebuilt from: the run's ``config.json``, as training builds the
  agent (:func:`camal_rl.train.new_model`), plus the step count and DQN's exploration rate.

bfloat16 is not tried: it keeps 8 significant bits to float16's 11, and the weights fit float16's
range. A MiniGrid agent's file is about 0.98 MB (PPO; DQN 0.95 MB) in float16: 82% of it is the
128 x 3136 linear layer after the CNN.

The weights rebuild an agent that acts, and is evaluated and recorded, as the zip's did (``camal-rl
evaluate`` and ``record`` fall back to them when the run holds no model zip:
:func:`camal_rl.loading.load_agent`); it is not a trainable model (no optimizer state, no replay
buffer), so ``train --resume`` needs the zip.
"""

from __future__ import annotations

import copy
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

WEIGHTS_FILE = "policy.weights.pt"
"""The weights file's name in a run directory."""
FORMAT = "camal-rl policy weights"
"""The ``format`` entry of every weights file."""
FORMAT_VERSION = 1
"""The layout of the file this module writes; it reads no other."""
CHECK_OBSERVATIONS = 256
"""Observations the float16 weights are checked on (:func:`prediction_check`)."""
TOLERANCE = 1e-3
"""Largest difference of a logit (PPO) or Q-value (DQN) that float16 weights may make, relative to
the largest score in the check batch (or to 1, if it is smaller). Rounding a weight to float16 moves
it by at most 2^-11 of itself; on the study's trained DoorKey PPO agents the logits moved by at most
3e-4 of the largest (2.3e-3 on 7.7), a third of this."""
OMITTED: Mapping[str, str] = {"q_net_target.": "q_net."}
"""Parameters not stored, by name prefix, and the prefix of those they are rebuilt from: DQN's
target network, which only training reads, is loaded as a copy of the online network."""
ATTRIBUTES = ("num_timesteps", "exploration_rate")
"""Model attributes stored beside the weights: the steps trained (result files record them) and DQN's
final exploration rate (``--stochastic`` acts epsilon-greedy at it)."""
Dtype = Literal["auto", "float16", "float32"]
"""How to store the weights: ``auto`` takes float16 when :func:`prediction_check` passes, else
float32."""
DTYPES: tuple[str, ...] = get_args(Dtype)


@dataclass(frozen=True)
class PredictionCheck:
    """How the stored weights predict against the original ones on a batch of observations."""

    observations: int
    """Observations compared."""
    greedy_agreement: float
    """Share of observations whose greedy action is the same."""
    max_abs_diff: float
    """Largest difference of a logit (PPO) or Q-value (DQN)."""
    tolerance: float
    """The largest difference allowed: :data:`TOLERANCE` times max(1, the largest score)."""

    @property
    def passed(self) -> bool:
        return self.greedy_agreement == 1.0 and self.max_abs_diff <= self.tolerance

    def describe(self) -> str:
        """One phrase: the check's result."""
        same = "identical" if self.greedy_agreement == 1.0 else f"{self.greedy_agreement:.1%} identical"
        return (
            f"greedy actions {same} on {self.observations} observations, largest score difference "
            f"{self.max_abs_diff:.1e} (tolerance {self.tolerance:.1e})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "observations": self.observations,
            "greedy_agreement": self.greedy_agreement,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class SavedWeights:
    """A weights file as read back (:func:`read_weights`)."""

    path: Path
    algo: str
    """``ppo`` or ``dqn``."""
    dtype: str
    """``float16`` or ``float32``."""
    tensors: dict[str, Tensor]
    """The stored tensors, each once."""
    aliases: dict[str, str]
    """Other names of stored tensors: name -> the stored name."""
    omitted: dict[str, str]
    """Prefixes of parameters rebuilt as copies: prefix -> the prefix copied (:data:`OMITTED`)."""
    attributes: dict[str, int | float]
    """Model attributes (:data:`ATTRIBUTES`) the file records."""
    source: str
    """The model zip it was exported from, relative to the run."""
    check: dict[str, Any]
    """:meth:`PredictionCheck.to_json` of the check made at export."""

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
    check: PredictionCheck | None
    """The float16 weights' :func:`prediction_check` (None when float32 was asked for)."""

    def describe(self) -> str:
        """One line: the file, its size, its dtype and why."""
        if self.check is None:
            why = "float32, as asked"
        elif self.dtype == "float32":
            why = f"float32, since in float16 {self.check.describe()}"
        else:
            failed = "" if self.check.passed else " as asked, though it fails the check"
            why = f"float16{failed}: {self.check.describe()}"
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


def cast(tensors: Mapping[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    """Floating-point tensors cast to ``dtype`` (each a copy with its own storage); others as they are."""
    return {
        name: tensor.to(dtype).clone() if tensor.is_floating_point() else tensor.clone()
        for name, tensor in tensors.items()
    }


def check_images(
    model: BaseAlgorithm, make_env: Callable[[], gym.Env], n: int = CHECK_OBSERVATIONS, per_episode: int = 32
) -> np.ndarray:
    """``n`` images (N, H, W, C) of the model's env to check stored weights on: the first
    ``per_episode`` steps of episodes seeded from the evaluation seed on, acting greedily in every
    other episode (the states evaluation visits) and at random in the others (states off its path),
    the random actions drawn from a generator seeded here: the same images on every call."""
    from camal_rl.evaluation import EVAL_SEED

    rng = np.random.default_rng(EVAL_SEED)
    images: list[np.ndarray] = []
    env = make_env()
    try:
        episode = 0
        while len(images) < n:
            obs, _ = env.reset(seed=EVAL_SEED + episode)
            for _ in range(min(per_episode, n - len(images))):
                images.append(obs["image"])
                if episode % 2 == 0:
                    action = int(model.predict(obs["image"], deterministic=True)[0])
                else:
                    action = int(rng.integers(env.action_space.n))  # type: ignore[attr-defined]
                obs, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            episode += 1
    finally:
        env.close()
    return np.stack(images)


def prediction_check(policy: BasePolicy, state: Mapping[str, Tensor], images: np.ndarray) -> PredictionCheck:
    """Compare ``policy`` with a copy of it that holds ``state`` (its ``state_dict``, e.g. in
    float16) on ``images``: the greedy actions and the logits (PPO) or Q-values (DQN) that the
    attention metrics read.

    :param policy: the original policy (left as it is).
    :param state: a full ``state_dict`` for a copy of it.
    :param images: (N, H, W, C) images of its env (:func:`check_images`).
    """
    from camal_rl.adapters import images_to_tensor
    from camal_rl.agents import PolicyScorer

    trial = copy.deepcopy(policy)
    trial.load_state_dict(state)
    batch = images_to_tensor(images)
    with torch.no_grad():
        before = PolicyScorer(policy).scores_and_maps(batch)[0].double()
        after = PolicyScorer(trial).scores_and_maps(batch)[0].double()
    agreement = (before.argmax(dim=1) == after.argmax(dim=1)).double().mean().item()
    return PredictionCheck(
        observations=len(images),
        greedy_agreement=agreement,
        max_abs_diff=(after - before).abs().max().item(),
        tolerance=TOLERANCE * max(1.0, before.abs().max().item()),
    )


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
    :param dtype: ``auto`` (float16 when :func:`prediction_check` passes, else float32);
        ``float16`` (its check made and reported all the same); ``float32`` (exact: no check).
    :param source: the model zip the model was loaded from, recorded in the file.
    :raises InputError: not a camal-rl agent, or a dtype not in :data:`DTYPES`.
    """
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    algo = algo_name(model)
    tensors, aliases = distinct_tensors(model.policy)
    names = list(model.policy.state_dict())
    check = None
    omitted = {
        prefix: copied for prefix, copied in OMITTED.items() if any(n.startswith(prefix) for n in names)
    }
    if dtype != "float32":
        half, _, _ = full_state_dict(cast(tensors, torch.float16), aliases, omitted, names)
        check = prediction_check(model.policy, half, check_images(model, make_env))
    chosen = "float16" if dtype == "float16" or (check is not None and check.passed) else "float32"
    stored = cast(tensors, getattr(torch, chosen))
    attributes = {name: getattr(model, name) for name in ATTRIBUTES if hasattr(model, name)}
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "algo": algo,
        "dtype": chosen,
        "tensors": stored,
        "aliases": aliases,
        "omitted": omitted,
        "attributes": {name: _plain_number(value) for name, value in attributes.items()},
        "source": source,
        "check": check.to_json() if check is not None else {},
    }
    with written_then_moved(path, durable=True) as tmp:
        torch.save(payload, tmp)
    return ExportedWeights(path, path.stat().st_size, chosen, check)


def _plain_number(value: Any) -> int | float:
    number = value.item() if isinstance(value, (np.generic, Tensor)) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return number


def read_weights(path: Path) -> SavedWeights:
    """Read a weights file with ``torch.load(weights_only=True)`` and check its layout.

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
    if data.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{path} is a weights file of version {data.get('version')!r}; this camal-rl reads version "
            f"{FORMAT_VERSION}: export it again from the run's model zip"
        )
    tensors = _entries(data.get("tensors"), Tensor)
    aliases = _entries(data.get("aliases"), str)
    omitted = _entries(data.get("omitted"), str)
    attributes = _entries(data.get("attributes"), (int, float))
    check = data.get("check")
    if (
        tensors is None
        or aliases is None
        or omitted is None
        or attributes is None
        or not set(attributes) <= set(ATTRIBUTES)
        or not all(math.isfinite(value) for value in attributes.values())
        or data.get("algo") not in ("ppo", "dqn")
        or data.get("dtype") not in ("float16", "float32")
        or not isinstance(check, dict)
    ):
        raise InputError(
            f"{path} is a damaged camal-rl weights file; export it again from the run's model zip"
        )
    return SavedWeights(
        path=path,
        algo=str(data["algo"]),
        dtype=str(data["dtype"]),
        tensors=tensors,
        aliases=aliases,
        omitted=omitted,
        attributes=attributes,
        source=str(data.get("source", "")),
        check=check,
    )


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
