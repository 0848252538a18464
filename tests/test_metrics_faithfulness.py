"""Faithfulness metrics against a scorer whose output depends only on a known pixel region.

``RegionScorer``: with ``u = 0.1 + 0.8 * mean(x[region]) / 200`` the scores are
``log([u, 1 - u])``, so ``pi(x) = [u, 1 - u]`` exactly. On images at 200 with the zero substrate,
``f = pi(0 | x) = 0.1 + 0.8 * (share of the region left intact)``: 0.9 when intact, 0.1 when gone.
"""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn

from camal_rl.adapters import EpsilonGreedyPolicy, ModuleScorer
from camal_rl.agents.common.extractors import MiniGridCNN
from camal_rl.errors import InputError
from camal_rl.metrics import (
    behaviour_kl,
    comprehensiveness,
    deletion_auc,
    insertion_auc,
    occlusion_kl_ratio,
    perturbation_curve,
    sufficiency,
)

KL_09_01 = 0.8 * math.log(9)  # KL([0.9, 0.1] || [0.1, 0.9])


class RegionScorer:
    def __init__(self, region: np.ndarray) -> None:
        self.region = torch.as_tensor(region, dtype=torch.bool)
        self.calls: list[int] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        self.calls.append(images.shape[0])
        u = 0.1 + 0.8 * images[:, 0][:, self.region].mean(dim=1) / 200.0
        return torch.stack([u.log(), (1 - u).log()], dim=1), images[:, :1]


def region(*pixels: tuple[int, int], size: int = 4) -> np.ndarray:
    out = np.zeros((size, size), dtype=bool)
    for i, j in pixels:
        out[i, j] = True
    return out


TOP_ROW = region((0, 0), (0, 1))
IMAGES = torch.full((1, 1, 4, 4), 200.0)
PERFECT = torch.as_tensor(TOP_ROW, dtype=torch.float64)[None]  # R first, then raster order
WORST = 1.0 - PERFECT  # R last


def test_deletion_curve_by_hand():
    fractions, f = perturbation_curve(
        RegionScorer(TOP_ROW), IMAGES, PERFECT, mode="deletion", step=1, substrate="zero"
    )
    np.testing.assert_allclose(fractions, np.arange(17) / 16)
    np.testing.assert_allclose(f[0], [0.9, 0.5] + [0.1] * 15)


def test_insertion_curve_by_hand():
    fractions, f = perturbation_curve(
        RegionScorer(TOP_ROW), IMAGES, WORST, mode="insertion", step=4, substrate="zero"
    )
    np.testing.assert_allclose(fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(f[0], [0.1, 0.1, 0.1, 0.1, 0.9])  # R inserted only at the end


@pytest.mark.parametrize(
    ("saliency", "deletion", "insertion"),
    [
        # f: 0.9 then 0.1 from 1/8 on -> (0.9 + 0.1) / 2 / 8 + 0.1 * 7 / 8
        (PERFECT, 0.15, 0.85),
        (WORST, 0.85, 0.15),
        # ties: an all-zero map removes in raster order, which puts R (top row) first
        (torch.zeros(1, 4, 4), 0.15, 0.85),
        # a 2x2 map upsampled: (0, 0) then the tie (0, 1) / (1, 0), broken by raster order
        (torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), 0.15, 0.85),
    ],
)
def test_auc_by_hand(saliency, deletion, insertion):
    scorer = RegionScorer(TOP_ROW)
    np.testing.assert_allclose(deletion_auc(scorer, IMAGES, saliency, step=2, substrate="zero"), [deletion])
    np.testing.assert_allclose(insertion_auc(scorer, IMAGES, saliency, step=2, substrate="zero"), [insertion])


def test_auc_with_a_shorter_last_step():
    # step 3 on 16 pixels: points 0, 3, ..., 15, 16; f = 0.9, then 0.1
    out = deletion_auc(RegionScorer(TOP_ROW), IMAGES, PERFECT, step=3, substrate="zero")
    np.testing.assert_allclose(out, [(0.9 + 0.1) / 2 * 3 / 16 + 0.1 * 13 / 16])


