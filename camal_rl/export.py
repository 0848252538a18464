"""``camal-rl export-weights``: write each run's trained policy as weights alone
(:mod:`camal_rl.weights`), small enough to commit, which ``evaluate`` and ``record`` load when the
run's model zip is gone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.weights import DTYPES, WEIGHTS_FILE, Dtype, ExportedWeights, write_weights


@dataclass(frozen=True)
class ExportWeightsConfig:
    """Write each run's trained policy as weights alone (RUN/policy.weights.pt: float16 when it then
    predicts as before, else float32; under 1 MB for a MiniGrid agent), which `camal-rl evaluate` and
    `record` load when the run's model zip is gone."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN [RUN ...]")]
    """Run directories, or folders holding them (a sweep's): each run's newest model zip is exported."""
    dtype: Dtype = "auto"
    """auto: float16 when the greedy actions on 256 observations are the same and the logits or
    Q-values within 1e-3 of the largest, else float32; float16: float16, its check reported all the
    same; float32: float32 (exact)."""
    device: str = "cpu"
    """Torch device the models are loaded on for the check."""


def export_weights(run_path: Path, *, dtype: Dtype = "auto", device: str = "cpu") -> ExportedWeights:
    """Write ``RUN/policy.weights.pt`` from the run's newest model zip (safely loaded:
    :func:`camal_rl.loading.load_agent`), holding the run's lock meanwhile.

    :raises InputError: not a run directory, no model zip there, or the run in use (training).
    """
    from camal_rl.loading import load_agent

    run = RunDir(run_path)
    if not run.exists():
        raise InputError(f"{run_path} is not a run directory (no config.json)")
    if not run.has_model():
        raise InputError(f"{run_path} holds no model zip to export (model.zip or checkpoints/step_*.zip)")
    with run.locked():
        agent = load_agent(run.path, device=device)
        weights = run.path / WEIGHTS_FILE
        source = str(agent.model_path.relative_to(run.path))
        return write_weights(
            agent.model, weights, lambda: agent.make_env(agent.env_kwargs), dtype=dtype, source=source
        )


def export_weights_command(cfg: ExportWeightsConfig) -> list[ExportedWeights]:
    """``camal-rl export-weights``: export every run at or under ``cfg.runs``, printing each file and
    its size. A run whose model zip is gone but whose weights file is there is left as it is.

    :raises InputError: no run found, or some runs could not be exported (after the others are).
    """
    from camal_rl.statistics import find_runs

    if cfg.dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")
    runs = find_runs(cfg.runs)
    if not runs:
        raise InputError(
            f"no run directory (a folder with config.json) at or under {', '.join(map(str, cfg.runs))}"
        )
    written: list[ExportedWeights] = []
    failed: list[str] = []
    for path in runs:
        run = RunDir(path)
        if not run.has_model() and (run.path / WEIGHTS_FILE).exists():
            print(f"kept {run.path / WEIGHTS_FILE}: the run holds no model zip to export it from again")
            continue
        try:
            exported = export_weights(path, dtype=cfg.dtype, device=cfg.device)
        except InputError as error:
            failed.append(str(error))
            if len(runs) > 1:
                print(f"skipped {path}: {error}")
            continue
        print(exported.describe(), flush=True)
        written.append(exported)
    if len(runs) == 1 and failed:
        raise InputError(failed[0])
    if failed:
        raise InputError(f"{len(failed)} of {len(runs)} runs not exported (above); the first: {failed[0]}")
    return written
