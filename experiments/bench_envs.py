"""Speed of the masked envs against the plain RGB wrappers, measured side by side.

For each env and view, the masked env (``make_masked_env``) and the same env under MiniGrid's
own RGB wrapper (``RGBImgPartialObsWrapper`` / ``RGBImgObsWrapper`` + ``ImgObsWrapper``) replay one
fixed random action sequence. Repetitions alternate between the two (A B A B ...) so machine noise
hits both alike; the table reports median steps/s of each and the median of the per-repetition
ratios masked / plain. Rates are per CPU second of this process, so other load on a shared
machine does not count. Target: ratio >= 0.90 (the mask costs at most 10%).

Run: ``python experiments/bench_envs.py`` (``make bench``). The ViZDoom part lives in
``experiments/bench_envs_vizdoom.py`` and runs when vizdoom is installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from minigrid.wrappers import ImgObsWrapper, RGBImgObsWrapper, RGBImgPartialObsWrapper

from camal_rl.envs import make_masked_env

ENV_IDS = ("MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-8x8-v0")
TARGET_RATIO = 0.90


@dataclass(frozen=True)
class BenchRow:
    """One line of the table."""

    env_id: str
    view: str
    plain_steps_per_s: float
    masked_steps_per_s: float
    ratio: float
    """Median over repetitions of masked / plain steps/s."""


def plain_env(env_id: str, view: str, tile_size: int = 8) -> gym.Env:
    """The baseline: MiniGrid's RGB wrapper of ``view`` and ``ImgObsWrapper``."""
    env = gym.make(env_id, disable_env_checker=True)
    rgb = RGBImgPartialObsWrapper if view == "partial" else RGBImgObsWrapper
    return ImgObsWrapper(rgb(env, tile_size=tile_size))


def steps_per_second(
    env: gym.Env, actions: np.ndarray, seed: int, clock: Callable[[], float] = time.process_time
) -> float:
    """Steps per second replaying ``actions`` from ``reset(seed=seed)``, resets included. The
    default clock is this process's CPU time, so other processes on a shared machine do not count;
    pass ``time.perf_counter`` for envs that run their engine in another process (ViZDoom)."""
    env.reset(seed=seed)
    start = clock()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    return len(actions) / (clock() - start)


def bench_pair(env_id: str, view: str, steps: int, repeats: int, seed: int = 0) -> BenchRow:
    """Interleaved repetitions of the plain and the masked env on the same actions."""
    factories: dict[str, Callable[[], gym.Env]] = {
        "plain": lambda: plain_env(env_id, view),
        "masked": lambda: make_masked_env(env_id, view=view),
    }
    envs = {name: make() for name, make in factories.items()}
    actions = np.random.default_rng(seed).integers(0, 3, size=steps)  # left, right, forward
    for env in envs.values():  # warm MiniGrid's tile cache
        steps_per_second(env, actions[: steps // 10], seed)
    rates: dict[str, list[float]] = {"plain": [], "masked": []}
    for rep in range(repeats):
        order = ("plain", "masked") if rep % 2 == 0 else ("masked", "plain")
        for name in order:
            rates[name].append(steps_per_second(envs[name], actions, seed))
    for env in envs.values():
        env.close()
    ratios = [m / p for m, p in zip(rates["masked"], rates["plain"], strict=True)]
    return BenchRow(
        env_id,
        view,
        statistics.median(rates["plain"]),
        statistics.median(rates["masked"]),
        statistics.median(ratios),
    )


def format_rows(rows: list[BenchRow]) -> str:
    """The printed table."""
    lines = [
        f"{'env':28s} {'view':8s} {'plain/s':>9s} {'masked/s':>9s} {'ratio':>6s}  target>={TARGET_RATIO}"
    ]
    for row in rows:
        verdict = "ok" if row.ratio >= TARGET_RATIO else "SLOW"
        lines.append(
            f"{row.env_id:28s} {row.view:8s} {row.plain_steps_per_s:9.0f} {row.masked_steps_per_s:9.0f} "
            f"{row.ratio:6.3f}  {verdict}"
        )
    return "\n".join(lines)


def bench_minigrid(steps: int = 500, repeats: int = 15) -> list[BenchRow]:
    """Every env of :data:`ENV_IDS` in both views."""
    return [bench_pair(env_id, view, steps, repeats) for env_id in ENV_IDS for view in ("partial", "full")]


def run_vizdoom_part() -> None:
    """``experiments.bench_envs_vizdoom.bench_vizdoom()`` if it and vizdoom are installed."""
    if importlib.util.find_spec("vizdoom") is None:
        print("ViZDoom: skipped (vizdoom not installed: pip install 'camal-rl[vizdoom]')")
        return
    try:
        module = importlib.import_module("experiments.bench_envs_vizdoom")
    except ModuleNotFoundError as error:
        if error.name != "experiments.bench_envs_vizdoom":
            raise
        print("ViZDoom: skipped (experiments/bench_envs_vizdoom.py not found)")
        return
    module.bench_vizdoom()


def main(argv: list[str] | None = None) -> None:
    """Print the MiniGrid table, then the ViZDoom part."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="env steps per repetition")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repetitions per pair")
    parser.add_argument("--skip-vizdoom", action="store_true", help="MiniGrid only")
    args = parser.parse_args(argv)
    print(format_rows(bench_minigrid(args.steps, args.repeats)))
    if not args.skip_vizdoom:
        run_vizdoom_part()


if __name__ == "__main__":
    # Run as a script, the repository root is not on sys.path; `experiments.*` needs it.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
