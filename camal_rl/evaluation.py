"""Evaluate trained agents: returns, and whether their attention is on the right objects.

:func:`collect_episodes` rolls out the deterministic policy on held-out seeds, acting on the image
alone (the mask is recorded to score attention, never shown to the agent). :func:`score_steps`
scores the recorded steps with a saliency method and every metric of :mod:`camal_rl.metrics`;
:func:`evaluate_model` aggregates per step -> per episode -> summary (mean, IQM, 95% bootstrap CI,
coverage). ``camal-rl evaluate`` (:func:`evaluate`) runs all of it on a run and writes
``metrics.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
import torch
import tyro
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import set_random_seed

from camal_rl.adapters import ActionScorer, EpsilonGreedyPolicy, images_to_tensor
from camal_rl.atomic import write_json
from camal_rl.errors import InputError
from camal_rl.metrics import (
    behaviour_kl,
    comprehensiveness,
    deletion_auc,
    energy_pointing_game,
    flat_map,
    insertion_auc,
    iou_top_k,
    occlusion_kl_ratio,
    pointing_game,
    roc_auc,
    sufficiency,
)
from camal_rl.outputs import check_output
from camal_rl.saliency import check_saliency_methods, compute_saliency
from camal_rl.settings import DEFAULT_AGENT, DEFAULT_SALIENCY, EVAL_SEED, AgentSettings, EvaluationSettings
from camal_rl.statistics import summarize, summarize_steps

KL_EPS = 1e-3
"""Nats added to both KLs of the occlusion and behaviour ratios. A near-deterministic policy's KL
to itself under an irrelevant occlusion is ~1e-9 nats; without a floor, a ratio of two such
numbers is noise spanning orders of magnitude."""
FLAT_NOTE = 0.1
"""Share of flat saliency maps from which :func:`flat_note` notes it (under ``evaluate``'s table and
atop a sweep's ``comparison.md``)."""
ALIGNMENT_METRICS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "epg": energy_pointing_game,
    "iou": iou_top_k,
    "pointing_game": pointing_game,
    "roc_auc": roc_auc,
}


@dataclass(frozen=True)
class Episode:
    """One recorded episode of the deterministic policy."""

    images: np.ndarray
    """(T, H, W, 3) uint8 frames the agent saw."""
    masks: np.ndarray
    """(T, H, W) uint8 masks of the same steps (never shown to the agent)."""
    actions: np.ndarray
    """(T,) actions taken."""
    rewards: np.ndarray
    """(T,) rewards received."""

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum())

    @property
    def length(self) -> int:
        return int(self.rewards.shape[0])


def collect_episodes(
    model: BaseAlgorithm,
    make_env: Callable[[], gym.Env],
    n_episodes: int,
    *,
    seed: int = EVAL_SEED,
    deterministic: bool = True,
) -> list[Episode]:
    """Roll out ``model`` on ``n_episodes`` episodes seeded ``seed, seed + 1, ...``.

    :param model: a trained SB3 model that acts on the image alone (a CAMAL agent, or a stock
        model trained on image observations).
    :param make_env: builds one masked env (closed afterwards).
    :param n_episodes: number of episodes.
    :param seed: seed of the first episode.
    :param deterministic: use the deterministic policy; otherwise actions are sampled (DQN:
        epsilon-greedy at the model's exploration rate), from random generators seeded with
        ``seed``, so the episodes are the same on every call.
    """
    if not deterministic:
        set_random_seed(seed)
    env = make_env()
    episodes = []
    try:
        for i in range(n_episodes):
            obs, _ = env.reset(seed=seed + i)
            images, masks, actions, rewards = [], [], [], []
            done = False
            while not done:
                action, _ = model.predict(obs["image"], deterministic=deterministic)
                images.append(obs["image"])
                masks.append(obs["mask"])
                actions.append(int(action))
                obs, reward, terminated, truncated, _ = env.step(int(action))
                rewards.append(float(reward))
                done = terminated or truncated
            episodes.append(
                Episode(np.stack(images), np.stack(masks), np.array(actions), np.array(rewards, np.float64))
            )
    finally:
        env.close()
    return episodes


