"""Learning sanity (marker ``learning``, about an hour on 2 CPU cores: only `make test-learning`,
or `pytest -m learning`, runs it; neither `make test`, `make test-all` nor CI does): CamalPPO with the default
settings on DoorKey-5x5 (partial view) reaches mean return >= 0.9 within 300k steps on seed 0,
and its Grad-CAM EPG at that budget is higher than stock PPO's. The committed run of the same
check is experiments/camal_study/runs/sanity (preset study-sanity)."""

from __future__ import annotations

from pathlib import Path

import pytest

from camal_rl.config import TrainConfig
from camal_rl.rundir import RunDir
from camal_rl.train import train
from tests.conftest import DEVICE


@pytest.mark.learning
def test_camal_ppo_learns_doorkey_and_attends(tmp_path: Path) -> None:
    rows = {}
    for method in ("camal", "none"):
        cfg = TrainConfig(
            method=method,  # type: ignore[arg-type]
            steps=300_000,
            eval_freq=10_000,
            eval_episodes=10,
            checkpoint_freq=0,
            progress_bar=False,
            device=DEVICE,
            out=tmp_path / method,
        )
        rows[method] = RunDir(train(cfg).path).read_evaluations()
    assert max(row["return_mean"] for row in rows["camal"]) >= 0.9
    assert rows["camal"][-1]["epg"] > rows["none"][-1]["epg"]
