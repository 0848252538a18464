"""Perturbation saliency (Greydanus et al. 2018): how much blurring each place changes the
scores, a method that needs no gradient and that the model was not trained on."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from camal_rl.adapters import ActionScorer, eval_mode
from camal_rl.errors import InputError
from camal_rl.images import gaussian_blur
from camal_rl.saliency.common import _check_inputs, _check_scores, _index_batches, _upsample


class PerturbationSaliency:
    """Perturbation saliency (Greydanus et al., ICML 2018, "Visualizing and Understanding Atari
    Agents").

    At a grid of locations, the image is blended with a Gaussian-blurred copy of itself through
    a Gaussian mask ``M`` centred there, ``x' = x * (1 - M) + blur(x) * M`` (``M`` peaks at 1),
    and the location scores ``0.5 * ||scores(x) - scores(x')||^2`` over all actions (policy
    logits or Q-values), whatever the target action. The coarse grid map is upsampled
    bilinearly (``align_corners=False``) to H x W; the grid has ``ceil(H / stride)`` x
    ``ceil(W / stride)`` locations spaced evenly so that each sits at the centre of its cell of
    the upsampling. Perturbed images go through the model in batches of ``batch_size``, never
    one forward per location.

    Sizes default to Greydanus et al.'s settings on 80 x 80 Atari frames (mask sigma 5 px,
    stride 5 px, blur sigma 3 px) scaled by ``min(H, W) / 80``: on 56 x 56 MiniGrid frames
    (8 px tiles) sigma 3.5, stride 4, blur 2.1 (a 14 x 14 grid, two locations per tile); on
    120 x 160 ViZDoom frames sigma 7.5, stride 8, blur 4.5 (15 x 20).

    :param sigma: standard deviation of the perturbation mask in pixels (default
        ``min(H, W) / 16``).
    :param stride: spacing of the grid in pixels (default ``round(sigma)``, at least 1).
    :param blur_sigma: standard deviation of the blurred copy in pixels (default ``0.6 * sigma``).
    :param batch_size: perturbed images per forward pass.
    """

    name = "perturbation"

    def __init__(
        self,
        sigma: float | None = None,
        stride: int | None = None,
        blur_sigma: float | None = None,
        batch_size: int = 256,
    ) -> None:
        if sigma is not None and not sigma > 0:
            raise InputError(f"sigma must be > 0 pixels (or None for the size-based default), got {sigma}")
        if stride is not None and stride < 1:
            raise InputError(f"stride must be >= 1 pixel (or None for the default), got {stride}")
        if blur_sigma is not None and not blur_sigma > 0:
            raise InputError(f"blur_sigma must be > 0 pixels (or None for the default), got {blur_sigma}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.sigma = sigma
        self.stride = stride
        self.blur_sigma = blur_sigma
        self.batch_size = batch_size

    def resolved(self, height: int, width: int) -> tuple[float, int, float]:
        """The ``(sigma, stride, blur_sigma)`` used on H x W images, defaults filled in."""
        sigma = self.sigma if self.sigma is not None else min(height, width) / 16.0
        stride = self.stride if self.stride is not None else max(1, round(sigma))
        blur_sigma = self.blur_sigma if self.blur_sigma is not None else 0.6 * sigma
        return sigma, stride, blur_sigma

    def grid(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Centres (in pixel coordinates) of the grid's rows and columns on H x W images."""
        _, stride, _ = self.resolved(height, width)
        return _centres(height, stride), _centres(width, stride)

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        n_images, _, height, width = images.shape
        sigma, _, blur_sigma = self.resolved(height, width)
        rows, cols = (c.to(images.device, images.dtype) for c in self.grid(height, width))
        profile_y = _profiles(rows, height, sigma)  # (n_h, H)
        profile_x = _profiles(cols, width, sigma)  # (n_w, W)
        n_w = cols.numel()
        n_locations = rows.numel() * n_w
        blurred = gaussian_blur(images, blur_sigma)
        total = n_images * n_locations
        saliency = images.new_empty(total, dtype=torch.float32)
        with eval_mode(scorer), torch.no_grad():
            clean, _ = scorer.scores_and_maps(images)
            _check_scores(clean, actions)
            for index in _index_batches(total, self.batch_size, images.device):
                image, location = index // n_locations, index % n_locations
                mask = profile_y[location // n_w][:, :, None] * profile_x[location % n_w][:, None, :]
                x = images[image]
                perturbed = x + mask[:, None] * (blurred[image] - x)
                scores, _ = scorer.scores_and_maps(perturbed)
                saliency[index] = 0.5 * (scores - clean[image]).float().pow(2).sum(dim=1)
        coarse = saliency.view(n_images, rows.numel(), n_w)
        return _upsample(coarse, (height, width))


def _centres(size: int, stride: int) -> Tensor:
    n = math.ceil(size / stride)
    return (torch.arange(n, dtype=torch.float64) + 0.5) * (size / n) - 0.5


def _profiles(centres: Tensor, size: int, sigma: float) -> Tensor:
    """(n, size) Gaussian profiles around each centre, each scaled to peak at 1."""
    pixels = torch.arange(size, dtype=centres.dtype, device=centres.device)
    profiles = torch.exp(-((pixels[None, :] - centres[:, None]) ** 2) / (2.0 * sigma**2))
    return profiles / profiles.amax(dim=1, keepdim=True)
