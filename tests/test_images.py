"""camal_rl.images: the blur and the resizing that saliency and the metrics share."""

from __future__ import annotations

import math

import pytest
import torch

import camal_rl.saliency
from camal_rl.errors import InputError
from camal_rl.images import gaussian_blur, gaussian_kernel1d, resize_maps
from tests.import_graph import import_chains


def test_gaussian_kernel_and_blur_hand_values() -> None:
    # sigma = 1, truncate = 3: offsets -3..3, weights exp(-x^2 / 2) / Z
    raw = [math.exp(-(x**2) / 2) for x in range(-3, 4)]
    z = sum(raw)
    torch.testing.assert_close(gaussian_kernel1d(1.0), torch.tensor(raw) / z)
    delta = torch.zeros(1, 1, 9, 9)
    delta[0, 0, 4, 4] = 1.0
    blurred = gaussian_blur(delta, 1.0)
    # a delta far from the border becomes the outer product of the kernel with itself
    assert blurred[0, 0, 4, 4].item() == pytest.approx((1 / z) ** 2)
    assert blurred[0, 0, 4, 5].item() == pytest.approx(math.exp(-0.5) / z**2)
    assert blurred.sum().item() == pytest.approx(1.0)
    # replicated borders: a constant image stays constant; sigma=0 is a copy; any leading dims
    const = torch.full((2, 3, 5, 4), 7.0)
    torch.testing.assert_close(gaussian_blur(const, 2.5), const)
    torch.testing.assert_close(gaussian_blur(delta, 0.0), delta)
    assert gaussian_blur(torch.zeros(6, 6, dtype=torch.uint8), 1.0).dtype == torch.float32
    with pytest.raises(InputError, match="sigma"):
        gaussian_blur(delta, -1.0)


def test_resize_maps_bilinear_hand_values() -> None:
    # 1 x 2 -> 1 x 4 with align_corners=False: output pixel centres 0.5, 1.5, 2.5, 3.5 sit at
    # input coordinates -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]: weights 0, 0.25, 0.75, 1
    maps = torch.tensor([[[0.0, 8.0]]], dtype=torch.float64)
    out = resize_maps(maps, (1, 4))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 2.0, 6.0, 8.0]]], dtype=torch.float64))
    assert resize_maps(maps, (1, 2)) is maps  # same size: the maps themselves


def test_saliency_and_metrics_share_the_helpers_and_metrics_never_import_saliency() -> None:
    assert camal_rl.saliency.gaussian_blur is gaussian_blur
    assert camal_rl.saliency.gaussian_kernel1d is gaussian_kernel1d
    for package in ("camal_rl.saliency", "camal_rl.metrics"):
        assert import_chains(package, "camal_rl.images"), f"{package} does not use camal_rl.images"
    chains = import_chains("camal_rl.metrics", "camal_rl.saliency")
    assert not chains, "the metrics import saliency:\n" + "\n".join(chains)
