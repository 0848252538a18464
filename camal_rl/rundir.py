"""The run directory: one folder per run, with a fixed layout that compare and plot read.

::

    RUN/
      config.json         resolved TrainConfig (TrainConfig.load reads it back)
      command.txt         the command line that started each training session
      versions.json       python, package versions, git revision
      status.json         {"state": running|interrupted|failed|complete, "num_timesteps": N, ...};
                          "stopped_at_return": R when --stop-return ended training
      model.zip           latest saved model (final, or saved on Ctrl-C / crash)
      replay_buffer.pkl   DQN replay buffer, with --save-replay-buffer
      checkpoints/        step_<N>.zip every --checkpoint-freq steps
      monitor/            SB3 Monitor CSVs, one per env (episode returns during training);
                          unrecorded.json: per env, steps of episodes cut short by a resume
      progress.csv        SB3 logger (train/, rollout/, camal/, eval/ keys); progress.<k>.csv per resume
      events.out.tfevents.*  TensorBoard
      evaluations.csv     periodic evaluation: step, return, length, Grad-CAM EPG / IoU, coverage,
                          share of flat Grad-CAM maps
      metrics.json        `camal-rl evaluate`: returns and every attention metric
      videos/             `camal-rl record`
      .lock               held (flock) by the process that trains or evaluates the run

Model zips and the replay buffer are written to ``<name>.tmp`` and renamed into place, so a kill
at any moment leaves the previous file whole; a file that is not whole anyway (copied in part, a
disk that lost it) is skipped, named, by whatever loads the newest model
(:mod:`camal_rl.savedmodels`). The CSV logs are read and cut back by :mod:`camal_rl.runlogs`; what
a run still needs is :class:`camal_rl.runneeds.RunNeeds`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camal_rl import runlogs, savedmodels
from camal_rl.atomic import write_json
from camal_rl.errors import InputError
from camal_rl.outputs import check_output
from camal_rl.runneeds import RunNeeds

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from camal_rl.config import TrainConfig

STATES = ("running", "interrupted", "failed", "complete")
STOPPED_AT_RETURN = "stopped_at_return"
"""status.json's key for the evaluation return that ended training at ``--stop-return``."""
RUN_ENTRIES = (
    *("config.json", "command.txt", "versions.json", "status.json", "model.zip", "replay_buffer.pkl"),
    "policy.weights.pt",
    *("checkpoints", "monitor", "progress.csv", "progress.*.csv", "events.out.tfevents.*"),
    *("evaluations.csv", "metrics.json", "videos", "plots", ".lock", "*.tmp"),
)
"""Name patterns of what camal-rl writes in a run directory (``plots``: ``camal-rl plot RUN``;
``*.tmp``: a save that a kill cut short): ``--overwrite`` deletes a folder holding nothing else."""
VERSIONED_PACKAGES = ("camal-rl", "torch", "stable-baselines3", "gymnasium", "minigrid", "numpy", "vizdoom")

_HELD_LOCKS: set[Path] = set()
"""The ``.lock`` files this process holds (:meth:`RunDir.locked`)."""