def score_steps(
    scorer: ActionScorer,
    images: np.ndarray,
    masks: np.ndarray,
    actions: np.ndarray,
    *,
    method: str = "gradcam",
    faithfulness: bool = True,
    deletion_step: int = 64,
    rng: np.random.Generator | int = 0,
    batch_size: int = 32,
    policy: ActionScorer | None = None,
) -> dict[str, np.ndarray]:
    """Per-step attention metrics of one saliency method.

    :param scorer: the model.
    :param images: (N, H, W, 3) uint8 frames.
    :param masks: (N, H, W) masks.
    :param actions: (N,) actions taken on the frames: the saliency target and ``a*``.
    :param method: a name in :data:`camal_rl.saliency.SALIENCY_METHODS`.
    :param faithfulness: also run deletion, insertion, comprehensiveness, sufficiency and the
        occlusion KL ratio (the alignment metrics always run).
    :param deletion_step: pixels removed per point of the deletion / insertion curves (a tile).
    :param rng: generator or seed of the occlusion KL ratio's random regions.
    :param batch_size: frames per saliency batch.
    :param policy: the action distribution the faithfulness metrics read, as ``softmax`` of its
        scores (default: ``scorer``'s; e.g. :class:`~camal_rl.adapters.EpsilonGreedyPolicy`).
    :return: metric name -> (N,) values, ``nan`` where undefined (empty mask).
    """
    rng = np.random.default_rng(rng)
    f = scorer if policy is None else policy
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        x = images_to_tensor(images[chunk], scorer.device)
        a = torch.as_tensor(actions[chunk], dtype=torch.long, device=scorer.device)
        mask = masks[chunk]
        saliency = compute_saliency(method, scorer, x, a)
        saliency_np = saliency.cpu().numpy()
        values = {name: fn(saliency_np, mask) for name, fn in ALIGNMENT_METRICS.items()}
        values["flat_share"] = flat_map(saliency_np)
        if faithfulness:
            values["deletion_auc"] = deletion_auc(f, x, saliency, actions=a, step=deletion_step)
            values["insertion_auc"] = insertion_auc(f, x, saliency, actions=a, step=deletion_step)
            for k, v in comprehensiveness(f, x, saliency, actions=a).items():
                values[f"comprehensiveness@{k:g}"] = v
            for k, v in sufficiency(f, x, saliency, actions=a).items():
                values[f"sufficiency@{k:g}"] = v
            ratio = occlusion_kl_ratio(f, x, saliency, mask, rng=rng, eps=KL_EPS)
            values["occlusion_kl_log_ratio"] = np.log10(ratio)
        for name, v in values.items():
            out.setdefault(name, []).append(np.asarray(v, np.float64))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def behaviour_steps(
    scorer: ActionScorer, images: np.ndarray, masks: np.ndarray, *, rng: np.random.Generator | int = 0
) -> dict[str, np.ndarray]:
    """The saliency-free behaviour check per step: KL when the mask region is occluded
    (``behaviour_kl_mask``), when an equal-area region outside it is (``behaviour_kl_outside``), and
    ``behaviour_log_ratio`` = log10 of their ratio (:func:`camal_rl.metrics.behaviour_kl`)."""
    x = images_to_tensor(images, scorer.device)
    out = behaviour_kl(scorer, x, masks, rng=rng, eps=KL_EPS)
    return {
        "behaviour_kl_mask": np.asarray(out["kl_mask"], np.float64),
        "behaviour_kl_outside": np.asarray(out["kl_outside"], np.float64),
        "behaviour_log_ratio": np.log10(np.asarray(out["ratio"], np.float64)),
    }


