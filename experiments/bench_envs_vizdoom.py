"""Speed of the masked ViZDoom basic env against vizdoom's own env, measured side by side.

Three envs replay one fixed random action sequence at the same resolution and frame skip:

- ``plain``: vizdoom's ``VizdoomBasic-v1`` gymnasium env, labels buffer off (the baseline);
- ``labels``: the same with the labels buffer on, no mask (what the engine's labels cost);
- ``masked``: ``make_vizdoom_masked_env("VizdoomBasic-v1")`` (labels buffer + mask wrapper).

Repetitions rotate the order (A B C, B C A, C A B, ...) so machine noise hits all alike; the table
reports median steps/s of each and the medians of the per-repetition ratios. Target:
masked / plain >= 0.90. The engine renders the labels buffer itself, so labels / plain bounds what
any wrapper can reach; masked / labels is the wrapper's own cost.

Run: ``python experiments/bench_envs_vizdoom.py`` (needs the extra: pip install 'camal-rl[vizdoom]').
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from camal_rl.envs.vizdoom import make_vizdoom_masked_env

BASE_ID = "VizdoomBasic-v1"
TARGET_RATIO = 0.90
VARIANTS = ("plain", "labels", "masked")
CONFIGS = (((120, 160), 1), ((120, 160), 4), ((240, 320), 1))
"""(resolution (H, W), frame_skip) pairs measured by default."""

Row = dict[str, float | str]
"""One table row: env, resolution, frame_skip, median steps/s per variant and median ratios."""


def make_variant(variant: str, resolution: tuple[int, int], frame_skip: int) -> gym.Env:
    """One of :data:`VARIANTS`, headless and silent, at ``resolution`` and ``frame_skip``."""
    if variant == "masked":
        return make_vizdoom_masked_env(BASE_ID, resolution=resolution, frame_skip=frame_skip)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import vizdoom
    import vizdoom.gymnasium_wrapper  # registers vizdoom's ids

    height, width = resolution
    return gym.make(
        BASE_ID,
        disable_env_checker=True,
        frame_skip=frame_skip,
        screen_resolution=getattr(vizdoom.ScreenResolution, f"RES_{width}X{height}"),
        labels_buffer_enabled=variant == "labels",
        sound_enabled=False,
    )


def steps_per_second(env: gym.Env, actions: np.ndarray, seed: int) -> float:
    """Steps per wall-clock second (the engine runs in its own process, so CPU time would miss it)."""
    from experiments.bench_envs import steps_per_second as replay  # importable once main() set sys.path

    return replay(env, actions, seed, clock=time.perf_counter)


def bench_config(
    resolution: tuple[int, int], frame_skip: int, steps: int, repeats: int, seed: int = 0
) -> Row:
    """Interleaved repetitions of the three variants on the same actions; one table row."""
    envs = {variant: make_variant(variant, resolution, frame_skip) for variant in VARIANTS}
    action_space = envs["plain"].action_space
    assert isinstance(action_space, gym.spaces.Discrete)
    actions = np.random.default_rng(seed).integers(0, action_space.n, size=steps)
    for env in envs.values():  # warm-up
        steps_per_second(env, actions[: max(1, steps // 10)], seed)
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for rep in range(repeats):
        shift = rep % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            rates[variant].append(steps_per_second(envs[variant], actions, seed))
    for env in envs.values():
        env.close()

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    return {
        "env": BASE_ID,
        "resolution": f"{resolution[0]}x{resolution[1]}",
        "frame_skip": frame_skip,
        **{f"{variant}_steps_per_s": statistics.median(rates[variant]) for variant in VARIANTS},
        "masked_vs_plain": ratio("masked", "plain"),
        "labels_vs_plain": ratio("labels", "plain"),
        "masked_vs_labels": ratio("masked", "labels"),
    }


def format_rows(rows: Sequence[Row]) -> str:
    """The printed table."""
    header = (
        f"{'env':16s} {'HxW':8s} {'skip':>4s} {'plain/s':>8s} {'labels/s':>8s} {'masked/s':>8s} "
        f"{'masked/plain':>12s} {'labels/plain':>12s} {'masked/labels':>13s}  "
        f"target masked/plain>={TARGET_RATIO}"
    )
    lines = [header]
    for row in rows:
        verdict = "ok" if float(row["masked_vs_plain"]) >= TARGET_RATIO else "SLOW"
        lines.append(
            f"{row['env']!s:16s} {row['resolution']!s:8s} {row['frame_skip']!s:>4s} "
            f"{row['plain_steps_per_s']:8.0f} {row['labels_steps_per_s']:8.0f} "
            f"{row['masked_steps_per_s']:8.0f} "
            f"{row['masked_vs_plain']:12.3f} {row['labels_vs_plain']:12.3f} {row['masked_vs_labels']:13.3f}  "
            f"{verdict}"
        )
    return "\n".join(lines)


def bench_vizdoom(
    steps: int = 1000, repeats: int = 7, configs: Sequence[tuple[tuple[int, int], int]] = CONFIGS
) -> list[Row]:
    """Measure every (resolution, frame_skip) of ``configs``; print the table and return its rows."""
    rows = [bench_config(resolution, frame_skip, steps, repeats) for resolution, frame_skip in configs]
    print(format_rows(rows))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--steps``, ``--repeats``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="env steps per repetition")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repetitions per env")
    args = parser.parse_args(argv)
    bench_vizdoom(args.steps, args.repeats)


if __name__ == "__main__":
    # Run as a script, the repository root is not on sys.path; `experiments.*` needs it.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
