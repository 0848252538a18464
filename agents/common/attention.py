"""The CAMAL term shared by CamalPPO and CamalDQN: settings, checks, the loss, its logging.

CAMAL (Hundal, Xiao, Dong, Rigger, arXiv 2605.08325, 2026) adds to the task loss
``camal_coef * attention_loss(grad_cam(maps, y), mask)``, where ``maps`` are the attention
layer's activations and ``y`` a per-sample target score (docs/design.md, data flow).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.logger import Logger
from torch import Tensor

from camal_rl.envs.base import IMAGE_KEY
from camal_rl.errors import InputError
from camal_rl.losses import LOSS_KINDS, attention_loss, input_gradient
from camal_rl.metrics import energy_pointing_game, iou_top_k
from camal_rl.saliency import grad_cam

CoefSchedule = float | Callable[[float], float]


def decision_scores(scores: Tensor, actions: Tensor) -> Tensor:
    """(B,) the taken action's score minus the mean of the scores over actions: PPO's centred
    logit (d/dx of it equals that of log pi(a|x) at a uniform policy, without log pi's saturation
    as pi(a|x) -> 1), DQN's advantage Q(s, a) - mean_b Q(s, b). Shared by all actions, V(s) and
    the mean logit drop out: the map explains the choice.

    :param scores: (B, n_actions) logits or Q-values.
    :param actions: (B,) or (B, 1) integer actions.
    """
    return scores.gather(1, actions.long().view(-1, 1)).squeeze(1) - scores.mean(dim=1)


def validate_camal_settings(coef: CoefSchedule, loss: str, target: str, targets: tuple[str, ...]) -> None:
    """Check the CAMAL constructor arguments; raise :class:`InputError` saying what is allowed.

    :param coef: weight of the attention term, >= 0, or a schedule of progress remaining (1 -> 0).
    :param loss: one of :data:`camal_rl.losses.LOSS_KINDS`.
    :param target: the Grad-CAM target score, one of ``targets``.
    :param targets: the targets the algorithm supports.
    """
    if loss not in LOSS_KINDS:
        raise InputError(f"unknown camal_loss {loss!r}; choose one of {', '.join(LOSS_KINDS)}")
    if target not in targets:
        raise InputError(f"unknown camal_target {target!r}; choose one of {', '.join(targets)}")
    if callable(coef):
        ends = (coef(1.0), coef(0.0))
        if not all(math.isfinite(v) and v >= 0 for v in ends):
            raise InputError(
                f"the camal_coef schedule must stay finite and >= 0; it gives {ends} at the ends"
            )
    elif isinstance(coef, bool) or not isinstance(coef, int | float) or not math.isfinite(coef) or coef < 0:
        raise InputError(
            f"camal_coef must be a finite number >= 0 (0 disables the attention loss), got {coef!r}"
        )


def coef_at(coef: CoefSchedule, progress_remaining: float) -> float:
    """The attention weight at ``progress_remaining`` (1 at the start of training, 0 at the end)."""
    return float(coef(progress_remaining)) if callable(coef) else float(coef)


def check_discrete_actions(action_space: spaces.Space, algo: str) -> None:
    """Grad-CAM targets are per-action scores: CAMAL agents need a Discrete action space."""
    if not isinstance(action_space, spaces.Discrete):
        raise InputError(
            f"{algo} supports Discrete action spaces only (MiniGrid, ViZDoom); got {action_space}"
        )


def as_image_observation(observation: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Let a trained agent act on the image alone (a deployment without mask rendering): a bare
    image array becomes ``{"image": array}``; dicts pass through (a mask in them is ignored)."""
    if isinstance(observation, Mapping):
        return dict(observation)
    return {IMAGE_KEY: observation}


@dataclass(frozen=True)
class AttentionTerm:
    """The attention term of one minibatch."""

    loss: Tensor | None
    """Loss to add to the task loss, or None when the term is not trained on (coef 0, ``none``)."""
    value: Tensor
    """Detached scalar logged as ``camal/attention_loss`` (for ``none`` and ``rrr``: the
    ``camal-v1`` loss, not trained on); read on the host once per update, not per minibatch (no
    GPU sync)."""
    cam: Tensor
    """Detached Grad-CAM (B, h, w) of the target score, for the attention statistics."""


def attention_term(
    kind: str,
    maps: Tensor,
    target_scores: Tensor,
    mask: Tensor,
    *,
    train: bool,
    images: Tensor | None = None,
    log_prob: Tensor | None = None,
) -> AttentionTerm:
    """Grad-CAM of ``target_scores`` over ``maps`` and the attention loss against ``mask``.

    :param kind: loss kind (``camal``, ``energy``, ``rrr``, ``none``).
    :param maps: attention-layer activations (B, K, h, w) in the graph of ``target_scores``.
    :param target_scores: (B,) target score per sample (logit / Q-value of the target action, or V).
    :param mask: (B, H, W) segmentation mask; only ``mask > 0`` matters.
    :param train: build the graph so the loss trains the network; otherwise only log.
    :param images: preprocessed input images that require grad (``rrr`` only).
    :param log_prob: (B,) log pi(a|x) of the taken action (``rrr`` only).
    """
    if train and kind == "rrr":
        if images is None or log_prob is None:
            raise ValueError("the rrr loss needs input images that require grad and log_prob")
        loss = attention_loss(input_gradient(log_prob, images), mask, "rrr")
        cam = grad_cam(maps, target_scores, create_graph=False)
        return AttentionTerm(loss, loss.detach(), cam)
    if train and kind != "none":
        cam = grad_cam(maps, target_scores, create_graph=True)
        loss = attention_loss(cam, mask, kind)
        return AttentionTerm(loss, loss.detach(), cam.detach())
    cam = grad_cam(maps, target_scores, create_graph=False)
    with torch.no_grad():
        value = attention_loss(cam, mask, "camal-v1" if kind in ("none", "rrr") else kind)
    return AttentionTerm(None, value, cam)


