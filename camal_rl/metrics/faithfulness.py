"""Attention faithfulness: does the model's decision depend on the pixels its saliency points at?

Every function sees the model only through an :class:`~camal_rl.adapters.ActionScorer`:
``images`` are raw pixels (B, C, H, W) in [0, 255] and ``pi(x) = softmax(scores)``. The score
that deletion, insertion, comprehensiveness and sufficiency follow is
``f(x) = pi(a* | x)``, with ``a*`` the first maximal score on the clean image (the greedy
action) unless ``actions`` is given, as docs/design.md defines it.

Conventions:

- **Removing** a pixel replaces all its channels by the *substrate*: ``"blur"`` (default; the
  image blurred by a Gaussian of ``sigma`` pixels, RISE's choice for insertion), ``"zero"``, or
  ``"mean"`` (each image's per-channel mean).
- **Pixel order**: by ``S`` (the saliency resized bilinearly to H x W) in decreasing order;
  ties are broken by raster position (row-major, first pixel first), a stable sort. An all-zero
  map therefore removes pixels in raster order.
- **Batching**: all perturbed images of a sample (every point of its curve, the clean image
  included) go through the scorer in one forward, never one forward per point; a forward holds
  as many whole samples as fit in ``batch_size`` images (at least one; ``None``: the whole batch
  in one forward). The forwards run under ``torch.no_grad()`` with the model in eval mode
  (:func:`camal_rl.adapters.eval_mode`, restored afterwards).
- Mask-based metrics (:func:`occlusion_kl_ratio`, :func:`behaviour_kl`) give ``nan`` for samples
  whose mask is empty and do not run the model on them; the others do not read a mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from camal_rl.adapters import ActionScorer
from camal_rl.errors import InputError
from camal_rl.metrics._inputs import ArrayLike
from camal_rl.metrics._perturb import (
    Substrate,
    as_images,
    check_n_random,
    follow,
    log_probs,
    make_substrate,
    mask_like,
    pixel_ranks,
    scatter_valid,
    trapezoid,
)

DEFAULT_SIGMA = 4.0
"""Blur of the substrate in pixels: half a MiniGrid tile (8 px), enough to erase an object's
shape and colour while keeping the coarse layout of the frame."""
DEFAULT_FRACTIONS = (0.05, 0.1, 0.2, 0.5)


# ---------------------------------------------------------------------------------------------
# Deletion / insertion (Petsiuk et al. 2018)
# ---------------------------------------------------------------------------------------------


def perturbation_curve(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    *,
    mode: Literal["deletion", "insertion"],
    actions: ArrayLike | None = None,
    step: int = 64,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    batch_size: int | None = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The deletion or insertion curve of RISE (Petsiuk, Das & Saenko, "RISE: Randomized Input
    Sampling for Explanation of Black-box Models", BMVC 2018).

    Point ``p`` has ``k_p = min(p * step, H W)`` pixels changed, ``p = 0 .. ceil(H W / step)``:
    deletion replaces the ``k_p`` most salient pixels by the substrate (it starts at the clean
    image), insertion starts from the substrate and puts the ``k_p`` most salient pixels back (it
    ends at the clean image).

    :param scorer: the model.
    :param images: (B, C, H, W) raw pixels in [0, 255].
    :param saliency: (B, h, w) maps >= 0, any resolution (resized bilinearly to H x W).
    :param mode: ``"deletion"`` or ``"insertion"``.
    :param actions: (B,) actions whose probability is followed; default the greedy action on the
        clean image.
    :param step: pixels changed per point (default 64, one 8 x 8 MiniGrid tile).
    :param substrate: what removed pixels become: ``"blur"``, ``"zero"`` or ``"mean"``.
    :param sigma: standard deviation of the blur in pixels (``substrate="blur"`` only).
    :param batch_size: most images per forward, in whole samples (``None``: all in one).
    :return: fractions (P,) of pixels changed, ``k_p / (H W)`` from 0 to 1, and ``f`` (B, P).
    """
    if mode not in ("deletion", "insertion"):
        raise InputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 1:
        raise InputError(f"step must be a positive number of pixels, got {step!r}")
    x = as_images(scorer, images)
    height, width = x.shape[2:]
    n_pixels = height * width
    ranks = pixel_ranks(saliency, x)
    counts = torch.tensor(
        [min(p * step, n_pixels) for p in range(math.ceil(n_pixels / step) + 1)], device=x.device
    )
    n_points = counts.numel()
    deletion = mode == "deletion"

    def region(samples: slice) -> Tensor:
        rank, count = ranks[samples, None, :], counts[None, :, None]
        return (rank < count if deletion else rank >= count).view(-1, n_points, height, width)

    lp = log_probs(scorer, x, make_substrate(x, substrate, sigma), n_points, region, batch_size)
    clean = 0 if deletion else n_points - 1
    f = follow(lp, clean, actions).exp()
    return (counts.double() / n_pixels).cpu().numpy(), f.cpu().numpy()


