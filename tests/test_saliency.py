"""Tests for camal_rl.saliency: training-time Grad-CAM and the evaluation methods."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from camal_rl.adapters import ModuleScorer
from camal_rl.errors import InputError
from camal_rl.saliency import (
    SALIENCY_METHODS,
    BaseCAM,
    CaptumAttribution,
    GradCAM,
    GradCAMPlusPlus,
    InputXGradient,
    IntegratedGradients,
    PerturbationSaliency,
    VanillaGradient,
    captum_attributions,
    check_saliency_methods,
    compute_saliency,
    eval_mode,
    gaussian_blur,
    grad_cam,
    make_saliency_method,
)

# ---------------------------------------------------------------------------------------------
# grad_cam on hand-built models
# ---------------------------------------------------------------------------------------------


def test_grad_cam_linear_model_2x2_includes_relu() -> None:
    # y = sum_k w_k * mean(A_k), w = (2, -1), on 2x2 maps: dy/dA_kij = w_k / 4, so
    # alpha = (0.5, -0.25) and cam = relu(0.5 A_0 - 0.25 A_1).
    maps = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[4.0, 0.0], [0.0, 4.0]]]], requires_grad=True)
    scores = 2.0 * maps[:, 0].mean(dim=(1, 2)) - 1.0 * maps[:, 1].mean(dim=(1, 2))
    cam = grad_cam(maps, scores)
    # 0.5 * [[1, 2], [3, 4]] - 0.25 * [[4, 0], [0, 4]] = [[-0.5, 1], [1.5, 1]] -> ReLU
    torch.testing.assert_close(cam, torch.tensor([[[0.0, 1.0], [1.5, 1.0]]]))


def test_grad_cam_nonlinear_model_3x3_batch_is_per_sample() -> None:
    # y = 0.5 * sum(A_0^2) - sum(A_1): dy/dA_0 = A_0, so alpha_0 = mean(A_0); alpha_1 = -1.
    a0 = torch.arange(9.0).view(3, 3)  # [[0, 1, 2], [3, 4, 5], [6, 7, 8]], mean 4
    a1 = torch.zeros(3, 3)
    a1[1, 1] = 20.0
    second = torch.stack([torch.ones(3, 3), torch.zeros(3, 3)])  # alpha = (1, -1): cam = relu(1)
    maps = torch.stack([torch.stack([a0, a1]), second]).requires_grad_(True)
    scores = 0.5 * maps[:, 0].pow(2).sum(dim=(1, 2)) - maps[:, 1].sum(dim=(1, 2))
    cam = grad_cam(maps, scores)
    # sample 0: 4 * A_0 - A_1 = [[0, 4, 8], [12, 16 - 20, 20], [24, 28, 32]] -> ReLU
    expected0 = torch.tensor([[0.0, 4.0, 8.0], [12.0, 0.0, 20.0], [24.0, 28.0, 32.0]])
    # sample 1: alpha_0 = mean(ones) = 1, A_1 = 0 -> cam = ones
    torch.testing.assert_close(cam, torch.stack([expected0, torch.ones(3, 3)]))


class TinyCamNet(nn.Module):
    """conv -> ReLU = attention maps (B, 2, 3, 3) -> linear head (3 actions)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Linear(2 * 3 * 3, 3)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = torch.relu(self.conv(x))
        return self.head(maps.flatten(1)), maps


def test_grad_cam_keeps_graph_through_maps_and_alpha() -> None:
    net = TinyCamNet()
    with torch.no_grad():
        # positive weights and inputs: maps > 0 and alpha > 0, so the cam is not all zero
        net.conv.weight.abs_()
        net.head.weight.abs_()
    scores, maps = net(torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(1)))
    cam = grad_cam(maps, scores[:, 0])
    assert cam.requires_grad
    assert cam.sum() > 0
    cam.pow(2).sum().backward()
    assert net.conv.weight.grad is not None
    assert net.conv.weight.grad.abs().sum() > 0
    # the head enters the CAM only through alpha = mean dy/dA: a nonzero grad proves that
    # create_graph=True differentiates through the gradient itself
    assert net.head.weight.grad is not None
    assert net.head.weight.grad[0].abs().sum() > 0


