"""How well each Atari mask class matches the objects it labels, per game and class.

For every task-relevant object OCAtari reports, on every 5th of 3000 random-play frames (one
emulator frame a step, 210x160, no sticky actions), the object's pixels are taken from the frame
alone: those inside its box that differ from the frame's most common colour (the background),
leaving out pixels inside any other object's box. The pixels the mask labels inside the box (any
class: a neighbour's grown box may label a pixel there) are compared with them. Printed per
class: its refinement (colour or box), the share of objects whose labelled pixels equal those
found, and the pixels that differ over the pixels found. The first frame of a game is drawn in
another palette: its objects count as differing.

A colour class with 100% (Pong, Breakout) labels exactly the drawn objects; a box class labels
background too (its differing pixels are mostly that background).

Run: ``python experiments/atari/mask_agreement.py [GAME ...]`` (default: every supported game).
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from camal_rl.envs import make_masked_env
from camal_rl.envs.atari import AtariMaskedEnv
from camal_rl.envs.atari_classes import ATARI_GAMES


def background(frame: np.ndarray) -> np.ndarray:
    colours, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def agreement(game: str, frames: int = 3000) -> dict[str, list[int]]:
    """Class name -> [objects, objects matched exactly, pixels differing, object pixels]."""
    env = make_masked_env(
        f"ALE/{game}-v5", screen_size=None, frame_skip=1, noop_max=0, repeat_action_probability=0.0
    )
    assert isinstance(env, AtariMaskedEnv)
    classes = ATARI_GAMES[game]
    value = {cat: k for k, cls in enumerate(classes.values(), 1) for cat in cls.categories}
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for t in range(frames):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(len(env.action_names))))
        if terminated or truncated:
            obs, _ = env.reset()
        if t % 5:
            continue
        frame, mask = obs["image"], obs["mask"]
        bg = background(frame)
        boxes = [(obj, tuple(int(v) for v in obj.xywh)) for obj in env._objects if obj]
        for obj, (x, y, w, h) in boxes:
            k = value.get(obj.category)
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, 160), min(y + h, 210)
            if k is None or x1 <= x0 or y1 <= y0:
                continue
            others = np.zeros((210, 160), bool)
            for other, (a, b, c, d) in boxes:
                if other is not obj:
                    others[max(b, 0) : max(b + d, 0), max(a, 0) : max(a + c, 0)] = True
            box = (slice(y0, y1), slice(x0, x1))
            drawn = np.any(frame[box] != bg, axis=-1) & ~others[box]
            labelled = (mask[box] > 0) & ~others[box]
            row = stats[list(classes)[k - 1]]
            row[0] += 1
            row[1] += int(np.array_equal(drawn, labelled))
            row[2] += int((drawn != labelled).sum())
            row[3] += int(drawn.sum())
    env.close()
    return stats


def main() -> None:
    for game in sys.argv[1:] or list(ATARI_GAMES):
        for name, (objects, exact, differing, pixels) in agreement(game).items():
            refinement = ATARI_GAMES[game][name].refinement
            print(
                f"{game:13s} {name:10s} {refinement:6s} objects {objects:6d}, matched exactly "
                f"{exact / objects:6.1%}, pixels differing {differing}/{pixels}"
            )


if __name__ == "__main__":
    main()
