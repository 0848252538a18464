"""Load a trained agent from a run directory or a model zip, with what it was trained on."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.dqn.policies import DQNPolicy

from camal_rl.config import TrainConfig
from camal_rl.envs.base import IMAGE_KEY
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.zipdata import read_zip_data, saved_objects

if TYPE_CHECKING:
    from camal_rl.agents import CamalDQN, CamalPPO


def algorithm_classes() -> dict[str, type[CamalPPO] | type[CamalDQN]]:
    """``ppo`` / ``dqn`` -> the CAMAL algorithm class (imported on first use)."""
    from camal_rl.agents import CamalDQN, CamalPPO

    return {"ppo": CamalPPO, "dqn": CamalDQN}


STOCK_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
"""Stable-Baselines3's own algorithms whose models camal-rl evaluates and records (not trains)."""


@dataclass(frozen=True)
class LoadedAgent:
    """A trained model and the settings it was trained with."""

    model: BaseAlgorithm
    algo: str
    model_path: Path
    config: TrainConfig | None
    """The run's resolved config; None for a bare model zip."""
    env_id: str
    run: RunDir | None
    env_overrides: dict[str, Any] = field(default_factory=dict)
    """Env keywords given at loading, over the run's own."""
    weights_dtype: str | None = None
    """``int10``, ``float16`` or ``float32`` for an agent rebuilt from its run's weights file
    (:mod:`camal_rl.weights`), which acts but does not train; None for a model zip."""
    checkpoint: int | None = None
    """The step of the run's checkpoint loaded by its path (``RUN/checkpoints/step_N.zip``, or
    ``evaluate --checkpoint N``); None for the run's newest model or a zip of no run."""

    @property
    def stock(self) -> bool:
        """A stock SB3 model (no CAMAL training), not a CAMAL agent."""
        from camal_rl.agents.common.algorithm import CamalAlgorithm

        return not isinstance(self.model, CamalAlgorithm)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images the model takes.

        :raises InputError: the model does not observe images.
        """
        space = self.model.observation_space
        if isinstance(space, spaces.Dict) and IMAGE_KEY in space.spaces:
            space = space[IMAGE_KEY]
        if not isinstance(space, spaces.Box) or len(space.shape) != 3:
            raise InputError(
                f"the model observes {space}, not images: camal-rl scores agents that act on images"
            )
        if is_image_space_channels_first(space):
            channels, height, width = space.shape
        else:
            height, width, channels = space.shape
        return height, width, channels

    @property
    def frames_seen(self) -> int:
        """RGB frames the model sees at once: k for images of 3 x k channels (k > 1), else 1."""
        channels = self.image_shape[2]
        return channels // 3 if channels > 3 and channels % 3 == 0 else 1

    @property
    def frame_stack(self) -> int:
        """Frames that loading stacks for the model (:meth:`make_env`): a stock model's
        :attr:`frames_seen`, since SB3's ``VecFrameStack`` stacked them outside the env; 1 for
        CAMAL agents, whose env stacks its own (``frame_stack=k`` in the run's env keywords)."""
        return self.frames_seen if self.stock else 1

    def make_env(self, env_kwargs: Mapping[str, Any]) -> gym.Env:
        """A masked env of the agent's env id with ``env_kwargs``, its images stacked as the model
        was trained on them (:class:`~camal_rl.envs.StackedImages`) when it takes several frames."""
        from camal_rl.envs import StackedImages, make_masked_env

        env = make_masked_env(self.env_id, **env_kwargs)
        return StackedImages(env, self.frame_stack) if self.frame_stack > 1 else env

    @contextmanager
    def probe(self, env_kwargs: Mapping[str, Any]) -> Iterator[gym.Env]:
        """A masked env (:meth:`make_env`) that passed :meth:`check_env`, closed on leaving: what
        ``evaluate`` and ``record`` open before any rollout, to refuse a wrong env early.

        :raises InputError: as :meth:`check_env`.
        """
        env = self.make_env(env_kwargs)
        try:
            self.check_env(env)
            yield env
        finally:
            env.close()

    def check_env(self, env: gym.Env) -> None:
        """Refuse an env whose images or actions the model was not built for (an env id or
        keywords other than the training env's), before any rollout.

        :param env: a masked env, as :meth:`make_env` makes it.
        :raises InputError: the image shape or the number of actions differs.
        """
        height, width, channels = self.image_shape
        image = env.observation_space[IMAGE_KEY].shape  # type: ignore[index]
        n_actions = getattr(self.model.action_space, "n", None)
        env_actions = getattr(env.action_space, "n", None)
        where = f"{self.env_id} with {self.env_kwargs}" if self.env_kwargs else self.env_id
        if tuple(image) != (height, width, channels):
            stacked = (
                "; camal-rl's envs render RGB, so a model trained on grayscale or otherwise converted "
                "frames cannot be scored (stacked RGB frames can)"
                if channels % 3
                else ""
            )
            raise InputError(
                f"the model takes {height}x{width} images with {channels} channels, but {where} renders "
                f"{image[0]}x{image[1]} with {image[2]}: pass the env and keywords it was trained on "
                f"(--env, --env-kwargs: e.g. view=full, tile_size=N, resolution=[H, W]){stacked}"
            )
        if n_actions != env_actions:
            raise InputError(
                f"the model has {n_actions} actions, but {where} has {env_actions}: "
                "pass the env it was trained on (--env)"
            )

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keywords of :func:`camal_rl.envs.make_masked_env` to evaluate the agent with: those it
        was trained with (a run directory's), then the overrides."""
        own = self.config.env_make_kwargs if self.config is not None else {}
        return {**own, **self.env_overrides}

    @property
    def metrics_path(self) -> Path:
        """Default ``metrics.json`` location: the run's, else beside the model zip (a checkpoint's
        too: the run's metrics.json is its final model's, which compare and plot read)."""
        if self.run is not None and self.checkpoint is None:
            return self.run.metrics
        return self.model_path.with_suffix(".metrics.json")

    def describe(self) -> dict[str, Any]:
        """Identity of the agent for result files (a stock SB3 model's says ``trained_by``; one that
        sees k > 1 stacked frames, ``frame_stack``)."""
        cfg = self.config
        extra: dict[str, Any] = {"trained_by": "stable-baselines3"} if self.stock else {}
        if self.frames_seen > 1:
            extra["frame_stack"] = self.frames_seen
        return {
            "run": str(self.run.path) if self.run is not None else None,
            "model": str(self.model_path),
            "algo": self.algo,
            "env": self.env_id,
            "method": cfg.method if cfg else getattr(self.model, "camal_loss", None),
            "coef": cfg.camal_coef if cfg else getattr(self.model, "camal_coef", None),
            "seed": cfg.seed if cfg else None,
            "label": cfg.label if cfg else self.model_path.stem,
            "num_timesteps": int(self.model.num_timesteps),
            **({"weights": self.weights_dtype} if self.weights_dtype is not None else {}),
            **extra,
        }


@dataclass(frozen=True)
class ZipModel:
    """What a model zip holds, read from its saved data without building the model."""

    algo: str
    """``ppo``, ``a2c`` or ``dqn``."""
    camal: bool
    """Saved by a CAMAL agent (its policy is a camal-rl policy), not by stock SB3."""


def read_zip_model(path: Path, *, allow_pickle: bool = False) -> ZipModel:
    """The algorithm of a model zip, from its saved policy class (and, for an actor-critic, from
    PPO's ``clip_range``, which A2C does not save), read without running code the file carries
    (:func:`camal_rl.zipdata.saved_objects`).

    :param allow_pickle: unpickle the saved objects as SB3 does (runs what they carry).
    :raises InputError: the file is not a readable SB3 model zip of a supported algorithm.
    """
    from camal_rl.agents.common.algorithm import CamPolicy

    data = read_zip_data(path)  # the saved data alone: the parameters are loaded once, by load()
    if allow_pickle:
        try:
            saved = json_to_data(json.dumps({"policy_class": data.get("policy_class")}))
        except ImportError as error:
            raise InputError(
                f"{path} names a policy class from a module that does not import ({error}); install "
                "the package that defines it, or put its folder on PYTHONPATH"
            ) from error
        policy_class = saved.get("policy_class")
    else:
        policy_class = saved_objects(data, path).get("policy_class")
    if not isinstance(policy_class, type):
        raise InputError(
            f"{path} names no loadable policy class ({policy_class!r}); if it is a custom class, "
            "import the module that defines it before loading (Python API)"
        )
    camal = issubclass(policy_class, CamPolicy)
    if issubclass(policy_class, DQNPolicy):
        return ZipModel("dqn", camal)
    if issubclass(policy_class, ActorCriticPolicy):
        return ZipModel("ppo" if camal or "clip_range" in data else "a2c", camal)
    raise InputError(
        f"{path} holds a {policy_class.__name__} policy; camal-rl loads PPO, A2C and DQN models "
        "(discrete actions, image observations)"
    )


CHECKPOINT = re.compile(r"step_(\d+)\.zip")
"""A checkpoint's file name in ``RUN/checkpoints/`` (``step_<N>.zip``, N env steps)."""


def run_of_model(path: Path) -> tuple[RunDir, int | None] | None:
    """The run a model zip belongs to, which holds its env and settings: a run directory's
    ``model.zip``, or a checkpoint in its ``checkpoints/`` folder (config.json two folders up).

    :return: the run and the checkpoint's step (None for ``model.zip``); None for a zip elsewhere.
    """
    checkpoint = CHECKPOINT.fullmatch(path.name)
    if checkpoint is not None and path.parent.name == "checkpoints":
        run = RunDir(path.parent.parent)
        return (run, int(checkpoint[1])) if run.exists() else None
    run = RunDir(path.parent)
    return (run, None) if path.name == run.model.name and run.exists() else None


def checkpoint_path(path: Path, step: int) -> Path:
    """The checkpoint of run directory ``path`` at ``step`` env steps (``evaluate --checkpoint``).

    :raises InputError: ``path`` is not a run directory, or holds no checkpoint at ``step`` (the
        message lists the steps it holds).
    """
    run = RunDir(path)
    if not path.is_dir() or not run.exists():
        raise InputError(
            f"--checkpoint {step} takes a run directory (with config.json), got {path}; pass the run, or "
            "the checkpoint's zip itself"
        )
    wanted = run.checkpoints / f"step_{step}.zip"
    if wanted.is_file():
        return wanted
    steps = sorted(
        int(match[1]) for p in run.checkpoints.glob("step_*.zip") if (match := CHECKPOINT.fullmatch(p.name))
    )
    held = (
        f"its checkpoints are at steps {', '.join(map(str, steps))}"
        if steps
        else "it holds none (train saves them every --checkpoint-freq steps)"
    )
    raise InputError(f"{path} has no checkpoint at step {step} ({wanted} does not exist); {held}")


def load_agent(
    path: Path,
    *,
    device: str = "auto",
    env: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    allow_pickle: bool = False,
) -> LoadedAgent:
    """Load the newest model of a run directory, or a model zip: a CAMAL agent's, or a stock SB3
    PPO, A2C or DQN model trained on image observations (evaluated and recorded, not trained).
    A run directory that holds no model zip, but its weights file (``camal-rl export-weights``),
    gives its agent rebuilt from those weights (:func:`camal_rl.weights.load_weights`): it acts and is
    scored as the zip's did, but does not train; so does the path of a run's weights file.

    :param path: a run directory, a ``.zip`` saved by SB3 / camal-rl (one in a run directory,
        ``model.zip`` or ``checkpoints/step_N.zip``, comes with its run's settings:
        :func:`run_of_model`), or a run's weights file.
    :param device: torch device.
    :param env: env id, overriding the run's (required for a bare zip).
    :param env_kwargs: env keywords over the run's own (a bare zip has none of its own).
    :param allow_pickle: unpickle the zip's saved objects as SB3 does, which runs whatever code
        they carry (for files you trust). By default they are rebuilt from an allowlist
        (:func:`camal_rl.zipdata.saved_objects`) and the weights read as tensors alone.
    :raises InputError: nothing loadable there, no env known for a bare zip, or (without
        ``allow_pickle``) a saved object outside the allowlist.
    """
    from camal_rl.weights import WEIGHTS_FILE

    if not path.exists():
        raise InputError(f"{path} does not exist; pass a run directory or a model zip")
    run: RunDir | None = None
    config: TrainConfig | None = None
    checkpoint: int | None = None
    if path.is_file() and path.suffix == Path(WEIGHTS_FILE).suffix:
        return load_weights_agent(_run_of_weights(path), path, device=device, env=env, env_kwargs=env_kwargs)
    if path.is_dir():
        run = _run_directory(path)
        config = TrainConfig.load(run.config)
        if not run.has_model():
            weights = _weights_instead_of_model(run)
            return load_weights_agent(run, weights, device=device, env=env, env_kwargs=env_kwargs)
        model_path = run.latest_model()
        saved = ZipModel(config.algo, camal=True)
    else:
        model_path = path
        saved = read_zip_model(model_path, allow_pickle=allow_pickle)
        owner = run_of_model(path)
        if owner is not None:
            run, checkpoint = owner
            config = TrainConfig.load(run.config)
    env_id = env or (config.env if config is not None else None)
    if env_id is None:
        raise InputError(f"{path} is a bare model zip: pass --env with the env id it was trained on")
    model = _load_model(model_path, saved, device=device, allow_pickle=allow_pickle)
    return LoadedAgent(
        model, saved.algo, model_path, config, env_id, run, dict(env_kwargs or {}), checkpoint=checkpoint
    )


def _run_of_weights(path: Path) -> RunDir:
    """The run directory a weights file ``path`` is in.

    :raises InputError: it is not in one (no ``config.json`` beside it).
    """
    run = RunDir(path.parent)
    if not run.exists():
        raise InputError(
            f"{path} is a weights file outside its run directory (no config.json beside it): the "
            "run's config.json rebuilds the agent; put the file back in its run and pass the run"
        )
    return run


def _run_directory(path: Path) -> RunDir:
    """The run directory at the folder ``path``.

    :raises InputError: the folder is not one (no ``config.json``).
    """
    run = RunDir(path)
    if not run.exists():
        raise InputError(
            f"{path} is not a run directory (no config.json); pass a run directory or a model zip"
        )
    return run


def _weights_instead_of_model(run: RunDir) -> Path:
    """The weights file of a run that holds no saved model (``camal-rl export-weights``).

    :raises InputError: it holds none either.
    """
    from camal_rl.weights import WEIGHTS_FILE

    weights = run.path / WEIGHTS_FILE
    if not weights.exists():
        raise InputError(
            f"{run.path} holds no saved model (model.zip or checkpoints/step_*.zip) and no {WEIGHTS_FILE}: "
            "deleted, or never saved; `camal-rl train --resume --out "
            f"{run.path}` trains it again with its saved settings, replacing its records (copy the "
            "folder first to keep them)"
        )
    return weights


def _load_model(model_path: Path, saved: ZipModel, *, device: str, allow_pickle: bool) -> BaseAlgorithm:
    """SB3's ``load`` of the zip at ``model_path`` by the class ``saved`` names, its saved objects
    rebuilt from the allowlist (:func:`camal_rl.zipdata.saved_objects`) unless ``allow_pickle``.

    :raises InputError: the zip does not load.
    """
    algorithm = algorithm_classes()[saved.algo] if saved.camal else STOCK_ALGORITHMS[saved.algo]
    objects = None if allow_pickle else saved_objects(read_zip_data(model_path), model_path)
    try:
        return algorithm.load(model_path, device=device, custom_objects=objects)
    except (
        zipfile.BadZipFile,
        ValueError,
        KeyError,
        RuntimeError,
        EOFError,
        AssertionError,
        ImportError,
    ) as error:
        raise InputError(f"cannot load {model_path}: {error}") from error


def load_weights_agent(
    run: RunDir,
    weights: Path,
    *,
    device: str = "auto",
    env: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> LoadedAgent:
    """A run's agent rebuilt from its weights file (:func:`camal_rl.weights.load_weights`), saying
    so in one line: it acts, and is evaluated and recorded, as the model zip's did, but it is not
    a trainable model.

    :raises InputError: as :func:`camal_rl.weights.load_weights`.
    """
    from camal_rl.weights import load_weights

    model, saved = load_weights(run, weights, device=device)
    print(
        f"loaded {weights}: the policy's weights alone ({saved.dtype}, from {saved.source or 'a model zip'} "
        f"at {saved.num_timesteps} steps), not a trainable model (no optimizer state)"
    )
    config = TrainConfig.load(run.config)
    return LoadedAgent(
        model,
        saved.algo,
        weights,
        config,
        env or config.env,
        run,
        dict(env_kwargs or {}),
        weights_dtype=saved.dtype,
    )
