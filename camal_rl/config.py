"""Typed run configuration and named presets.

A run is described by a frozen :class:`TrainConfig`; every field's docstring is its ``--help``
text. Fields left at ``None`` take the preset's value, then the documented default, so a
resolved config (:meth:`TrainConfig.resolved`) has no ``None`` where a value is needed. Named
presets are Python objects: the single agents' ship in :mod:`camal_rl.presets`; a source checkout's
``experiments/presets.py`` adds the study's sweeps (a ``PRESETS`` dict of TrainConfig and
``SweepConfig``). A YAML or JSON file of options (``train --config``, :mod:`camal_rl.configfile`)
has the schema of a run's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import tyro

from camal_rl.errors import InputError
from camal_rl.hyperparams import (
    check_hyperparams,
    default_hyperparams,
    default_reward_clip,
    default_reward_scale,
    env_backend,
    parse_assignments,
)
from camal_rl.losses import default_target
from camal_rl.options import check_json_values, get_option, json_field_values, with_options

Algo = Literal["ppo", "dqn"]
Method = Literal["camal", "camal-v1", "energy", "rrr", "none"]
Target = Literal["decision", "action", "greedy", "value"]
View = Literal["partial", "full"]

DEFAULT_ENV = "MiniGrid-DoorKey-5x5-v0"
DEFAULT_STEPS = 100_000
DEFAULT_COEF = 1.0
PRESETS_ENV_VAR = "CAMAL_RL_PRESETS"
# Keywords that come from TrainConfig fields, not from --hp.
RESERVED_HP = frozenset({"policy", "env", "seed", "device", "camal_coef", "camal_loss", "camal_target"})


@dataclass(frozen=True)
class TrainConfig:
    """Train one agent and write its run directory."""

    algo: Algo = "ppo"
    """RL algorithm: ppo or dqn."""
    env: str = DEFAULT_ENV
    """Environment id (list them with `camal-rl envs`; the camal_rl/ prefix is optional), or an env
    of your own that renders {image, mask}: its gymnasium id, or MODULE:ID to import the module that
    registers it (docs/environments.md)."""
    method: Method = "camal"
    """Attention loss: camal (docs/camal_loss.md), camal-v1 (its first formulation, the study's),
    energy (Rao et al. 2023), rrr (Ross et al. 2017) or none (the baseline)."""
    coef: float | None = None
    """Weight of the attention loss (default: the preset's, else 1.0); ignored by method none."""
    target: Target | None = None
    """Grad-CAM target: decision (taken action's logit / Q minus the mean over actions; camal's
    default), action (taken action's logit / Q; the other methods' default), greedy (best
    action's), value (PPO only)."""
    seed: int = 0
    """Random seed of the agent and the envs."""
    steps: int | None = None
    """Env steps to train for, over all envs (default: the preset's, else 100000)."""
    n_envs: int | None = None
    """Parallel envs (default: the preset's, else 8 for ppo and 4 for dqn)."""
    view: View = "partial"
    """MiniGrid view: partial (the agent's egocentric view) or full (the whole grid)."""
    tile_size: int = 8
    """MiniGrid pixels per grid cell."""
    env_kwargs: tuple[str, ...] = ()
    """Extra env keywords as KEY=VALUE (e.g. resolution=[120,160] frame_skip=4 for ViZDoom;
    frame_stack=4 fire_reset=true for Atari: 4 frames stacked, FIRE at each reset and lost life)."""
    reward_scale: float | None = None
    """Multiply the rewards the agent learns from by this (default: the env family's, 0.01 for
    ViZDoom, 1 for MiniGrid). Monitor files, logged returns, evaluations and metrics keep the env's
    own rewards."""
    reward_clip: bool | None = None
    """Clip the rewards the agent learns from to their sign, -1, 0 or +1, before --reward-scale
    (default: the env family's, on for Atari as SB3's AtariWrapper and rl-zoo3 train, off for
    MiniGrid and ViZDoom). Monitor files, logged returns and evaluations keep the game's score."""
    hp: tuple[str, ...] = ()
    """Algorithm hyperparameters as KEY=VALUE, over the defaults and the preset (e.g. learning_rate=3e-4;
    learning_rate, clip_range and clip_range_vf also take lin_<number>, decaying linearly from it to
    0 over the run: learning_rate=lin_2.5e-4)."""
    preset: str | None = None
    """Named preset: doorkey-ppo, doorkey-dqn, lavacrossing-ppo, vizdoom-basic-ppo, pong-ppo,
    breakout-ppo (installed; the Atari ones are rl-zoo3's PPO with 4 frames stacked), or one of a
    source checkout's experiments/presets.py; explicit options override it, --hp adds to its hp."""
    config: Path | None = None
    """YAML or JSON file of these options, keyed as a run's config.json (`--config runs/x/config.json
    --seed 3` trains run x again on seed 3); explicit options override it, --hp adds to its
    hyperparameters. Its out, resume and overwrite are not read: the run goes to --out, else to the
    default folder of its env, label and seed."""
    out: Path | None = None
    """Run directory (default: runs/<env>/<algo>-<method>/seed<seed>)."""
    eval_freq: int = 10_000
    """Evaluate every this many env steps (0 disables periodic evaluation)."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    stop_return: float | None = None
    """Stop training at the first periodic evaluation whose mean return reaches this (as SB3's
    StopTrainingOnRewardThreshold, on the greedy evaluation); --steps stays the most it trains. At
    --resume, the run's own unless given (inf: train on to --steps)."""
    checkpoint_freq: int = 50_000
    """Save a checkpoint every this many env steps (0 disables checkpoints)."""
    device: str = "auto"
    """Torch device: auto, cpu or cuda."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """Vectorisation: dummy (one process) or subproc (one process per env)."""
    resume: bool = False
    """Continue the run in --out from its last saved model (after a crash or Ctrl-C)."""
    overwrite: bool = False
    """Delete an existing run in --out and start again."""
    progress_bar: bool = True
    """Show a progress bar."""
    verbose: int = 0
    """SB3 verbosity (0: quiet, 1: log every update)."""
    save_replay_buffer: bool = False
    """DQN: also save the replay buffer at checkpoints and on interruption, so resume keeps it
    (replay_buffer.pkl: about 2 GB at 100k transitions of MiniGrid's 56x56 images). Without it, a
    resumed run holds its gradient updates until learning_starts new transitions are collected.
    Can be switched on at --resume."""
    # Filled by resolved(); not command-line options.
    algo_kwargs: Annotated[Mapping[str, Any], tyro.conf.Suppress] = field(default_factory=dict)
    """Resolved algorithm keywords (defaults < preset --hp < command line --hp)."""

    @property
    def camal_coef(self) -> float:
        """The attention weight the agent trains with (0 for method none)."""
        return 0.0 if self.method == "none" else (DEFAULT_COEF if self.coef is None else self.coef)

    @property
    def camal_target(self) -> Target:
        """The Grad-CAM target the agent trains (``--target``, else the method's default)."""
        return cast(Target, default_target(self.method)) if self.target is None else self.target

    @property
    def label(self) -> str:
        """Short name of the agent variant: ``ppo-camal``, ``ppo-camal-c0.1``, ``dqn-none``."""
        name = f"{self.algo}-{self.method}"
        if self.method != "none" and self.coef is not None and self.coef != DEFAULT_COEF:
            name += f"-c{self.coef:g}"
        if self.camal_target != default_target(self.method):
            name += f"-{self.camal_target}"
        return name

    @property
    def env_name(self) -> str:
        """The env's name in folders, tables and plots: the id without the ``camal_rl/`` namespace
        or a ``MODULE:`` to import, other namespaces joined with ``-`` (``my_envs-Key-v0``)."""
        return self.env.rpartition(":")[2].removeprefix("camal_rl/").replace("/", "-")

    @property
    def run_dir(self) -> Path:
        """Where the run is written."""
        if self.out is not None:
            return self.out
        return Path("runs") / self.env_name / self.label / f"seed{self.seed}"

    @property
    def env_make_kwargs(self) -> dict[str, Any]:
        """Keywords for :func:`camal_rl.envs.make_masked_env`."""
        kwargs = parse_assignments(self.env_kwargs, "--env-kwargs")
        if env_backend(self.env) == "minigrid":
            kwargs = {"view": self.view, "tile_size": self.tile_size, **kwargs}
        return kwargs

    def resolved(self) -> TrainConfig:
        """This config with defaults filled in and the algorithm keywords merged (defaults <
        ``hp`` < ``algo_kwargs``); validates values and raises :class:`InputError`."""
        cfg = self
        if cfg.algo == "dqn" and cfg.target == "value":
            raise InputError("--target value is for ppo only; dqn takes decision, action or greedy")
        if cfg.coef is not None and not (math.isfinite(cfg.coef) and cfg.coef >= 0):
            raise InputError(f"--coef must be >= 0 and finite, got {cfg.coef}")
        for name in ("tile_size", "eval_episodes"):
            if getattr(cfg, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
        for name in ("eval_freq", "checkpoint_freq"):
            if getattr(cfg, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0 (0 disables it)")
        if cfg.stop_return is not None:
            if isinstance(cfg.stop_return, bool) or math.isnan(cfg.stop_return):
                raise InputError(f"--stop-return must be a number (inf: never stop), got {cfg.stop_return}")
            if not cfg.eval_freq and cfg.stop_return != math.inf:
                raise InputError("--stop-return acts on the periodic evaluations: give --eval-freq > 0")
        hp = default_hyperparams(cfg.algo, cfg.env)
        hp.update(parse_assignments(cfg.hp, "--hp"))
        hp.update(cfg.algo_kwargs)
        reserved = sorted(RESERVED_HP & set(hp))
        if reserved:
            raise InputError(
                f"set {', '.join(reserved)} with the options of `camal-rl train` "
                "(--seed, --device, --method, --coef, --target), not with --hp"
            )
        hp = check_hyperparams(hp)
        reward_scale = cfg.reward_scale if cfg.reward_scale is not None else default_reward_scale(cfg.env)
        if isinstance(reward_scale, bool) or not math.isfinite(reward_scale) or reward_scale <= 0:
            raise InputError(f"--reward-scale must be a finite number > 0, got {reward_scale}")
        steps = cfg.steps if cfg.steps is not None else DEFAULT_STEPS
        n_envs = cfg.n_envs if cfg.n_envs is not None else (8 if cfg.algo == "ppo" else 4)
        if steps < 1 or n_envs < 1:
            raise InputError(f"--steps and --n-envs must be >= 1, got {steps} and {n_envs}")
        return dataclasses.replace(
            cfg,
            target=cfg.camal_target,
            steps=steps,
            n_envs=n_envs,
            reward_scale=float(reward_scale),
            reward_clip=cfg.reward_clip if cfg.reward_clip is not None else default_reward_clip(cfg.env),
            algo_kwargs=hp,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        data = dataclasses.asdict(self)
        data["out"] = None if self.out is None else str(self.out)
        data["config"] = None if self.config is None else str(self.config)
        data["algo_kwargs"] = dict(self.algo_kwargs)
        data["env_kwargs"] = list(self.env_kwargs)
        data["hp"] = list(self.hp)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_json`."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("reward_scale", 1.0)  # a run recorded before the option trained unscaled
        values.setdefault("reward_clip", False)  # ... and unclipped
        return cls(**json_field_values({"env_kwargs": (), "hp": (), **values}, cls))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a run's ``config.json``.

        :raises InputError: the file cannot be read, is not JSON, is not a JSON object, or holds a
            value its field cannot take (an unknown algorithm, a seed that is not a number).
        """
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
            check_json_values(data, cls)
            return cls.from_json(data)
        except (OSError, ValueError) as error:
            raise InputError(
                f"cannot read {path} as a camal-rl run config ({error}); restore the file, or pass a "
                "run directory written by camal-rl train"
            ) from error


TRAINING_SETTINGS = (
    "algo",
    "env",
    "method",
    "camal_coef",
    "camal_target",
    "seed",
    "n_envs",
    "env_make_kwargs",
    "reward_scale",
    "reward_clip",
)
"""The resolved settings that shape what a run learns (with each resolved hyperparameter); not the
budget, device, logging or checkpoints."""
OPTION_SETTINGS = (
    "algo",
    "env",
    "method",
    "coef",
    "target",
    "seed",
    "n_envs",
    "view",
    "tile_size",
    "env_kwargs",
    "reward_scale",
    "reward_clip",
)
"""The options that set them (``hp`` aside)."""


def training_differences(saved: TrainConfig, wanted: TrainConfig) -> dict[str, list[Any]]:
    """The settings that shape training (:data:`TRAINING_SETTINGS`, each resolved hyperparameter
    as ``hp NAME``) that ``wanted`` sets otherwise than ``saved``, as ``{name: [saved, wanted]}``.

    :raises InputError: either config does not resolve (a bad option).
    """
    saved, wanted = saved.resolved(), wanted.resolved()

    def plain(value: Any) -> Any:  # tuples and lists alike, as config.json stores them
        return json.loads(json.dumps(value, default=str))

    changed = {
        name: [plain(getattr(saved, name)), plain(getattr(wanted, name))]
        for name in TRAINING_SETTINGS
        if plain(getattr(saved, name)) != plain(getattr(wanted, name))
    }
    saved_hp, wanted_hp = plain(dict(saved.algo_kwargs)), plain(dict(wanted.algo_kwargs))
    for key in sorted(set(saved_hp) | set(wanted_hp)):
        if saved_hp.get(key) != wanted_hp.get(key):
            changed[f"hp {key}"] = [saved_hp.get(key), wanted_hp.get(key)]
    return changed


def describe_changes(changed: Mapping[str, Any]) -> str:
    """``{"hp gamma": [0.99, 0.9]}`` -> ``"hp gamma 0.99 -> 0.9"`` (saved -> wanted)."""
    return ", ".join(f"{name} {saved} -> {wanted}" for name, (saved, wanted) in changed.items())


def resume_request(cfg: TrainConfig, saved: TrainConfig) -> TrainConfig:
    """The training ``train --resume`` is asked for: the saved run's settings, with the options of
    ``cfg`` set away from their defaults (``--hp`` on top of the saved run's). A resumed run keeps
    its settings, so whatever this changes (``RunDir.needs(...).trained_differently``) would be
    ignored."""
    default = TrainConfig()
    asked = {
        name: getattr(cfg, name) for name in OPTION_SETTINGS if getattr(cfg, name) != getattr(default, name)
    }
    if cfg.hp:  # over the saved run's resolved hyperparameters
        asked["algo_kwargs"] = {**saved.algo_kwargs, **parse_assignments(cfg.hp, "--hp")}
    return dataclasses.replace(saved, **asked) if asked else saved


SOURCE_PRESETS = Path(__file__).resolve().parents[1] / "experiments" / "presets.py"
"""The presets file of the source checkout this package was installed from (an editable install);
an installed wheel has none."""


def presets_file() -> Path | None:
    """The presets file whose ``PRESETS`` add to the packaged ones: ``$CAMAL_RL_PRESETS``, else
    ``experiments/presets.py`` in the working directory, else :data:`SOURCE_PRESETS`; None when
    neither exists (an installed wheel: the packaged presets alone)."""
    if os.environ.get(PRESETS_ENV_VAR):
        return Path(os.environ[PRESETS_ENV_VAR])
    for candidate in (Path("experiments/presets.py"), SOURCE_PRESETS):
        if candidate.exists():
            return candidate
    return None


def load_presets(path: Path | None = None) -> dict[str, Any]:
    """Every named preset (name -> TrainConfig or sweep preset): the packaged ones
    (:mod:`camal_rl.presets`), then the ``PRESETS`` dict of a presets file (``path``, else
    :func:`presets_file`), which may repeat a packaged one but not change it.

    :raises InputError: the file named does not exist, defines no ``PRESETS`` dict, or gives a
        packaged name other settings.
    """
    from camal_rl.presets import PRESETS as PACKAGED

    path = path or presets_file()
    if path is None:
        return dict(PACKAGED)
    if not path.exists():
        raise InputError(
            f"no presets file at {path}; point {PRESETS_ENV_VAR} at a file that defines PRESETS = "
            f"{{name: TrainConfig(...), ...}}, or unset it for the packaged presets ({', '.join(PACKAGED)})"
        )
    spec = importlib.util.spec_from_file_location("camal_rl_presets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    presets = getattr(module, "PRESETS", None)
    if not isinstance(presets, dict):
        raise InputError(f"{path} must define PRESETS = {{name: TrainConfig(...), ...}}")
    changed = sorted(name for name in set(PACKAGED) & set(presets) if presets[name] != PACKAGED[name])
    if changed:
        raise InputError(
            f"{path} gives the packaged preset{'s' * (len(changed) > 1)} {', '.join(changed)} other "
            "settings (camal_rl/presets.py); name yours otherwise"
        )
    return {**PACKAGED, **presets}


def get_preset(name: str, kind: type, path: Path | None = None) -> Any:
    """The preset ``name`` of type ``kind``: a packaged one (:mod:`camal_rl.presets`, no file read),
    else one of the presets file (:func:`load_presets`); unknown names list the available ones."""
    from camal_rl.presets import PRESETS as PACKAGED

    if path is None and isinstance(PACKAGED.get(name), kind):
        return PACKAGED[name]
    presets = {k: v for k, v in load_presets(path).items() if isinstance(v, kind)}
    if name not in presets:
        close = difflib.get_close_matches(name, presets, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        where = (
            "; the study's sweep presets are in experiments/presets.py of a clone of camal-rl: run "
            f"from the clone's root, or set {PRESETS_ENV_VAR}=CLONE/experiments/presets.py"
            if path is None and presets_file() is None
            else ""
        )
        raise InputError(
            f"unknown preset {name!r}{hint}; available: {', '.join(sorted(presets)) or 'none'}{where}"
        )
    return presets[name]


def from_preset(name: str, kind: type[Any] = TrainConfig, path: Path | None = None, **overrides: Any) -> Any:
    """The preset ``name`` (a ``kind`` entry of ``PRESETS``) with ``overrides``; ``hp`` overrides
    add to the preset's.

    :param name: the preset's name.
    :param kind: the preset's type (:class:`TrainConfig`, or ``camal_rl.sweep.SweepConfig``).
    :param path: the presets file (default: :func:`presets_file`).
    :param overrides: options to change (those of a nested settings class by their own names,
        e.g. ``episodes`` of a sweep's evaluation: :func:`with_options`).
    """
    preset = get_preset(name, kind, path)
    if "hp" in overrides:
        overrides["hp"] = tuple(get_option(preset, "hp")) + tuple(overrides["hp"])
    return with_options(preset, preset=name, **overrides)