def test_grad_cam_create_graph_false_is_detached_and_equal() -> None:
    net = TinyCamNet()
    scores, maps = net(torch.rand(2, 1, 3, 3))
    kept = grad_cam(maps, scores[:, 1])
    detached = grad_cam(maps, scores[:, 1], create_graph=False)
    assert not detached.requires_grad
    torch.testing.assert_close(detached, kept.detach())


def test_grad_cam_leaves_no_side_effects() -> None:
    net = TinyCamNet()
    net.train()
    x = torch.rand(2, 1, 3, 3)
    scores, maps = net(x)
    grad_cam(maps, scores[:, 0])
    assert all(m.training for m in net.modules())
    assert all(not m._forward_hooks and not m._backward_hooks for m in net.modules())
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())
    assert not x.requires_grad
    # the graph of the scores is kept for the task loss's backward
    scores.sum().backward()
    assert net.head.weight.grad is not None


def test_grad_cam_gradcheck_double() -> None:
    torch.manual_seed(0)
    weights = torch.rand(3, 1, 1, dtype=torch.float64) + 0.5

    def cam_of(maps: Tensor) -> Tensor:
        # a nonlinear score, so the second-order path through alpha matters
        scores = (weights * maps.pow(2)).sum(dim=(1, 2, 3)) + maps[:, :, 0, 0].sum(dim=1)
        return grad_cam(maps, scores)

    maps = (torch.rand(2, 3, 3, 3, dtype=torch.float64) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(cam_of, (maps,))


def test_grad_cam_errors() -> None:
    maps = torch.rand(2, 3, 4, 4)
    with pytest.raises(InputError, match="require"):
        grad_cam(maps, maps.sum(dim=(1, 2, 3)))  # nothing requires grad
    leaf = maps.clone().requires_grad_(True)
    other = torch.rand(2, requires_grad=True)
    with pytest.raises(InputError, match="do not depend on feature_maps"):
        grad_cam(leaf, other * 2.0)
    with pytest.raises(InputError, match=r"\(B,\)"):
        grad_cam(leaf, leaf.sum(dim=(2, 3)))
    with pytest.raises(InputError, match=r"\(B, K, h, w\)"):
        grad_cam(leaf[0], leaf.sum(dim=(1, 2, 3)))


# ---------------------------------------------------------------------------------------------
# evaluation methods
# ---------------------------------------------------------------------------------------------


class QuadrantNet(nn.Module):
    """Cell-aligned 2x2/stride-2 conv on 32x32 images -> 16x16 maps, zeroed outside the top-left
    8x8 cells (the top-left 16x16 pixels): the model only looks at that quadrant. Positive
    weights make every action's Grad-CAM positive there. A dropout layer records the mode."""

    quadrant: Tensor

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 2, stride=2, bias=False)
        self.head = nn.Linear(4 * 16 * 16, 3)
        self.dropout = nn.Dropout(0.5)
        with torch.no_grad():
            self.conv.weight.copy_(torch.rand(self.conv.weight.shape, generator=generator))
            self.head.weight.copy_(torch.rand(self.head.weight.shape, generator=generator))
        quadrant = torch.zeros(16, 16)
        quadrant[:8, :8] = 1.0
        self.register_buffer("quadrant", quadrant)
        self.modes_seen: list[bool] = []

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.modes_seen.append(self.training)
        maps = torch.relu(self.conv(x)) * self.quadrant
        return self.head(self.dropout(maps).flatten(1)), maps


def _method_kwargs(name: str) -> dict[str, object]:
    return {"sigma": 1.0, "stride": 2, "blur_sigma": 2.0} if name == "perturbation" else {}


CAPTUM_SAMPLE = [
    "captum:DeepLift",
    "captum:GradientShap",
    "captum:Occlusion",
    "captum:FeatureAblation",
    "captum:GuidedBackprop",
]
"""captum attributions of each kind: rescaled gradients (DeepLift), sampled baselines
(GradientShap), windows (Occlusion), feature masks (FeatureAblation), modified ReLU backward
(GuidedBackprop)."""


