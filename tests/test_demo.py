"""The README's main job, on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from camal_rl.demo import DemoConfig, demo


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
