"""Perturbation machinery shared by the faithfulness metrics (private): input checks, the pixel
order, substrates, and the batched forward over perturbed images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from camal_rl.adapters import ActionScorer, eval_mode
from camal_rl.errors import InputError
from camal_rl.images import gaussian_blur
from camal_rl.metrics._inputs import ArrayLike, mask_to_bool, upsample_saliency

Substrate = Literal["blur", "zero", "mean"]
SUBSTRATES: tuple[str, ...] = ("blur", "zero", "mean")

#: ``region(samples) -> (n, P, H, W)`` bool: for the samples in the slice, which pixels of each of
#: their P perturbed images take the substrate's value.
Region = Callable[[slice], Tensor]


def as_images(scorer: ActionScorer, images: ArrayLike) -> Tensor:
    """Check the scorer and turn ``images`` into a float (B, C, H, W) tensor on its device."""
    if not isinstance(scorer, ActionScorer):
        raise InputError(
            f"scorer must be an ActionScorer (scores_and_maps + device), got {type(scorer).__name__}; "
            "wrap a module with camal_rl.adapters.ModuleScorer"
        )
    if not isinstance(images, Tensor | np.ndarray):
        raise InputError(f"images must be a tensor or numpy array (B, C, H, W), got {type(images).__name__}")
    x = torch.as_tensor(images, device=scorer.device).detach()
    if x.ndim != 4 or 0 in x.shape:
        raise InputError(
            f"images must be a non-empty batch (B, C, H, W) of raw pixels, got shape {tuple(x.shape)}; "
            "convert channel-last frames with camal_rl.adapters.images_to_tensor"
        )
    return x if x.is_floating_point() else x.float()


def mask_like(mask: ArrayLike, x: Tensor) -> Tensor:
    """``mask > 0`` (B, H, W) on the CPU, checked against the images ``x`` (B, C, H, W)."""
    m = mask_to_bool(mask)
    if m.shape != (x.shape[0], *x.shape[2:]):
        raise InputError(
            f"mask must be (B, H, W) = {(x.shape[0], *x.shape[2:])} to match the images, got {tuple(m.shape)}"
        )
    return m


def pixel_ranks(saliency: ArrayLike, x: Tensor) -> Tensor:
    """(B, H*W) position of each pixel in the removal order (0 = most salient), on x's device."""
    batch, _, height, width = x.shape
    s = upsample_saliency(saliency, (height, width), batch=batch).reshape(batch, -1).numpy()
    order = np.argsort(-s, axis=1, kind="stable")  # numpy's stable sort is ~6x torch's on CPU
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None], axis=1)
    return torch.from_numpy(ranks).to(x.device)


def make_substrate(x: Tensor, substrate: Substrate, sigma: float) -> Tensor:
    """What removed pixels of ``x`` become: its blur, zeros, or each image's channel means."""
    if substrate == "blur":
        if not sigma > 0:
            raise InputError(f"sigma must be > 0 pixels for the blurred substrate, got {sigma}")
        return blurred(x, sigma)
    if substrate == "zero":
        return torch.zeros_like(x)
    if substrate == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    raise InputError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")


def blurred(x: Tensor, sigma: float) -> Tensor:
    """The blurred substrate: :func:`camal_rl.images.gaussian_blur` (edge-replicating borders,
    so a constant image stays constant), the blur of perturbation saliency too."""
    return gaussian_blur(x, sigma)


def log_probs(
    scorer: ActionScorer,
    x: Tensor,
    substrate: Tensor,
    n_points: int,
    region: Region,
    batch_size: int | None,
) -> Tensor:
    """log pi (B, n_points, A) in float64 of the perturbed images ``(b, p)``: image ``b`` with
    the pixels ``region`` marks for point ``p`` replaced by the substrate's.

    Forwards take whole samples (all ``n_points`` images of each), as many as fit in
    ``batch_size`` images and at least one; images are built by broadcasting, not gathering."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InputError(f"batch_size must be a positive number of images or None, got {batch_size!r}")
    batch, channels, height, width = x.shape
    per_forward = batch if batch_size is None else max(1, batch_size // n_points)
    parts = []
    with torch.no_grad(), eval_mode(scorer):
        for start in range(0, batch, per_forward):
            samples = slice(start, min(start + per_forward, batch))
            removed = region(samples)[:, :, None]  # (n, P, 1, H, W)
            perturbed = torch.where(removed, substrate[samples, None], x[samples, None])
            n_images = perturbed.shape[0] * n_points
            scores = scorer.scores_and_maps(perturbed.view(n_images, channels, height, width))[0]
            if scores.ndim != 2 or scores.shape[0] != n_images:
                raise InputError(
                    f"the scorer must return scores (B, n_actions) for a batch of {n_images} images, "
                    f"got {tuple(scores.shape)}"
                )
            parts.append(torch.log_softmax(scores.double(), dim=-1).view(-1, n_points, scores.shape[1]))
    return torch.cat(parts)


def follow(log_probs: Tensor, clean: int, actions: ArrayLike | None) -> Tensor:
    """log f (B, P): the log-probability of a* at every point; a* = argmax on point ``clean``."""
    batch, _, n_actions = log_probs.shape
    if actions is None:
        a = log_probs[:, clean].argmax(dim=-1)
    else:
        a = torch.as_tensor(actions, device=log_probs.device)
        if a.shape != (batch,) or a.is_floating_point() or a.dtype == torch.bool:
            raise InputError(f"actions must be integers of shape ({batch},), got {a.dtype} {tuple(a.shape)}")
        if int(a.min()) < 0 or int(a.max()) >= n_actions:
            raise InputError(f"actions must lie in [0, {n_actions - 1}], got {a.tolist()}")
    return log_probs.gather(2, a.long().view(batch, 1, 1).expand(-1, log_probs.shape[1], 1))[..., 0]


def trapezoid(fractions: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Trapezoid rule over each row of ``f`` (B, P) against ``fractions`` (P,), 0 to 1."""
    return (np.diff(fractions) * (f[:, 1:] + f[:, :-1]) / 2).sum(axis=1).astype(np.float64)


def check_n_random(n_random: int) -> None:
    """Raise unless ``n_random`` is a positive integer."""
    if isinstance(n_random, bool) or not isinstance(n_random, int | np.integer) or n_random < 1:
        raise InputError(f"n_random must be a positive integer, got {n_random!r}")


def scatter_valid(out: np.ndarray, valid: Tensor, values: Tensor) -> np.ndarray:
    """Write ``values`` (one per valid sample) into ``out`` (B,) where ``valid``; return ``out``."""
    out[valid.cpu().numpy()] = values.double().cpu().numpy()
    return out