@dataclass(frozen=True)
class RunDir:
    """Paths and small I/O helpers of one run directory.

    :param path: the run's folder (a string is taken as a path).
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def status(self) -> Path:
        return self.path / "status.json"

    @property
    def model(self) -> Path:
        return self.path / "model.zip"

    @property
    def replay_buffer(self) -> Path:
        return self.path / "replay_buffer.pkl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def monitor(self) -> Path:
        return self.path / "monitor"

    @property
    def evaluations(self) -> Path:
        return self.path / "evaluations.csv"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def videos(self) -> Path:
        return self.path / "videos"

    @property
    def sweep_log(self) -> Path:
        """Where a sweep writes the run's output: ``<run>.log`` beside the run directory."""
        return self.path.with_name(self.path.name + ".log")

    def exists(self) -> bool:
        """A run was started here (its config is written)."""
        return self.config.exists()

    def entries(self) -> list[str]:
        """The names in the folder, sorted, folders ending ``/``."""
        return sorted(entry.name + "/" * entry.is_dir() for entry in self.path.iterdir())

    def foreign_entries(self) -> list[str]:
        """The names in the folder that camal-rl does not write in a run (:data:`RUN_ENTRIES`)."""
        return [
            name
            for name in self.entries()
            if not any(fnmatch.fnmatchcase(name.rstrip("/"), pattern) for pattern in RUN_ENTRIES)
        ]

    def is_run(self) -> bool:
        """The folder is a camal-rl run directory: its ``config.json`` is there and nothing that
        camal-rl does not write in a run."""
        return self.config.is_file() and not self.foreign_entries()

    def read_status(self) -> dict[str, Any]:
        """The status record; ``{"state": "missing"}`` when there is none."""
        if not self.status.exists():
            return {"state": "missing"}
        try:
            status: Any = json.loads(self.status.read_text())
        except (OSError, ValueError) as error:
            status = error
        if not isinstance(status, dict):
            kind = type(status).__name__
            why = status if isinstance(status, Exception) else f"a JSON {kind}, not an object"
            raise InputError(
                f"cannot read {self.status} ({why}); restore it, or delete it: the run then counts as "
                "not finished (train --resume continues it from its newest model)"
            )
        return status

    def reached_stop_return(self, stop_return: float | None) -> float | None:
        """The evaluation return that ended training, when the run is complete, stopped at
        ``--stop-return``, and that return is at least ``stop_return``; None otherwise (and for a
        ``stop_return`` of None: the run is asked to train to its budget)."""
        if stop_return is None:
            return None
        status = self.read_status()
        reached = status.get(STOPPED_AT_RETURN)
        if status.get("state") != "complete" or not isinstance(reached, (int, float)):
            return None
        return float(reached) if reached >= stop_return else None

    def read_metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (``camal-rl evaluate``); None when the run was not evaluated.

        :raises InputError: the file is not readable JSON.
        """
        if not self.metrics.exists():
            return None
        try:
            return dict(json.loads(self.metrics.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise InputError(
                f"cannot read {self.metrics} ({error}); rerun camal-rl evaluate {self.path} to rewrite it, "
                "or delete it"
            ) from error

    def write_status(self, state: str, **fields: Any) -> None:
        """Record the run's state (atomically: a crash never leaves half a file)."""
        assert state in STATES, state
        record = {"state": state, "updated": _now(), **fields}
        write_json(self.status, record)

    def is_complete(self) -> bool:
        """The status says training finished. Its model may be gone: a study's committed run
        folders hold the records (status, config, metrics, curves), not the model zips."""
        return self.read_status().get("state") == "complete"

    def saved_models(self) -> list[Path]:
        """The saved models here: ``model.zip`` and the checkpoints that exist."""
        return [p for p in [self.model, *self.checkpoints.glob("step_*.zip")] if p.exists()]

    def has_model(self) -> bool:
        """A saved model is here: ``model.zip`` or a checkpoint."""
        return bool(self.saved_models())

    def is_trained(self) -> bool:
        """Training finished and the final model is saved."""
        return self.is_complete() and self.model.exists()

    def is_evaluated(self) -> bool:
        """Training finished and ``metrics.json`` written for the final model (which may be gone
        since: the results stand)."""
        return self.is_complete() and self.metrics.exists()

    def needs(self, train: TrainConfig, evaluation: Mapping[str, Any] | None = None) -> RunNeeds:
        """What this run still needs, given the training settings ``train`` and the evaluation
        settings ``evaluation`` (``EvaluateConfig.settings``; None: training alone is asked
        about). ``train --resume``, ``compare`` and ``tune`` all go by this answer."""
        return RunNeeds(self, train, evaluation)

    def latest_model(self, say: Callable[[str], None] = print) -> Path:
        """The newest whole saved model (:func:`camal_rl.savedmodels.latest_model`); the broken
        ones skipped are ``say``-ed.

        :raises InputError: there is none, naming the broken ones.
        """
        return savedmodels.latest_model(self, say)

    def load_latest(
        self, load: Callable[[Path], Any], say: Callable[[str], None] = print
    ) -> tuple[Path, Any] | None:
        """``load`` the newest saved model that loads, ``say``-ing each one skipped and why
        (:func:`camal_rl.savedmodels.load_latest`).

        :return: the path loaded and what ``load`` returned; None when no saved model loads.
        """
        return savedmodels.load_latest(self, load, say)

    def progress_files(self) -> list[Path]:
        """SB3 logger CSVs in session order (``progress.csv``, ``progress.1.csv``, ...)."""
        extra = sorted(self.path.glob("progress.*.csv"), key=lambda p: int(p.suffixes[0][1:]))
        return ([self.path / "progress.csv"] if (self.path / "progress.csv").exists() else []) + extra

    def training_time(self) -> tuple[float, float]:
        """(env steps, seconds) of training the progress files log, over all sessions: SB3 logs
        ``time/fps`` and ``time/time_elapsed`` since the start of each session (``learn`` call), so
        each file adds fps x elapsed steps over elapsed seconds (periodic evaluations included);
        (0, 0) when none is logged."""
        steps = seconds = 0.0
        for path in self.progress_files():
            timed = runlogs.rows_with(path, "time/fps", "time/time_elapsed")
            if timed:
                elapsed = float(timed[-1]["time/time_elapsed"])
                steps += float(timed[-1]["time/fps"]) * elapsed
                seconds += elapsed
        return steps, seconds

    def logged_values(self, key: str) -> list[tuple[int, float]]:
        """(env steps, value) of every logger row that has ``key`` (e.g. ``camal/dead_cam_share``),
        over all sessions in order."""
        return [
            (int(float(row["time/total_timesteps"])), float(row[key]))
            for path in self.progress_files()
            for row in runlogs.rows_with(path, "time/total_timesteps", key)
        ]

    def logged_progress(self) -> tuple[int, float]:
        """(env steps, env steps/s) of the newest logger row that has them: how far training had
        got when the logger last wrote, and its speed since that session began (SB3's
        ``time/total_timesteps`` and ``time/fps``); (0, nan) when nothing is logged."""
        for path in reversed(self.progress_files()):
            rows = runlogs.rows_with(path, "time/total_timesteps", "time/fps")
            if rows:
                return int(float(rows[-1]["time/total_timesteps"])), float(rows[-1]["time/fps"])
        return 0, math.nan

    def check_target(self, *, overwrite: bool, resume: bool) -> None:
        """Refuse, before any work, an ``--out`` that cannot take the run: a regular file, a folder
        below one, a place that cannot be written (read-only), a folder that is not a run (never
        deleted, ``overwrite`` or not), a run without ``overwrite`` or ``resume``, or with
        ``resume``, a folder with nothing to resume.

        :raises InputError: saying which, and what to do.
        """
        check_output(self.path, "--out", folder=True)
        if resume:
            if not self.exists():
                raise InputError(
                    f"nothing to resume in {self.path}: no config.json; start the run without --resume"
                )
            return
        if not self.path.exists() or not [e for e in self.path.iterdir() if e.name != ".lock"]:
            return
        if self.config.is_file() and not overwrite:
            raise InputError(
                f"run directory {self.path} exists; pass --resume to continue it, "
                "--overwrite to delete it and start again, or choose another --out"
            )
        if self.is_run():
            return
        names = self.foreign_entries() if self.config.is_file() else self.entries()
        named = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        if not self.config.is_file():
            raise InputError(
                f"{self.path} exists and is not a camal-rl run directory (no config.json; it holds "
                f"{named}); choose another --out: "
                + ("--overwrite replaces only a run, so " if overwrite else "")
                + "nothing was deleted"
            )
        raise InputError(
            f"{self.path} is a camal-rl run, but it also holds what camal-rl did not write ({named}): "
            "--overwrite replaces only a run directory, so nothing was deleted; move those out, or "
            "choose another --out"
        )

    def prepare(self, *, overwrite: bool, resume: bool) -> None:
        """Create the folder for a new run, or check it can be resumed (:meth:`check_target`);
        ``overwrite`` empties a run directory first (but for the ``.lock`` of the process that
        holds it).

        :raises InputError: as :meth:`check_target`.
        """
        self.check_target(overwrite=overwrite, resume=resume)
        if resume:
            return
        if self.path.exists():
            for entry in self.path.iterdir():
                if entry.name == ".lock":
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        self.path.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``RUN/.lock`` for the block: a process that trains or evaluates the run holds it,
        so that no other process writes the run meanwhile (an orphaned sweep worker and the rerun
        that resumed its run). Re-entrant within a process (a sweep's worker holds it around
        train and evaluate); the kernel drops it when the process ends, however it ends. A
        folder it had to create is removed again when nothing but the lock is in it.

        :raises InputError: another live process holds it (its pid named), or the lock cannot be
            written.
        """
        lock = self.path.absolute() / ".lock"
        if lock in _HELD_LOCKS or sys.platform == "win32":  # no flock there
            yield
            return
        created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InputError(f"cannot write {lock} ({error.strerror or error}); check --out") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(
                f"{self.path} is in use: process {holder} is training or evaluating it (it holds "
                f"{lock}); wait for it to end, or stop it (kill {holder}), then run this again"
            ) from None
        _HELD_LOCKS.add(lock)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            _HELD_LOCKS.discard(lock)
            if created and self.path.is_dir() and {e.name for e in self.path.iterdir()} <= {".lock"}:
                lock.unlink(missing_ok=True)
                self.path.rmdir()
            os.close(fd)

    def append_command(self, argv: Sequence[str]) -> None:
        """Add the command line of this session to ``command.txt``."""
        with (self.path / "command.txt").open("a") as f:
            f.write(f"{_now()}  {' '.join(argv)}\n")

    def write_versions(self) -> None:
        """Record python, the platform and CPU (:func:`cpu_description`), package versions and
        the git revision of the working tree."""
        versions: dict[str, Any] = {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            **cpu_description(),
        }
        for package in VERSIONED_PACKAGES:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        versions["git_revision"] = git_revision()
        write_json(self.path / "versions.json", versions)

    def append_evaluation(self, row: Mapping[str, Any]) -> None:
        """Add one periodic-evaluation row to ``evaluations.csv``
        (:func:`camal_rl.runlogs.append_evaluation`)."""
        runlogs.append_evaluation(self.evaluations, row)

    def rewind(self, steps: int, n_envs: int) -> dict[str, int]:
        """Forget what the run recorded after step ``steps``, before resuming from a model saved
        there (:func:`camal_rl.runlogs.rewind`).

        :return: rows dropped per record: ``evaluations``, ``episodes``, ``progress``.
        """
        return runlogs.rewind(self, steps, n_envs)

    def read_evaluations(self) -> list[dict[str, float]]:
        """Rows of ``evaluations.csv`` as floats (empty cells become nan), less the lines that a
        crash cut short or garbled (:func:`camal_rl.runlogs.read_evaluations`)."""
        return runlogs.read_evaluations(self.evaluations)


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str | None]:
    """``cpu``: the processor's model name (Linux's ``cpuinfo``, else ``platform.processor()``;
    None when neither names it); ``cpu_capability``: the instruction set torch's CPU kernels
    dispatch to (``AVX512``, ``AVX2``, ``DEFAULT``, ...). CPU training repeats to the bit only on
    CPUs that run the same kernels."""
    import torch

    name = None
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
                break
    except OSError:
        pass
    return {
        "cpu": name or platform.processor() or None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


SOURCE_CHECKOUT = Path(__file__).resolve().parents[1]
"""The folder above this package: a source checkout's root for an editable install, the
interpreter's library folder (no git repository of camal-rl's) for an installed wheel."""


def git_revision(source: Path = SOURCE_CHECKOUT) -> str | None:
    """``git describe --always --dirty`` of the source checkout ``source``, or None when it is no
    git checkout's root: an installed wheel has none, and the git repository of a project whose
    venv holds the wheel is not camal-rl's revision."""
    if not (source / ".git").exists():  # a folder in a clone, a file in a worktree
        return None
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=source, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