@pytest.mark.parametrize("name", [*SALIENCY_METHODS, *CAPTUM_SAMPLE])
def test_method_concentrates_on_the_quadrant_the_model_reads(name: str) -> None:
    net = QuadrantNet()
    net.train()
    net.conv.eval()  # a mixed state, restored module by module
    scorer = ModuleScorer(net)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255
    actions = torch.tensor([0, 2])
    saliency = compute_saliency(make_saliency_method(name, **_method_kwargs(name)), scorer, images, actions)
    assert saliency.shape == (2, 32, 32)
    assert saliency.dtype == torch.float32
    assert not saliency.requires_grad
    assert saliency.min() >= 0
    share = saliency[:, :16, :16].sum(dim=(1, 2)) / saliency.sum(dim=(1, 2))
    # Grad-CAM(++): the 8x8 nonzero cells upsample with a quarter-weight fringe of one pixel row
    # and column outside (~64 / 68 of the mass); input x gradient and the captum attributions are
    # exactly 0 outside; perturbation masks centred outside still reach a little into the quadrant.
    assert (share > 0.9).all(), share
    # eval mode during the method, every module's own mode restored after it
    assert net.modes_seen
    assert not any(net.modes_seen)
    assert net.training
    assert net.head.training
    assert net.dropout.training
    assert not net.conv.training
    assert all(p.grad is None for p in net.parameters())
    assert not images.requires_grad
    assert images.grad is None


@pytest.mark.parametrize("name", [*SALIENCY_METHODS, *CAPTUM_SAMPLE])
def test_methods_work_under_no_grad_and_inference_mode(name: str) -> None:
    scorer = ModuleScorer(QuadrantNet())
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 255
    method = make_saliency_method(name, **_method_kwargs(name))
    reference = method(scorer, images, torch.tensor([1]))
    with torch.no_grad():
        torch.testing.assert_close(method(scorer, images, torch.tensor([1])), reference)
    with torch.inference_mode():
        frozen = images.clone()  # an inference tensor
        torch.testing.assert_close(method(scorer, frozen, torch.tensor([1])), reference)


def test_grad_cam_method_upsamples_bilinearly_hand_values() -> None:
    class PoolNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            maps = self.scale * nn.functional.avg_pool2d(x[:, :1], 2)  # (B, 1, 2, 2)
            total = maps.sum(dim=(1, 2, 3))
            return torch.stack([total, -total], dim=1), maps

    # channel 0 pools to the 2x2 map c = [[0, 4], [8, 0]]
    images = torch.zeros(2, 3, 4, 4)
    images[:, 0, :2, 2:] = 4.0
    images[:, 0, 2:, :2] = 8.0
    cam = GradCAM()(ModuleScorer(PoolNet(), preprocess=lambda x: x), images, torch.tensor([0, 1]))
    # action 0: alpha = 1, cam = c. Bilinear 2 -> 4 with align_corners=False weighs the two
    # coarse cells (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1) along each axis:
    # rows: [0, 4], [2, 3], [6, 1], [8, 0]; then the same along columns.
    expected = torch.tensor(
        [
            [0.0, 1.0, 3.0, 4.0],
            [2.0, 2.25, 2.75, 3.0],
            [6.0, 4.75, 2.25, 1.0],
            [8.0, 6.0, 2.0, 0.0],
        ]
    )
    torch.testing.assert_close(cam[0], expected)
    # action 1: alpha = -1, cam = relu(-c) = 0
    torch.testing.assert_close(cam[1], torch.zeros(4, 4))


class ImageAsMaps(nn.Module):
    """The image itself is the (B, K, h, w) attention map; the action scores are
    ``[score(maps), -score(maps)]``."""

    def __init__(self, score: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.score = score

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.scale * x
        score = self.score(maps)
        return torch.stack([score, -score], dim=1), maps


def test_grad_cam_plus_plus_hand_values() -> None:
    def score(maps: Tensor) -> Tensor:
        return 0.5 * maps[:, 0].pow(2).sum(dim=(1, 2)) + maps[:, 1].sum(dim=(1, 2))

    # A = [1, 3], B = [2, 0]; S = sum(A^2) / 2 + sum(B), so g_A = A = [1, 3], g_B = [1, 1]
    images = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])
    cam = GradCAMPlusPlus()(
        ModuleScorer(ImageAsMaps(score), preprocess=lambda x: x), images, torch.tensor([0])
    )
    # A: a = g^2 / (2 g^2 + sum(A) g^3) = [1 / (2 + 4), 9 / (18 + 4 * 27)] = [1/6, 1/14];
    #    w_A = 1/6 * 1 + 1/14 * 3 = 8/21
    # B: a = 1 / (2 + 2 * 1) = 1/4 at both pixels; w_B = 1/4 + 1/4 = 1/2
    # cam = 8/21 * [1, 3] + 1/2 * [2, 0] = [29/21, 24/21]  (Grad-CAM would give [4, 6])
    torch.testing.assert_close(cam, torch.tensor([[[29 / 21, 24 / 21]]]))


