"""Default hyperparameters per algorithm and environment family (rl-baselines3-zoo's role).

A run's algorithm keywords are these defaults, updated by the preset's ``hp`` and then by the
command line's ``--hp KEY=VALUE``. Values here were chosen for 2-CPU training on the default
small envs; the study presets in ``experiments/`` state their own.

``learning_rate``, ``clip_range`` and ``clip_range_vf`` also take rl-baselines3-zoo's
``lin_<number>``: the value decays linearly from that number at the start of the run to 0 at its
end. Configs keep the string (config.json too, so a run reproduces); :func:`algo_schedules` turns
it into SB3's schedule when the model is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from camal_rl.errors import InputError

if TYPE_CHECKING:
    from stable_baselines3.common.utils import LinearSchedule

PPO_MINIGRID: dict[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 2.5e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
PPO_VIZDOOM: dict[str, Any] = {**PPO_MINIGRID, "n_steps": 256, "learning_rate": 1e-4}
DQN_MINIGRID: dict[str, Any] = {
    "buffer_size": 100_000,
    "learning_starts": 5_000,
    "batch_size": 64,
    "learning_rate": 1e-4,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 1_000,
    "exploration_fraction": 0.5,
    "exploration_final_eps": 0.05,
    "n_steps": 3,
}
"""One update per vector step (4 envs: per 4 env steps) and 3-step returns. With one-step returns
(SB3's default), DQN's Q-values on sparse-reward MiniGrid stay flat across actions, and the greedy
policy stalls on no-op actions (toggle, done facing a wall): DoorKey-5x5 is not learnt in 300k
steps, even with the exploration that solves it 65% of the time; with these it is by about 100k
(experiments/camal_study/RESULTS.md, the DQN pilot)."""
DQN_VIZDOOM: dict[str, Any] = {**DQN_MINIGRID, "buffer_size": 50_000}
PPO_ATARI: dict[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": "lin_2.5e-4",
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": "lin_0.1",
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
"""rl-baselines3-zoo's tuned PPO for Atari (hyperparams/ppo.yml, with 8 envs), its learning rate
and clip range decaying linearly from 2.5e-4 and 0.1 to 0 over the run (:func:`linear_start`)."""
DQN_ATARI: dict[str, Any] = {
    "buffer_size": 50_000,
    "learning_starts": 10_000,
    "batch_size": 32,
    "learning_rate": 1e-4,
    "gamma": 0.99,
    "train_freq": 4,
    "gradient_steps": 1,
    "target_update_interval": 1_000,
    "exploration_fraction": 0.1,
    "exploration_final_eps": 0.01,
}
"""rl-baselines3-zoo's DQN for Atari (hyperparams/dqn.yml) with a replay buffer of 50k, not 100k
(each transition keeps two RGB 84x84 frames and their masks: about 2.2 GB at 50k), filling from 10k
steps, not 100k."""

REWARD_SCALES: dict[str, float] = {"minigrid": 1.0, "vizdoom": 0.01, "atari": 1.0}
"""Training reward multiplier per env family. ViZDoom's scenarios reward in the hundreds (basic:
-1 a tic, +101 a kill): at that scale PPO's value loss swamps the policy's gradient through the
shared CNN, and no ViZDoom basic agent learnt in 100k steps, their policies constant in the image
(experiments/camal_study/RESULTS.md, ViZDoom); ViZDoom's own Stable-Baselines3 example scales its
rewards by 0.01 too. MiniGrid's rewards are already in [0, 1]; the Atari games' are small
integers (Pong +-1, Breakout 1 to 7 a brick)."""

REWARD_CLIPS: dict[str, bool] = {"minigrid": False, "vizdoom": False, "atari": True}
"""Whether the agent learns from sign-clipped rewards (-1, 0, +1) per env family: on for Atari, as
SB3's AtariWrapper (``clip_reward=True``) and rl-zoo3's Atari agents train; the monitor, the
logged returns and the evaluations keep the game's score."""

DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "minigrid"): PPO_MINIGRID,
    ("ppo", "vizdoom"): PPO_VIZDOOM,
    ("dqn", "minigrid"): DQN_MINIGRID,
    ("dqn", "vizdoom"): DQN_VIZDOOM,
    ("ppo", "atari"): PPO_ATARI,
    ("dqn", "atari"): DQN_ATARI,
}


def env_backend(env_id: str) -> str:
    """``vizdoom`` for ViZDoom ids, ``atari`` for ALE ids (``ALE/Pong-v5``, ``camal_rl/ALE-Pong-v5``),
    ``minigrid`` otherwise (an env of the user's takes MiniGrid's defaults)."""
    base = env_id.removeprefix("camal_rl/")
    if base.startswith("Vizdoom"):
        return "vizdoom"
    return "atari" if base.startswith(("ALE/", "ALE-")) else "minigrid"


def default_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """A copy of the defaults for ``algo`` on ``env_id``'s family."""
    return dict(DEFAULTS[(algo, env_backend(env_id))])


def default_reward_scale(env_id: str) -> float:
    """The training reward multiplier of ``env_id``'s family (:data:`REWARD_SCALES`)."""
    return REWARD_SCALES[env_backend(env_id)]


def default_reward_clip(env_id: str) -> bool:
    """Whether ``env_id``'s family trains on sign-clipped rewards (:data:`REWARD_CLIPS`)."""
    return REWARD_CLIPS[env_backend(env_id)]


