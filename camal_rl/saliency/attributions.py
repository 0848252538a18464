"""Input attributions from captum (Kokhlikyan et al. 2020, "Captum: A unified and generic model
interpretability library for PyTorch"), as saliency methods.

The gradient methods :class:`VanillaGradient`, :class:`InputXGradient` and
:class:`IntegratedGradients` are captum's ``Saliency``, ``InputXGradient`` and
``IntegratedGradients`` (midpoint rule) reduced to a map; :class:`CaptumAttribution` takes any
other input attribution of ``captum.attr`` by name (``captum:DeepLift``, ``captum:Occlusion``,
...). Every one returns ``sum_c |attribution_c|`` per pixel (the gradient: ``max_c``), a (B, H, W)
map >= 0 that every metric scores. captum is imported on first use: it takes about a second.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from camal_rl.adapters import ActionScorer, eval_mode, scorer_modules
from camal_rl.errors import InputError
from camal_rl.images import gaussian_blur
from camal_rl.saliency.common import _check_inputs, _check_scores, _gradients_on
from camal_rl.saliency.perturbation import PerturbationSaliency

CAPTUM_PREFIX = "captum:"
"""Prefix of a saliency method name that names a captum attribution, ``captum:NAME``."""

_SHAP_BASELINES = frozenset({"GradientShap", "DeepLiftShap"})
"""Attributions that average over a distribution of baselines: black and the blurred image."""
_REFUSED = {
    "ShapleyValues": "it tries every ordering of the features (49! orderings of the 49 tiles of a "
    "56 x 56 frame); use captum:ShapleyValueSampling",
}
_FIXED_OPTIONS = frozenset({"inputs", "target", "additional_forward_args", "return_convergence_delta"})
"""``attribute`` arguments :class:`CaptumAttribution` sets itself."""


def _captum_attr() -> ModuleType:
    import captum.attr

    return captum.attr


@cache
def captum_attributions() -> tuple[str, ...]:
    """The names ``captum:NAME`` accepts: the input attributions of ``captum.attr``, built from a
    model alone (layer and neuron attributions need a layer: use ``gradcam``), sorted."""
    attr = _captum_attr()
    names = []
    for name in attr.__all__:
        cls = getattr(attr, name, None)
        attribute_function = getattr(cls, "attribute", None)
        if (
            not inspect.isclass(cls)
            or not issubclass(cls, attr.Attribution)
            or issubclass(cls, attr.LayerAttribution | attr.NeuronAttribution)
            or not inspect.isfunction(attribute_function)
            or name in _REFUSED
        ):
            continue
        init = list(inspect.signature(cls.__init__).parameters.values())[1:]
        attribute = inspect.signature(attribute_function).parameters
        if (
            init
            and init[0].name in ("forward_func", "model")
            and all(p.default is not p.empty for p in init[1:])
            and {"inputs", "target"} <= set(attribute)
        ):
            names.append(name)
    return tuple(sorted(names))


def check_captum_name(name: str) -> None:
    """:raises InputError: ``name`` (without ``captum:``) is not in :func:`captum_attributions`,
    with the names it has."""
    if name in _REFUSED:
        raise InputError(f"captum:{name} is not offered: {_REFUSED[name]}")
    valid = captum_attributions()
    if name not in valid:
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"did you mean captum:{close[0]}? " if close else ""
        raise InputError(
            f"unknown captum attribution {name!r}; {hint}captum:NAME takes an input attribution of "
            f"captum.attr: {', '.join(valid)} (layer and neuron attributions need a layer: use gradcam)"
        )


class _ScoreModule(nn.Module):
    """A scorer's action scores as an :class:`~torch.nn.Module`: captum's model-based attributions
    (DeepLift, GuidedBackprop, LRP, ...) hook the modules the scorer holds, registered here."""

    def __init__(self, scorer: ActionScorer, actions: Tensor) -> None:
        super().__init__()
        # each module once: captum registers its hooks module by module, and a policy adapter
        # holds both the policy and the extractor inside it
        roots = list({id(module): module for module in scorer_modules(scorer)}.values())
        inner = {id(sub) for root in roots for sub in root.modules() if sub is not root}
        self.parts = nn.ModuleList(root for root in roots if id(root) not in inner)
        self._scorer = scorer
        self._actions = actions

    def forward(self, images: Tensor) -> Tensor:
        scores, _ = self._scorer.scores_and_maps(images)
        _check_scores(scores, self._actions, n_images=images.shape[0])
        return scores


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """The global RNGs captum's sampling attributions draw from (torch's on the CPU and on
    ``device``, numpy's, Python's) seeded with ``seed`` for the block and restored after it."""
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    # captum draws from numpy's legacy global RNG: only its own state can seed and restore it
    numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.default_generator.manual_seed(seed)
            for index in cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002  (GradientShap's path points)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def _attribute(
    cls: Any, scorer: ActionScorer, images: Tensor, actions: Tensor, seed: int = 0, **options: Any
) -> Tensor:
    """Signed (B, C, H, W) attributions of ``captum.attr.<cls>`` for checked ``images`` and
    ``actions``, with the model in eval mode, gradients on, and the global RNGs seeded."""
    method = cls(_ScoreModule(scorer, actions))
    with eval_mode(scorer), _gradients_on(), _seeded(seed, images.device):
        inputs = images.clone()  # made here: a normal tensor even under inference mode
        if isinstance(method, _captum_attr().GradientAttribution):
            inputs.requires_grad_(True)  # captum would set it on the caller's tensor, with a warning
        attributions = method.attribute(inputs, target=actions, **options)
    return attributions.detach()


class VanillaGradient:
    """Gradient saliency (Simonyan, Vedaldi, Zisserman, ICLR 2014 workshop, "Deep Inside
    Convolutional Networks"): ``max_c |dS/dx_c|`` per pixel, on the raw-pixel input, where ``S``
    is the score of the given action (captum's ``Saliency``)."""

    name = "gradient"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        gradients = _attribute(_captum_attr().Saliency, scorer, images, actions, abs=True)
        return gradients.amax(dim=1).float()


class InputXGradient:
    """Input x gradient (Shrikumar et al., 2016/2017, "Not Just a Black Box" / DeepLIFT's
    gradient*input baseline): ``sum_c |x_c * dS/dx_c|`` per pixel, on the raw-pixel input, where
    ``S`` is the score of the given action (captum's ``InputXGradient``)."""

    name = "input_x_gradient"

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        return _attribute(_captum_attr().InputXGradient, scorer, images, actions).abs().sum(dim=1).float()


class IntegratedGradients:
    """Integrated gradients (Sundararajan, Taly, Yan, ICML 2017, "Axiomatic Attribution for Deep
    Networks"): ``sum_c |(x_c - x'_c) * mean_k dS/dx_c(x' + t_k (x - x'))|`` per pixel, the path
    integral of the action score's gradient from a baseline image ``x'`` to ``x`` by the midpoint
    rule (``t_k = (k - 0.5) / steps``: captum's ``IntegratedGradients`` with
    ``method="riemann_middle"``). The signed attributions (:meth:`attributions`) sum to about
    ``S(x) - S(x')`` (completeness; exact for a model linear in its input).

    :param steps: points on the path, >= 2 (the paper uses 20-300; the error of the sum falls as
        ``1 / steps^2``).
    :param baseline: the baseline image's pixel value, every channel (0: black, which is
        MiniGrid's empty floor).
    :param batch_size: path images per forward and backward pass.
    """

    name = "integrated_gradients"

    def __init__(self, steps: int = 32, baseline: float = 0.0, batch_size: int = 256) -> None:
        if steps < 2:
            raise InputError(
                f"steps must be >= 2 (captum's midpoint rule takes two points or more), got {steps}"
            )
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
        # captum batches path points of all the images it is given: give it at most batch_size
        parts = [
            _attribute(
                _captum_attr().IntegratedGradients,
                scorer,
                images[start : start + self.batch_size],
                actions[start : start + self.batch_size],
                baselines=self.baseline,
                n_steps=self.steps,
                method="riemann_middle",
                internal_batch_size=self.batch_size,
            )
            for start in range(0, images.shape[0], self.batch_size)
        ]
        return torch.cat(parts) if parts else torch.zeros_like(images)

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        return self.attributions(scorer, images, actions).abs().sum(dim=1).float()


class CaptumAttribution:
    """Any input attribution of captum by name, ``captum:NAME`` (:func:`captum_attributions`):
    ``sum_c |a_c|`` per pixel of its attributions ``a`` to the given action's score.

    Where captum needs a choice, the defaults are: a black baseline (pixel value 0); for
    GradientShap and DeepLiftShap, a distribution of two baselines per image, black and the image
    blurred as perturbation saliency blurs it (GradientShap draws ``n_samples=8`` points); for
    Occlusion, windows of ``tile`` x ``tile`` pixels over all channels at a stride of one window;
    for the feature-mask methods (FeatureAblation, FeaturePermutation, ShapleyValueSampling,
    KernelShap, Lime), ``tile`` x ``tile`` tiles as the features. Randomised methods draw from
    the global RNGs (torch's, numpy's, Python's) seeded with ``seed`` and restored after, so maps
    are reproducible and the caller's random streams untouched. Lime and KernelShap fit
    scikit-learn models (``pip install scikit-learn``).

    :param name: a class of ``captum.attr`` (``"DeepLift"``, ``"GradientShap"``, ``"Occlusion"``),
        with or without the ``captum:`` prefix.
    :param tile: window and feature size in pixels (8: a MiniGrid tile at the default 56 x 56).
    :param batch_size: images per forward pass of the perturbation methods and of
        IntegratedGradients.
    :param seed: seed of the randomised methods.
    :param options: arguments of the class's ``attribute`` over the defaults (e.g.
        ``n_steps=64`` for IntegratedGradients, ``baselines=127.0``).
    """

    def __init__(
        self, name: str, *, tile: int = 8, batch_size: int = 256, seed: int = 0, **options: Any
    ) -> None:
        name = name.removeprefix(CAPTUM_PREFIX)
        check_captum_name(name)
        if tile < 1 or batch_size < 1:
            raise InputError(f"tile and batch_size must be >= 1, got {tile} and {batch_size}")
        self.cls = getattr(_captum_attr(), name)
        accepted = set(inspect.signature(self.cls.attribute).parameters) - _FIXED_OPTIONS - {"self", "kwargs"}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise InputError(
                f"captum:{name} has no option(s) {unknown}; its options are: tile, batch_size, seed, "
                f"{', '.join(sorted(accepted))}"
            )
        if name in ("Lime", "KernelShap") and importlib.util.find_spec("sklearn") is None:
            raise InputError(f"captum:{name} fits a scikit-learn model: pip install scikit-learn")
        self.name = CAPTUM_PREFIX + name
        self.tile = tile
        self.batch_size = batch_size
        self.seed = seed
        self.options = options

    def defaults(self, images: Tensor) -> dict[str, Any]:
        """The ``attribute`` arguments used on ``images`` (B, C, H, W) before :attr:`options`."""
        parameters = inspect.signature(self.cls.attribute).parameters
        n_images, channels, height, width = images.shape
        defaults: dict[str, Any] = {}
        if "baselines" in parameters:
            defaults["baselines"] = 0.0
        if "sliding_window_shapes" in parameters:
            defaults["sliding_window_shapes"] = (channels, self.tile, self.tile)
            defaults["strides"] = (channels, self.tile, self.tile)
        if "feature_mask" in parameters:
            rows = torch.arange(height, device=images.device) // self.tile
            cols = torch.arange(width, device=images.device) // self.tile
            tiles = rows[:, None] * math.ceil(width / self.tile) + cols[None, :]
            defaults["feature_mask"] = tiles.view(1, 1, height, width)
        if "perturbations_per_eval" in parameters:
            defaults["perturbations_per_eval"] = max(1, self.batch_size // max(n_images, 1))
        if "internal_batch_size" in parameters:
            defaults["internal_batch_size"] = self.batch_size
        if "n_samples" in parameters and self.cls.__name__ == "GradientShap":
            defaults["n_samples"] = 8
        return defaults

    def attributions(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        """Signed (B, C, H, W) attributions of each pixel and channel to the action's score."""
        images, actions = _check_inputs(images, actions)
        options = {**self.defaults(images), **self.options}
        if self.cls.__name__ not in _SHAP_BASELINES or "baselines" in self.options:
            return _attribute(self.cls, scorer, images, actions, self.seed, **options)
        _, _, blur_sigma = PerturbationSaliency().resolved(images.shape[-2], images.shape[-1])
        blurred = gaussian_blur(images, blur_sigma)
        attributions = torch.zeros_like(images)
        for i in range(images.shape[0]):  # one image at a time: each has its own blurred baseline
            baselines = torch.stack([torch.zeros_like(images[i]), blurred[i]])
            attributions[i : i + 1] = _attribute(
                self.cls,
                scorer,
                images[i : i + 1],
                actions[i : i + 1],
                self.seed,
                **{**options, "baselines": baselines},
            )
        return attributions

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        return self.attributions(scorer, images, actions).abs().sum(dim=1).float()
