"""Alignment metrics on 2x2 and 4x4 maps whose values can be checked by hand."""

import math

import numpy as np
import pytest
import torch

from camal_rl.errors import InputError
from camal_rl.metrics import energy_pointing_game, flat_map, iou_top_k, pointing_game, roc_auc

ALL = (energy_pointing_game, iou_top_k, pointing_game, roc_auc)

# S = [[1, 2], [3, 4]] (sum 10), M = right column {2, 4}.
S_PLAIN = np.array([[[1.0, 2.0], [3.0, 4.0]]])
M_RIGHT = np.array([[[0, 1], [0, 1]]], dtype=np.uint8)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (energy_pointing_game, 0.6),  # (2 + 4) / 10
        (iou_top_k, 1 / 3),  # top-2 = {4, 3}; {4} shared; union {2, 3, 4}
        (pointing_game, 1.0),  # max 4 is in M
        (roc_auc, 0.75),  # pairs (pos, neg): (2, 1) (2, 3) (4, 1) (4, 3) -> 3 of 4 won
    ],
)
def test_plain_map(metric, expected):
    np.testing.assert_allclose(metric(S_PLAIN, M_RIGHT), [expected])


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (energy_pointing_game, 1 / 3),
        (iou_top_k, 1 / 3),  # k = 1, threshold 1: three tied pixels selected, one in M
        (pointing_game, 1 / 3),  # three tied maxima, one in M
        (roc_auc, 2 / 3),  # positive 1 vs negatives 1, 1, 0: (1/2 + 1/2 + 1) / 3
    ],
)
def test_ties(metric, expected):
    s = np.array([[[1.0, 1.0], [1.0, 0.0]]])
    m = np.array([[[1, 0], [0, 0]]])
    np.testing.assert_allclose(metric(s, m), [expected])


@pytest.mark.parametrize(
    ("metric", "expected"),
    [(energy_pointing_game, 0.25), (iou_top_k, 0.25), (pointing_game, 0.25), (roc_auc, 0.5)],
)
def test_all_zero_saliency_scores_chance(metric, expected):
    s = np.zeros((1, 2, 2))
    m = np.array([[[0, 0], [0, 3]]])  # |M| / HW = 1/4
    np.testing.assert_allclose(metric(s, m), [expected])


def test_flat_map_marks_constant_maps_only():
    s = np.stack([np.zeros((2, 2)), np.full((2, 2), 0.5), S_PLAIN[0], [[0.0, 0.0], [0.0, 1e-9]]])
    np.testing.assert_array_equal(flat_map(s), [1.0, 1.0, 0.0, 0.0])
    assert flat_map(torch.zeros(3, 5, 7)).dtype == np.float64  # tensors, any size
    np.testing.assert_array_equal(flat_map(torch.zeros(3, 5, 7)), [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("saliency", "message"),
    [(np.ones((2, 2)), r"\(B, h, w\)"), (-S_PLAIN, ">= 0"), (np.full((1, 2, 2), np.inf), "nan or inf")],
)
def test_flat_map_bad_inputs_raise(saliency, message):
    with pytest.raises(InputError, match=message):
        flat_map(saliency)


@pytest.mark.parametrize("metric", ALL)
def test_empty_mask_is_nan_only_there(metric):
    s = np.concatenate([S_PLAIN, S_PLAIN])
    m = np.concatenate([np.zeros((1, 2, 2), dtype=np.uint8), M_RIGHT])
    out = metric(s, m)
    assert out.dtype == np.float64
    assert out.shape == (2,)
    assert np.isnan(out[0])
    np.testing.assert_allclose(out[1], metric(S_PLAIN, M_RIGHT)[0])


@pytest.mark.parametrize(
    ("metric", "expected"), [(energy_pointing_game, 1.0), (iou_top_k, 1.0), (pointing_game, 1.0)]
)
def test_full_mask(metric, expected):
    np.testing.assert_allclose(metric(S_PLAIN, np.ones((1, 2, 2))), [expected])


def test_full_mask_roc_auc_is_undefined():
    assert np.isnan(roc_auc(S_PLAIN, np.ones((1, 2, 2), dtype=bool))[0])


def test_upsampled_saliency():
    # [[0, 4], [0, 4]] upsampled x2 (bilinear, align_corners=False) has columns 0, 1, 3, 4.
    s = np.array([[[0.0, 4.0], [0.0, 4.0]]])
    m = np.zeros((1, 4, 4), dtype=np.uint8)
    m[0, :, 3] = 1
    np.testing.assert_allclose(energy_pointing_game(s, m), [16 / 32])
    # top-4 = the last column (value 4), exactly M
    np.testing.assert_allclose(iou_top_k(s, m), [1.0])
    np.testing.assert_allclose(pointing_game(s, m), [1.0])
    # positives all 4; negatives 0, 1, 3 -> every pair won
    np.testing.assert_allclose(roc_auc(s, m), [1.0])


def test_iou_top_k_partial_overlap():
    # 4x4 map with distinct values 0..15; M = the 3 largest minus one, plus a low pixel.
    s = np.arange(16.0).reshape(1, 4, 4)
    m = np.zeros((1, 4, 4), dtype=bool)
    m[0, 3, 3] = m[0, 3, 2] = m[0, 0, 0] = True  # values 15, 14, 0
    # top-3 = {15, 14, 13}: intersection 2, union 4
    np.testing.assert_allclose(iou_top_k(s, m), [0.5])
    # positives 15, 14, 0 against 13 negatives 1..13: 13 + 13 + 0 wins of 39
    np.testing.assert_allclose(roc_auc(s, m), [26 / 39])


@pytest.mark.parametrize("metric", ALL)
def test_numpy_torch_and_label_masks_agree(metric):
    labels = np.array([[[0, 2], [0, 1]]], dtype=np.int64)
    expected = metric(S_PLAIN, M_RIGHT)
    np.testing.assert_array_equal(
        metric(torch.tensor(S_PLAIN, dtype=torch.float32), torch.tensor(labels)), expected
    )
    np.testing.assert_array_equal(metric(S_PLAIN, labels > 0), expected)


def test_batch_is_vectorised_per_sample():
    rng = np.random.default_rng(0)
    s = rng.random((5, 3, 3))
    m = rng.random((5, 6, 6)) > 0.6
    for metric in ALL:
        together = metric(s, m)
        alone = np.concatenate([metric(s[i : i + 1], m[i : i + 1]) for i in range(5)])
        np.testing.assert_array_equal(together, alone)


def test_gradient_carrying_saliency_is_accepted():
    s = torch.tensor(S_PLAIN, requires_grad=True)
    assert math.isclose(energy_pointing_game(s, M_RIGHT)[0], 0.6)


@pytest.mark.parametrize(
    ("saliency", "mask", "message"),
    [
        (np.ones((2, 2, 2)), np.ones((1, 2, 2)), "one map per sample"),
        (np.ones((1, 2, 2)), np.ones((2, 2)), r"\(B, H, W\)"),
        (np.ones((2, 2)), np.ones((1, 2, 2)), r"\(B, h, w\)"),
        (-S_PLAIN, M_RIGHT, ">= 0"),
        (np.full((1, 2, 2), np.nan), M_RIGHT, "nan"),
        ([[[1.0]]], M_RIGHT, "numpy array or a torch tensor"),
    ],
)
def test_bad_inputs_raise(saliency, mask, message):
    with pytest.raises(InputError, match=message):
        energy_pointing_game(saliency, mask)
