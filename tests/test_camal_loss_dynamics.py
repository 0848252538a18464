"""experiments/camal_loss/dynamics.py: window means of logged values, worked out by hand."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from camal_rl.statistics import RunResult
from experiments.camal_loss.dynamics import tables, window_means, window_names


def test_window_means_average_the_values_whose_step_lies_in_each_window() -> None:
    values = [(0, 1.0), (49_999, 3.0), (50_000, 10.0), (200_000, 5.0), (300_000, 7.0)]
    # [0, 50k): (1 + 3) / 2; [50k, 150k): 10; [150k, end): (5 + 7) / 2
    assert window_means(values, (0, 50_000, 150_000)) == [2.0, 10.0, 6.0]
    empty = window_means([(10, 4.0)], (0, 50_000, 150_000))
    assert empty[0] == 4.0
    assert math.isnan(empty[1])
    assert math.isnan(empty[2])
    assert window_names((0, 50_000, 150_000)) == ["0-50k", "50k-150k", "150k-end"]
    assert window_names((0, 100_000)) == ["0-100k", "100k-end"]
    assert window_names((0,)) == ["0-end"]


def write_progress(path: Path, rows: list[dict[str, float]]) -> None:
    columns = sorted({key for row in rows for key in row})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def run(path: Path, method: str, seed: int, solved_at: float | None) -> RunResult:
    """A run directory (logger files written by the test) whose periodic evaluations first reach
    a return of 0.9 at ``solved_at`` (never when None)."""
    path.mkdir(parents=True)
    evaluations = ({"step": 0.0, "return_mean": 0.0},)
    if solved_at is not None:
        evaluations += ({"step": solved_at, "return_mean": 0.95},)
    env = "MiniGrid-DoorKey-5x5-v0"
    return RunResult(path, env, "ppo", method, f"ppo-{method}", seed, 1.0, 200_000, "complete", evaluations)


def test_tables_take_every_session_and_drop_what_no_run_logs(tmp_path: Path) -> None:
    camal0 = run(tmp_path / "camal0", "camal", 0, 70_000)
    # the first session logs up to 60k, the resumed one (progress.1.csv) from there on
    write_progress(
        camal0.path / "progress.csv",
        [
            {"time/total_timesteps": 10_000, "camal/grad_scale": 0.4, "train/approx_kl": 0.001},
            {"time/total_timesteps": 30_000, "camal/grad_scale": 0.6, "train/approx_kl": 0.003},
            {"time/total_timesteps": 60_000, "camal/grad_scale": 0.9, "train/approx_kl": 0.004},
        ],
    )
    write_progress(
        camal0.path / "progress.1.csv",
        [{"time/total_timesteps": 160_000, "camal/grad_scale": 1.0, "train/approx_kl": 0.002}],
    )
    camal1 = run(tmp_path / "camal1", "camal", 1, 90_000)
    write_progress(
        camal1.path / "progress.csv",
        [
            {"time/total_timesteps": 20_000, "camal/grad_scale": 0.8, "train/approx_kl": 0.005},
            {"time/total_timesteps": 170_000, "camal/grad_scale": 1.0, "train/approx_kl": 0.001},
        ],
    )
    none0 = run(tmp_path / "none0", "none", 0, 60_000)
    write_progress(
        none0.path / "progress.csv",
        [
            {"time/total_timesteps": 10_000, "train/approx_kl": 0.006},  # no grad_scale: not camal
            {"time/total_timesteps": 100_000, "rollout/ep_rew_mean": 0.5},  # a row without the keys
        ],
    )
    per_run, medians = tables([camal0, none0, camal1])
    # no run logs train/entropy_loss: its columns are dropped
    assert per_run[0] == (
        "| variant | seed | first eval solved | camal/grad_scale 0-50k | camal/grad_scale 50k-150k "
        "| camal/grad_scale 150k-end | train/approx_kl 0-50k | train/approx_kl 50k-150k "
        "| train/approx_kl 150k-end |"
    )
    # sorted by method (none first), then seed; camal seed 0: grad_scale (0.4 + 0.6) / 2 = 0.5 before
    # 50k, 0.9, then 1.0 from progress.1.csv; approx_kl (0.001 + 0.003) / 2 = 0.002, 0.004, 0.002
    assert per_run[2:] == [
        "| ppo-none | 0 | 60k | - | - | - | 0.006 | - | - |",
        "| ppo-camal | 0 | 70k | 0.5 | 0.9 | 1 | 0.002 | 0.004 | 0.002 |",
        "| ppo-camal | 1 | 90k | 0.8 | - | 1 | 0.005 | - | 0.001 |",
    ]
    # camal's medians over its two seeds: (0.5 + 0.8) / 2 = 0.65, 0.9 (one seed logs it), 1, ...
    assert medians[2:] == [
        "| ppo-none | 1 | - | - | - | 0.006 | - | - |",
        "| ppo-camal | 2 | 0.65 | 0.9 | 1 | 0.0035 | 0.004 | 0.0015 |",
    ]


def test_tables_of_a_run_without_logger_files_show_dashes(tmp_path: Path) -> None:
    lonely = run(tmp_path / "lonely", "camal", 0, None)
    per_run, medians = tables([lonely])
    assert per_run[0] == "| variant | seed | first eval solved |"  # nothing logged, nothing kept
    assert per_run[2] == "| ppo-camal | 0 | never |"
    assert medians[2] == "| ppo-camal | 1 |"
