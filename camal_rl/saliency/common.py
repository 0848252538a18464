"""What every saliency method shares: its interface, the model's eval mode, input checks, and
the Gaussian blur that perturbation saliency and the deletion / insertion metrics rest on."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camal_rl.adapters import ActionScorer
from camal_rl.errors import InputError


class SaliencyMethod(Protocol):
    """``method(scorer, images, actions) -> (B, H, W)`` float32 maps >= 0, detached, at input
    resolution; ``images`` are (B, C, H, W) raw pixels, ``actions`` (B,) target actions."""

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor: ...


def gaussian_kernel1d(
    sigma: float,
    *,
    truncate: float = 3.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Normalised 1-D Gaussian kernel ``exp(-x^2 / (2 sigma^2))`` on integer offsets
    ``-r..r``, ``r = max(1, ceil(truncate * sigma))``, summing to 1.

    :param sigma: standard deviation in pixels, > 0.
    :param truncate: half-width of the kernel in standard deviations.
    """
    if not sigma > 0:
        raise InputError(f"sigma must be > 0 pixels, got {sigma}")
    radius = max(1, math.ceil(truncate * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(images: Tensor, sigma: float, *, truncate: float = 3.0) -> Tensor:
    """Separable Gaussian blur over the last two dimensions, with edge-replicating borders (so a
    constant image stays constant). The substrate of perturbation saliency (Greydanus et al.
    2018) and of the deletion / insertion metrics; differentiable, pure.

    :param images: (..., H, W) tensor, e.g. (B, C, H, W) raw pixels; integer dtypes are blurred
        as float32.
    :param sigma: standard deviation in pixels; 0 returns an unblurred float copy.
    :param truncate: kernel half-width in standard deviations (see :func:`gaussian_kernel1d`).
    :return: blurred tensor of the same shape (floating dtype).
    """
    if images.ndim < 2:
        raise InputError(f"gaussian_blur needs images of shape (..., H, W), got {tuple(images.shape)}")
    if sigma < 0:
        raise InputError(f"sigma must be >= 0 pixels, got {sigma}")
    x = images if images.is_floating_point() else images.float()
    if sigma == 0:
        return x.clone()
    kernel = gaussian_kernel1d(sigma, truncate=truncate, dtype=x.dtype, device=x.device)
    radius = (kernel.numel() - 1) // 2
    height, width = x.shape[-2:]
    flat = x.reshape(-1, 1, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(x.shape)


def _modules_of(scorer: object) -> list[nn.Module]:
    if isinstance(scorer, nn.Module):
        return [scorer]
    attributes = getattr(scorer, "__dict__", {}).values()
    modules = [value for value in attributes if isinstance(value, nn.Module)]
    wrapped = [value for value in attributes if isinstance(value, ActionScorer)]  # a scorer over a scorer
    return modules + [module for inner in wrapped for module in _modules_of(inner)]


@contextmanager
def eval_mode(scorer: object) -> Iterator[None]:
    """Put the scorer's model in eval mode for the block, then restore every submodule's own
    ``training`` flag (also when the block raises).

    The model is the scorer itself if it is an :class:`~torch.nn.Module`, else every
    ``nn.Module`` held as an attribute of it (``ModuleScorer.module``, a policy adapter's
    ``policy``) or of a scorer it wraps (:class:`~camal_rl.adapters.EpsilonGreedyPolicy`).
    """
    saved = [(module, module.training) for root in _modules_of(scorer) for module in root.modules()]
    try:
        for module, _ in saved:
            module.training = False
        yield
    finally:
        for module, training in saved:
            module.training = training


@contextmanager
def _gradients_on() -> Iterator[None]:
    """Gradients on for the block, also when the caller runs under ``torch.no_grad()`` or
    ``torch.inference_mode()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, h, w) -> (B, H, W), bilinear with ``align_corners=False``, float32, >= 0, detached."""
    maps = maps.detach().float()
    if tuple(maps.shape[-2:]) != size:
        maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return maps.clamp_min(0.0)


def _check_inputs(images: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    if images.ndim != 4:
        raise InputError(
            f"images must be (B, C, H, W) raw pixels, got shape {tuple(images.shape)}; convert "
            "channel-last frames with camal_rl.adapters.images_to_tensor"
        )
    actions = torch.as_tensor(actions, device=images.device)
    if actions.ndim != 1 or actions.shape[0] != images.shape[0] or actions.is_floating_point():
        raise InputError(
            f"actions must be an integer tensor of shape ({images.shape[0]},), one target action per "
            f"image; got dtype {actions.dtype} and shape {tuple(actions.shape)}"
        )
    images = images.detach() if images.is_floating_point() else images.detach().float()
    return images, actions.long()


def _check_scores(scores: Tensor, actions: Tensor, n_images: int | None = None) -> None:
    """:param n_images: rows ``scores`` must have (default: one per action; captum's methods
    forward several path points or perturbations per action)."""
    rows = actions.shape[0] if n_images is None else n_images
    if scores.ndim != 2 or scores.shape[0] != rows:
        raise InputError(
            f"the scorer must return scores of shape (B, n_actions) with B={rows}, got {tuple(scores.shape)}"
        )
    if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= scores.shape[1]):
        raise InputError(
            f"actions must lie in [0, {scores.shape[1] - 1}] (the scorer has {scores.shape[1]} "
            f"actions), got values in [{int(actions.min())}, {int(actions.max())}]"
        )


def _forward_for_gradients(
    scorer: ActionScorer, images: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Forward a private copy of ``images`` that requires grad; call under :func:`_gradients_on`.

    The copy puts the maps in the graph even when the parameters are frozen, leaves the caller's
    tensor untouched, and is a normal tensor even if ``images`` was made under inference mode.

    :return: the input copy, the (B,) scores of ``actions`` and the maps.
    """
    inputs = images.clone().requires_grad_(True)
    scores, maps = scorer.scores_and_maps(inputs)
    _check_scores(scores, actions)
    return inputs, scores.gather(1, actions.clone()[:, None]).squeeze(1), maps


def _index_batches(total: int, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """``arange(total)`` in consecutive chunks of at most ``batch_size`` (flat indices of the
    (image, perturbation) pairs a method puts through the model one batch at a time)."""
    for start in range(0, total, batch_size):
        yield torch.arange(start, min(start + batch_size, total), device=device)
