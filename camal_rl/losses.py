"""The attention-loss family of docs/design.md: pure functions of a saliency map and a mask.

``total = task_loss + camal_coef * attention_loss(saliency, mask, kind)``, where ``saliency``
is the differentiable Grad-CAM of :func:`camal_rl.saliency.grad_cam` (kinds ``camal``,
``camal-v1``, ``energy``) or the input gradient of :func:`input_gradient` (kind ``rrr``). The
agents add the ``camal`` term with its gradient balanced against the task's
(:data:`BALANCED_KINDS`, docs/camal_loss.md); the other kinds are added as written.

Shared rules:

- ``mask`` holds the env's per-pixel classes (0 = background); only ``mask > 0`` is read. For
  the CAM kinds it is downsampled by area to the CAM's resolution (h, w), giving ``m`` in
  [0, 1]: the share of each CAM cell covered by task-relevant pixels.
- Samples whose mask is empty (no relevant object in view) are excluded from the mean. A batch
  with no valid sample gives a loss of exactly 0 that is still connected to ``saliency``'s
  graph, so ``backward()`` works and contributes zero gradient.
- Computed in float32 for float16 / bfloat16 / float32 inputs (float64 stays float64, for
  ``gradcheck``) and returned as a scalar of that dtype, with ``eps`` in every division: no NaN
  or inf for all-zero maps, empty or full masks, or float16 inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from camal_rl.errors import InputError

__all__ = [
    "BALANCED_KINDS",
    "LOSS_KINDS",
    "attention_loss",
    "default_target",
    "downsample_mask",
    "input_gradient",
    "is_balanced_kind",
]

LOSS_KINDS: tuple[str, ...] = ("camal", "camal-v1", "energy", "rrr", "none")
"""Names accepted by :func:`attention_loss`; ``"camal"`` is the default."""
BALANCED_KINDS = frozenset({"camal"})
"""Kinds whose gradient the agents cap at ``camal_coef`` times the task loss's gradient norm
(:class:`camal_rl.agents.common.attention.Objective`), instead of adding ``camal_coef`` times
the loss: the coefficient is then a ratio of gradient norms, with the same meaning in every task."""


def is_balanced_kind(kind: str) -> bool:
    """Whether the agents cap this kind's gradient against the task's (:data:`BALANCED_KINDS`)."""
    return kind in BALANCED_KINDS


def default_target(kind: str) -> str:
    """The Grad-CAM target a loss kind trains by default: ``decision`` (the taken action's score
    minus the mean over actions: what sets the choice apart) for ``camal``; ``action`` (the taken
    action's logit or Q-value) for the others, as the study trained them."""
    return "decision" if kind == "camal" else "action"


def attention_loss(saliency: Tensor, mask: Tensor, kind: str = "camal", eps: float = 1e-6) -> Tensor:
    """Auxiliary attention loss of one minibatch.

    - ``camal`` (CAMAL, Hundal et al., arXiv 2605.08325, as redesigned here; docs/camal_loss.md):
      ``L = mean[ sum((1 - m) cam) / sum(cam) ]``, the share of the map outside the mask:
      containment, 0 once the map sits inside the mask, with no pull to cover every object.
      The term is the same as ``energy``'s; what makes CAMAL is how the agents use it: the map
      of the decision (the taken action's score minus the mean over actions) and a gradient
      capped against the task's (:data:`BALANCED_KINDS`).
    - ``camal-v1`` (the first formulation, kept for the study in experiments/camal_study):
      ``c = cam / (max(cam) + eps)`` per sample,
      ``L = mean[ sum(m (1 - c)) / sum(m) + sum((1 - m) c) / sum(1 - m) ]``: cover the
      relevant objects, suppress attention elsewhere. 0 when the normalised CAM equals ``m``.
    - ``energy`` (Rao et al., ICCV 2023, "Studying How to Efficiently and Effectively Guide
      Models with Explanations"): ``L = mean[1 - sum(cam m) / sum(cam)]``, one minus the energy
      pointing game.
    - ``rrr`` ("Right for the Right Reasons", Ross et al., IJCAI 2017):
      ``L = mean[ sum(((1 - M) grad)^2) ]`` where ``saliency`` is the input gradient
      ``d log pi(a|x) / dx`` (see :func:`input_gradient`) and ``M = mask > 0`` at the gradient's
      resolution (area-downsampled if the mask is finer).
    - ``none``: 0, connected to ``saliency``'s graph (the stock-SB3 baseline).

    Means run over the samples with a non-empty mask.

    :param saliency: ``camal`` / ``energy``: (B, h, w) CAM >= 0 (Grad-CAM applies a ReLU);
        ``rrr``: (B, C, H, W) or (B, H, W) input gradient; any float dtype.
    :param mask: (B, H, W) uint8 / bool / integer / float mask at the resolution of
        ``saliency`` or finer (H >= h, W >= w), on any device (moved to ``saliency``'s).
    :param kind: one of :data:`LOSS_KINDS`.
    :param eps: added to every denominator.
    :return: scalar, float32 (float64 for float64 ``saliency``).
    """
    _check_inputs(saliency, mask, kind)
    dtype = torch.promote_types(saliency.dtype, torch.float32)
    if kind == "none":
        return saliency.to(dtype).sum() * 0.0
    size = (saliency.shape[-2], saliency.shape[-1])
    m = downsample_mask(mask.to(saliency.device), size).to(dtype)
    # every mask pixel falls in some pooling cell: m has a positive cell iff the mask is non-empty
    valid = (m.flatten(1).amax(dim=1) > 0).to(dtype)
    per_sample = _per_sample_loss(saliency.to(dtype), m, kind, eps)
    # Weighted mean instead of boolean indexing: no host sync, and an all-empty batch gives an
    # exact 0 that is still connected to the graph.
    return (per_sample * valid).sum() / valid.sum().clamp_min(1.0)


def _check_inputs(saliency: Tensor, mask: Tensor, kind: str) -> None:
    """Raise :class:`InputError` for a kind or shapes :func:`attention_loss` cannot take."""
    if kind not in LOSS_KINDS:
        raise InputError(f"unknown attention loss kind {kind!r}; choose one of: {', '.join(LOSS_KINDS)}")
    if not saliency.is_floating_point():
        raise InputError(f"saliency must be a floating-point tensor, got dtype {saliency.dtype}")
    if kind == "none":
        return
    if mask.ndim != 3 or mask.shape[0] != saliency.shape[0]:
        raise InputError(
            f"mask must be (B, H, W) with B={saliency.shape[0]} like the saliency batch, got shape "
            f"{tuple(mask.shape)}"
        )
    if kind == "rrr":
        if saliency.ndim not in (3, 4):
            raise InputError(
                "for kind='rrr', saliency must be the input gradient d log pi(a|x)/dx of shape "
                f"(B, C, H, W) or (B, H, W), got {tuple(saliency.shape)}"
            )
    elif saliency.ndim != 3:
        raise InputError(
            f"for kind={kind!r}, saliency must be a CAM of shape (B, h, w), got {tuple(saliency.shape)}; "
            "use camal_rl.saliency.grad_cam"
        )


def _per_sample_loss(s: Tensor, m: Tensor, kind: str, eps: float) -> Tensor:
    """(B,) the loss of each sample: saliency ``s`` and the downsampled mask ``m`` (B, h, w)."""
    if kind == "camal-v1":
        c = s / (s.amax(dim=(1, 2), keepdim=True) + eps)
        outside = 1.0 - m
        cover = (m * (1.0 - c)).sum(dim=(1, 2)) / (m.sum(dim=(1, 2)) + eps)
        suppress = (outside * c).sum(dim=(1, 2)) / (outside.sum(dim=(1, 2)) + eps)
        return cover + suppress
    if kind in ("camal", "energy"):
        return 1.0 - (s * m).sum(dim=(1, 2)) / (s.sum(dim=(1, 2)) + eps)
    outside = 1.0 - (m if s.ndim == 3 else m[:, None])  # rrr
    return (outside * s).pow(2).flatten(1).sum(dim=1)


def downsample_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-downsample the binary mask ``mask > 0`` (B, H, W) to ``size`` = (h, w): each output
    cell holds the share of its input pixels that are task-relevant, in [0, 1], float32.

    :param mask: (B, H, W) mask, any dtype, with H >= h and W >= w.
    :param size: target (h, w), e.g. the CAM's spatial size.
    """
    height, width = mask.shape[-2:]
    if height < size[0] or width < size[1]:
        raise InputError(
            f"the mask ({height}x{width}) must be at least as large as the saliency map "
            f"({size[0]}x{size[1]}); pass the env's full-resolution mask"
        )
    binary = (mask > 0).float()
    if (height, width) == tuple(size):
        return binary
    return F.adaptive_avg_pool2d(binary[:, None], size)[:, 0]


def input_gradient(log_prob: Tensor, inputs: Tensor) -> Tensor:
    """Input gradient ``d log pi(a|x) / dx`` for the ``rrr`` loss (Ross et al., IJCAI 2017),
    with ``create_graph=True`` so the loss on it trains the network (double backprop).

    The agent computes it with respect to the preprocessed input it feeds the network (the image
    scaled to [0, 1], made a leaf that requires grad before the forward pass), per sample:
    ``log_prob`` is (B,) and sample b depends on ``inputs[b]`` only, so the gradient of the sum
    is the per-sample gradient. Parameters' ``.grad`` are not touched.

    :param log_prob: (B,) log-probability of the taken action.
    :param inputs: (B, C, H, W) input tensor that requires grad and produced ``log_prob``.
    :return: (B, C, H, W) gradient, inside the graph.
    """
    if not inputs.requires_grad or not log_prob.requires_grad:
        raise InputError(
            "input_gradient needs inputs that require grad and a log_prob computed from them: call "
            "inputs.requires_grad_(True) before the forward pass, outside torch.no_grad()"
        )
    if log_prob.ndim != 1 or log_prob.shape[0] != inputs.shape[0]:
        raise InputError(f"log_prob must be (B,) with B={inputs.shape[0]}, got shape {tuple(log_prob.shape)}")
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(log_prob.sum(), inputs, create_graph=True, retain_graph=True)
    return grad