def deletion_auc(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    *,
    actions: ArrayLike | None = None,
    step: int = 64,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    batch_size: int | None = 1024,
) -> np.ndarray:
    """Deletion metric of RISE (Petsiuk et al., BMVC 2018): remove pixels in order of decreasing
    saliency onto the substrate and take the area under ``f`` against the fraction removed, by the
    trapezoid rule over [0, 1] (RISE's normalised trapezoid; the last step may be shorter). A
    faithful map makes ``f`` fall fast: **lower is better**.

    Parameters as :func:`perturbation_curve`.

    :return: (B,) float64 in [0, 1].
    """
    fractions, f = perturbation_curve(
        scorer,
        images,
        saliency,
        mode="deletion",
        actions=actions,
        step=step,
        substrate=substrate,
        sigma=sigma,
        batch_size=batch_size,
    )
    return trapezoid(fractions, f)


def insertion_auc(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    *,
    actions: ArrayLike | None = None,
    step: int = 64,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    batch_size: int | None = 1024,
) -> np.ndarray:
    """Insertion metric of RISE (Petsiuk et al., BMVC 2018): start from the substrate, insert the
    clean pixels in order of decreasing saliency and take the area under ``f`` against the
    fraction inserted (normalised trapezoid over [0, 1]). A faithful map makes ``f`` rise fast:
    **higher is better**.

    Parameters as :func:`perturbation_curve`.

    :return: (B,) float64 in [0, 1].
    """
    fractions, f = perturbation_curve(
        scorer,
        images,
        saliency,
        mode="insertion",
        actions=actions,
        step=step,
        substrate=substrate,
        sigma=sigma,
        batch_size=batch_size,
    )
    return trapezoid(fractions, f)


# ---------------------------------------------------------------------------------------------
# Comprehensiveness / sufficiency (DeYoung et al. 2020)
# ---------------------------------------------------------------------------------------------


def comprehensiveness(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    actions: ArrayLike | None = None,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    batch_size: int | None = 1024,
) -> dict[float, np.ndarray]:
    """Comprehensiveness of ERASER (DeYoung et al., "ERASER: A Benchmark to Evaluate
    Rationalized NLP Models", ACL 2020), on pixels: ``f(x) - f(x with the top k removed)``, the
    top k being the ``round(k H W)`` most salient pixels (halves rounded up), removed onto the
    substrate. **Higher is better** (the salient pixels were needed).

    :param scorer: the model.
    :param images: (B, C, H, W) raw pixels in [0, 255].
    :param saliency: (B, h, w) maps >= 0, any resolution.
    :param fractions: the k values, each in [0, 1] (default 5, 10, 20, 50%).
    :param actions: (B,) followed actions; default the greedy action on the clean image.
    :param substrate: ``"blur"``, ``"zero"`` or ``"mean"``.
    :param sigma: blur in pixels (``substrate="blur"`` only).
    :param batch_size: most images per forward, in whole samples (``None``: all in one).
    :return: ``{k: (B,) float64 in [-1, 1]}``.
    """
    return _top_k_drop(scorer, images, saliency, fractions, actions, substrate, sigma, batch_size, keep=False)


def sufficiency(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    actions: ArrayLike | None = None,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    batch_size: int | None = 1024,
) -> dict[float, np.ndarray]:
    """Sufficiency of ERASER (DeYoung et al., ACL 2020), on pixels:
    ``f(x) - f(x with only the top k kept)``, every other pixel replaced by the substrate; top k
    as in :func:`comprehensiveness`. **Lower is better** (the salient pixels alone suffice).

    Parameters and return value as :func:`comprehensiveness`.
    """
    return _top_k_drop(scorer, images, saliency, fractions, actions, substrate, sigma, batch_size, keep=True)


