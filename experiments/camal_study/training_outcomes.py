"""How the training episodes of each run ended: reached the goal (a positive return), ended early
with nothing (in LavaCrossing: stepped into lava), or ran out of time. Over the whole run and over
its last fifth, from the runs' monitor files.

    python experiments/camal_study/training_outcomes.py SWEEP_OR_RUN [...]

Tells an exploration failure (the goal is almost never reached, even while the policy is still
random) from a policy that reached the goal and then lost it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid ids)
import numpy as np
import pandas as pd

from camal_rl.statistics import find_runs
from camal_rl.tables import markdown_table


def episodes(run: Path) -> pd.DataFrame:
    """The run's training episodes, each with its position in its env's sequence (0 = first,
    1 = last; a resumed run appends to its monitor files, so file order is time order)."""
    frames = [pd.read_csv(f, skiprows=1) for f in sorted((run / "monitor").glob("*.monitor.csv"))]
    if not frames:
        raise SystemExit(f"{run}: no monitor/*.monitor.csv (not a training run directory?)")
    for frame in frames:
        frame["position"] = np.linspace(0.0, 1.0, len(frame), endpoint=False)
    return pd.concat(frames).sort_values("position", kind="stable")


def time_limit(env_id: str) -> int:
    env = gym.make(env_id)
    try:
        return int(env.unwrapped.max_steps)  # type: ignore[attr-defined]
    finally:
        env.close()


def outcomes(frame: pd.DataFrame, limit: int) -> dict[str, float]:
    goal = frame["r"] > 0
    timed_out = ~goal & (frame["l"] >= limit)
    return {
        "episodes": len(frame),
        "goal": float(goal.mean()),
        "ended early, no reward": float((~goal & ~timed_out).mean()),
        "timed out": float(timed_out.mean()),
    }


def runs_under(path: Path) -> list[Path]:
    found = [run for run in find_runs([path]) if (run / "monitor").is_dir()] if path.exists() else []
    if not found:
        raise SystemExit(f"{path}: no run directories (config.json beside monitor/) under it")
    return found


def outcome_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per run under ``paths``: the share of each outcome, overall and in the last fifth."""
    rows = []
    for run in [run for path in paths for run in runs_under(path)]:
        config = json.loads((run / "config.json").read_text())
        frame = episodes(run)
        limit = time_limit(config["env"])
        last = frame[frame["position"] >= 0.8]
        row = {"run": f"{run.parent.name}/{run.name}", "steps": int(frame["l"].sum())}
        row |= {f"all: {k}": v for k, v in outcomes(frame, limit).items()}
        row |= {f"last fifth: {k}": v for k, v in outcomes(last, limit).items() if k != "episodes"}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+", help="sweep folders or run directories")
    rows = outcome_rows(parser.parse_args(argv).paths)
    header = list(rows[0])
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows]
    print("\n".join(markdown_table(header, cells)))


if __name__ == "__main__":
    main()
