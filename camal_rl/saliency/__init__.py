"""Saliency: differentiable Grad-CAM for training, and evaluation saliency methods.

Two uses, two entry points:

- :func:`grad_cam` is the training-time Grad-CAM of docs/design.md on feature maps the model
  already returned, kept inside the autograd graph so an attention loss on it trains the network.
- The evaluation methods (:class:`GradCAM`, :class:`GradCAMPlusPlus`, :class:`VanillaGradient`,
  :class:`InputXGradient`, :class:`IntegratedGradients`, :class:`PerturbationSaliency`, and any
  captum attribution as :class:`CaptumAttribution`) share one interface,
  ``method(scorer, images, actions) -> (B, H, W)``: they see the model only through an
  :class:`~camal_rl.adapters.ActionScorer`, take raw-pixel images (B, C, H, W) in [0, 255] and
  one target action per image, and return detached float32 maps >= 0 at the input resolution.
  Perturbation saliency and the gradient methods are "methods the model was not trained on";
  evaluation reports perturbation beside Grad-CAM by default (a loss on Grad-CAM can fool
  Grad-CAM).

Modules: :mod:`~camal_rl.saliency.common` (the interface, input checks, upsampling),
:mod:`~camal_rl.saliency.gradcam` (:func:`grad_cam`, and :class:`BaseCAM`, whose subclasses
supply only the channel weights), :mod:`~camal_rl.saliency.perturbation` (Greydanus et al.
2018), :mod:`~camal_rl.saliency.attributions` (the gradient methods and every other input
attribution, from captum).

Evaluation methods run the model in eval mode (:func:`eval_mode`, restored afterwards, module by
module) and never touch parameters' ``.grad``: gradients are taken with respect to maps or to a
private copy of the images. :func:`eval_mode` (from :mod:`camal_rl.adapters`) and the Gaussian
blur (:func:`gaussian_blur`, :func:`gaussian_kernel1d`, from :mod:`camal_rl.images`) are shared
with the metrics and exported here too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, cast

from torch import Tensor

from camal_rl.adapters import ActionScorer, eval_mode
from camal_rl.errors import InputError
from camal_rl.images import gaussian_blur, gaussian_kernel1d
from camal_rl.saliency.attributions import (
    CAPTUM_PREFIX,
    CaptumAttribution,
    InputXGradient,
    IntegratedGradients,
    VanillaGradient,
    captum_attributions,
    check_captum_name,
)
from camal_rl.saliency.common import SaliencyMethod
from camal_rl.saliency.gradcam import BaseCAM, GradCAM, GradCAMPlusPlus, grad_cam
from camal_rl.saliency.perturbation import PerturbationSaliency

__all__ = [
    "CAPTUM_PREFIX",
    "SALIENCY_METHODS",
    "BaseCAM",
    "CaptumAttribution",
    "GradCAM",
    "GradCAMPlusPlus",
    "InputXGradient",
    "IntegratedGradients",
    "PerturbationSaliency",
    "SaliencyMethod",
    "VanillaGradient",
    "captum_attributions",
    "check_saliency_methods",
    "compute_saliency",
    "eval_mode",
    "gaussian_blur",
    "gaussian_kernel1d",
    "grad_cam",
    "make_saliency_method",
]


SALIENCY_METHODS: dict[str, Callable[..., SaliencyMethod]] = {
    GradCAM.name: GradCAM,
    GradCAMPlusPlus.name: GradCAMPlusPlus,
    VanillaGradient.name: VanillaGradient,
    InputXGradient.name: InputXGradient,
    IntegratedGradients.name: IntegratedGradients,
    PerturbationSaliency.name: PerturbationSaliency,
}
"""Evaluation saliency methods by name; each value builds a :class:`SaliencyMethod`. Any captum
input attribution is a method too, by the name ``captum:NAME`` (:func:`captum_attributions`)."""


def check_saliency_methods(names: Iterable[str]) -> None:
    """:raises InputError: a name neither in :data:`SALIENCY_METHODS` nor ``captum:NAME`` with
    NAME in :func:`captum_attributions`, with the names there are."""
    names = list(names)
    unknown = [
        repr(name) for name in names if name not in SALIENCY_METHODS and not name.startswith(CAPTUM_PREFIX)
    ]
    if unknown:
        what = "method" if len(unknown) == 1 else "methods"
        raise InputError(
            f"unknown saliency {what} {', '.join(unknown)}; choose one of: {', '.join(SALIENCY_METHODS)}, "
            f"or {CAPTUM_PREFIX}NAME for an attribution of captum (e.g. {CAPTUM_PREFIX}DeepLift, "
            f"{CAPTUM_PREFIX}GradientShap, {CAPTUM_PREFIX}Occlusion)"
        )
    for name in names:
        if name.startswith(CAPTUM_PREFIX):
            check_captum_name(name.removeprefix(CAPTUM_PREFIX))


def make_saliency_method(name: str, **kwargs: object) -> SaliencyMethod:
    """Build the evaluation saliency method registered as ``name`` in :data:`SALIENCY_METHODS`, or
    the captum attribution ``captum:NAME`` (:class:`CaptumAttribution`).

    :param name: one of ``"gradcam"``, ``"gradcam++"``, ``"gradient"``, ``"input_x_gradient"``,
        ``"integrated_gradients"``, ``"perturbation"``, or ``"captum:NAME"`` (e.g.
        ``"captum:DeepLift"``).
    :param kwargs: constructor options (e.g. ``sigma``, ``stride`` for ``"perturbation"``; ``tile``
        or an argument of captum's ``attribute`` for a captum attribution).
    """
    check_saliency_methods([name])
    if name.startswith(CAPTUM_PREFIX):
        return CaptumAttribution(name, **cast(dict[str, Any], kwargs))  # checks its options
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

    :param name_or_method: a name in :data:`SALIENCY_METHODS` or ``captum:NAME`` (built with
        default options), or a :class:`SaliencyMethod`.
    :param scorer: the model, seen as an :class:`~camal_rl.adapters.ActionScorer`.
    :param images: (B, C, H, W) raw pixels in [0, 255], on any device: computed on
        ``scorer.device``.
    :param actions: (B,) target actions.
    :return: (B, H, W) float32 maps >= 0, detached, on the device of ``images``.
    """
    method = make_saliency_method(name_or_method) if isinstance(name_or_method, str) else name_or_method
    maps = method(scorer, images.to(scorer.device), actions.to(scorer.device))
    return maps.to(images.device)