@dataclass(frozen=True)
class Objective:
    """One minibatch's task loss and attention term, and how to backpropagate them.

    For the loss kinds in :data:`camal_rl.losses.BALANCED_KINDS` (``camal``) the attention
    gradient ``g_att`` is capped against the task gradient ``g_task`` over all parameters:
    ``grad = g_task + s g_att`` with ``s = coef * min(1, |g_task| / |g_att|)``, so the attention
    term can at most add ``coef`` times the task gradient's norm. The scale-invariant map terms
    have gradients that grow as 1 / |cam|; with the small maps of a freshly initialised policy head
    ``camal-v1``'s was 63x PPO's and 430x DQN's on DoorKey and, through the shared gradient-norm
    clip, starved the RL update (docs/camal_loss.md). The other kinds backpropagate
    ``task + coef * attention`` as before.
    """

    task: Tensor
    attention: Tensor | None
    """The attention loss, or None when not trained on."""
    coef: float
    balanced: bool

    @property
    def total(self) -> Tensor:
        """The scalar loss as written, ``task + coef * attention`` (logged as ``train/loss``)."""
        return self.task if self.attention is None else self.task + self.coef * self.attention

    def backward(self, parameters: list[torch.nn.Parameter]) -> Tensor | None:
        """Accumulate the gradients into ``parameters``' ``.grad``; return the balanced scale ``s``
        (a 0-d tensor, on the parameters' device) or None when the term is added as written."""
        if self.attention is None or not self.balanced:
            self.total.backward()
            return None
        params = [p for p in parameters if p.requires_grad]
        att_grads = torch.autograd.grad(self.attention, params, retain_graph=True, allow_unused=True)
        self.task.backward()
        task_norm = torch.stack([p.grad.pow(2).sum() for p in params if p.grad is not None]).sum().sqrt()
        att_norm = torch.stack([g.pow(2).sum() for g in att_grads if g is not None]).sum().sqrt()
        ratio = (task_norm / att_norm.clamp_min(1e-12)).clamp(max=1.0)
        scale = self.coef * ratio
        for p, g in zip(params, att_grads, strict=True):
            if g is None:
                continue
            if p.grad is None:
                p.grad = g * scale
            else:
                p.grad.add_(g * scale)
        return scale.detach()


@dataclass
class AttentionLog:
    """Attention statistics over the minibatches of one update, recorded through SB3's logger
    (so they reach stdout, CSV and TensorBoard like SB3's own ``train/`` keys).

    The loss is recorded for every minibatch; the batch EPG and IoU (input-resolution metrics,
    the costly part) for the minibatches passed with ``alignment=True`` (PPO: its first epoch,
    which sees every sample of the rollout once; DQN: every 10th gradient step). An agent that
    does not train attention (``none``, or a coefficient of 0) adds only those minibatches: its
    Grad-CAM exists for the log alone, and computing it on every minibatch cost about 6% (PPO)
    and 7% (DQN) of stock SB3's training speed. The per-minibatch
    loss, coverage and dead-CAM share stay on the model's device until :meth:`record`, so that
    a GPU update does not wait for the host after every minibatch.
    """

    losses: list[Tensor] = field(default_factory=list)
    epg: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    coverage: list[Tensor] = field(default_factory=list)
    dead: list[Tensor] = field(default_factory=list)
    scales: list[Tensor] = field(default_factory=list)

    def add(self, term: AttentionTerm, mask: Tensor, *, alignment: bool = True) -> None:
        """Add one minibatch: its loss value, the share of samples with a mask (coverage) and of
        all-zero CAMs (which the loss cannot move), and with ``alignment`` the batch EPG and IoU
        over the samples with a mask."""
        self.losses.append(term.value)
        has_mask = mask.flatten(1).amax(dim=1) > 0
        self.coverage.append(has_mask.float().mean())
        self.dead.append((term.cam.flatten(1).amax(dim=1) <= 0).float().mean())
        if not alignment or not bool(has_mask.any()):
            return
        cam_np = term.cam[has_mask].detach().float().cpu().numpy()
        mask_np = mask[has_mask].detach().cpu().numpy()
        self.epg.append(float(energy_pointing_game(cam_np, mask_np).mean()))
        self.iou.append(float(iou_top_k(cam_np, mask_np).mean()))

    def add_scale(self, scale: Tensor | None) -> None:
        """Add one balanced step's attention-gradient scale (:meth:`Objective.backward`)."""
        if scale is not None:
            self.scales.append(scale)

    def record(self, logger: Logger, coef: float) -> None:
        """Record the means under ``camal/`` (``camal/grad_scale``: the mean balanced scale ``s``,
        for the balanced kinds)."""
        logger.record("camal/coef", coef)
        if self.scales:
            logger.record("camal/grad_scale", torch.stack(self.scales).double().mean().item())
        if self.losses:
            for key, values in (
                ("attention_loss", self.losses),
                ("mask_coverage", self.coverage),
                ("dead_cam_share", self.dead),
            ):
                logger.record(f"camal/{key}", torch.stack(values).double().mean().item())
        if self.epg:
            logger.record("camal/batch_epg", float(np.mean(self.epg)))
            logger.record("camal/batch_iou", float(np.mean(self.iou)))
