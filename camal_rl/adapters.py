"""The one interface between agents and the attention tools.

Saliency methods (:mod:`camal_rl.saliency`) and faithfulness metrics (:mod:`camal_rl.metrics`)
never see an SB3 policy: they see an :class:`ActionScorer`, which maps a batch of images to
per-action scores and the attention layer's feature maps. :mod:`camal_rl.agents` adapts PPO and
DQN policies to it; tests adapt a tiny ``nn.Module``.

Conventions, fixed for the whole package:

- ``images``: float tensor (B, C, H, W) of raw pixel values in [0, 255], on ``scorer.device``.
  Perturbations (blur, deletion, occlusion) act on this raw scale; the scorer normalises.
- ``scores``: (B, n_actions). Policy logits for PPO, Q-values for DQN. ``softmax(scores)`` is the
  action distribution ``f`` that faithfulness metrics read (pi(a|x) for PPO, softmax(Q)(a) for
  DQN, as DESIGN.md defines them).
- ``maps``: (B, K, h, w) activations of the attention layer, inside the autograd graph of
  ``scores`` so that Grad-CAM can differentiate through them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn


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