def test_followed_action_can_be_given():
    out = deletion_auc(RegionScorer(TOP_ROW), IMAGES, PERFECT, step=2, substrate="zero", actions=[1])
    np.testing.assert_allclose(out, [1 - 0.15])


def test_blur_and_mean_substrates():
    scorer = RegionScorer(TOP_ROW)
    # blurring a constant image changes nothing: f stays 0.9
    np.testing.assert_allclose(
        deletion_auc(scorer, IMAGES, PERFECT, step=4, substrate="blur", sigma=2.0), [0.9]
    )
    # image 200 on R only: its mean is 400 / 16 = 25, so removing R gives u = 0.1 + 0.8 * 25 / 200
    images = torch.as_tensor(TOP_ROW * 200.0, dtype=torch.float32)[None, None]
    out = comprehensiveness(scorer, images, PERFECT, fractions=[0.125], substrate="mean")
    np.testing.assert_allclose(out[0.125], [0.9 - 0.2])


def test_comprehensiveness_and_sufficiency_by_hand():
    scorer = RegionScorer(TOP_ROW)
    # round(k * 16) pixels: 0.05 -> 1 (0.8 rounds up), 0.125 -> 2, 0.25 -> 4, 1.0 -> 16
    fractions = (0.05, 0.125, 0.25, 1.0)
    comp = comprehensiveness(scorer, IMAGES, PERFECT, fractions=fractions, substrate="zero")
    suff = sufficiency(scorer, IMAGES, PERFECT, fractions=fractions, substrate="zero")
    assert list(comp) == list(fractions)
    # removing 1 pixel of R: f = 0.5; 2 or more: 0.1
    np.testing.assert_allclose([comp[k][0] for k in fractions], [0.4, 0.8, 0.8, 0.8])
    # keeping only 1 pixel of R: f = 0.5; keeping both: 0.9
    np.testing.assert_allclose([suff[k][0] for k in fractions], [0.4, 0.0, 0.0, 0.0], atol=1e-12)


def test_one_batched_forward_per_call():
    scorer = RegionScorer(TOP_ROW)
    images = IMAGES.expand(3, -1, -1, -1)
    saliency = PERFECT.expand(3, -1, -1)
    deletion_auc(scorer, images, saliency, step=2, substrate="zero", batch_size=None)
    assert scorer.calls == [3 * 9]  # 3 curves of 9 points, clean images included, one forward
    scorer.calls.clear()
    insertion_auc(scorer, images, saliency, step=2, substrate="zero", batch_size=20)
    assert scorer.calls == [18, 9]  # whole curves: two fit in 20 images
    scorer.calls.clear()
    insertion_auc(scorer, images, saliency, step=2, substrate="zero", batch_size=5)
    assert scorer.calls == [9, 9, 9]  # a curve is never split
    scorer.calls.clear()
    comprehensiveness(scorer, images, saliency, substrate="zero")
    assert scorer.calls == [3 * 5]  # clean + 4 fractions
    scorer.calls.clear()
    occlusion_kl_ratio(scorer, images, saliency, np.ones((3, 4, 4)), rng=0, n_random=8, substrate="zero")
    assert scorer.calls == [3 * 10]  # clean + salient + 8 random


def test_chunking_does_not_change_values():
    torch.manual_seed(0)
    space = spaces.Box(0, 255, (3, 16, 16), np.uint8)
    cnn = MiniGridCNN(space, tile_size=4, channels=(4, 4), features_dim=8)
    head = nn.Linear(8, 3)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cnn, self.head = cnn, head

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            features, maps = self.cnn.forward_with_maps(x)
            return self.head(features), maps

    net = Net().train()
    scorer = ModuleScorer(net)
    images = torch.rand(2, 3, 16, 16) * 255
    saliency = torch.rand(2, 4, 4)
    whole = deletion_auc(scorer, images, saliency, step=16, batch_size=None)
    chunked = deletion_auc(scorer, images, saliency, step=16, batch_size=7)
    np.testing.assert_allclose(whole, chunked, rtol=1e-6)
    assert whole.dtype == np.float64
    assert ((whole >= 0) & (whole <= 1)).all()
    assert net.training  # eval mode was scoped
    assert net.cnn.training


