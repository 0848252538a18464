"""``camal-rl export-weights``: write each run's trained policy as weights alone
(:mod:`camal_rl.weights`), small enough to commit, which ``evaluate`` and ``record`` load when the
run's model zip is gone; or re-encode a run's weights file (one of version 1 into int10)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.weights import DTYPES, WEIGHTS_FILE, Dtype, ExportedWeights, read_weights, write_weights


@dataclass(frozen=True)
class ExportWeightsConfig:
    """Write each run's trained policy as weights alone (RUN/policy.weights.pt: its largest matrices
    in 10 bits an entry when it then predicts as before, else float16 or float32; 0.71 MB for a
    MiniGrid agent in int10), which `camal-rl evaluate` and `record` load when the run's model zip is
    gone."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN [RUN ...]")]
    """Run directories, or folders holding them (a sweep's): each run's newest model zip is exported."""
    dtype: Dtype = "auto"
    """auto: the first of int10 (matrices of 65,536 entries or more in 10-bit integers with a scale for
    each 64 entries of a row, the rest float16) and float16 with which, on 256 observations, the
    greedy actions are the same, the logits or Q-values within 1e-3 of the largest and the Grad-CAM
    maps within 1e-2 of their mean on average and 5e-2 of their largest anywhere, else float32; int10
    or float16: that, its check reported all the same; float32: float32 (exact)."""
    from_weights: bool = False
    """Re-encode each run's policy.weights.pt (one of version 1 too), checked against that file's own
    weights, instead of exporting its model zip: to shrink the weights of a run whose zip is gone."""
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


def reencode_weights(run_path: Path, *, dtype: Dtype = "auto", device: str = "cpu") -> ExportedWeights:
    """Write ``RUN/policy.weights.pt`` again from itself (of any version
    :func:`~camal_rl.weights.read_weights` reads) in ``dtype``, holding the run's lock meanwhile: for
    a run whose model zip is gone. Its check compares with the weights the file held, so the
    differences from the zip's policy add up: a float16 file re-encoded in int10 may move a score by
    1e-3 of the largest twice (:data:`~camal_rl.weights_check.TOLERANCE`).

    :raises InputError: not a run directory, no weights file there, one that does not load, or the
        run in use (training).
    """
    from camal_rl.loading import load_agent

    run = RunDir(run_path)
    if not run.exists():
        raise InputError(f"{run_path} is not a run directory (no config.json)")
    weights = run.path / WEIGHTS_FILE
    if not weights.exists():
        raise InputError(
            f"{run_path} holds no {WEIGHTS_FILE} to re-encode; export it from the run's model zip "
            "(camal-rl export-weights RUN, without --from-weights)"
        )
    with run.locked():
        saved = read_weights(weights)
        agent = load_agent(weights, device=device)
        source = f"{saved.source or 'a model zip'} by way of {saved.dtype} weights"
        return write_weights(
            agent.model, weights, lambda: agent.make_env(agent.env_kwargs), dtype=dtype, source=source
        )


def export_weights_command(cfg: ExportWeightsConfig) -> list[ExportedWeights]:
    """``camal-rl export-weights``: export every run at or under ``cfg.runs``, printing each file and
    its size. A run whose model zip is gone but whose weights file is there is left as it is, unless
    ``cfg.from_weights`` asks to re-encode each run's weights file (:func:`reencode_weights`).

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
        if not cfg.from_weights and not run.has_model() and (run.path / WEIGHTS_FILE).exists():
            print(
                f"kept {run.path / WEIGHTS_FILE}: the run holds no model zip to export it from again "
                "(--from-weights re-encodes it)"
            )
            continue
        write = reencode_weights if cfg.from_weights else export_weights
        try:
            exported = write(path, dtype=cfg.dtype, device=cfg.device)
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
