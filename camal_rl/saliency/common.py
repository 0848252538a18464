"""What every saliency method shares: its interface, input checks, gradients on, the forward
for gradients, and the upsampling of maps to the input resolution. The model's eval mode is
:func:`camal_rl.adapters.eval_mode`; the Gaussian blur is :func:`camal_rl.images.gaussian_blur`
(the metrics use both too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
from torch import Tensor

from camal_rl.adapters import ActionScorer
from camal_rl.errors import InputError
from camal_rl.images import resize_maps


class SaliencyMethod(Protocol):
    """``method(scorer, images, actions) -> (B, H, W)`` float32 maps >= 0, detached, at input
    resolution; ``images`` are (B, C, H, W) raw pixels, ``actions`` (B,) target actions."""

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor: ...


@contextmanager
def _gradients_on() -> Iterator[None]:
    """Gradients on for the block, also when the caller runs under ``torch.no_grad()`` or
    ``torch.inference_mode()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, h, w) -> (B, H, W) by :func:`~camal_rl.images.resize_maps`, float32, >= 0, detached."""
    return resize_maps(maps.detach().float(), size).clamp_min(0.0)


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