def test_cam_methods_differ_only_in_their_weights() -> None:
    class Uniform(BaseCAM):
        """Every channel weighs 1: cam = relu(sum_k A_k), whatever the gradient."""

        name = "uniform"

        def get_cam_weights(self, maps: Tensor, grads: Tensor) -> Tensor:
            return torch.ones(maps.shape[:2], dtype=maps.dtype, device=maps.device)

    def score(maps: Tensor) -> Tensor:
        return maps[:, 0].sum(dim=(1, 2)) - 3.0 * maps[:, 1].sum(dim=(1, 2))

    scorer = ModuleScorer(ImageAsMaps(score), preprocess=lambda x: x)
    images = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])
    # A = [1, 3], B = [2, 0]: uniform weights give [3, 3]; Grad-CAM's (1, -3) give relu([-5, 3])
    torch.testing.assert_close(Uniform()(scorer, images, torch.tensor([0])), torch.tensor([[[3.0, 3.0]]]))
    torch.testing.assert_close(GradCAM()(scorer, images, torch.tensor([0])), torch.tensor([[[0.0, 3.0]]]))
    with pytest.raises(TypeError, match="abstract"):
        BaseCAM()  # type: ignore[abstract]
    assert isinstance(GradCAM(), BaseCAM)
    assert isinstance(GradCAMPlusPlus(), BaseCAM)


@pytest.mark.parametrize("method", [GradCAM(), GradCAMPlusPlus()])
def test_cam_methods_refuse_maps_the_scores_do_not_depend_on(method: BaseCAM) -> None:
    class Disconnected(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return x.mean(dim=(2, 3)), x[:, :1].detach() + 1.0  # maps outside the scores' graph

    with pytest.raises(InputError, match="one autograd graph"):
        method(ModuleScorer(Disconnected()), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]))


def test_grad_cam_method_is_the_training_grad_cam_upsampled() -> None:
    net = QuadrantNet()
    scorer = ModuleScorer(net)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 255
    actions = torch.tensor([0, 2, 1])
    net.eval()  # as the method runs it (no dropout)
    scores, maps = scorer.scores_and_maps(images)
    cam = grad_cam(maps, scores.gather(1, actions[:, None]).squeeze(1), create_graph=False)
    upsampled = nn.functional.interpolate(cam[:, None], size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.equal(GradCAM()(scorer, images, actions), upsampled[:, 0].clamp_min(0.0))


def test_input_x_gradient_linear_model_hand_values() -> None:
    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # one (H=1, W=2) weight per action, shared by the channels
            self.weight = nn.Parameter(torch.tensor([[[1.0, -2.0]], [[0.5, 3.0]]]))

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return (self.weight[None, :, None] * x[:, None]).sum(dim=(2, 3, 4)), x

    images = torch.tensor([[[[10.0, 20.0]], [[-1.0, 4.0]]]])  # (1, 2 channels, 1, 2)
    saliency = InputXGradient()(ModuleScorer(Linear(), preprocess=lambda x: x), images, torch.tensor([1]))
    # score_1 = 0.5 x_c,0 + 3 x_c,1 summed over both channels: d/dx = [0.5, 3] per channel
    # pixel 0: |10 * 0.5| + |-1 * 0.5| = 5.5;  pixel 1: |20 * 3| + |4 * 3| = 72
    torch.testing.assert_close(saliency, torch.tensor([[[5.5, 72.0]]]))

    # integrated gradients of a linear model: (x - x') * w whatever the path points; from a
    # black baseline the same as input x gradient, from a baseline of 2:
    # pixel 0: |8 * 0.5| + |-3 * 0.5| = 5.5;  pixel 1: |18 * 3| + |2 * 3| = 60
    scorer = ModuleScorer(Linear(), preprocess=lambda x: x)
    torch.testing.assert_close(IntegratedGradients(steps=3)(scorer, images, torch.tensor([1])), saliency)
    on_two = IntegratedGradients(steps=3, baseline=2.0)(scorer, images, torch.tensor([1]))
    torch.testing.assert_close(on_two, torch.tensor([[[5.5, 60.0]]]))


def test_gradient_saliency_takes_the_largest_channel_hand_values() -> None:
    class PerChannel(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            # one action: channel 0 weighted [1, -2], channel 1 [-3, 0.5]
            weights = torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]])
            return (weights * x).sum(dim=(1, 2, 3))[:, None], x

    images = torch.tensor([[[[10.0, 20.0]], [[-1.0, 4.0]]]])  # (1, 2 channels, 1, 2)
    gradient = VanillaGradient()(
        ModuleScorer(PerChannel(), preprocess=lambda x: x), images, torch.tensor([0])
    )
    # pixel 0: max(|1|, |-3|) = 3; pixel 1: max(|-2|, |0.5|) = 2 (whatever the pixel values)
    torch.testing.assert_close(gradient, torch.tensor([[[3.0, 2.0]]]))


