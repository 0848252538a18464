"""Load a trained agent from a run directory or a model zip, with what it was trained on."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file

from camal_rl.config import TrainConfig
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir

if TYPE_CHECKING:
    from camal_rl.agents import CamalDQN, CamalPPO


def algorithm_classes() -> dict[str, type[CamalPPO] | type[CamalDQN]]:
    """``ppo`` / ``dqn`` -> the CAMAL algorithm class (imported on first use)."""
    from camal_rl.agents import CamalDQN, CamalPPO

    return {"ppo": CamalPPO, "dqn": CamalDQN}


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

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keywords of :func:`camal_rl.envs.make_masked_env` the agent was trained with."""
        return self.config.env_make_kwargs if self.config is not None else {}

    @property
    def metrics_path(self) -> Path:
        """Default ``metrics.json`` location."""
        return self.run.metrics if self.run is not None else self.model_path.with_suffix(".metrics.json")

    def describe(self) -> dict[str, Any]:
        """Identity of the agent for result files."""
        cfg = self.config
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
        }


def algo_of_zip(path: Path) -> str:
    """``ppo`` or ``dqn``, read from the zip's saved policy class.

    :raises InputError: the file is not a readable SB3 model zip.
    """
    try:
        data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, RuntimeError) as error:
        raise InputError(
            f"cannot read model zip {path}: {error}; "
            "pass a run directory or a model.zip written by camal-rl train"
        ) from error
    policy_class = data.get("policy_class") if data else None
    name = getattr(policy_class, "__name__", str(policy_class))
    if "DQN" in name or "QNetwork" in name:
        return "dqn"
    if "ActorCritic" in name:
        return "ppo"
    raise InputError(f"{path} holds a {name} policy; camal-rl loads PPO and DQN models only")


def load_agent(path: Path, *, device: str = "auto", env: str | None = None) -> LoadedAgent:
    """Load the newest model of a run directory, or a model zip.

    :param path: a run directory or a ``.zip`` saved by SB3 / camal-rl.
    :param device: torch device.
    :param env: env id, overriding the run's (required for a bare zip).
    :raises InputError: nothing loadable there, or no env known for a bare zip.
    """
    if not path.exists():
        raise InputError(f"{path} does not exist; pass a run directory or a model zip")
    run: RunDir | None = None
    config: TrainConfig | None = None
    if path.is_dir():
        run = RunDir(path)
        if not run.exists():
            raise InputError(
                f"{path} is not a run directory (no config.json); pass a run directory or a model zip"
            )
        config = TrainConfig.load(run.config)
        model_path = run.latest_model()
    else:
        model_path = path
    algo = config.algo if config is not None else algo_of_zip(model_path)
    env_id = env or (config.env if config is not None else None)
    if env_id is None:
        raise InputError(f"{path} is a bare model zip: pass --env with the env id it was trained on")
    try:
        model = algorithm_classes()[algo].load(model_path, device=device)
    except (zipfile.BadZipFile, ValueError, KeyError, RuntimeError, EOFError) as error:
        raise InputError(f"cannot load {model_path}: {error}") from error
    return LoadedAgent(model, algo, model_path, config, env_id, run)