def test_occlusion_kl_ratio_by_hand():
    # uniform model: every equal-area region costs the same, so the ratio is 1 for any draw
    uniform = RegionScorer(np.ones((4, 4), dtype=bool))
    mask = TOP_ROW[None].astype(np.uint8)
    out = occlusion_kl_ratio(uniform, IMAGES, PERFECT, mask, rng=1, substrate="zero")
    np.testing.assert_allclose(out, [1.0])
    # region model, one-pixel mask: the salient pixel (0, 0) matters, every shifted copy misses it
    one = region((0, 0))
    out = occlusion_kl_ratio(RegionScorer(one), IMAGES, PERFECT, one[None], rng=1, substrate="zero", eps=1e-3)
    np.testing.assert_allclose(out, [(KL_09_01 + 1e-3) / 1e-3])


def test_occlusion_kl_ratio_empty_mask_and_determinism():
    scorer = RegionScorer(TOP_ROW)
    images = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 255
    saliency = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1))
    mask = np.stack([TOP_ROW, np.zeros((4, 4), bool), region((2, 2), (3, 3))])
    first = occlusion_kl_ratio(scorer, images, saliency, mask, rng=np.random.default_rng(5), substrate="zero")
    assert scorer.calls == [2 * 10]  # the empty-mask sample is not run
    again = occlusion_kl_ratio(scorer, images, saliency, mask, rng=np.random.default_rng(5), substrate="zero")
    np.testing.assert_array_equal(first, again)
    assert np.isnan(first[1])
    assert np.isfinite(first[[0, 2]]).all()


def test_behaviour_kl_avoids_the_mask():
    # M = R: occluding M costs KL(0.9 || 0.1); 2 of the 15 non-zero shifts overlap M, and none
    # may be chosen, so the outside regions cost nothing (64 draws would hit one by chance)
    scorer = RegionScorer(TOP_ROW)
    mask = np.stack([TOP_ROW] * 4)
    out = behaviour_kl(
        scorer, IMAGES.expand(4, -1, -1, -1), mask, rng=0, n_random=16, substrate="zero", eps=1e-3
    )
    np.testing.assert_allclose(out["kl_mask"], [KL_09_01] * 4)
    np.testing.assert_allclose(out["kl_outside"], [0.0] * 4, atol=1e-12)
    np.testing.assert_allclose(out["ratio"], [(KL_09_01 + 1e-3) / 1e-3] * 4)


def test_behaviour_kl_minimal_overlap_when_unavoidable():
    # 2x2 frame, M = 3 pixels: every non-zero shift overlaps M in 2 pixels and covers the free
    # pixel (1, 1); the zero shift (overlap 3) must never be drawn
    mask = np.array([[[1, 1], [1, 0]]])
    scorer = RegionScorer(region((1, 1), size=2))
    out = behaviour_kl(scorer, torch.full((1, 1, 2, 2), 200.0), mask, rng=0, n_random=32, substrate="zero")
    np.testing.assert_allclose(out["kl_mask"], [0.0], atol=1e-12)
    np.testing.assert_allclose(out["kl_outside"], [KL_09_01])


