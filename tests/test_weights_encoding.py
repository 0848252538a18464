"""How a weights file stores tensors (camal_rl.weights_encoding): 10-bit groups and their packing by
hand, and which tensors each encoding stores how."""

from __future__ import annotations

import pytest
import torch

from camal_rl.weights_encoding import (
    GROUP,
    INT10_MIN_ENTRIES,
    LEVELS,
    Encoded,
    decode,
    encode,
    from_int10_groups,
    int10_groups,
    int10_names,
    pack10,
    packing_fits,
    unpack10,
)

MATRIX = torch.tensor(
    [
        [5.11, -2.0, 0.0149, 1.022, -0.3],
        [0.0, 0.0, 0.0, 0.0511, 0.02],
    ]
)
INTEGERS = [[511, -200, 1, 511, -150], [0, 0, 0, 511, 200]]


def test_int10_groups_by_hand() -> None:
    """Groups of 3: columns 0-2 and 3-4 of each row, each scale its group's largest over 511. Row 0:
    scale 0.01, so 5.11 -> 511, -2 -> -200, 0.0149 -> 1 (1.49 rounds down); then scale 0.002, so
    1.022 -> 511, -0.3 -> -150. Row 1: zeros, scale 1; then scale 1e-4, so 0.0511 -> 511, 0.02 -> 200."""
    assert LEVELS == 511
    integers, scales = int10_groups(MATRIX, group=3)
    assert integers.dtype == torch.int16
    assert integers.tolist() == INTEGERS
    assert scales.dtype == torch.float32
    assert scales.tolist()[0] == pytest.approx([0.01, 0.002], rel=1e-6)
    assert scales.tolist()[1] == pytest.approx([1.0, 1e-4], rel=1e-6)
    decoded = from_int10_groups(integers, scales, group=3)
    assert decoded.dtype == torch.float32
    expected = [[5.11, -2.0, 0.01, 1.022, -0.3], [0.0, 0.0, 0.0, 0.0511, 0.02]]
    for got, want in zip(decoded.tolist(), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    # no weight moves by more than half its group's scale: 0.0149 by 0.0049 of 0.005
    half_scales = scales.repeat_interleave(3, dim=1)[:, :5] / 2
    assert ((decoded - MATRIX).abs() <= half_scales + 1e-7).all()


def test_pack10_by_hand() -> None:
    """Shifted by 511 the integers are 1022, 311, 512, 1022, 361 and 511, 511, 511, 1022, 711: low
    bytes 254, 55, 0, 254, 105 and 255, 255, 255, 254, 199; high bits 3, 1, 2, 3 | 1, 1, 1, 1 | 3, 2,
    four to a byte from its lowest bits: 3 + 1*4 + 2*16 + 3*64 = 231, 1 + 4 + 16 + 64 = 85, 3 + 2*4 = 11."""
    integers = torch.tensor(INTEGERS, dtype=torch.int16)
    low, high = pack10(integers)
    assert (low.dtype, high.dtype) == (torch.uint8, torch.uint8)
    assert low.tolist() == [[254, 55, 0, 254, 105], [255, 255, 255, 254, 199]]
    assert high.tolist() == [231, 85, 11]
    assert torch.equal(unpack10(low, high), integers)


def test_pack10_round_trips_every_integer() -> None:
    integers = torch.arange(-LEVELS, LEVELS + 1, dtype=torch.int16).reshape(1, -1)  # 1023: not / 4
    low, high = pack10(integers)
    assert (low.numel(), high.numel()) == (1023, 256)
    assert torch.equal(unpack10(low, high), integers)


def test_a_row_longer_than_a_group_has_a_scale_for_each() -> None:
    """130 columns in groups of 64: 64, 64 and 2; each group's largest is its last entry."""
    matrix = torch.arange(2 * 130, dtype=torch.float32).reshape(2, 130)
    integers, scales = int10_groups(matrix)
    assert GROUP == 64
    assert scales.shape == (2, 3)
    assert scales.tolist()[0] == pytest.approx([63 / 511, 127 / 511, 129 / 511])
    assert integers[:, [63, 127, 129]].tolist() == [[511, 511, 511], [511, 511, 511]]
    assert (from_int10_groups(integers, scales) - matrix).abs().max().item() <= 259 / 511 / 2 + 1e-5


def tensors() -> dict[str, torch.Tensor]:
    return {
        "large": torch.linspace(-1, 1, INT10_MIN_ENTRIES).reshape(2, -1),  # 2 x 32768: packed
        "smaller": torch.linspace(-1, 1, INT10_MIN_ENTRIES - 2).reshape(2, -1),  # float16
        "long_bias": torch.linspace(-1, 1, 2 * INT10_MIN_ENTRIES),  # 1-D: float16
        "conv": torch.linspace(-1, 1, 4 * INT10_MIN_ENTRIES).reshape(64, 64, 8, 8),  # 4-D: float16
        "steps": torch.tensor([3, 4]),  # integers as they are
    }


def test_int10_packs_the_large_matrices_alone() -> None:
    assert int10_names(tensors()) == ["large"]
    encoded = encode(tensors(), "int10")
    assert {name: t.dtype for name, t in encoded.tensors.items()} == {
        "large": torch.uint8,
        "smaller": torch.float16,
        "long_bias": torch.float16,
        "conv": torch.float16,
        "steps": torch.int64,
    }
    assert list(encoded.scales) == list(encoded.high_bits) == ["large"]
    # 2 rows of 512 groups of 64: the first group of row 0 and the last of row 1 reach -1 and 1
    assert encoded.scales["large"].shape == (2, 512)
    assert encoded.scales["large"][0, 0].item() == pytest.approx(1 / 511, rel=1e-6)
    assert encoded.scales["large"][1, -1].item() == pytest.approx(1 / 511, rel=1e-6)
    assert encoded.high_bits["large"].shape == (INT10_MIN_ENTRIES // 4,)
    decoded = decode(encoded)
    assert decoded["large"].dtype == torch.float32
    assert (decoded["large"] - tensors()["large"]).abs().max().item() <= 0.5 / 511 + 1e-6
    assert decoded["large"][0, 0].item() == pytest.approx(-1.0)
    assert torch.equal(decoded["smaller"], tensors()["smaller"].half())
    assert torch.equal(decoded["steps"], tensors()["steps"])


@pytest.mark.parametrize(("encoding", "dtype"), [("float16", torch.float16), ("float32", torch.float32)])
def test_float_encodings_store_every_float_tensor_alike(encoding: str, dtype: torch.dtype) -> None:
    original = tensors()
    encoded = encode(original, encoding)  # type: ignore[arg-type]
    assert encoded.scales == encoded.high_bits == {}
    assert all(t.dtype == dtype for name, t in encoded.tensors.items() if name != "steps")
    decoded = decode(encoded)
    for name, tensor in original.items():
        assert torch.equal(decoded[name], tensor.to(dtype) if tensor.is_floating_point() else tensor)
    encoded.tensors["conv"].zero_()  # a copy: the original is left as it is
    assert original["conv"].abs().max().item() == 1.0


def test_packing_fits_the_packed_matrices() -> None:
    encoded = encode(tensors(), "int10")
    low, scales, high = encoded.tensors["large"], encoded.scales["large"], encoded.high_bits["large"]
    assert packing_fits(encoded, packed=True)
    assert not packing_fits(encoded, packed=False)  # packed matrices in a float16 file
    assert not packing_fits(Encoded(encoded.tensors, {}, {}), packed=True)  # without scales
    assert not packing_fits(Encoded(encoded.tensors, {"large": scales}, {}), packed=True)  # high bits
    floats = {**encoded.tensors, "large": low.float()}
    assert not packing_fits(Encoded(floats, encoded.scales, encoded.high_bits), packed=True)
    bad_scales = {
        "a scale a row": torch.ones(2),
        "one group too many": torch.ones(2, 513),
        "float16": scales.half(),
        "zero": torch.cat([torch.zeros(1, 512), torch.ones(1, 512)]),
        "nan": torch.full((2, 512), float("nan")),
    }
    for why, scale in bad_scales.items():
        assert not packing_fits(Encoded(encoded.tensors, {"large": scale}, {"large": high}), packed=True), why
    for why, bits in {"a byte short": high[:-1], "int8": high.to(torch.int8)}.items():
        assert not packing_fits(Encoded(encoded.tensors, {"large": scales}, {"large": bits}), packed=True), (
            why
        )
