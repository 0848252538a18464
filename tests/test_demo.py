"""The README's main job, on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from camal_rl.demo import DemoConfig, demo, demo_sweep


@pytest.mark.slow  # the demo: `make test-all` runs it
def test_demo_writes_the_comparison_and_the_video(tmp_path: Path) -> None:
    written = demo(DemoConfig(out=tmp_path / "demo", steps=128, episodes=1, workers=2))
    table = written["markdown"].read_text()
    assert "| ppo-camal vs ppo-none |" in table
    assert written["env_picture"].exists()
    video = cv2.VideoCapture(str(written["mp4"]))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    width = int(video.get(cv2.CAP_PROP_FRAME_WIDTH))
    video.release()
    assert frames > 0
    assert width > 1000  # two agents side by side
    assert written["png"].exists()


def test_the_demo_trains_the_doorkey_ppo_preset_until_each_agent_solves_it(tmp_path: Path) -> None:
    """Both agents: the doorkey-ppo preset's settings on seed 4, a greedy evaluation of 10 episodes
    every 10k steps, stopping at return 0.9 or at 150k steps, no checkpoints."""
    import dataclasses

    from camal_rl.config import TrainConfig, get_preset

    sweep = demo_sweep(DemoConfig(out=tmp_path / "demo"))
    runs = sweep.run_configs()
    assert [(run.method, run.seed) for run in runs] == [("none", 4), ("camal", 4)]
    preset = get_preset("doorkey-ppo", TrainConfig)
    for run in runs:
        resolved = run.resolved()
        assert (resolved.steps, resolved.eval_freq, resolved.eval_episodes) == (150_000, 10_000, 10)
        assert (resolved.stop_return, resolved.checkpoint_freq, resolved.n_envs) == (0.9, 0, 8)
        assert (
            run.run_dir
            == tmp_path / "demo" / "runs" / "MiniGrid-DoorKey-5x5-v0" / f"ppo-{run.method}" / "seed4"
        )
        same = dataclasses.replace(preset, method=run.method, seed=4).resolved()
        assert (resolved.env, dict(resolved.algo_kwargs)) == (same.env, dict(same.algo_kwargs))
        assert resolved.camal_coef == same.camal_coef