def scored_indices(episodes: Sequence[Episode], max_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Steps to score: all of each episode, or ``max_steps`` evenly spaced ones.

    :return: (flat indices into the concatenated steps, episode id of each).
    """
    flat, ids = [], []
    offset = 0
    for i, episode in enumerate(episodes):
        n = episode.length
        take = (
            np.arange(n) if max_steps is None or n <= max_steps else np.linspace(0, n - 1, max_steps).round()
        )
        flat.append(offset + take.astype(np.int64))
        ids.append(np.full(len(take), i))
        offset += n
    return np.concatenate(flat), np.concatenate(ids)


def evaluate_model(
    model: BaseAlgorithm,
    scorer: ActionScorer,
    make_env: Callable[[], gym.Env],
    *,
    episodes: int,
    seed: int = EVAL_SEED,
    methods: Sequence[str] = DEFAULT_SALIENCY,
    faithfulness: bool = True,
    behaviour: bool = True,
    max_steps_scored: int | None = 64,
    deletion_step: int = 64,
    policy: ActionScorer | None = None,
    deterministic: bool = True,
) -> dict[str, Any]:
    """Returns and attention metrics of ``model`` on ``episodes`` held-out episodes.

    :param policy: the action distribution of the faithfulness and behaviour metrics (default:
        softmax of ``scorer``'s scores; see :func:`score_steps`).
    :param deterministic: act with the deterministic policy, else sample (:func:`collect_episodes`).
    :return: JSON-ready dict: ``return``, ``length``, ``success_rate`` summaries over episodes,
        ``per_episode_return``, and for each saliency method each metric's summary (per step ->
        per episode -> mean, IQM, 95% bootstrap CI, coverage), plus ``behaviour``.
    """
    check_saliency_methods(methods)
    recorded = collect_episodes(model, make_env, episodes, seed=seed, deterministic=deterministic)
    returns = np.array([e.total_return for e in recorded])
    result: dict[str, Any] = {
        "episodes": episodes,
        "seed": seed,
        "return": summarize(returns).to_dict(),
        "length": summarize(np.array([e.length for e in recorded], np.float64)).to_dict(),
        "success_rate": float((returns > 0).mean()),
        "per_episode_return": returns.tolist(),
    }
    index, episode_ids = scored_indices(recorded, max_steps_scored)
    images = np.concatenate([e.images for e in recorded])[index]
    masks = np.concatenate([e.masks for e in recorded])[index]
    actions = np.concatenate([e.actions for e in recorded])[index]
    result["steps_scored"] = len(index)
    result["coverage"] = float(np.mean([m.any() for m in masks]))
    result["saliency"] = {}
    for method in methods:
        per_step = score_steps(
            scorer,
            images,
            masks,
            actions,
            method=method,
            faithfulness=faithfulness,
            deletion_step=deletion_step,
            policy=policy,
        )
        result["saliency"][method] = _summaries(per_step, episode_ids)
    if behaviour:
        f = scorer if policy is None else policy
        result["behaviour"] = _summaries(behaviour_steps(f, images, masks), episode_ids)
    return result


def _summaries(per_step: Mapping[str, np.ndarray], episode_ids: np.ndarray) -> dict[str, dict[str, float]]:
    return {name: summarize_steps(values, episode_ids).to_dict() for name, values in per_step.items()}


# ---------------------------------------------------------------------------------------------
# camal-rl evaluate
# ---------------------------------------------------------------------------------------------


DEFAULT_EVALUATION = EvaluationSettings()
"""``evaluate``'s evaluation: 20 episodes, Grad-CAM and perturbation saliency, faithfulness, 64 steps
scored per episode."""


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate a trained agent: returns plus every attention metric, written to metrics.json."""

    run: Annotated[Path, tyro.conf.Positional]
    """A run directory (from `camal-rl train`) or a model zip (Stable-Baselines3's or camal-rl's; its
    pickled objects are rebuilt from an allowlist of SB3's and camal-rl's own, its weights read as
    tensors alone, see --allow-pickle). A run's checkpoint, RUN/checkpoints/step_N.zip, is evaluated
    with its run's env and settings."""
    agent: Annotated[AgentSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_AGENT
    """The agent and its env."""
    evaluation: Annotated[EvaluationSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_EVALUATION
    """What is scored, on how many episodes."""
    out: Path | None = None
    """Where to write the metrics (default: RUN/metrics.json, or next to the model zip: a
    checkpoint's beside it, RUN/checkpoints/step_N.metrics.json)."""

    def settings(self, algo: str) -> dict[str, Any]:
        """The settings ``metrics.json`` records (:meth:`EvaluationSettings.settings`)."""
        return self.evaluation.settings(algo, seed=self.agent.seed, env_kwargs=self.agent.env_kwargs)

    def check(self) -> None:
        """:raises InputError: a setting out of range (checked before any model is loaded)."""
        self.evaluation.check()


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """``camal-rl evaluate``: evaluate a run or model zip, print a table, write ``metrics.json``."""
    from camal_rl.agents import PolicyScorer

    cfg.check()
    started = time.monotonic()
    settings = cfg.evaluation
    agent = cfg.agent.load(cfg.run)
    env_kwargs = agent.env_kwargs
    variants: dict[str, dict[str, Any]] = {"train": env_kwargs}
    if settings.distractors:
        variants["distractors"] = {**env_kwargs, "distractors": settings.distractors}
    out = cfg.out or agent.metrics_path
    check_output(out, "--out")  # a wrong env or output path refused before any rollout
    with agent.probe(env_kwargs):
        pass
    scored = [*settings.saliency, *(["faithfulness"] if settings.faithfulness else [])]
    print(
        f"evaluating {agent.model_path} on {settings.episodes} episode{'s' * (settings.episodes != 1)} "
        f"of {agent.env_id} ({' and '.join(variants)}): {', '.join(scored)}",
        flush=True,  # what a sweep's progress line sees of an evaluation under way
    )
    scorer = PolicyScorer(agent.model, layer=settings.layer)
    policy, policy_name = action_distribution(scorer, settings.q_policy, settings.q_epsilon)
    tile = int(env_kwargs.get("tile_size", 8))
    report: dict[str, Any] = {
        **agent.describe(),
        "methods": list(settings.saliency),
        "faithfulness_policy": policy_name,
        "settings": cfg.settings(agent.algo),
        "variants": {},
    }
    try:
        for name, kwargs in variants.items():
            result = evaluate_model(
                agent.model,
                scorer,
                partial(agent.make_env, kwargs),
                episodes=settings.episodes,
                seed=cfg.agent.seed,
                methods=settings.saliency,
                faithfulness=settings.faithfulness,
                max_steps_scored=settings.max_steps_scored,
                deletion_step=tile * tile,
                policy=policy,
                deterministic=not settings.stochastic,
            )
            report["variants"][name] = {"env_kwargs": kwargs, **result}
    except KeyboardInterrupt:
        print(f"\ninterrupted: the evaluation did not finish; {out} not written", file=sys.stderr)
        raise
    report["evaluation_seconds"] = round(time.monotonic() - started, 1)  # what a sweep's estimate goes by
    print(format_metrics_table(report))  # first: a failed write below loses no numbers
    write_report(out, report)
    print(f"wrote {out} (evaluated in {report['evaluation_seconds']:.0f} s)")
    return report


def write_report(out: Path, report: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` (or ``--out``), its folder created.

    :raises InputError: it cannot be written (the table printed before is the evaluation).
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, report)
    except OSError as error:
        raise InputError(
            f"cannot write {out} ({error.strerror or error}); the table above is the evaluation, "
            "rerun it with --out a place you can write to keep it"
        ) from error


def action_distribution(scorer: ActionScorer, q_policy: str, epsilon: float) -> tuple[ActionScorer, str]:
    """The scorer whose softmax the faithfulness and behaviour metrics read, and its name for
    ``metrics.json``: the policy itself for PPO; for DQN (a scorer whose ``is_q_network``)
    softmax(Q) or the epsilon-greedy policy."""
    if not getattr(scorer, "is_q_network", False):
        return scorer, "pi(a|x)"
    if q_policy == "epsilon-greedy":
        return EpsilonGreedyPolicy(scorer, epsilon), f"epsilon-greedy(Q), epsilon {epsilon:g}"
    return scorer, "softmax(Q)"


def format_metrics_table(report: Mapping[str, Any], metrics: Iterable[str] | None = None) -> str:
    """A plain-text table of a ``metrics.json`` report: one block per env variant."""
    lines = [f"{report.get('label', '')}  {report.get('env', '')}  steps={report.get('num_timesteps', '?')}"]
    if "faithfulness_policy" in report:
        lines[0] += f"  faithfulness on {report['faithfulness_policy']}"
    if report.get("settings", {}).get("stochastic"):
        lines[0] += "  actions sampled"
    if report.get("frame_stack", 1) > 1:
        lines[0] += f"  {report['frame_stack']} frames stacked"
    for variant, result in report["variants"].items():
        r = result["return"]
        lines.append(
            f"[{variant}] return {r['mean']:.3f} (IQM {r['iqm']:.3f}, "
            f"95% CI {r['ci_low']:.3f}..{r['ci_high']:.3f}),"
            f" success {result['success_rate']:.0%}, {result['episodes']} episodes,"
            f" mask coverage {result['coverage']:.0%}"
        )
        methods = list(result["saliency"])
        if not methods:  # returns only (--saliency with no method)
            continue
        names = list(metrics) if metrics is not None else list(result["saliency"][methods[0]])
        width = {m: max(16, len(m) + 2) for m in methods}  # a column fits its method's name
        lines.append(f"  {'metric':<24}" + "".join(f"{m:>{width[m]}}" for m in methods))
        for name in names:
            cells = "".join(_cell(result["saliency"][m].get(name)).rjust(width[m]) for m in methods)
            lines.append(f"  {name:<24}{cells}")
        for name, summary in result.get("behaviour", {}).items():
            lines.append(f"  {name:<24}{_cell(summary).rjust(width[methods[0]])}")
        for method in methods:
            note = flat_note(method, result["saliency"][method].get("flat_share", {}).get("mean", 0.0))
            lines += [f"  note: {note}"] if note else []
    return "\n".join(lines)


def flat_note(method: str, share: float) -> str | None:
    """What a share of flat ``method`` maps of :data:`FLAT_NOTE` or more means, else None."""
    if not share >= FLAT_NOTE:  # nan: no share reported
        return None
    return (
        f"{share:.0%} of the {method} maps are flat (no pixel above another): they score chance on "
        "alignment and say nothing of where the agent looks (docs/metrics.md)"
    )


def _cell(summary: Mapping[str, float] | None) -> str:
    if summary is None or not np.isfinite(summary["mean"]):
        return f"{'-':>16}"
    return f"{summary['mean']:>9.3f} ±{(summary['ci_high'] - summary['ci_low']) / 2:<5.3f}"


def quick_evaluation(
    model: BaseAlgorithm,
    scorer: ActionScorer,
    make_env: Callable[[], gym.Env],
    *,
    episodes: int,
    seed: int = EVAL_SEED,
    max_steps_scored: int = 32,
) -> dict[str, float]:
    """The periodic evaluation during training: returns, and Grad-CAM's EPG, IoU and share of
    flat maps on up to ``max_steps_scored`` steps per episode (alignment only, so it stays cheap).

    :return: a row of ``evaluations.csv`` without ``step`` and ``wall_time_s``.
    """
    recorded = collect_episodes(model, make_env, episodes, seed=seed)
    returns = np.array([e.total_return for e in recorded])
    index, episode_ids = scored_indices(recorded, max_steps_scored)
    images = np.concatenate([e.images for e in recorded])[index]
    masks = np.concatenate([e.masks for e in recorded])[index]
    actions = np.concatenate([e.actions for e in recorded])[index]
    per_step = score_steps(scorer, images, masks, actions, method="gradcam", faithfulness=False)
    epg = summarize_steps(per_step["epg"], episode_ids, n_resamples=1)
    iou = summarize_steps(per_step["iou"], episode_ids, n_resamples=1)
    flat = summarize_steps(per_step["flat_share"], episode_ids, n_resamples=1)
    return {
        "episodes": float(episodes),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(np.mean([e.length for e in recorded])),
        "epg": epg.mean,
        "iou": iou.mean,
        "coverage": epg.coverage,
        "flat_share": flat.mean,
    }
