"""The settings that ``evaluate``, ``record``, ``compare`` and ``tune`` share, each option defined
once: which agent is loaded (:class:`AgentSettings`), the episodes it plays and the saliency drawn on
them (:class:`RolloutSettings`), and what is scored (:class:`EvaluationSettings`). The commands'
configs nest them with ``tyro.conf.OmitArgPrefixes``, so their options keep plain names
(``--episodes``, ``--saliency``), each command with its own defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from camal_rl.errors import InputError
from camal_rl.hyperparams import parse_assignments
from camal_rl.saliency import check_saliency_methods

if TYPE_CHECKING:
    from camal_rl.loading import LoadedAgent

EVAL_SEED = 1_000_000
"""First seed of evaluation episodes: far from the training seeds, the same for every model."""
QPolicy = Literal["softmax", "epsilon-greedy"]
"""DQN's action distribution in faithfulness metrics (:class:`EvaluationSettings`'s ``q_policy``)."""
Q_POLICIES: tuple[str, ...] = get_args(QPolicy)
DEFAULT_SALIENCY = ("gradcam", "perturbation")
"""Saliency methods scored by default: Grad-CAM, which the attention losses train, and perturbation
saliency, which none trains on (docs/design.md, Attention metrics)."""


@dataclass(frozen=True)
class AgentSettings:
    """Which agent evaluate and record load, and the env and seeds they play it on."""

    checkpoint: int | None = None
    """Take each run directory's checkpoint at N env steps (RUN/checkpoints/step_N.zip) instead of
    its newest model."""
    env: str | None = None
    """Env id (default: the run's own); needed for a bare model zip."""
    env_kwargs: tuple[str, ...] = ()
    """Env keywords KEY=VALUE over the run's own (a bare model zip has none: e.g. view=full
    tile_size=12 for a MiniGrid model trained on those frames)."""
    seed: int = EVAL_SEED
    """Seed of the first episode (the others follow it; every agent plays the same seeds)."""
    device: str = "auto"
    """Torch device: auto, cpu or cuda."""
    allow_pickle: bool = False
    """Unpickle a model zip's saved objects as Stable-Baselines3 does: this runs whatever code the
    file carries, so only for a zip you trust whose objects (e.g. a features extractor of your own)
    the allowlist refuses."""

    def load(self, path: Path) -> LoadedAgent:
        """The agent of run directory or model zip ``path`` (its checkpoint with ``checkpoint``).

        :raises InputError: as :func:`camal_rl.loading.load_agent` and
            :func:`~camal_rl.loading.checkpoint_path`.
        """
        from camal_rl.loading import checkpoint_path, load_agent

        model = path if self.checkpoint is None else checkpoint_path(path, self.checkpoint)
        overrides = parse_assignments(self.env_kwargs, "--env-kwargs")
        return load_agent(
            model, device=self.device, env=self.env, env_kwargs=overrides, allow_pickle=self.allow_pickle
        )


DEFAULT_AGENT = AgentSettings()
"""A run's newest model, in its own env, from :data:`EVAL_SEED` on, on the ``auto`` device."""


@dataclass(frozen=True)
class RolloutSettings:
    """The episodes an agent plays and the saliency drawn on them (evaluate, record, compare, tune)."""

    episodes: int = 20
    """Episodes played (evaluate, compare and tune play them on each env variant they score)."""
    distractors: int = 0
    """Distractor variant with this many extra objects (MiniGrid; 0: none): evaluate, compare and
    tune score it beside the training env, record plays on it instead."""
    saliency: tuple[str, ...] = DEFAULT_SALIENCY
    """Saliency methods: gradcam, gradcam++, gradient, input_x_gradient, integrated_gradients,
    perturbation (Greydanus et al. 2018), or any captum attribution as captum:NAME (e.g.
    captum:DeepLift, captum:GradientShap, captum:Occlusion)."""
    layer: str | None = None
    """Features-extractor layer whose activations Grad-CAM and Grad-CAM++ read, by module name
    (e.g. to_attention.1: a CAMAL agent's first conv after its ReLU; cnn.2: NatureCNN's second
    conv); default: a CAMAL agent's attention layer, another extractor's last conv activation."""
    stochastic: bool = False
    """Sample each action from the policy (seeded) instead of taking the most likely one (DQN:
    epsilon-greedy at its final exploration rate); a greedy policy can loop where sampling does not."""

    def check(self) -> None:
        """:raises InputError: a setting out of range (checked before any model is loaded)."""
        if self.episodes < 1:
            raise InputError(f"--episodes must be >= 1, got {self.episodes}")
        if self.distractors < 0:
            raise InputError(f"--distractors must be >= 0 (0: none), got {self.distractors}")
        check_saliency_methods(self.saliency)


@dataclass(frozen=True)
class EvaluationSettings(RolloutSettings):
    """How a trained agent is evaluated: its episodes, the saliency methods and metrics scored on
    them (evaluate, compare and tune share these options; record takes the episodes' and saliency's)."""

    faithfulness: bool = True
    """Also score faithfulness (deletion / insertion AUC, comprehensiveness, sufficiency, occlusion KL)."""
    max_steps_scored: int = 64
    """Score at most this many evenly spaced steps per episode (attention metrics are costly)."""
    q_policy: QPolicy = "softmax"
    """DQN: the action distribution faithfulness and behaviour metrics read: softmax (of the
    Q-values, docs/design.md's f) or epsilon-greedy (the policy the agent acts with; use it when
    softmax(Q) is near-uniform, as with MiniGrid's rewards)."""
    q_epsilon: float = 0.05
    """DQN: epsilon of --q-policy epsilon-greedy, in (0, 1]."""

    def settings(self, algo: str, *, seed: int = EVAL_SEED, env_kwargs: Sequence[str] = ()) -> dict[str, Any]:
        """What decides the numbers of ``metrics.json`` (recorded there as ``settings``, with the
        keys it has always had; a sweep evaluates a run again when its recorded settings differ).

        :param algo: ``ppo`` or ``dqn``: the Q-policy settings count for DQN only, and epsilon
            only with the epsilon-greedy policy.
        :param seed: the first episode's seed.
        :param env_kwargs: env keywords over the run's own.
        """
        settings: dict[str, Any] = {
            "episodes": self.episodes,
            "seed": seed,
            "distractors": self.distractors,
            "methods": list(self.saliency),
            "faithfulness": self.faithfulness,
            "max_steps_scored": self.max_steps_scored,
        }
        if env_kwargs:
            settings["env_kwargs"] = list(env_kwargs)
        if self.layer is not None:
            settings["layer"] = self.layer
        if self.stochastic:
            settings["stochastic"] = True
        if algo == "dqn":
            settings["q_policy"] = self.q_policy
            if self.q_policy == "epsilon-greedy":
                settings["q_epsilon"] = self.q_epsilon
        return settings

    def check(self) -> None:
        """:raises InputError: a setting out of range (checked before any model is loaded)."""
        super().check()
        if self.max_steps_scored < 1:
            raise InputError(f"--max-steps-scored must be >= 1, got {self.max_steps_scored}")
        if self.q_policy not in Q_POLICIES:
            raise InputError(f"--q-policy must be one of {', '.join(Q_POLICIES)}, got {self.q_policy!r}")
        if not 0 < self.q_epsilon <= 1:
            raise InputError(f"--q-epsilon must be in (0, 1], got {self.q_epsilon}")