class Cubic(nn.Module):
    """Action 0 scores sum(x^3), action 1 sum(x); maps unused."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.stack([(x**3).sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3))], dim=1), x


@pytest.mark.parametrize(("steps", "share"), [(2, 0.9375), (3, 1 - 1 / 36), (4, 1 - 1 / 64)])
def test_integrated_gradients_midpoint_rule_hand_values(steps: int, share: float) -> None:
    """d(x^3)/dx at t x is 3 t^2 x^2; the midpoint mean of 3 t^2 over ``steps`` points is
    1 - 1 / (4 steps^2) (2: 3 x (0.0625 + 0.5625) / 2 = 0.9375; 3: (1 + 9 + 25) / 36 = 35/36), so
    each attribution is that share of x^3 (the exact integral gives x^3: completeness)."""
    images = torch.tensor([[[[1.0, -2.0]]], [[[3.0, 0.5]]]])  # (2, 1, 1, 2)
    method = IntegratedGradients(steps=steps, batch_size=3)  # batches cut across the images
    got = method.attributions(ModuleScorer(Cubic(), preprocess=lambda x: x), images, torch.tensor([0, 0]))
    torch.testing.assert_close(got, share * images**3)


def test_integrated_gradients_are_complete_on_a_relu_cnn() -> None:
    """On a ReLU network (piecewise linear in the input) the attributions sum to S(x) - S(x')
    up to the path's discretisation."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return self.net(x), x

    scorer = ModuleScorer(Wrapped())
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 255
    actions = torch.tensor([0, 1, 3])
    got = (
        IntegratedGradients(steps=256, batch_size=100)
        .attributions(scorer, images, actions)
        .sum(dim=(1, 2, 3))
    )
    with torch.no_grad():
        scores = net(images / 255).gather(1, actions[:, None]).squeeze(1)
        zero = net(torch.zeros_like(images)).gather(1, actions[:, None]).squeeze(1)
    torch.testing.assert_close(got, scores - zero, rtol=1e-2, atol=1e-3)


class SquareNet(nn.Module):
    """Nonlinear two-action model on raw images; maps are unused by perturbation saliency."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        weights = torch.linspace(0.0, 1.0, x[0].numel(), dtype=x.dtype).view(x.shape[1:])
        first = (weights * x).sum(dim=(1, 2, 3))
        second = (x[:, 0] ** 2).mean(dim=(1, 2)) / 100.0
        return torch.stack([first, second], dim=1), x


class CountingScorer(ModuleScorer):
    def __init__(self, module: nn.Module) -> None:
        super().__init__(module, preprocess=lambda x: x)
        self.calls: list[int] = []

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        self.calls.append(images.shape[0])
        return super().scores_and_maps(images)


@pytest.mark.parametrize("stride", [1, 2])
def test_perturbation_matches_a_per_location_loop(stride: int) -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 2, 6, 4) * 255
    model = SquareNet()
    sigma, blur_sigma = 1.2, 0.8
    method = PerturbationSaliency(sigma=sigma, stride=stride, blur_sigma=blur_sigma, batch_size=7)
    saliency = method(ModuleScorer(model, preprocess=lambda x: x), images, torch.tensor([0, 1]))
    # locations at the centres of stride x stride blocks, (k + 0.5) * stride - 0.5 (on the pixel
    # for stride 1, between pixels for stride 2); each Gaussian mask scaled to peak at 1
    blurred = gaussian_blur(images, blur_sigma)
    clean = model(images)[0]
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(4.0), indexing="ij")
    coarse = torch.zeros(2, 6 // stride, 4 // stride)
    for i in range(6 // stride):
        for j in range(4 // stride):
            cy, cx = (i + 0.5) * stride - 0.5, (j + 0.5) * stride - 0.5
            mask = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
            mask = mask / mask.max()
            perturbed = images * (1 - mask) + blurred * mask
            coarse[:, i, j] = 0.5 * ((model(perturbed)[0] - clean) ** 2).sum(dim=1)
    expected = nn.functional.interpolate(coarse[:, None], size=(6, 4), mode="bilinear")[:, 0]
    torch.testing.assert_close(saliency, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("n_images", "batch_size"), [(1, 10), (2, 10), (1, 64)])
def test_perturbation_batches_its_forwards(n_images: int, batch_size: int) -> None:
    scorer = CountingScorer(SquareNet())
    images = torch.rand(n_images, 1, 16, 16) * 255
    method = PerturbationSaliency(sigma=2.0, stride=2, batch_size=batch_size)
    assert [len(c) for c in method.grid(16, 16)] == [8, 8]  # 64 locations per image
    method(scorer, images, torch.zeros(n_images, dtype=torch.long))
    n_perturbed = 64 * n_images
    assert len(scorer.calls) == math.ceil(n_perturbed / batch_size) + 1  # + one clean forward
    assert scorer.calls[0] == n_images
    assert sum(scorer.calls[1:]) == n_perturbed
    assert max(scorer.calls[1:]) <= batch_size


def test_perturbation_defaults_scale_with_the_frame() -> None:
    method = PerturbationSaliency()
    # Greydanus et al.: sigma 5, stride 5, blur 3 on 80x80, scaled by min(H, W) / 80
    assert method.resolved(80, 80) == (5.0, 5, 3.0)
    sigma, stride, blur = method.resolved(56, 56)  # MiniGrid, 8 px tiles
    assert (sigma, stride) == (3.5, 4)
    assert blur == pytest.approx(2.1)
    assert method.resolved(120, 160) == (7.5, 8, 4.5)  # ViZDoom
    rows, cols = method.grid(56, 56)
    # 14 centres per axis, each at the centre of a 4 px block: 1.5, 5.5, ..., 53.5
    torch.testing.assert_close(rows, torch.arange(14, dtype=torch.float64) * 4 + 1.5)
    assert (len(rows), len(cols)) == (14, 14)
    assert [len(c) for c in method.grid(120, 160)] == [15, 20]


def test_eval_mode_restores_on_error() -> None:
    net = QuadrantNet()
    net.train()
    scorer = ModuleScorer(net)
    with pytest.raises(InputError, match="actions must lie in"):
        GradCAM()(scorer, torch.rand(1, 3, 32, 32), torch.tensor([5]))
    assert all(m.training for m in net.modules())
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert all(m.training for m in net.modules())


def test_registry_and_errors() -> None:
    assert list(SALIENCY_METHODS) == [
        "gradcam",
        "gradcam++",
        "gradient",
        "input_x_gradient",
        "integrated_gradients",
        "perturbation",
    ]
    with pytest.raises(
        InputError,
        match=r"gradcam, gradcam\+\+, gradient, input_x_gradient, integrated_gradients, perturbation",
    ):
        make_saliency_method("lime")
    for bad, message in (
        ({"steps": 1}, "steps must be >= 2"),
        ({"baseline": math.nan}, "baseline must be a finite pixel value"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ):
        with pytest.raises(InputError, match=message):
            make_saliency_method("integrated_gradients", **bad)
    with pytest.raises(InputError, match="no option"):
        make_saliency_method("gradcam", sigma=2.0)
    with pytest.raises(InputError, match="stride"):
        PerturbationSaliency(stride=0)
    scorer = ModuleScorer(QuadrantNet())
    with pytest.raises(InputError, match=r"\(B, C, H, W\)"):
        compute_saliency("gradcam", scorer, torch.rand(3, 32, 32), torch.tensor([0]))
    with pytest.raises(InputError, match="one target action per image"):
        compute_saliency("gradcam", scorer, torch.rand(2, 3, 32, 32), torch.tensor([0]))


# ---------------------------------------------------------------------------------------------
# captum: the gradient methods are captum's, and any captum attribution by name
# ---------------------------------------------------------------------------------------------


class SmallCnn(nn.Module):
    """A MiniGrid-like CNN on 3 x 24 x 24 frames (8 px tiles): conv 8/8 -> ReLU -> conv 3x3 ->
    ReLU -> linear, 5 actions."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 8, stride=8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 3 * 3, 5),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x), x


def _hand_written_gradients(module: nn.Module, images: Tensor, actions: Tensor) -> Tensor:
    """d score[action] / d raw pixels, as camal-rl computed it before captum (ModuleScorer divides
    by 255)."""
    inputs = images.clone().requires_grad_(True)
    scores = module(inputs / 255.0)[0].gather(1, actions[:, None]).sum()
    (grads,) = torch.autograd.grad(scores, inputs)
    return grads


def test_captum_backed_methods_give_the_maps_of_before() -> None:
    """VanillaGradient, InputXGradient and IntegratedGradients are captum's Saliency,
    InputXGradient and IntegratedGradients (riemann_middle) now; their maps equal those of the
    hand-written code they replaced to 1e-6 of the largest value."""
    module = SmallCnn()
    scorer = ModuleScorer(module)
    images = torch.rand(5, 3, 24, 24, generator=torch.Generator().manual_seed(3)) * 255
    actions = torch.tensor([0, 1, 2, 3, 4])
    grads = _hand_written_gradients(module, images, actions)

    def close(got: Tensor, expected: Tensor) -> None:
        assert expected.abs().max() > 0
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())

    close(VanillaGradient()(scorer, images, actions), grads.abs().amax(dim=1))
    close(InputXGradient()(scorer, images, actions), (images * grads).abs().sum(dim=1))
    steps, baseline = 8, 10.0
    total = torch.zeros_like(images)
    for k in range(steps):  # the midpoint rule, one path point at a time
        t = (k + 0.5) / steps
        total += _hand_written_gradients(module, baseline + t * (images - baseline), actions)
    expected = (images - baseline) * total / steps
    for batch_size in (256, 2):  # 2: captum gets 2 images at a time, one path point per pass
        method = IntegratedGradients(steps=steps, baseline=baseline, batch_size=batch_size)
        close(method.attributions(scorer, images, actions), expected)
        close(method(scorer, images, actions), expected.abs().sum(dim=1))


