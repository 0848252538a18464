"""Attention alignment: does the saliency map lie on the task-relevant objects?

Every function takes a batch of saliency maps ``saliency`` (B, h, w), >= 0, at any resolution,
and a batch of masks ``mask`` (B, H, W) (class labels, bool or 0/1; numpy arrays or tensors).
``S`` is the saliency resized bilinearly (``align_corners=False``) to H x W and ``M = mask > 0``,
as docs/design.md defines them. Each returns an ndarray (B,) of float64.

Conventions, the same in every function:

- **Empty mask** (no relevant object in view): ``nan`` for that sample and no other; the
  aggregation helpers (:mod:`camal_rl.statistics.estimates`) drop it and report coverage.
- **Ties** are exact float equality after resizing; no tolerance. Tied pixels share credit:
  the pointing game scores the share of the tied maxima inside ``M``, the top-|M| set includes
  every pixel tied with the |M|-th largest value, and ROC-AUC counts a tied (positive, negative)
  pair as 1/2.
- **All-zero saliency** (a map with no preference) scores chance: it is treated as uniform, so
  EPG = pointing game = IoU = |M| / (H W) and ROC-AUC = 0.5.
- **Full mask** (every pixel relevant): EPG = pointing game = IoU = 1; ROC-AUC is undefined (no
  negative pixels) and is ``nan``, which the aggregation helpers drop like an empty mask.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from camal_rl.metrics._inputs import ArrayLike, as_cpu_tensor, saliency_and_mask, upsample_saliency


def energy_pointing_game(saliency: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Energy-based pointing game (Wang et al., "Score-CAM", CVPR Workshops 2020):
    the share of the saliency mass inside the mask, ``EPG = sum(S * M) / sum(S)``.

    An all-zero map counts as uniform (EPG = |M| / (H W)); see the module docstring.

    :param saliency: (B, h, w) saliency maps, >= 0, any resolution.
    :param mask: (B, H, W) masks; ``mask > 0`` marks the relevant pixels.
    :return: (B,) float64 in [0, 1]; ``nan`` where the mask is empty.
    """
    s, m = saliency_and_mask(saliency, mask)
    s = _uniform_where_flat(s)
    out = (s * m).sum(axis=1) / s.sum(axis=1)
    return _nan_where_empty(out, m)


def iou_top_k(saliency: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Intersection over union of the top-|M| salient pixels with the mask (the "top-k" alignment
    score of saliency-evaluation work, with k = |M| so a perfect map scores 1).

    The top set is every pixel whose saliency is >= the |M|-th largest value, so pixels tied at
    the threshold are all included (it can hold more than |M| pixels). An all-zero map selects
    every pixel: IoU = |M| / (H W).

    :param saliency: (B, h, w) saliency maps, >= 0, any resolution.
    :param mask: (B, H, W) masks; ``mask > 0`` marks the relevant pixels.
    :return: (B,) float64 in [0, 1]; ``nan`` where the mask is empty.
    """
    s, m = saliency_and_mask(saliency, mask)
    k = m.sum(axis=1)
    descending = -np.sort(-s, axis=1)
    threshold = np.take_along_axis(descending, np.maximum(k - 1, 0)[:, None], axis=1)
    top = s >= threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (top & m).sum(axis=1) / (top | m).sum(axis=1)
    return _nan_where_empty(out, m)


def pointing_game(saliency: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Pointing game (Zhang et al., "Top-down neural attention by excitation backprop",
    ECCV 2016 / IJCV 2018): a hit when the most salient pixel lies in the mask.

    With several pixels tied at the maximum, the score is the share of them inside the mask (the
    expected hit of picking one at random), so an all-zero map scores |M| / (H W). Zhang et al.
    allow a 15-pixel tolerance on natural images; masks here are pixel-exact, so there is none.

    :param saliency: (B, h, w) saliency maps, >= 0, any resolution.
    :param mask: (B, H, W) masks; ``mask > 0`` marks the relevant pixels.
    :return: (B,) float64, 1 or 0 without ties; ``nan`` where the mask is empty.
    """
    s, m = saliency_and_mask(saliency, mask)
    maxima = s == s.max(axis=1, keepdims=True)
    out = (maxima & m).sum(axis=1) / maxima.sum(axis=1)
    return _nan_where_empty(out, m)


def roc_auc(saliency: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Area under the ROC curve of ``S`` as a per-pixel score for ``M``: the probability that a
    random relevant pixel is more salient than a random irrelevant one, computed exactly as the
    Mann-Whitney U statistic with average ranks (a tied pair counts 1/2; Hanley & McNeil,
    Radiology 1982). An all-zero map scores 0.5.

    :param saliency: (B, h, w) saliency maps, >= 0, any resolution.
    :param mask: (B, H, W) masks; ``mask > 0`` marks the relevant pixels.
    :return: (B,) float64 in [0, 1]; ``nan`` where the mask is empty, and also where it is full
        (no irrelevant pixel, so the AUC is undefined).
    """
    s, m = saliency_and_mask(saliency, mask)
    ranks = rankdata(s, method="average", axis=1)
    n_pos = m.sum(axis=1).astype(np.float64)
    n_neg = m.shape[1] - n_pos
    u = (ranks * m).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out = u / (n_pos * n_neg)
    out[n_neg == 0] = np.nan
    return _nan_where_empty(out, m)


def flat_map(saliency: ArrayLike) -> np.ndarray:
    """1 where a saliency map is constant (no preference among its pixels, such as a Grad-CAM
    whose every value its ReLU zeroed), else 0: its mean over steps is the share of such maps.

    The alignment metrics score a flat map at chance (see the module docstring) and the
    faithfulness curves remove its pixels in raster order, so where a method's maps are mostly
    flat its alignment and faithfulness describe no attention at all, not attention elsewhere.

    :param saliency: (B, h, w) saliency maps, >= 0, any resolution (judged at their own).
    :return: (B,) float64, 1.0 or 0.0; needs no mask.
    """
    tensor = as_cpu_tensor(saliency, "saliency", 3, "(B, h, w)")
    s = upsample_saliency(tensor, (tensor.shape[1], tensor.shape[2])).flatten(1)
    return (s.amax(dim=1) == s.amin(dim=1)).to(torch.float64).numpy()


def _uniform_where_flat(s: np.ndarray) -> np.ndarray:
    """Rows of ``s`` (B, N) that are all zero become all one (a map with no preference)."""
    flat = ~s.any(axis=1)
    if flat.any():
        s = s.copy()
        s[flat] = 1.0
    return s


def _nan_where_empty(out: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = np.asarray(out, dtype=np.float64)
    out[~m.any(axis=1)] = np.nan
    return out
