"""Speed of a masked Atari step against plain OCAtari steps, measured side by side in one run.

- masked: :func:`camal_rl.envs.make_masked_env` (``"ALE/<Game>-v5"``, the defaults): 4 frames a
  step, the objects read on the last two, their masks painted and united, the frames max-pooled,
  image and mask resized to 84x84 (``cv2.INTER_AREA``; the mask by any overlap);
- preprocessed: OCAtari's env one frame a step (``frameskip=1``) under gymnasium's
  ``AtariPreprocessing`` (RGB, 84x84, ``INTER_AREA``, no-op reset, frame skip 4 with max-pool):
  what a plain OCAtari user runs for the standard preprocessing, no mask; OCAtari reads the
  objects on every frame;
- bare: ``OCAtari("ALE/<Game>-v5", mode="ram", obs_mode="ori")``, OCAtari's own env: ALE's 4
  frames a step (frame skip inside the emulator), the objects read once, the 210x160 screen
  kept, no max-pool and no resize.

All at ALE v5's settings (sticky actions 0.25), random actions from the same seed. They take
turns in blocks of ``--steps`` steps, ``--repeats`` times each after a warm-up; each ratio is
plain / masked of the median process CPU times of a block (steadier than wall clock on a shared
machine: a masked step's speed as a share of a plain step's), with the wall-clock ratio beside
it. Target: >= 0.90.

Run: ``python experiments/bench_atari.py [--games Pong Breakout] [--steps 2000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from camal_rl.envs import make_masked_env
from experiments.timing import timed

TARGET = 0.90


def bare_env(game: str) -> Any:
    """OCAtari's own env of ``game``, RAM mode, RGB observations, ALE's frame skip of 4."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from ocatari.core import OCAtari

    return OCAtari(f"ALE/{game}-v5", mode="ram", hud=False, obs_mode="ori")


def preprocessed_env(game: str) -> Any:
    """OCAtari's env of ``game`` one frame a step, under gymnasium's ``AtariPreprocessing`` in RGB."""
    from gymnasium.wrappers import AtariPreprocessing
    from ocatari.core import OCAtari

    env = OCAtari(f"ALE/{game}-v5", mode="ram", hud=False, obs_mode="ori", frameskip=1)
    # AtariPreprocessing reads env.unwrapped.ale and ._frameskip, which OCAtari keeps on its inner env
    env.ale, env._frameskip = env._ale, 1
    return AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=False)


def stepper(env: Any, seed: int) -> Callable[[int], None]:
    """A function that takes ``n`` random steps in ``env``, resetting when an episode ends."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n_actions = int(env.action_space.n)

    def run(n: int) -> None:
        for action in rng.integers(n_actions, size=n):
            _, _, done, cut, _ = env.step(int(action))
            if done or cut:  # OCAtari returns (truncated, terminated); either ends an episode here
                env.reset()

    return run


def measure(game: str, steps: int, repeats: int) -> dict[str, dict[str, float]]:
    """Speeds of ``steps`` masked and plain steps of ``game``, taken in turns: per plain env,
    its steps/s and the ratios (median CPU and wall times, plain / masked)."""
    runs = {
        "masked": stepper(make_masked_env(f"ALE/{game}-v5"), 0),
        "preprocessed": stepper(preprocessed_env(game), 0),
        "bare": stepper(bare_env(game), 0),
    }
    for run in runs.values():
        run(steps // 4)  # warm-up
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            c, w = timed(partial(run, steps))
            cpu[name].append(c)
            wall[name].append(w)
    masked, masked_wall = statistics.median(cpu["masked"]), statistics.median(wall["masked"])
    return {
        name: {
            "steps_s": steps / statistics.median(cpu[name]),
            "masked_steps_s": steps / masked,
            "ratio_cpu": statistics.median(cpu[name]) / masked,
            "ratio_wall": statistics.median(wall[name]) / masked_wall,
        }
        for name in ("preprocessed", "bare")
    }


LABELS = {
    "preprocessed": "OCAtari under AtariPreprocessing (RGB 84x84, skip 4, max-pool)",
    "bare": "bare OCAtari step (210x160, no max-pool, no resize)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=["Pong", "Breakout"])
    parser.add_argument("--steps", type=int, default=2000, help="steps a block")
    parser.add_argument("--repeats", type=int, default=5, help="blocks of each env")
    args = parser.parse_args()
    for game in args.games:
        for name, m in measure(game, args.steps, args.repeats).items():
            verdict = "meets" if m["ratio_cpu"] >= TARGET else "MISSES"
            print(
                f"{game}: masked {m['masked_steps_s']:.0f} steps/s, {LABELS[name]} {m['steps_s']:.0f} "
                f"steps/s; ratio {m['ratio_cpu']:.3f} (CPU time), {m['ratio_wall']:.3f} (wall) - {verdict} "
                f"the target >= {TARGET}"
            )


if __name__ == "__main__":
    main()