def test_captum_occlusion_hand_values() -> None:
    """Occlusion with its default 8 x 8 windows at stride 8 and a black baseline: each window's
    attribution is the score it removes, given to every pixel and channel of the window."""

    class TopMinusBottom(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            # score = 2 * sum(top 8 rows) - sum(bottom 8 rows), over both channels
            return (2.0 * x[:, :, :8].sum(dim=(1, 2, 3)) - x[:, :, 8:].sum(dim=(1, 2, 3)))[:, None], x

    images = torch.ones(1, 2, 16, 8)  # two 8 x 8 windows, one above the other
    saliency = make_saliency_method("captum:Occlusion")(
        ModuleScorer(TopMinusBottom(), preprocess=lambda x: x), images, torch.tensor([0])
    )
    # top window: removes 2 * 128 = 256 from the score; bottom window: -(-128) = +128 removed.
    # sum over the 2 channels of |attribution|: 512 and 256 per pixel
    expected = torch.cat([torch.full((8, 8), 512.0), torch.full((8, 8), 256.0)])
    torch.testing.assert_close(saliency, expected[None])


def test_captum_deeplift_of_a_linear_model_is_input_x_gradient() -> None:
    # DeepLift from a black baseline: (x - 0) * w for a model linear in its input, as input x
    # gradient gives it: pixel 0: |10 * 0.5| + |-1 * 0.5| = 5.5; pixel 1: |20 * 3| + |4 * 3| = 72
    class Linear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.tensor([[[1.0, -2.0]], [[0.5, 3.0]]]))

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return (self.weight[None, :, None] * x[:, None]).sum(dim=(2, 3, 4)), x

    images = torch.tensor([[[[10.0, 20.0]], [[-1.0, 4.0]]]])
    scorer = ModuleScorer(Linear(), preprocess=lambda x: x)
    deeplift = compute_saliency("captum:DeepLift", scorer, images, torch.tensor([1]))
    torch.testing.assert_close(deeplift, torch.tensor([[[5.5, 72.0]]]))