def _top_k_drop(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    fractions: Sequence[float],
    actions: ArrayLike | None,
    substrate: Substrate,
    sigma: float,
    batch_size: int | None,
    *,
    keep: bool,
) -> dict[float, np.ndarray]:
    fractions = [float(k) for k in fractions]
    if not fractions or not all(0.0 <= k <= 1.0 for k in fractions):
        raise InputError(f"fractions must be a non-empty list of values in [0, 1], got {fractions}")
    x = as_images(scorer, images)
    height, width = x.shape[2:]
    n_pixels = height * width
    ranks = pixel_ranks(saliency, x)
    # Point 0 is the clean image: nothing removed.
    counts = [n_pixels if keep else 0] + [math.floor(k * n_pixels + 0.5) for k in fractions]
    thresholds = torch.tensor(counts, device=x.device)
    n_points = thresholds.numel()

    def region(samples: slice) -> Tensor:
        rank, count = ranks[samples, None, :], thresholds[None, :, None]
        return (rank >= count if keep else rank < count).view(-1, n_points, height, width)

    lp = log_probs(scorer, x, make_substrate(x, substrate, sigma), n_points, region, batch_size)
    f = follow(lp, 0, actions).exp().cpu().numpy()
    return {k: f[:, 0] - f[:, i + 1] for i, k in enumerate(fractions)}


# ---------------------------------------------------------------------------------------------
# Occlusion KL (salient vs random region) and the saliency-free behaviour check
# ---------------------------------------------------------------------------------------------


