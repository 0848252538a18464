"""Input checks and conversions shared by the metric modules (private)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from camal_rl.errors import InputError
from camal_rl.images import resize_maps

ArrayLike = np.ndarray | Tensor


def as_cpu_tensor(values: ArrayLike, name: str, ndim: int, what: str) -> Tensor:
    """``values`` as a detached CPU tensor of rank ``ndim``; ``what`` names the expected shape."""
    if isinstance(values, Tensor):
        tensor = values.detach().cpu()
    elif isinstance(values, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(values))
    else:
        raise InputError(
            f"{name} must be a numpy array or a torch tensor {what}, got {type(values).__name__}"
        )
    if tensor.ndim != ndim:
        raise InputError(f"{name} must have shape {what}, got {tuple(tensor.shape)}")
    return tensor


def mask_to_bool(mask: ArrayLike, name: str = "mask") -> Tensor:
    """``mask > 0`` as a bool CPU tensor (B, H, W)."""
    tensor = as_cpu_tensor(mask, name, 3, "(B, H, W)")
    if tensor.is_complex():
        raise InputError(f"{name} must be real (class labels, 0 = background), got {tensor.dtype}")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise InputError(f"{name} must have non-empty frames (B, H, W), got {tuple(tensor.shape)}")
    return tensor > 0


def upsample_saliency(saliency: ArrayLike, size: tuple[int, int], batch: int | None = None) -> Tensor:
    """Check ``saliency`` (B, h, w) >= 0 and resize it to ``size`` with
    :func:`camal_rl.images.resize_maps` (bilinear, ``align_corners=False``, as the saliency methods
    upsample), in float64 on the CPU. Equal sizes are returned unchanged.

    :param batch: the batch size ``saliency`` must have, if known.
    """
    tensor = as_cpu_tensor(saliency, "saliency", 3, "(B, h, w)")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise InputError(f"saliency must be a real-valued map, got {tensor.dtype}")
    tensor = tensor.to(torch.float64)
    if batch is not None and tensor.shape[0] != batch:
        raise InputError(
            f"saliency has {tensor.shape[0]} maps but the batch has {batch} samples; pass one map per sample"
        )
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise InputError(f"saliency maps must be non-empty, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise InputError("saliency contains nan or inf; check the saliency method's output")
    if (tensor < 0).any():
        raise InputError(
            "saliency must be >= 0; apply relu (Grad-CAM) or take the absolute value before scoring"
        )
    return resize_maps(tensor, size)


def saliency_and_mask(saliency: ArrayLike, mask: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Flattened ``S`` (B, H*W) float64 and ``M`` (B, H*W) bool from a saliency batch at any
    resolution and a mask batch (B, H, W)."""
    m = mask_to_bool(mask)
    batch, height, width = m.shape
    s = upsample_saliency(saliency, (height, width), batch=batch)
    return s.reshape(batch, -1).numpy(), m.reshape(batch, -1).numpy()