def test_captum_defaults_fill_what_captum_needs() -> None:
    images = torch.zeros(2, 3, 16, 24)
    occlusion = CaptumAttribution("Occlusion").defaults(images)
    assert occlusion["sliding_window_shapes"] == occlusion["strides"] == (3, 8, 8)  # a tile, all channels
    assert occlusion["baselines"] == 0.0
    assert occlusion["perturbations_per_eval"] == 128  # 256 images per forward, 2 images
    mask = CaptumAttribution("captum:FeatureAblation", tile=8).defaults(images)["feature_mask"]
    assert mask.shape == (1, 1, 16, 24)
    # 8 x 8 tiles numbered row by row: 2 rows of 3 tiles
    assert mask[0, 0, ::8, ::8].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert mask[0, 0, 15, 23].item() == 5
    assert CaptumAttribution("GradientShap").defaults(images)["n_samples"] == 8
    assert (
        CaptumAttribution("IntegratedGradients", batch_size=64).defaults(images)["internal_batch_size"] == 64
    )


def test_captum_gradient_shap_is_seeded_and_leaves_the_global_rng_alone() -> None:
    scorer = ModuleScorer(SmallCnn())
    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(4)) * 255
    method = make_saliency_method("captum:GradientShap")
    # GradientShap draws from numpy's legacy global RNG: the test seeds and reads it (NPY002)
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    first = method(scorer, images, torch.tensor([0, 1]))
    after = torch.rand(3), np.random.uniform(size=3)  # noqa: NPY002
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    torch.testing.assert_close(method(scorer, images, torch.tensor([0, 1])), first)
    # the global RNGs went on as if untouched
    torch.testing.assert_close(torch.rand(3), after[0])
    np.testing.assert_array_equal(np.random.uniform(size=3), after[1])  # noqa: NPY002
    other_seed = CaptumAttribution("GradientShap", seed=1)(scorer, images, torch.tensor([0, 1]))
    assert not torch.equal(other_seed, first)