def test_behaviour_kl_full_and_empty_masks():
    scorer = RegionScorer(TOP_ROW)
    mask = np.stack([np.ones((4, 4)), np.zeros((4, 4))])
    out = behaviour_kl(scorer, IMAGES.expand(2, -1, -1, -1), mask, rng=0, substrate="zero")
    np.testing.assert_allclose(out["kl_mask"][0], KL_09_01)
    np.testing.assert_allclose(out["kl_outside"][0], KL_09_01)  # the only region is the frame
    np.testing.assert_allclose(out["ratio"][0], 1.0)
    assert all(np.isnan(v[1]) for v in out.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"substrate": "noise"}, "substrate must be one of"),
        ({"step": 0}, "step must be a positive"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"actions": [2]}, r"actions must lie in \[0, 1\]"),
        ({"actions": [0, 1]}, "actions must be integers of shape"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(InputError, match=message):
        deletion_auc(RegionScorer(TOP_ROW), IMAGES, PERFECT, **kwargs)


def test_bad_shapes_raise():
    scorer = RegionScorer(TOP_ROW)
    with pytest.raises(InputError, match="one map per sample"):
        deletion_auc(scorer, IMAGES, PERFECT.expand(2, -1, -1))
    with pytest.raises(InputError, match="to match the images"):
        behaviour_kl(scorer, IMAGES, np.ones((1, 2, 2)), rng=0)
    with pytest.raises(InputError, match=r"\(B, C, H, W\)"):
        deletion_auc(scorer, IMAGES[0], PERFECT)
    with pytest.raises(InputError, match="fractions"):
        sufficiency(scorer, IMAGES, PERFECT, fractions=[1.5])


class Passthrough(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x[:, None, None]


def test_epsilon_greedy_policy_by_hand():
    # epsilon 0.3 over 3 actions: 0.3 / 3 = 0.1 each, the greedy action 0.7 more (first of ties)
    q_values = torch.tensor([[0.1, 0.5, 0.2], [1.0, 1.0, 0.0]])
    scorer = ModuleScorer(Passthrough(), preprocess=lambda x: x)  # the "images" are the Q-values
    scores, maps = EpsilonGreedyPolicy(scorer, 0.3).scores_and_maps(q_values)
    torch.testing.assert_close(scores.softmax(dim=1), torch.tensor([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]]))
    assert maps.shape == (2, 1, 1, 3)
    uniform, _ = EpsilonGreedyPolicy(scorer, 1.0).scores_and_maps(q_values)
    torch.testing.assert_close(uniform.softmax(dim=1), torch.full((2, 3), 1 / 3))
    for epsilon in (0.0, -0.1, 1.5):
        with pytest.raises(InputError, match=r"epsilon must be in \(0, 1\]"):
            EpsilonGreedyPolicy(scorer, epsilon)


def test_deletion_curve_under_the_epsilon_greedy_policy():
    # RegionScorer's scores read as Q-values: action 0 is greedy while more than half the region
    # is intact. Region of 3 pixels, removed first: shares 1, 2/3, 1/3, 0 -> greedy 0, 0, 1, 1.
    # Epsilon 0.2 over 2 actions: f = pi(0) = 0.9 while 0 is greedy, else 0.1. softmax(Q) instead
    # follows u = 0.1 + 0.8 * share: 0.9, 0.633, 0.367, 0.1.
    three = region((0, 0), (0, 1), (0, 2))
    perfect = torch.as_tensor(three, dtype=torch.float64)[None]
    policy = EpsilonGreedyPolicy(RegionScorer(three), 0.2)
    _, f = perturbation_curve(policy, IMAGES, perfect, mode="deletion", step=1, substrate="zero")
    np.testing.assert_allclose(f[0], [0.9, 0.9, 0.1] + [0.1] * 14, rtol=1e-6)
    _, f = perturbation_curve(RegionScorer(three), IMAGES, perfect, mode="deletion", step=1, substrate="zero")
    np.testing.assert_allclose(f[0, :4], [0.9, 0.1 + 0.8 * 2 / 3, 0.1 + 0.8 / 3, 0.1], rtol=1e-6)


def test_eval_mode_reaches_through_a_wrapped_scorer():
    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[bool] = []

        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            self.seen.append(self.training)
            return x.mean(dim=(2, 3)).repeat(1, 2)[:, :2] * torch.tensor([1.0, 0.5]), x[:, :1]

    net = Recorder()
    deletion_auc(EpsilonGreedyPolicy(ModuleScorer(net)), IMAGES, PERFECT, step=8, substrate="zero")
    assert net.seen == [False]  # the forward ran in eval mode
    assert net.training  # and the mode was restored
