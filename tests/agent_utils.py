"""Helpers for agent tests: capture SB3's logged values, compare parameters."""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import KVWriter, Logger


class RecordingWriter(KVWriter):
    """Keeps every dump of SB3's logger as a dict."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append({**key_values, "step": step})

    def series(self, key: str) -> list[float]:
        return [float(row[key]) for row in self.rows if key in row]


def record_logs(model: BaseAlgorithm) -> RecordingWriter:
    writer = RecordingWriter()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    return writer


def max_param_diff(a: BaseAlgorithm, b: BaseAlgorithm) -> float:
    pa, pb = a.policy.state_dict(), b.policy.state_dict()
    assert pa.keys() == pb.keys()
    return max(float((pa[k].float() - pb[k].float()).abs().max()) for k in pa)


def params_changed(before: dict[str, torch.Tensor], model: BaseAlgorithm) -> bool:
    after = model.policy.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)