def parse_assignments(items: Iterable[str], what: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings; values are read as YAML scalars (``1e-4``, ``true``, ``[64, 64]``).

    :param items: the assignments.
    :param what: the option name, for error messages (``--hp``).
    """
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{what} takes KEY=VALUE pairs (e.g. {what} learning_rate=3e-4), got {item!r}")
        try:
            parsed[key.strip()] = _number_or_yaml(value)
        except yaml.YAMLError as error:
            raise InputError(f"{what} {item!r}: the value is not a valid scalar ({error})") from error
    return parsed


def _number_or_yaml(text: str) -> Any:
    """``1e-4`` is a float (PyYAML's YAML 1.1 reads it as a string); anything else is YAML."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class ValueRule:
    """What a numeric hyperparameter takes: a number (an integer when ``integer``) from ``low``
    (excluded when ``low_open``) to ``high``; with ``none``, also null (``--hp target_kl=null``)."""

    low: float
    high: float = math.inf
    integer: bool = False
    low_open: bool = False
    none: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high == math.inf:
            bound = f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        else:
            bound = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        return f"{kind} {bound}" + (" or null" if self.none else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.integer and value != int(value):
            return False
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high


_POSITIVE = ValueRule(0, low_open=True)
_SHARE = ValueRule(0, 1)
VALUE_RULES: dict[str, ValueRule] = {
    "n_steps": ValueRule(1, integer=True),
    "batch_size": ValueRule(1, integer=True),
    "n_epochs": ValueRule(1, integer=True),
    "learning_rate": _POSITIVE,
    "gamma": _SHARE,
    "gae_lambda": _SHARE,
    "clip_range": _POSITIVE,
    "clip_range_vf": ValueRule(0, low_open=True, none=True),
    "ent_coef": ValueRule(0),
    "vf_coef": ValueRule(0),
    "max_grad_norm": _POSITIVE,
    "target_kl": ValueRule(0, low_open=True, none=True),
    "buffer_size": ValueRule(1, integer=True),
    "learning_starts": ValueRule(0, integer=True),
    "tau": ValueRule(0, 1, low_open=True),
    "gradient_steps": ValueRule(-1, integer=True),
    "target_update_interval": ValueRule(1, integer=True),
    "exploration_fraction": _SHARE,
    "exploration_initial_eps": _SHARE,
    "exploration_final_eps": _SHARE,
}
"""The numeric keywords of SB3's PPO and DQN and the values they take (``n_steps`` is PPO's
rollout length and DQN's n-step return alike); keywords not listed are checked by the algorithm."""


LINEAR = "lin_"
"""Prefix of a linear schedule's value, ``lin_2.5e-4`` (rl-baselines3-zoo's syntax)."""
SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")
"""The hyperparameters that take a linear schedule (SB3 reads each as a function of the progress
remaining, 1 at the start of training and 0 at its end)."""


def linear_start(value: Any) -> float | None:
    """The value at the start of the linear schedule ``value`` (``"lin_2.5e-4"`` -> 0.00025); None
    for anything that is not ``lin_`` and a number."""
    if not isinstance(value, str) or not value.startswith(LINEAR):
        return None
    try:
        return float(value.removeprefix(LINEAR))
    except ValueError:
        return None


def linear_schedule(start: float) -> LinearSchedule:
    """SB3's schedule from ``start`` at progress remaining 1 (the run's first step) to 0 at progress
    remaining 0 (its last): ``start * progress_remaining``. A class SB3 pickles by reference, so a
    model zip holding it loads without unpickling code (:mod:`camal_rl.zipdata`)."""
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(start, 0.0, 1.0)


def algo_schedules(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each ``lin_<number>`` of :data:`SCHEDULED` turned into SB3's schedule
    (:func:`linear_schedule`), as the algorithm takes it; the other values as they are.

    :param kwargs: checked algorithm keywords (:func:`check_hyperparams`).
    """
    built = dict(kwargs)
    for name in SCHEDULED:
        start = linear_start(kwargs.get(name))
        if start is not None:
            built[name] = linear_schedule(start)
    return built


def check_hyperparams(hp: Mapping[str, Any]) -> dict[str, Any]:
    """``hp`` with its numeric values checked against :data:`VALUE_RULES` (integers written as
    floats, e.g. ``buffer_size=1e5``, become ints), and the ``lin_<number>`` of :data:`SCHEDULED`
    checked there too (the number as the keyword's own value would be), kept as written.

    :raises InputError: a value of the wrong type or out of range, or a ``lin_`` that is not
        ``lin_`` and such a number or that is given to another keyword, saying what the keyword takes.
    """
    checked = dict(hp)
    for name, value in hp.items():
        rule = VALUE_RULES.get(name)
        if rule is None:
            continue
        if name in SCHEDULED:
            start = linear_start(value)
            if rule.accepts(value) or (start is not None and rule.accepts(start)):
                continue
            raise InputError(
                f"hyperparameter {name} takes {rule.describe()}, got {value!r} (--hp {name}=VALUE); or "
                "lin_ and such a number, a linear decay from it to 0 over the run (e.g. lin_2.5e-4)"
            )
        if not rule.accepts(value):
            linear = (
                f"; lin_<number>, a linear schedule, is for {', '.join(SCHEDULED)} only"
                if isinstance(value, str) and value.startswith(LINEAR)
                else ""
            )
            raise InputError(
                f"hyperparameter {name} takes {rule.describe()}, got {value!r} (--hp {name}=VALUE){linear}"
            )
        if rule.integer and value is not None:
            checked[name] = int(value)
    return checked


def check_algo_kwargs(algo_class: type, kwargs: Mapping[str, Any]) -> None:
    """Refuse keywords the algorithm does not take, listing the close ones it does."""
    import difflib
    import inspect

    accepted: set[str] = set()
    for cls in algo_class.__mro__:
        if "__init__" in vars(cls):
            accepted |= set(inspect.signature(vars(cls)["__init__"]).parameters) - {"self", "args", "kwargs"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        hints = {key: difflib.get_close_matches(key, accepted, n=2) for key in unknown}
        listed = "; ".join(f"{k} (did you mean {', '.join(v)}?)" if v else k for k, v in hints.items())
        raise InputError(f"{algo_class.__name__} takes no hyperparameter {listed}")
