"""The one interface between agents and the attention tools.

Saliency methods (:mod:`camal_rl.saliency`) and faithfulness metrics (:mod:`camal_rl.metrics`)
never see an SB3 policy: they see an :class:`ActionScorer`, which maps a batch of images to
per-action scores and the attention layer's feature maps. :mod:`camal_rl.agents` adapts PPO and
DQN policies to it; tests adapt a tiny ``nn.Module``.

Conventions, fixed for the whole package:

- ``images``: float tensor (B, C, H, W) of raw pixel values in [0, 255], on ``scorer.device``
  (the entry points, :func:`camal_rl.saliency.compute_saliency` and ``PolicyScorer``, move
  images from any device there). Perturbations (blur, deletion, occlusion) act on this raw
  scale; the scorer normalises.
- ``scores``: (B, n_actions). Policy logits for PPO, Q-values for DQN. ``softmax(scores)`` is the
  action distribution ``f`` that faithfulness metrics read (pi(a|x) for PPO, softmax(Q)(a) for
  DQN, as docs/design.md defines them). :class:`EpsilonGreedyPolicy` gives a value-based agent's
  metrics the distribution it acts with instead.
- ``maps``: (B, K, h, w) activations of the attention layer, inside the autograd graph of
  ``scores`` so that Grad-CAM can differentiate through them.
- Saliency methods and metrics run the model in eval mode (:func:`eval_mode`), restoring each
  module's own mode afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from camal_rl.errors import InputError


@runtime_checkable
class ActionScorer(Protocol):
    """A model seen as ``images -> (scores, maps)``; see the module docstring for the shapes."""

    @property
    def device(self) -> torch.device:
        """Device the model lives on; ``images`` must be moved there."""
        ...

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """:param images: (B, C, H, W) float raw pixels.
        :return: scores (B, n_actions) and attention maps (B, K, h, w)."""
        ...


class ModuleScorer:
    """:class:`ActionScorer` over any module whose forward maps images to ``(scores, maps)``.

    :param module: ``module(images) -> (scores, maps)``.
    :param preprocess: applied to the raw images first (default: divide by 255).
    """

    def __init__(
        self,
        module: nn.Module,
        preprocess: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.module = module
        self.preprocess = preprocess if preprocess is not None else _scale_to_unit

    @property
    def device(self) -> torch.device:
        parameter = next(self.module.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        scores, maps = self.module(self.preprocess(images))
        return scores, maps


class EpsilonGreedyPolicy:
    """A Q-network's scorer seen through the epsilon-greedy policy it acts with: its scores are
    ``log pi(a|x)``, ``log(1 - epsilon + epsilon / A)`` for the greedy action (the first of tied
    maxima) and ``log(epsilon / A)`` for the others, so that ``softmax(scores)`` is that policy.

    For the faithfulness and behaviour metrics of a DQN agent: ``softmax(Q)`` depends on the
    reward scale, and with rewards in [0, 1] and action gaps of ~0.01 (MiniGrid) it is nearly
    uniform, so every perturbation leaves it at about 1 / A whatever is removed. Under this
    policy a perturbation counts when it changes the greedy action. Saliency methods should keep
    reading the Q-values (the wrapped scorer): these scores have no gradient.

    :param scorer: the Q-network's scorer (scores are Q-values).
    :param epsilon: probability of a uniformly random action, in (0, 1] (0.05: the usual
        evaluation epsilon since Mnih et al. 2015, and SB3 DQN's final exploration rate).
    """

    def __init__(self, scorer: ActionScorer, epsilon: float = 0.05) -> None:
        if not 0 < epsilon <= 1:
            raise InputError(f"epsilon must be in (0, 1] (a greedy policy has no finite KL), got {epsilon}")
        self.scorer = scorer
        self.epsilon = float(epsilon)

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        q_values, maps = self.scorer.scores_and_maps(images)
        n_actions = q_values.shape[1]
        floor = self.epsilon / n_actions
        log_pi = torch.full_like(q_values, math.log(floor))
        greedy = q_values.argmax(dim=1, keepdim=True)
        return log_pi.scatter(1, greedy, math.log(1.0 - self.epsilon + floor)), maps


def _scale_to_unit(images: Tensor) -> Tensor:
    return images / 255.0


def images_to_tensor(frames: np.ndarray | Tensor, device: torch.device | str = "cpu") -> Tensor:
    """Turn a batch of channel-last frames (B, H, W, C), as the environments emit them, into the
    float (B, C, H, W) raw-pixel tensor every :class:`ActionScorer` takes.

    :param frames: (B, H, W, C) frames, uint8 or float, pixel values in [0, 255].
    :param device: target device.
    """
    tensor = torch.as_tensor(frames, device=device)
    if tensor.ndim != 4:
        raise ValueError(f"expected a batch of frames (B, H, W, C), got shape {tuple(tensor.shape)}")
    return tensor.permute(0, 3, 1, 2).float().contiguous()


def scorer_modules(scorer: object) -> list[nn.Module]:
    """The model behind a scorer: the scorer itself if it is an :class:`~torch.nn.Module`, else
    every ``nn.Module`` held as an attribute of it (``ModuleScorer.module``, a policy adapter's
    ``policy``) or of a scorer it wraps (:class:`EpsilonGreedyPolicy`). A module may come twice."""
    if isinstance(scorer, nn.Module):
        return [scorer]
    attributes = getattr(scorer, "__dict__", {}).values()
    modules = [value for value in attributes if isinstance(value, nn.Module)]
    wrapped = [value for value in attributes if isinstance(value, ActionScorer)]  # a scorer over a scorer
    return modules + [module for inner in wrapped for module in scorer_modules(inner)]


@contextmanager
def eval_mode(scorer: object) -> Iterator[None]:
    """Put the scorer's model (:func:`scorer_modules`) in eval mode for the block, then restore
    every submodule's own ``training`` flag (also when the block raises). Saliency methods and
    faithfulness metrics run their forwards under it."""
    saved = [(module, module.training) for root in scorer_modules(scorer) for module in root.modules()]
    try:
        for module, _ in saved:
            module.training = False
        yield
    finally:
        for module, training in saved:
            module.training = training