def test_captum_names_and_errors() -> None:
    names = captum_attributions()
    for name in ("DeepLift", "GradientShap", "Occlusion", "Saliency", "IntegratedGradients"):
        assert name in names
    # layer and neuron attributions need a layer; NoiseTunnel wraps another attribution;
    # ShapleyValues would enumerate every ordering of the tiles
    for name in ("LayerGradCam", "NeuronGradient", "NoiseTunnel", "ShapleyValues", "Attribution"):
        assert name not in names
    check_saliency_methods(["gradcam", "captum:DeepLift"])
    with pytest.raises(InputError, match=r"did you mean captum:DeepLift\?.*GradientShap.*Occlusion"):
        make_saliency_method("captum:DeepLyft")
    with pytest.raises(InputError, match="need a layer: use gradcam"):
        check_saliency_methods(["captum:LayerGradCam"])
    with pytest.raises(InputError, match="use captum:ShapleyValueSampling"):
        make_saliency_method("captum:ShapleyValues")
    with pytest.raises(InputError, match=r"or captum:NAME .*captum:Occlusion"):
        check_saliency_methods(["occlusion"])
    with pytest.raises(
        InputError, match=r"captum:Occlusion has no option\(s\) \['sigma'\].*sliding_window_shapes"
    ):
        make_saliency_method("captum:Occlusion", sigma=2.0)
    with pytest.raises(InputError, match="tile and batch_size must be >= 1"):
        CaptumAttribution("Occlusion", tile=0)
    scorer = ModuleScorer(QuadrantNet())
    with pytest.raises(InputError, match="actions must lie in"):
        compute_saliency("captum:DeepLift", scorer, torch.rand(1, 3, 32, 32), torch.tensor([7]))


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is not None, reason="scikit-learn is installed")
def test_captum_lime_without_scikit_learn_says_so() -> None:
    with pytest.raises(InputError, match="pip install scikit-learn"):
        make_saliency_method("captum:Lime")
