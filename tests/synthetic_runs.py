"""Synthetic run directories with the exact layout of :mod:`camal_rl.rundir`, for the statistics
and plots tests: no training, every number chosen by the test."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.atomic import write_json
from camal_rl.config import TrainConfig
from camal_rl.rundir import RunDir
from camal_rl.statistics import summarize


def metrics_report(
    returns: Sequence[float],
    saliency: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    behaviour: Mapping[str, Sequence[float]] | None = None,
    distractor_returns: Sequence[float] | None = None,
    **identity: Any,
) -> dict[str, Any]:
    """A ``metrics.json`` shaped like :func:`camal_rl.evaluation.evaluate` writes it.

    :param returns: per-episode returns on the training env.
    :param saliency: method -> metric -> per-episode values.
    :param behaviour: behaviour metric -> per-episode values.
    :param distractor_returns: per-episode returns on the distractor variant (None: no variant).
    :param identity: top-level fields (algo, env, method, label, seed, num_timesteps, ...).
    """

    def variant(rets: Sequence[float]) -> dict[str, Any]:
        r = np.asarray(rets, np.float64)
        return {
            "env_kwargs": {},
            "episodes": len(r),
            "seed": 1_000_000,
            "return": summarize(r, n_resamples=50).to_dict(),
            "length": summarize(np.full(len(r), 10.0), n_resamples=50).to_dict(),
            "success_rate": float((r > 0).mean()),
            "per_episode_return": r.tolist(),
            "steps_scored": 10 * len(r),
            "coverage": 1.0,
            "saliency": {
                method: {
                    name: summarize(np.asarray(v, np.float64), n_resamples=50).to_dict()
                    for name, v in m.items()
                }
                for method, m in (saliency or {}).items()
            },
            "behaviour": {
                name: summarize(np.asarray(v, np.float64), n_resamples=50).to_dict()
                for name, v in (behaviour or {}).items()
            },
        }

    report: dict[str, Any] = {
        **identity,
        "methods": list(saliency or {}),
        "variants": {"train": variant(returns)},
    }
    if distractor_returns is not None:
        report["variants"]["distractors"] = variant(distractor_returns)
    return report


def write_run(
    root: Path,
    *,
    method: str = "camal",
    seed: int = 0,
    algo: str = "ppo",
    env: str = "MiniGrid-DoorKey-5x5-v0",
    coef: float | None = None,
    state: str | None = "complete",
    steps: int = 1000,
    evaluations: Sequence[Mapping[str, float]] = (),
    metrics: Mapping[str, Any] | None = None,
    monitor: Sequence[Sequence[tuple[float, int]]] | None = None,
) -> Path:
    """Write one run directory ``root/<env>/<label>/seed<seed>`` and return its path.

    :param state: ``status.json`` state (None: no status file).
    :param evaluations: rows of ``evaluations.csv``.
    :param metrics: ``metrics.json`` content (None: not evaluated).
    :param monitor: per env, its episodes as (return, length), written as SB3 Monitor CSVs.
    """
    cfg = TrainConfig(algo=algo, env=env, method=method, coef=coef, seed=seed, steps=steps)  # type: ignore[arg-type]
    path = root / env / cfg.label / f"seed{seed}"
    run = RunDir(path)
    path.mkdir(parents=True)
    write_json(run.config, dataclasses.replace(cfg, out=path).resolved().to_json())
    if state is not None:
        run.write_status(state, num_timesteps=steps)
    for row in evaluations:
        run.append_evaluation(row)
    if metrics is not None:
        write_json(run.metrics, metrics)
    for rank, episodes in enumerate(monitor or ()):
        run.monitor.mkdir(exist_ok=True)
        lines = ['#{"t_start": 1700000000.0, "env_id": "x"}', "r,l,t"]
        lines += [f"{r},{length},{i + 1.0}" for i, (r, length) in enumerate(episodes)]
        (run.monitor / f"{rank}.monitor.csv").write_text("\n".join(lines) + "\n")
    return path
