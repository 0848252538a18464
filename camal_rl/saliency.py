"""Saliency: differentiable Grad-CAM for training, and evaluation saliency methods.

Two uses, two entry points:

- :func:`grad_cam` is the training-time Grad-CAM of docs/design.md on feature maps the model already
  returned, kept inside the autograd graph so an attention loss on it trains the network.
- The evaluation methods (:class:`GradCAM`, :class:`GradCAMPlusPlus`, :class:`VanillaGradient`,
  :class:`InputXGradient`, :class:`IntegratedGradients`, :class:`PerturbationSaliency`) share
  one interface, ``method(scorer, images, actions) -> (B, H, W)``: they see the model only
  through an :class:`~camal_rl.adapters.ActionScorer`, take raw-pixel images (B, C, H, W) in
  [0, 255] and one target action per image, and return detached float32 maps >= 0 at the input
  resolution. Perturbation saliency and the three gradient methods are "methods the model was
  not trained on"; evaluation reports perturbation beside Grad-CAM by default (a loss on
  Grad-CAM can fool Grad-CAM).

Evaluation methods run the model in eval mode (:func:`eval_mode`, restored afterwards, module by
module) and never touch parameters' ``.grad``: gradients are taken with
:func:`torch.autograd.grad` with respect to maps or to a private copy of the images.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from camal_rl.adapters import ActionScorer
from camal_rl.errors import InputError

__all__ = [
    "SALIENCY_METHODS",
    "GradCAM",
    "GradCAMPlusPlus",
    "InputXGradient",
    "IntegratedGradients",
    "PerturbationSaliency",
    "SaliencyMethod",
    "VanillaGradient",
    "check_saliency_methods",
    "compute_saliency",
    "eval_mode",
    "gaussian_blur",
    "gaussian_kernel1d",
    "grad_cam",
    "make_saliency_method",
]


# ---------------------------------------------------------------------------------------------
# Training-time Grad-CAM
# ---------------------------------------------------------------------------------------------


def grad_cam(feature_maps: Tensor, scores: Tensor, *, create_graph: bool = True) -> Tensor:
    """Differentiable Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from
    Deep Networks via Gradient-based Localization"), batched.

    ``alpha_k = mean_ij dy/dA_kij`` and ``cam = relu(sum_k alpha_k A_k)`` per sample, with
    ``y = scores[b]``. The gradient is taken with :func:`torch.autograd.grad` of
    ``scores.sum()`` with respect to ``feature_maps`` only, so parameters' ``.grad`` stay
    untouched and the graph of ``scores`` is kept for the task loss's backward. Summing over the
    batch gives per-sample gradients because samples do not interact in the forward pass (true
    for conv/linear/ReLU stacks; not for BatchNorm in training mode).

    :param feature_maps: (B, K, h, w) activations of the attention layer, inside the autograd
        graph of ``scores`` (as returned by ``forward_with_maps``).
    :param scores: (B,) target score per sample (PPO: logit of the taken action; DQN:
        ``Q(s, a_taken)``).
    :param create_graph: keep the graph through ``alpha`` and ``A`` so that a loss on the CAM
        trains the network (default). ``False`` returns a detached CAM, for evaluation.
    :return: (B, h, w) CAM >= 0, in the dtype of ``feature_maps``.
    """
    if feature_maps.ndim != 4:
        raise InputError(
            f"feature_maps must be (B, K, h, w), got shape {tuple(feature_maps.shape)}; pass the "
            "attention layer's activations, e.g. the maps from forward_with_maps"
        )
    if scores.ndim != 1 or scores.shape[0] != feature_maps.shape[0]:
        raise InputError(
            f"scores must be (B,) with B={feature_maps.shape[0]} (one target score per sample), got "
            f"shape {tuple(scores.shape)}; select it with scores.gather(1, actions[:, None]).squeeze(1)"
        )
    if not feature_maps.requires_grad or not scores.requires_grad:
        raise InputError(
            "grad_cam needs feature_maps and scores inside one autograd graph, but "
            f"feature_maps.requires_grad={feature_maps.requires_grad}, "
            f"scores.requires_grad={scores.requires_grad}; compute both in one forward pass "
            "outside torch.no_grad() / torch.inference_mode()"
        )
    with torch.enable_grad():
        (grads,) = torch.autograd.grad(
            scores.sum(),
            feature_maps,
            create_graph=create_graph,
            retain_graph=True,
            allow_unused=True,
        )
    if grads is None:
        raise InputError(
            "scores do not depend on feature_maps; pass the maps returned by the same forward pass "
            "that produced the scores (not a copy, not .detach())"
        )
    maps = feature_maps if create_graph else feature_maps.detach()
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * maps).sum(dim=1))


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


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


def _check_scores(scores: Tensor, actions: Tensor) -> None:
    if scores.ndim != 2 or scores.shape[0] != actions.shape[0]:
        raise InputError(
            f"the scorer must return scores of shape (B, n_actions) with B={actions.shape[0]}, got "
            f"{tuple(scores.shape)}"
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


# ---------------------------------------------------------------------------------------------
# Evaluation methods
# ---------------------------------------------------------------------------------------------


class SaliencyMethod(Protocol):
    """``method(scorer, images, actions) -> (B, H, W)`` float32 maps >= 0, detached, at input
    resolution; ``images`` are (B, C, H, W) raw pixels, ``actions`` (B,) target actions."""

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor: ...


class GradCAM:
    """Grad-CAM (Selvaraju et al., ICCV 2017) of the score of the given action on the scorer's
    attention maps, upsampled bilinearly to the input resolution."""

    name = "gradcam"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        with eval_mode(scorer), _gradients_on():
            _, target, maps = _forward_for_gradients(scorer, images, actions)
            cam = grad_cam(maps, target, create_graph=False)
        return _upsample(cam, (images.shape[-2], images.shape[-1]))


class GradCAMPlusPlus:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, "Grad-CAM++: Generalized Gradient-Based Visual
    Explanations for Deep Convolutional Networks").

    With ``g = dS/dA`` the gradient of the action's score, the closed form of the paper's
    eq. 19 for ``Y = exp(S)`` gives pixel weights
    ``a_kij = g^2 / (2 g^2 + sum_ab A_kab g^3)`` (0 where ``g = 0``) and channel weights
    ``w_k = sum_ij a_kij relu(g_kij)``; ``cam = relu(sum_k w_k A_k)``. The factor ``exp(S)``
    cancels in ``a`` and scales ``w`` uniformly per sample, so it is dropped (as in
    pytorch-grad-cam).
    """

    name = "gradcam++"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        with eval_mode(scorer), _gradients_on():
            _, target, maps = _forward_for_gradients(scorer, images, actions)
            (grads,) = torch.autograd.grad(target.sum(), maps)
        maps = maps.detach()
        grads_2 = grads**2
        denominator = 2.0 * grads_2 + maps.sum(dim=(2, 3), keepdim=True) * grads**3
        denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        pixel_weights = torch.where(grads != 0, grads_2 / denominator, torch.zeros_like(grads))
        weights = (pixel_weights * F.relu(grads)).sum(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * maps).sum(dim=1))
        return _upsample(cam, (images.shape[-2], images.shape[-1]))


