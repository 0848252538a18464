"""How a weights file (:mod:`camal_rl.weights`) stores a policy's tensors: the encodings, as pure
functions of tensors, from the most compact to the exact.

- ``int10``: each floating-point 2-D matrix of at least :data:`INT10_MIN_ENTRIES` entries as
  symmetric 10-bit integers with a float32 scale for each :data:`GROUP` consecutive entries of a row
  (:func:`int10_groups`), packed into 10 bits an entry (:func:`pack10`); the other floating-point
  tensors in float16;
- ``float16``: every floating-point tensor in float16;
- ``float32``: every floating-point tensor in float32 (exact).

Integer tensors are stored as they are in each. :func:`decode` gives back what :func:`encode`
stored, as a ``state_dict`` load takes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

Encoding = Literal["int10", "float16", "float32"]
"""How a file stores its weights (:data:`ENCODINGS`)."""
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)
"""The encodings, most compact first: ``auto`` takes the first that passes its check."""
INT10_MIN_ENTRIES = 2**16
"""The fewest entries of a 2-D weight matrix stored in 10 bits (the ``int10`` encoding): the
128 x 3136 linear layer after a MiniGrid agent's CNN (401,408), not its MLP's matrices (8,192 and
fewer)."""
GROUP = 64
"""Entries of a row that share a scale (the last group of a row may be shorter): a MiniGrid agent's
rows of 3136 have 49 groups, each of 64 inputs."""
LEVELS = 2**9 - 1
"""The largest integer of a group (511): a group spans -511 to 511, 1023 levels in 10 bits."""


def int10_groups(matrix: Tensor, group: int = GROUP) -> tuple[Tensor, Tensor]:
    """Symmetric 10-bit integers of a 2-D ``matrix`` by groups of ``group`` consecutive entries of a
    row (of the inputs to one output unit of a linear layer): a group's scale is its largest
    absolute value over :data:`LEVELS` (1 for a group of zeros), and each entry the nearest integer
    to itself over its group's scale, so that a group spans -511 to 511 and a weight moves by at most
    half its group's scale (:func:`from_int10_groups` multiplies back).

    :return: the integers (int16, the matrix's shape), and the float32 scales (rows, groups a row:
        ``ceil(columns / group)``).
    """
    assert matrix.ndim == 2, matrix.shape
    assert matrix.is_floating_point(), matrix.dtype
    rows, columns = matrix.shape
    groups = math.ceil(columns / group)
    padded = F.pad(matrix.detach().cpu().to(torch.float32), (0, groups * group - columns))
    by_group = padded.reshape(rows, groups, group)
    largest = by_group.abs().amax(dim=2)
    scales = torch.where(largest > 0, largest / LEVELS, torch.ones_like(largest))
    integers = torch.round(by_group / scales[:, :, None]).clamp(-LEVELS, LEVELS).to(torch.int16)
    return integers.reshape(rows, groups * group)[:, :columns].contiguous(), scales


def from_int10_groups(integers: Tensor, scales: Tensor, group: int = GROUP) -> Tensor:
    """The float32 matrix that :func:`int10_groups` encoded: each entry times its group's scale."""
    per_entry = scales.repeat_interleave(group, dim=1)[:, : integers.shape[1]]
    return integers.to(torch.float32) * per_entry


def pack10(integers: Tensor) -> tuple[Tensor, Tensor]:
    """Integers from -511 to 511 in 10 bits each: shifted to 0 ... 1022, their low 8 bits as a
    uint8 tensor of their shape, and their high 2 bits, in row-major order, four to a byte (the
    first in the byte's lowest 2 bits).

    :return: the low bytes and the high bits (1-D uint8, ``ceil(n / 4)`` bytes).
    """
    unsigned = integers.to(torch.int32) + LEVELS
    low = (unsigned & 0xFF).to(torch.uint8)
    high = (unsigned >> 8).flatten()
    high = F.pad(high, (0, -high.numel() % 4)).reshape(-1, 4)
    packed = high[:, 0] | (high[:, 1] << 2) | (high[:, 2] << 4) | (high[:, 3] << 6)
    return low, packed.to(torch.uint8)


def unpack10(low: Tensor, high: Tensor) -> Tensor:
    """The integers (int16) that :func:`pack10` packed."""
    bits = high.to(torch.int32)
    parts = torch.stack([(bits >> shift) & 3 for shift in (0, 2, 4, 6)], dim=1).flatten()
    unsigned = low.to(torch.int32) | (parts[: low.numel()].reshape(low.shape) << 8)
    return (unsigned - LEVELS).to(torch.int16)


@dataclass(frozen=True)
class Encoded:
    """Tensors as a file stores them (:func:`encode`)."""

    tensors: dict[str, Tensor]
    """Each tensor: in float16 or float32, or a packed matrix's low bytes (uint8)."""
    scales: dict[str, Tensor] = field(default_factory=dict)
    """The scales of each packed matrix (:func:`int10_groups`)."""
    high_bits: dict[str, Tensor] = field(default_factory=dict)
    """The high bits of each packed matrix (:func:`pack10`)."""


def int10_names(tensors: Mapping[str, Tensor]) -> list[str]:
    """The tensors the ``int10`` encoding packs: floating-point 2-D matrices of at least
    :data:`INT10_MIN_ENTRIES` entries."""
    return [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and tensor.ndim == 2 and tensor.numel() >= INT10_MIN_ENTRIES
    ]


def encode(tensors: Mapping[str, Tensor], encoding: Encoding) -> Encoded:
    """Tensors as a file stores them (each a copy with its own storage, integer ones as they are)."""
    packed = set(int10_names(tensors)) if encoding == "int10" else set()
    floats = torch.float32 if encoding == "float32" else torch.float16
    encoded = Encoded({})
    for name, tensor in tensors.items():
        if name in packed:
            integers, encoded.scales[name] = int10_groups(tensor)
            encoded.tensors[name], encoded.high_bits[name] = pack10(integers)
        elif tensor.is_floating_point():
            encoded.tensors[name] = tensor.detach().cpu().to(floats).clone()
        else:
            encoded.tensors[name] = tensor.detach().cpu().clone()
    return encoded


def decode(encoded: Encoded) -> dict[str, Tensor]:
    """The tensors that :func:`encode` stored: packed matrices unpacked and times their scales, the
    others as they are (a ``state_dict`` load casts them to the parameters' dtype)."""
    return {
        name: (
            from_int10_groups(unpack10(tensor, encoded.high_bits[name]), encoded.scales[name])
            if name in encoded.scales
            else tensor
        )
        for name, tensor in encoded.tensors.items()
    }


def packing_fits(encoded: Encoded, *, packed: bool) -> bool:
    """The packed matrices (uint8) are exactly those with scales and high bits (none unless
    ``packed``), each 2-D, with one finite, positive float32 scale for each :data:`GROUP` entries of
    a row and a byte of high bits for each 4 entries."""
    names = {name for name, tensor in encoded.tensors.items() if tensor.dtype == torch.uint8}
    if not names == set(encoded.scales) == set(encoded.high_bits) or (bool(names) and not packed):
        return False
    for name in names:
        low, scale, high = encoded.tensors[name], encoded.scales[name], encoded.high_bits[name]
        if (
            low.ndim != 2
            or scale.dtype != torch.float32
            or tuple(scale.shape) != (low.shape[0], math.ceil(low.shape[1] / GROUP))
            or not bool(torch.isfinite(scale).all())
            or not bool((scale > 0).all())
            or high.dtype != torch.uint8
            or tuple(high.shape) != (math.ceil(low.numel() / 4),)
        ):
            return False
    return True