def occlusion_kl_ratio(
    scorer: ActionScorer,
    images: ArrayLike,
    saliency: ArrayLike,
    mask: ArrayLike,
    *,
    rng: np.random.Generator | int,
    n_random: int = 8,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    eps: float = 1e-6,
    batch_size: int | None = 1024,
) -> np.ndarray:
    """Occlusion KL ratio of docs/design.md: how much more the policy changes when the salient pixels
    are occluded than when an equal-area random region is,
    ``(KL(pi(x) || pi(x - T)) + eps) / (mean_r KL(pi(x) || pi(x - R_r)) + eps)``.

    ``T`` is the |M| most salient pixels (exactly |M|: ties broken by raster position);
    ``R_r`` is ``T`` shifted circularly (wrapping around the frame) by a random non-zero offset,
    so it has the same shape and area at a random place (it may overlap ``T``). The denominator
    averages ``n_random`` draws to steady it; ``eps`` on both sides makes a model that ignores
    both regions score 1 (no preference) instead of 0/0. Occluding = replacing by the substrate.
    > 1: the salient region matters more than a random one. The perturbation follows
    occlusion-based faithfulness tests in the style of Zeiler & Fergus (ECCV 2014) and
    Greydanus et al. (ICML 2018).

    :param scorer: the model.
    :param images: (B, C, H, W) raw pixels in [0, 255].
    :param saliency: (B, h, w) maps >= 0, any resolution.
    :param mask: (B, H, W) masks at the image resolution; only |M| is read.
    :param rng: generator (or seed) for the random offsets.
    :param n_random: random regions per sample.
    :param substrate: ``"blur"``, ``"zero"`` or ``"mean"``.
    :param sigma: blur in pixels (``substrate="blur"`` only).
    :param eps: added to both KLs before dividing.
    :param batch_size: most images per forward, in whole samples (``None``: all in one).
    :return: (B,) float64 >= 0; ``nan`` where the mask is empty.
    """
    check_n_random(n_random)
    x = as_images(scorer, images)
    m = mask_like(mask, x)
    valid = m.flatten(1).any(dim=1)
    out = np.full(x.shape[0], np.nan)
    if not valid.any():
        return out
    ranks = pixel_ranks(saliency, x)[valid.to(x.device)]
    x, m = x[valid.to(x.device)], m[valid]
    batch, _, height, width = x.shape
    area = m.flatten(1).sum(dim=1).to(x.device)
    top = (ranks < area[:, None]).view(batch, height, width)
    generator = np.random.default_rng(rng)
    flat_shift = generator.integers(1, max(height * width, 2), size=(batch, n_random)) % (height * width)
    shifts = torch.as_tensor(np.stack([flat_shift // width, flat_shift % width], axis=-1), device=x.device)
    kl = _region_kls(scorer, x, top, shifts, substrate, sigma, batch_size)
    return scatter_valid(out, valid, (kl[:, 0] + eps) / (kl[:, 1:].mean(dim=1) + eps))


def behaviour_kl(
    scorer: ActionScorer,
    images: ArrayLike,
    mask: ArrayLike,
    *,
    rng: np.random.Generator | int,
    n_random: int = 8,
    substrate: Substrate = "blur",
    sigma: float = DEFAULT_SIGMA,
    eps: float = 1e-6,
    batch_size: int | None = 1024,
) -> dict[str, np.ndarray]:
    """Saliency-free behaviour check of docs/design.md: does the policy change more when the relevant
    objects are occluded than when an equal-area region elsewhere is? Occlusion sensitivity in the
    sense of Zeiler & Fergus (ECCV 2014), with the mask as the region.

    The region outside is ``M`` shifted circularly by a random offset among those whose shifted
    copy overlaps ``M`` least (no overlap whenever such a shift exists; with a mask too large for
    that, e.g. a full mask, the least possible overlap). ``n_random`` offsets are drawn uniformly,
    with replacement, from that set, and their KLs averaged.

    :param scorer: the model.
    :param images: (B, C, H, W) raw pixels in [0, 255].
    :param mask: (B, H, W) masks at the image resolution; ``mask > 0`` is occluded.
    :param rng: generator (or seed) for the offsets.
    :param n_random: outside regions per sample.
    :param substrate: ``"blur"``, ``"zero"`` or ``"mean"``.
    :param sigma: blur in pixels (``substrate="blur"`` only).
    :param eps: added to both KLs before dividing.
    :param batch_size: most images per forward, in whole samples (``None``: all in one).
    :return: ``{"kl_mask": KL(pi(x) || pi(x - M)), "kl_outside": mean KL with the outside
        regions, "ratio": (kl_mask + eps) / (kl_outside + eps)}``, each (B,) float64, ``nan``
        where the mask is empty.
    """
    check_n_random(n_random)
    x = as_images(scorer, images)
    m = mask_like(mask, x)
    valid = m.flatten(1).any(dim=1)
    keys = ("kl_mask", "kl_outside", "ratio")
    out = {key: np.full(x.shape[0], np.nan) for key in keys}
    if not valid.any():
        return out
    x, m = x[valid.to(x.device)], m[valid]
    shifts = torch.as_tensor(
        _least_overlap_shifts(m.numpy(), n_random, np.random.default_rng(rng)), device=x.device
    )
    m = m.to(x.device)
    kl = _region_kls(scorer, x, m, shifts, substrate, sigma, batch_size)
    kl_mask, kl_outside = kl[:, 0], kl[:, 1:].mean(dim=1)
    for key, value in zip(keys, (kl_mask, kl_outside, (kl_mask + eps) / (kl_outside + eps)), strict=True):
        scatter_valid(out[key], valid, value)
    return out


def _least_overlap_shifts(m: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n, 2) circular offsets (dy, dx) drawn uniformly, with replacement, among those that
    make ``roll(m[b], (dy, dx))`` overlap ``m[b]`` least.

    The overlap at every offset is the circular autocorrelation of the mask, by FFT."""
    batch, height, width = m.shape
    spectrum = np.fft.rfft2(m.astype(np.float64))
    overlap = np.rint(np.fft.irfft2(spectrum * spectrum.conj(), s=(height, width))).reshape(batch, -1)
    out = np.empty((batch, n), dtype=np.int64)
    for b in range(batch):  # a loop over samples, not pixels
        candidates = np.flatnonzero(overlap[b] == overlap[b].min())
        out[b] = rng.choice(candidates, size=n, replace=True)
    return np.stack([out // width, out % width], axis=-1)


def _region_kls(
    scorer: ActionScorer,
    x: Tensor,
    occluded: Tensor,
    shifts: Tensor,
    substrate: Substrate,
    sigma: float,
    batch_size: int | None,
) -> Tensor:
    """KL(pi(x) || pi(x')) (B, 1 + R) for x' = x with ``occluded`` (B, H, W) replaced by the
    substrate, then with ``occluded`` rolled circularly by each of ``shifts`` (B, R, 2) replaced."""
    batch, _, height, width = x.shape
    n_points = 2 + shifts.shape[1]  # clean, the region, then its shifted copies
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)

    def region(samples: slice) -> Tensor:
        b = torch.arange(batch, device=x.device)[samples]
        # roll(occluded[b], (dy, dx))[i, j] = occluded[b, (i - dy) % H, (j - dx) % W]
        r = (rows[None, None, :] - shifts[b, :, 0:1]) % height  # (n, R, H)
        c = (cols[None, None, :] - shifts[b, :, 1:2]) % width  # (n, R, W)
        rolled = occluded[b[:, None, None, None], r[:, :, :, None], c[:, :, None, :]]
        return torch.cat([torch.zeros_like(occluded[b, None]), occluded[b, None], rolled], dim=1)

    lp = log_probs(scorer, x, make_substrate(x, substrate, sigma), n_points, region, batch_size)
    clean = lp[:, :1]
    return (clean.exp() * (clean - lp[:, 1:])).sum(dim=-1).clamp_min(0.0)
