"""Image operations that saliency and the metrics share: the Gaussian blur that perturbation
saliency and the deletion / insertion metrics rest on, and the bilinear resizing of maps to the
input resolution. Pure torch functions on tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from camal_rl.errors import InputError


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


def resize_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, h, w) -> (B, H, W): bilinear with ``align_corners=False`` (pixel centres aligned), in
    the dtype of ``maps``. Maps already of ``size`` are returned as they are (bilinear resizing
    at scale 1 is the identity).

    The one resizing convention of the package: saliency methods return their maps at the input
    resolution through it, and the metrics bring maps of any resolution to the mask's.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
