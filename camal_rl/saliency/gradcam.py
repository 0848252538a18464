"""Grad-CAM: the differentiable one the attention loss trains on, and the evaluation methods
on the scorer's attention maps, :class:`GradCAM` and :class:`GradCAMPlusPlus`, which share
:class:`BaseCAM` and differ only in their channel weights."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from camal_rl.adapters import ActionScorer, eval_mode
from camal_rl.errors import InputError
from camal_rl.saliency.common import _check_inputs, _forward_for_gradients, _gradients_on, _upsample


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
    grads = _map_gradients(feature_maps, scores, create_graph=create_graph)
    maps = feature_maps if create_graph else feature_maps.detach()
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((alpha * maps).sum(dim=1))


def _map_gradients(feature_maps: Tensor, scores: Tensor, *, create_graph: bool) -> Tensor:
    """``dy/dA`` (B, K, h, w): the gradient of each sample's score ``y = scores[b]`` with respect
    to its maps, taken as :func:`grad_cam` takes it (:func:`torch.autograd.grad` of
    ``scores.sum()``, parameters' ``.grad`` untouched, the graph of ``scores`` kept).

    :param create_graph: keep the graph of the gradient, so that a loss on it trains the network.
    :raises InputError: shapes that are not (B, K, h, w) and (B,), or scores outside the maps'
        graph, saying what to pass.
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
    return grads


class BaseCAM(ABC):
    """A class activation map of the score of the given action on the scorer's attention maps
    ``A``: ``cam = relu(sum_k w_k A_k)``, upsampled bilinearly to the input resolution.

    Subclasses supply only the channel weights ``w`` (:meth:`get_cam_weights`), as in
    pytorch-grad-cam's ``BaseCAM``; the checks, eval mode, the forward, the gradient and the
    upsampling are written here once.
    """

    name: ClassVar[str]
    """The method's name in :data:`camal_rl.saliency.SALIENCY_METHODS`."""

    def __call__(self, scorer: ActionScorer, images: Tensor, actions: Tensor) -> Tensor:
        images, actions = _check_inputs(images, actions)
        with eval_mode(scorer), _gradients_on():
            _, target, maps = _forward_for_gradients(scorer, images, actions)
            grads = _map_gradients(maps, target, create_graph=False)
        maps = maps.detach()
        weights = self.get_cam_weights(maps, grads)
        cam = F.relu((weights[:, :, None, None] * maps).sum(dim=1))
        return _upsample(cam, (images.shape[-2], images.shape[-1]))

    @abstractmethod
    def get_cam_weights(self, maps: Tensor, grads: Tensor) -> Tensor:
        """The channel weights ``w`` (B, K).

        :param maps: (B, K, h, w) attention maps ``A``, detached.
        :param grads: (B, K, h, w) gradient ``dS/dA`` of the action's score ``S``.
        """


class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al., ICCV 2017): the weights are the gradient's spatial means,
    ``w_k = mean_ij dS/dA_kij``, the maps of :func:`grad_cam` (``create_graph=False``)."""

    name = "gradcam"

    def get_cam_weights(self, maps: Tensor, grads: Tensor) -> Tensor:
        return grads.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, "Grad-CAM++: Generalized Gradient-Based Visual
    Explanations for Deep Convolutional Networks").

    With ``g = dS/dA`` the gradient of the action's score, the closed form of the paper's
    eq. 19 for ``Y = exp(S)`` gives pixel weights
    ``a_kij = g^2 / (2 g^2 + sum_ab A_kab g^3)`` (0 where ``g = 0``) and channel weights
    ``w_k = sum_ij a_kij relu(g_kij)``; ``cam = relu(sum_k w_k A_k)``. The factor ``exp(S)``
    cancels in ``a`` and scales ``w`` uniformly per sample, so it is dropped (as pytorch-grad-cam
    does).

    Unlike pytorch-grad-cam, the denominator of ``a`` has no ``eps``: pytorch-grad-cam adds
    ``eps = 1e-6`` to it, which is not small beside ``2 g^2`` where gradients are small and
    changes the maps of our networks by up to 62%. Here a zero denominator alone is guarded
    (``a = 0`` where ``g = 0``).
    """

    name = "gradcam++"

    def get_cam_weights(self, maps: Tensor, grads: Tensor) -> Tensor:
        grads_2 = grads**2
        denominator = 2.0 * grads_2 + maps.sum(dim=(2, 3), keepdim=True) * grads**3
        denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        pixel_weights = torch.where(grads != 0, grads_2 / denominator, torch.zeros_like(grads))
        return (pixel_weights * F.relu(grads)).sum(dim=(2, 3))
