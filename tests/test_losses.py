"""Tests for camal_rl.losses: the attention-loss family of docs/design.md."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from camal_rl.errors import InputError
from camal_rl.losses import LOSS_KINDS, attention_loss, downsample_mask, input_gradient
from camal_rl.saliency import grad_cam

CAM_KINDS = ("camal", "camal-v1", "energy")

# 3x3 case, mask at the CAM's resolution.
CAM3 = torch.tensor([[0.0, 1.0, 2.0], [0.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
MASK3 = torch.tensor([[0, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.uint8)
# camal-v1: c = cam / 4 = [[0, .25, .5], [0, 1, 0], [0, 0, 0]]; sum(m) = 2, sum(1 - m) = 7
#   inside:  (1 - .5) + (1 - 1) = 0.5  -> 0.5 / 2 = 0.25
#   outside: c at (0, 1) = 0.25        -> 0.25 / 7
#   L = 0.25 + 0.25 / 7 = 2 / 7
CAMAL3 = 2 / 7
# energy: sum(cam) = 7, sum(cam * m) = 2 + 4 = 6 -> L = 1 - 6 / 7 = 1 / 7
ENERGY3 = 1 / 7

# 4x4 case, 8x8 mask with class label 2, area-downsampled: task-relevant pixels rows 0-2, cols 0-1
# -> cell (0, 0) fully covered (m = 1), cell (1, 0) half covered (rows 2 of 2-3: m = 0.5).
CAM4 = torch.zeros(4, 4)
CAM4[0, 0], CAM4[1, 0], CAM4[3, 3] = 2.0, 4.0, 1.0
MASK8 = torch.zeros(8, 8, dtype=torch.uint8)
MASK8[0:3, 0:2] = 2
# camal-v1: c = cam / 4 -> 0.5 at (0, 0), 1 at (1, 0), 0.25 at (3, 3); sum(m) = 1.5, sum(1 - m) = 14.5
#   inside:  1 * (1 - .5) + 0.5 * (1 - 1) = 0.5            -> 0.5 / 1.5 = 1 / 3
#   outside: 0 * .5 + 0.5 * 1 + 1 * .25 = 0.75              -> 0.75 / 14.5
CAMAL4 = 1 / 3 + 0.75 / 14.5
# energy: sum(cam) = 7, sum(cam * m) = 2 * 1 + 4 * 0.5 = 4 -> L = 1 - 4 / 7 = 3 / 7
ENERGY4 = 3 / 7


def test_downsample_mask_by_area() -> None:
    m = downsample_mask(MASK8[None], (4, 4))
    expected = torch.zeros(1, 4, 4)
    expected[0, 0, 0], expected[0, 1, 0] = 1.0, 0.5
    torch.testing.assert_close(m, expected)
    torch.testing.assert_close(downsample_mask(MASK3[None], (3, 3)), MASK3[None].float())
    with pytest.raises(InputError, match="at least as large"):
        downsample_mask(MASK3[None], (4, 4))


@pytest.mark.parametrize(
    ("kind", "cam", "mask", "expected"),
    [
        ("camal-v1", CAM3, MASK3, CAMAL3),
        ("energy", CAM3, MASK3, ENERGY3),
        ("camal-v1", CAM4, MASK8, CAMAL4),
        ("energy", CAM4, MASK8, ENERGY4),
        # camal's map term is the share outside the mask, energy's: the same numbers
        ("camal", CAM3, MASK3, ENERGY3),
        ("camal", CAM4, MASK8, ENERGY4),
    ],
)
def test_hand_computed_values(kind: str, cam: Tensor, mask: Tensor, expected: float) -> None:
    loss = attention_loss(cam[None], mask[None], kind)
    assert loss.dtype == torch.float32
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_batch_mean_and_mask_dtypes() -> None:
    cam = torch.stack([CAM3, 2.0 * CAM3.T])  # camal is scale-invariant; transposed pair
    for mask in (torch.stack([MASK3, MASK3.T]), torch.stack([MASK3, MASK3.T]).bool()):
        assert attention_loss(cam, mask, "camal-v1").item() == pytest.approx(CAMAL3, rel=1e-5)
        assert attention_loss(cam, mask.float(), "energy").item() == pytest.approx(ENERGY3, rel=1e-5)
    # mean of two different samples: camal 2/7 and (all-zero CAM on a valid mask) 1
    mixed = torch.stack([CAM3, torch.zeros(3, 3)])
    assert attention_loss(mixed, torch.stack([MASK3, MASK3]), "camal-v1").item() == pytest.approx(
        (CAMAL3 + 1.0) / 2, rel=1e-5
    )


def test_camal_is_the_default_and_the_share_outside_the_mask() -> None:
    # CAM3 has 7 units of attention, 1 of them outside MASK3 (at (0, 1)): 1 / 7, whatever the scale
    for scale in (1.0, 0.01):  # eps (1e-6) in the denominator: exact up to 1e-4 at these scales
        loss = attention_loss(scale * CAM3[None], MASK3[None])
        assert loss.item() == pytest.approx(1 / 7, rel=1e-4)
    # containment: 0 once the map sits inside the mask, covering one object of two or both
    assert attention_loss(CAM3[None] * MASK3[None], MASK3[None]).item() == pytest.approx(0.0, abs=1e-6)
    one_object = torch.zeros(1, 3, 3)
    one_object[0, 1, 1] = 4.0
    assert attention_loss(one_object, MASK3[None]).item() == pytest.approx(0.0, abs=1e-6)
    # camal-v1 pulls toward the missing object: inside (1 - 0) + (1 - 1) over sum(m) = 2
    assert attention_loss(one_object, MASK3[None], "camal-v1").item() == pytest.approx(0.5, rel=1e-5)


def test_camal_v1_is_zero_when_normalised_cam_equals_mask() -> None:
    m = MASK3.float()
    assert attention_loss(3.0 * m[None], MASK3[None], "camal-v1").item() == pytest.approx(0.0, abs=1e-5)
    # at a coarser CAM: the area-downsampled 8x8 mask of a whole 2x2-pixel cell is binary
    mask = torch.zeros(1, 8, 8)
    mask[0, 2:4, 4:6] = 1.0
    cam = torch.zeros(1, 4, 4)
    cam[0, 1, 2] = 0.5
    assert attention_loss(cam, mask, "camal-v1").item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("kind", [*CAM_KINDS, "rrr"])
def test_empty_mask_samples_are_excluded(kind: str) -> None:
    cam = torch.stack([CAM3, torch.rand(3, 3)])
    mask = torch.stack([MASK3, torch.zeros(3, 3, dtype=torch.uint8)])
    both = attention_loss(cam, mask, kind)
    alone = attention_loss(cam[:1], mask[:1], kind)
    assert both.item() == pytest.approx(alone.item(), rel=1e-6)
    cam = cam.clone().requires_grad_(True)
    attention_loss(cam, mask, kind).backward()
    assert cam.grad is not None
    assert (cam.grad[1] == 0).all()
    assert (cam.grad[0] != 0).any()


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_all_empty_batch_is_zero_and_differentiable(kind: str) -> None:
    cam = torch.rand(2, 3, 3).requires_grad_(True)
    loss = attention_loss(cam, torch.zeros(2, 3, 3, dtype=torch.uint8), kind)
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert cam.grad is not None
    assert (cam.grad == 0).all()


def _edge_cases() -> dict[str, tuple[Tensor, Tensor]]:
    one_pixel = torch.zeros(2, 8, 8, dtype=torch.uint8)
    one_pixel[:, 5, 2] = 1
    return {
        "zero cam": (torch.zeros(2, 4, 4), torch.ones(2, 8, 8)),
        "full mask": (torch.rand(2, 4, 4), torch.ones(2, 8, 8)),
        "full mask, zero cam": (torch.zeros(2, 4, 4), torch.ones(2, 4, 4)),
        "one-pixel mask": (torch.rand(2, 4, 4), one_pixel),
        "tiny cam": (torch.full((2, 4, 4), 1e-30), one_pixel),
        "large cam": (torch.full((2, 4, 4), 6e4), one_pixel),
    }


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("case", list(_edge_cases()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_never_nan_or_inf(kind: str, case: str, dtype: torch.dtype) -> None:
    cam, mask = _edge_cases()[case]
    cam = cam.to(dtype).requires_grad_(True)
    loss = attention_loss(cam, mask, kind)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    assert cam.grad is not None
    if dtype == torch.float32:
        # float16 gradients of a near-zero CAM can overflow after the cast back (1 / eps = 1e6),
        # as under AMP; the loss value itself is finite in both.
        assert torch.isfinite(cam.grad).all()


def test_edge_case_values() -> None:
    cases = _edge_cases()
    # zero cam on a valid mask: camal = sum(m) / sum(m) + 0 = 1; energy = 1 - 0 = 1
    assert attention_loss(*cases["zero cam"], "camal-v1").item() == pytest.approx(1.0, rel=1e-5)
    assert attention_loss(*cases["zero cam"], "energy").item() == pytest.approx(1.0)
    # uniform cam on a full mask: c = 1 everywhere, both terms 0 (sum(1 - m) = 0 -> 0 / eps)
    full = attention_loss(torch.ones(1, 4, 4), torch.ones(1, 8, 8), "camal-v1")
    assert full.item() == pytest.approx(0.0, abs=1e-5)
    # one pixel of 8x8 -> m = 1/4 in one 2x2 cell; cam peaked there (c = 1 there, 0 elsewhere):
    # inside 0.25 * 0 / 0.25 = 0; outside (1 - 0.25) * 1 / 15.75 = 0.75 / 15.75
    cam = torch.zeros(1, 4, 4)
    cam[0, 2, 1] = 5.0
    mask = torch.zeros(1, 8, 8)
    mask[0, 5, 2] = 1
    assert attention_loss(cam, mask, "camal-v1").item() == pytest.approx(0.75 / 15.75, rel=1e-5)
    # energy: sum(cam * m) = 5 * 0.25 of sum(cam) = 5 -> 1 - 0.25
    assert attention_loss(cam, mask, "energy").item() == pytest.approx(0.75, rel=1e-5)


def test_rrr_hand_values() -> None:
    grad = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[5.0, -1.0], [0.0, 2.0]]]])  # (1, 2, 2, 2)
    mask = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.uint8)
    # outside pixel (0, 0): channel 0: 2^2 + 3^2 + 4^2 = 29; channel 1: 1 + 0 + 4 = 5
    assert attention_loss(grad, mask, "rrr").item() == pytest.approx(34.0)
    assert attention_loss(grad[:, 0], mask, "rrr").item() == pytest.approx(29.0)
    # batch mean over valid samples: (34 + 4 * 34) / 2 for the gradient doubled
    batch = torch.cat([grad, 2.0 * grad])
    assert attention_loss(batch, mask.expand(2, 2, 2), "rrr").item() == pytest.approx(85.0)


def test_rrr_with_input_gradient_trains_the_model() -> None:
    weight = nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))  # (H, W)
    inputs = torch.ones(1, 1, 2, 2, requires_grad=True)
    log_prob = (weight.pow(2) * inputs).sum(dim=(1, 2, 3))  # d/dx = weight^2
    grad = input_gradient(log_prob, inputs)
    torch.testing.assert_close(grad, weight.detach().pow(2)[None, None])
    mask = torch.tensor([[[1, 0], [1, 0]]])
    loss = attention_loss(grad, mask, "rrr")
    # outside: weight^2 at (0, 1) = 4 and (1, 1) = 9 -> 16 + 81 = 97
    assert loss.item() == pytest.approx(97.0)
    loss.backward()
    # d/dw (w^4) = 4 w^3 outside the mask, 0 inside
    torch.testing.assert_close(weight.grad, torch.tensor([[0.0, -32.0], [0.0, 108.0]]))
    with pytest.raises(InputError, match="require grad"):
        input_gradient(log_prob.detach(), inputs.detach())


def test_none_is_zero_with_graph() -> None:
    cam = torch.rand(2, 3, 3, requires_grad=True)
    loss = attention_loss(cam, torch.ones(2, 3, 3), "none")
    assert loss.item() == 0.0
    assert loss.grad_fn is not None
    loss.backward()
    assert cam.grad is not None
    assert (cam.grad == 0).all()


@pytest.mark.parametrize("kind", CAM_KINDS)
def test_gradcheck_double(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    cam = torch.rand(2, 4, 4, dtype=torch.float64, generator=generator) + 0.1
    cam[:, 1, 2] = 2.0  # a unique maximum per sample: max() is piecewise linear
    mask = torch.zeros(2, 8, 8)
    mask[0, 1:4, 2:7] = 1  # fractional area-downsampled values
    mask[1, 6, 6] = 3
    assert torch.autograd.gradcheck(lambda c: attention_loss(c, mask, kind), (cam.requires_grad_(True),))


def test_input_errors() -> None:
    cam = torch.rand(2, 4, 4)
    with pytest.raises(InputError, match="camal, camal-v1, energy, rrr, none"):
        attention_loss(cam, torch.ones(2, 4, 4), "gradmask")
    with pytest.raises(InputError, match=r"\(B, H, W\)"):
        attention_loss(cam, torch.ones(3, 4, 4))
    with pytest.raises(InputError, match=r"\(B, h, w\)"):
        attention_loss(cam[:, None], torch.ones(2, 4, 4))
    with pytest.raises(InputError, match="at least as large"):
        attention_loss(cam, torch.ones(2, 2, 2))


class CellCNN(nn.Module):
    """MiniGridCNN in miniature: a tile-sized, tile-strided conv (4 px tiles), a 3x3 conv whose
    ReLU output is the attention map (one position per cell), a linear head on the maps."""

    def __init__(self, cells: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 4, stride=4)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Linear(16 * cells * cells, 3)
        with torch.no_grad():
            # positive weights: alpha > 0 at initialisation, so no sample starts with an
            # all-zero (ReLU-dead) Grad-CAM, whose attention loss has no gradient
            self.head.weight.abs_()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(maps.flatten(1)), maps


@pytest.mark.parametrize("kind", CAM_KINDS)
def test_training_moves_grad_cam_into_the_mask(kind: str) -> None:
    torch.manual_seed(0)
    cells, tile, batch = 2, 4, 16
    net = CellCNN(cells)
    generator = torch.Generator().manual_seed(1)
    # dim noise frames with one red object cell per frame; the mask marks that cell
    images = torch.rand(batch, 3, cells * tile, cells * tile, generator=generator) * 100
    mask = torch.zeros(batch, cells * tile, cells * tile, dtype=torch.uint8)
    for b, cell in enumerate(torch.randint(0, cells * cells, (batch,), generator=generator).tolist()):
        i, j = divmod(cell, cells)
        images[b, :, i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = torch.tensor([255.0, 0.0, 0.0])[
            :, None, None
        ]
        mask[b, i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] = 1
    actions = torch.zeros(batch, dtype=torch.long)
    m = downsample_mask(mask, (cells, cells))

    def cam_of(create_graph: bool) -> Tensor:
        scores, maps = net(images / 255.0)
        return grad_cam(maps, scores.gather(1, actions[:, None]).squeeze(1), create_graph=create_graph)

    def epg() -> float:
        cam = cam_of(create_graph=False)
        return ((cam * m).sum(dim=(1, 2)) / (cam.sum(dim=(1, 2)) + 1e-12)).mean().item()

    before = epg()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(25):
        loss = attention_loss(cam_of(create_graph=True), mask, kind)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = epg()
    assert before < 0.4, before  # about 1 / 4 of the mass on the object's cell at init
    assert after > 0.8, (before, after)