def _index_batches(total: int, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """``arange(total)`` in consecutive chunks of at most ``batch_size`` (flat indices of the
    (image, perturbation) pairs a method puts through the model one batch at a time)."""
    for start in range(0, total, batch_size):
        yield torch.arange(start, min(start + batch_size, total), device=device)


def _input_gradients(scorer: ActionScorer, images: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """The checked images and the gradient of each one's action score with respect to it."""
    images, actions = _check_inputs(images, actions)
    with eval_mode(scorer), _gradients_on():
        inputs, target, _ = _forward_for_gradients(scorer, images, actions)
        (grads,) = torch.autograd.grad(target.sum(), inputs)
    return images, grads


class VanillaGradient:
    """Gradient saliency (Simonyan, Vedaldi, Zisserman, ICLR 2014 workshop, "Deep Inside
    Convolutional Networks"): ``max_c |dS/dx_c|`` per pixel, on the raw-pixel input, where ``S``
    is the score of the given action."""

    name = "gradient"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        _, grads = _input_gradients(scorer, images, actions)
        return grads.abs().amax(dim=1).float()


class InputXGradient:
    """Input x gradient (Shrikumar et al., 2016/2017, "Not Just a Black Box" / DeepLIFT's
    gradient*input baseline): ``sum_c |x_c * dS/dx_c|`` per pixel, on the raw-pixel input, where
    ``S`` is the score of the given action."""

    name = "input_x_gradient"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, grads = _input_gradients(scorer, images, actions)
        return (images * grads).abs().sum(dim=1).float()


class IntegratedGradients:
    """Integrated gradients (Sundararajan, Taly, Yan, ICML 2017, "Axiomatic Attribution for Deep
    Networks"): ``sum_c |(x_c - x'_c) * mean_k dS/dx_c(x' + t_k (x - x'))|`` per pixel, the path
    integral of the action score's gradient from a baseline image ``x'`` to ``x`` by the midpoint
    rule (``t_k = (k - 0.5) / steps``). The signed attributions (:meth:`attributions`) sum to
    about ``S(x) - S(x')`` (completeness; exact for a model linear in its input).

    :param steps: points on the path (the paper uses 20-300; the error of the sum falls as
        ``1 / steps^2``).
    :param baseline: the baseline image's pixel value, every channel (0: black, which is
        MiniGrid's empty floor).
    :param batch_size: path images per forward and backward pass.
    """

    name = "integrated_gradients"

    def __init__(self, steps: int = 32, baseline: float = 0.0, batch_size: int = 256) -> None:
        if steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        if not math.isfinite(baseline):
            raise InputError(f"baseline must be a finite pixel value, got {baseline}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.steps = steps
        self.baseline = baseline
        self.batch_size = batch_size

    def attributions(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        """Signed (B, C, H, W) attributions of each pixel and channel to the action's score."""
        images, actions = _check_inputs(images, actions)
        fractions = (torch.arange(self.steps, dtype=images.dtype, device=images.device) + 0.5) / self.steps
        with eval_mode(scorer), _gradients_on():
            gradient_sum = torch.zeros_like(images)  # made here: a normal tensor in inference mode
            for index in _index_batches(images.shape[0] * self.steps, self.batch_size, images.device):
                image, step = index // self.steps, index % self.steps
                t = fractions[step].view(-1, 1, 1, 1)
                path = self.baseline + t * (images[image] - self.baseline)
                inputs, target, _ = _forward_for_gradients(scorer, path, actions[image])
                (grads,) = torch.autograd.grad(target.sum(), inputs)
                gradient_sum.index_add_(0, image, grads.to(gradient_sum.dtype))
        return (images - self.baseline) * gradient_sum / self.steps

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        return self.attributions(scorer, images, actions).abs().sum(dim=1).float()


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


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

SALIENCY_METHODS: dict[str, Callable[..., SaliencyMethod]] = {
    GradCAM.name: GradCAM,
    GradCAMPlusPlus.name: GradCAMPlusPlus,
    VanillaGradient.name: VanillaGradient,
    InputXGradient.name: InputXGradient,
    IntegratedGradients.name: IntegratedGradients,
    PerturbationSaliency.name: PerturbationSaliency,
}
"""Evaluation saliency methods by name; each value builds a :class:`SaliencyMethod`."""


def check_saliency_methods(names: Iterable[str]) -> None:
    """:raises InputError: a name not in :data:`SALIENCY_METHODS`, with the names it has."""
    unknown = [repr(name) for name in names if name not in SALIENCY_METHODS]
    if unknown:
        what = "method" if len(unknown) == 1 else "methods"
        raise InputError(
            f"unknown saliency {what} {', '.join(unknown)}; choose one of: {', '.join(SALIENCY_METHODS)}"
        )


def make_saliency_method(name: str, **kwargs: object) -> SaliencyMethod:
    """Build the evaluation saliency method registered as ``name`` in :data:`SALIENCY_METHODS`.

    :param name: one of ``"gradcam"``, ``"gradcam++"``, ``"gradient"``, ``"input_x_gradient"``,
        ``"integrated_gradients"``, ``"perturbation"``.
    :param kwargs: constructor options (e.g. ``sigma``, ``stride`` for ``"perturbation"``).
    """
    check_saliency_methods([name])
    factory = SALIENCY_METHODS[name]
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        options = ", ".join(sorted(accepted)) or "none"
        raise InputError(f"saliency method {name!r} has no option(s) {unknown}; its options are: {options}")
    return factory(**kwargs)


def compute_saliency(
    name_or_method: str | SaliencyMethod,
    scorer: ActionScorer,
    images: Tensor,
    actions: Tensor,
) -> Tensor:
    """Saliency maps of ``images`` for ``actions`` under ``scorer``.

    :param name_or_method: a name in :data:`SALIENCY_METHODS` (built with default options) or a
        :class:`SaliencyMethod`.
    :param scorer: the model, seen as an :class:`~camal_rl.adapters.ActionScorer`.
    :param images: (B, C, H, W) raw pixels in [0, 255], on any device: computed on
        ``scorer.device``.
    :param actions: (B,) target actions.
    :return: (B, H, W) float32 maps >= 0, detached, on the device of ``images``.
    """
    method = make_saliency_method(name_or_method) if isinstance(name_or_method, str) else name_or_method
    maps = method(scorer, images.to(scorer.device), actions.to(scorer.device))
    return maps.to(images.device)
