"""The still and GIF of ``camal-rl record`` without its MP4, for machines without ffmpeg (the GPU
machine that ran the ViZDoom cell; see vizdoom_gpu.sh): several agents side by side on the same
held-out episodes, each frame with its Grad-CAM, the mask outline and the step's action.

    python experiments/camal_study/saliency_still.py OUT.png RUN [RUN ...] [--episodes 1]
        [--max-steps N] [--saliency gradcam] [--device cuda]

Writes OUT.png (the still ``record --frame-png`` picks) and OUT.gif (every frame).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from camal_rl.frames import render_frames, still_index
from camal_rl.loading import load_agent
from camal_rl.video import record_agent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="PNG path; the GIF goes beside it")
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, tiled left to right")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="cut each episode after this many steps")
    parser.add_argument("--saliency", default="gradcam", help="saliency method of the heatmap, as record's")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    agents = [load_agent(run, device=args.device) for run in args.runs]
    recordings = [
        record_agent(agent, args.saliency, episodes=args.episodes, max_steps=args.max_steps)
        for agent in agents
    ]
    frames = np.stack(list(render_frames(recordings)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.out.with_suffix(".png"), frames[still_index(recordings)])
    iio.imwrite(args.out.with_suffix(".gif"), frames, extension=".gif", duration=1000.0 / 6, loop=0)
    print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.gif')} ({len(frames)} frames)")


if __name__ == "__main__":
    main()
