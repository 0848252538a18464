"""The run directory: one folder per run, with a fixed layout that compare and plot read.

::

    RUN/
      config.json         resolved TrainConfig (TrainConfig.load reads it back)
      command.txt         the command line that started each training session
      versions.json       python, package versions, git revision
      status.json         {"state": running|interrupted|failed|complete, "num_timesteps": N, ...}
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
disk that lost it) is skipped, named, by whatever loads the newest model.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fnmatch
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camal_rl.errors import InputError
from camal_rl.outputs import check_output

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from camal_rl.config import TrainConfig

STATES = ("running", "interrupted", "failed", "complete")
EVALUATION_FIELDS = (
    "step",
    "episodes",
    "return_mean",
    "return_std",
    "length_mean",
    "epg",
    "iou",
    "coverage",
    "flat_share",
    "wall_time_s",
)
RUN_ENTRIES = (
    *("config.json", "command.txt", "versions.json", "status.json", "model.zip", "replay_buffer.pkl"),
    "policy.weights.pt",
    *("checkpoints", "monitor", "progress.csv", "progress.*.csv", "events.out.tfevents.*"),
    *("evaluations.csv", "metrics.json", "videos", "plots", ".lock", "*.tmp"),
)
"""Name patterns of what camal-rl writes in a run directory (``plots``: ``camal-rl plot RUN``;
``*.tmp``: a save that a kill cut short): ``--overwrite`` deletes a folder holding nothing else."""
MODEL_MEMBERS = ("data", "policy.pth")
"""Members every SB3 model zip holds: its settings (JSON) and the policy's weights."""
VERSIONED_PACKAGES = ("camal-rl", "torch", "stable-baselines3", "gymnasium", "minigrid", "numpy", "vizdoom")


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
        """The newest whole saved model (:meth:`load_latest`, without loading it); the broken ones
        skipped are ``say``-ed.

        :raises InputError: there is none, naming the broken ones.
        """
        skipped: list[str] = []
        latest = self.load_latest(lambda path: path, skipped.append)
        if latest is None and skipped:
            raise InputError(
                f"{self.path} holds no saved model that loads ({'; '.join(skipped)}); "
                f"`camal-rl train --resume --out {self.path}` trains it again from step 0 with its saved "
                "settings, replacing its records (copy the folder first to keep them)"
            )
        for line in skipped:
            say(line)
        if latest is None:
            raise InputError(
                f"{self.path} holds no saved model (model.zip or checkpoints/step_*.zip): deleted, or "
                "never saved (a study's committed run folders keep the records, not the models); "
                f"`camal-rl train --resume --out {self.path}` trains it again with its saved settings, "
                "replacing its records (copy the folder first to keep them)"
            )
        return latest[0]

    def load_latest(
        self, load: Callable[[Path], Any], say: Callable[[str], None] = print
    ) -> tuple[Path, Any] | None:
        """``load`` the newest saved model that loads: ``model.zip`` or a checkpoint, newest first
        by the step its own data records (``model.zip`` first at a tie). Each file skipped is
        ``say``-ed with why: one that :func:`model_problem` finds broken (a save a kill cut short,
        an empty file), or that ``load`` refuses with an error of reading a zip (``ValueError``,
        ``RuntimeError``, ``KeyError``, ``EOFError``, ``AssertionError``: SB3 asserts there is data).

        :return: the path loaded and what ``load`` returned; None when no saved model loads.
        """
        skipped: list[str] = []
        steps: dict[Path, int] = {}
        for path in self.saved_models():
            problem = model_problem(path)
            if problem:
                skipped.append(f"{path.relative_to(self.path)}: {problem}")
            else:
                steps[path] = saved_steps(path)
        loaded: tuple[Path, Any] | None = None
        for path in sorted(steps, key=lambda p: (steps[p], p == self.model), reverse=True):
            try:
                loaded = path, load(path)
                break
            except (ValueError, RuntimeError, KeyError, EOFError, AssertionError) as error:
                why = f"it does not load ({type(error).__name__}: {error})"
                skipped.append(f"{path.relative_to(self.path)}: {why}")
        for line in skipped:
            say(f"skipped {self.path / line}")
        return loaded

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
            timed = _rows_with(path, "time/fps", "time/time_elapsed")
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
            for row in _rows_with(path, "time/total_timesteps", key)
        ]

    def logged_progress(self) -> tuple[int, float]:
        """(env steps, env steps/s) of the newest logger row that has them: how far training had
        got when the logger last wrote, and its speed since that session began (SB3's
        ``time/total_timesteps`` and ``time/fps``); (0, nan) when nothing is logged."""
        for path in reversed(self.progress_files()):
            rows = _rows_with(path, "time/total_timesteps", "time/fps")
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
        """Record python, package versions and the git revision of the working tree."""
        versions: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
        for package in VERSIONED_PACKAGES:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        versions["git_revision"] = git_revision()
        write_json(self.path / "versions.json", versions)

    def append_evaluation(self, row: Mapping[str, Any]) -> None:
        """Add one periodic-evaluation row to ``evaluations.csv``, on a line of its own (after a
        line that a crash cut short, too). A file written by an older camal-rl, without some of
        :data:`EVALUATION_FIELDS` (a run resumed after an upgrade), first gains the missing columns
        at its end, empty in its earlier rows (lines cut short are dropped then)."""
        fields = list(EVALUATION_FIELDS)
        if self.evaluations.exists():
            with self.evaluations.open(newline="") as f:
                header = next(csv.reader(f), [])
            fields = header + [k for k in EVALUATION_FIELDS if k not in header]
            if fields != header:
                rows = _evaluation_rows(self.evaluations)[1]
                with written_then_moved(self.evaluations) as tmp, tmp.open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(rows)
            else:
                with self.evaluations.open("rb+") as f:  # not empty: it has a header
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\r\n")
        new = not self.evaluations.exists()
        with self.evaluations.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in fields})

    def rewind(self, steps: int, n_envs: int) -> dict[str, int]:
        """Forget what the run recorded after step ``steps``, before resuming from a model saved
        there (a crash or SIGKILL after the last checkpoint): the evaluations of models that no
        longer exist, the training episodes that the resumed run will replay, the logger rows.

        Monitor files hold each env's finished episodes; the envs step in lockstep, so an env has
        taken ``steps // n_envs`` steps at the cut. An episode that was running when the model was
        saved is lost at the resume (its env is reset): ``monitor/unrecorded.json`` keeps those
        steps per env, so that a later rewind cuts at the right episode too. TensorBoard event
        files cannot be cut; the resumed session's writer hides their events after ``steps``
        (``train.make_logger``).

        :return: rows dropped per record: ``evaluations``, ``episodes``, ``progress``.
        """
        per_env = steps // n_envs
        unrecorded_path = self.monitor / "unrecorded.json"
        unrecorded = json.loads(unrecorded_path.read_text()) if unrecorded_path.exists() else {}
        dropped = {"evaluations": 0, "episodes": 0, "progress": 0}
        if self.evaluations.exists():
            _, dropped["evaluations"] = _truncate_csv(self.evaluations, _rows_up_to("step", steps))
        for file in sorted(self.monitor.glob("*.monitor.csv")):
            rank = file.name.split(".")[0]
            budget = per_env - int(unrecorded.get(rank, 0))
            kept, dropped_here = _truncate_csv(file, _episodes_within(budget), header_lines=1)
            dropped["episodes"] += dropped_here
            unrecorded[rank] = per_env - sum(int(float(row["l"])) for row in kept)
        if unrecorded:
            write_json(unrecorded_path, unrecorded)
        for file in self.progress_files():
            _, dropped_here = _truncate_csv(file, _rows_up_to("time/total_timesteps", steps))
            dropped["progress"] += dropped_here
        return dropped

    def read_evaluations(self) -> list[dict[str, float]]:
        """Rows of ``evaluations.csv`` as floats (empty cells become nan), less the lines that a
        crash cut short or garbled (:func:`cut_short`)."""
        if not self.evaluations.exists():
            return []
        return [{k: _number(v) for k, v in row.items()} for row in _evaluation_rows(self.evaluations)[1]]


@dataclass(frozen=True)
class RunNeeds:
    """What a run still needs, given the training and evaluation settings it is asked for
    (:meth:`RunDir.needs`). Each answer reads the run's files when first asked for, and only the
    files it needs: ``train --resume`` asks only whether the saved settings differ, which a broken
    ``status.json`` does not stop.

    :param run: the run directory.
    :param train: the training settings asked for; the budget is its resolved ``steps``.
    :param evaluation: the evaluation settings asked for, as ``metrics.json`` records them
        (``EvaluateConfig.settings``); None: only training is asked about.
    """

    run: RunDir
    train: TrainConfig
    evaluation: Mapping[str, Any] | None = None

    @cached_property
    def budget(self) -> int:
        """Env steps the run is to be trained for."""
        steps = self.train.resolved().steps
        assert steps is not None
        return steps

    @cached_property
    def trained_differently(self) -> dict[str, list[Any]]:
        """:func:`camal_rl.config.training_differences` between the run's saved ``config.json`` and
        the settings asked for (empty for a run not started). A resumed run keeps its saved
        settings, so a run with any is not the one asked for: a sweep refuses to run over it, and
        ``train --resume`` refuses options that would be ignored."""
        from camal_rl.config import TrainConfig, training_differences

        if not self.run.config.exists():
            return {}
        return training_differences(TrainConfig.load(self.run.config), self.train)

    @cached_property
    def steps_short(self) -> int:
        """Env steps a trained run lacks of the budget: after ``--steps`` is raised, it trains on
        (``train --resume --steps``) and is evaluated again. 0 for a run not trained yet, or trained
        as long or longer (kept as it is)."""
        if not self.run.is_complete():
            return 0
        return max(0, self.budget - int(self.run.read_status().get("num_timesteps", self.budget)))

    @cached_property
    def steps_to_train(self) -> int:
        """Env steps training still takes: from the last saved model to the budget, or the whole
        budget without a saved model (never started, or its model is gone); 0 when it is trained
        to the budget."""
        if not self.run.has_model():
            return self.budget
        return max(0, self.budget - int(self.run.read_status().get("num_timesteps", 0)))

    @cached_property
    def evaluation_changes(self) -> dict[str, list[Any]]:
        """The evaluation settings recorded in ``metrics.json`` that the ones asked for change, as
        ``{name: [recorded, asked]}``; empty when none are asked for, the run is not evaluated,
        they agree, or the file records none (written before camal-rl recorded them: kept as
        they are).

        :raises InputError: ``metrics.json`` is not readable.
        """
        if self.evaluation is None:
            return {}
        recorded = (self.run.read_metrics() or {}).get("settings")
        if not isinstance(recorded, dict):
            return {}
        return {k: [recorded.get(k), v] for k, v in self.evaluation.items() if recorded.get(k) != v}

    @property
    def evaluated(self) -> bool:
        """The run is evaluated as trained to the budget (complete, ``metrics.json`` written, no
        steps short); that evaluation stands unless :attr:`evaluation_changes` has any."""
        return self.run.is_evaluated() and not self.steps_short

    @property
    def to_train(self) -> bool:
        """Training is to run: the run is not trained to the end (not started, stopped, its final
        model gone) or is short of the budget."""
        return bool(self.steps_short) or not self.run.is_trained()

    @property
    def to_evaluate(self) -> bool:
        """An evaluation is to run (after any training): the run is not :attr:`evaluated`, or was
        evaluated with other settings."""
        return not self.evaluated or bool(self.evaluation_changes)

    @cached_property
    def reason(self) -> str:
        """What the run still needs, in words ("" when nothing): to start, to train (on, to a
        raised budget), to be evaluated (for the first time, or again with changed settings); or
        that it was trained with other settings than asked (a sweep's tables leave it out)."""
        if self.trained_differently:
            from camal_rl.config import describe_changes

            changed = describe_changes(self.trained_differently)
            return f"trained with other settings (saved -> sweep: {changed})"
        gone = "" if self.run.has_model() else " (its model is gone: it trains again from step 0)"
        if not self.run.is_complete():
            status = self.run.read_status()
            if status["state"] == "missing":
                if self.run.sweep_log.exists():  # failed before its folder was written, or removed
                    return "not started (an earlier attempt's output is in its .log)"
                return "not started"
            # status.json holds the step of the last save; a running run's evaluations go further
            evaluated = [row["step"] for row in self.run.read_evaluations()]
            reached = int(max([status.get("num_timesteps", 0), *evaluated]))
            if status["state"] == "running":  # may not have saved yet
                return f"running (or killed) at {reached:,} of {self.budget:,} steps"
            return f"{status['state']} at {reached:,} of {self.budget:,} steps{gone}"
        if self.steps_short > 0:
            return f"to train on to {self.budget:,} steps{gone}"
        if not self.run.metrics.exists():
            return f"not evaluated{gone}"
        if self.evaluation_changes:
            return f"evaluated with other settings{gone}"
        return ""

    @property
    def done(self) -> bool:
        """Nothing is left: trained to the budget with the settings asked for, and evaluated with
        them."""
        return not self.reason


Rows = list[dict[str, str]]
_HELD_LOCKS: set[Path] = set()
"""The ``.lock`` files this process holds (:meth:`RunDir.locked`)."""


def _evaluation_rows(path: Path) -> tuple[list[str], Rows]:
    """The header of ``evaluations.csv`` and its rows, less those that a crash cut short or
    garbled (:func:`cut_short`)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [row for row in reader if not cut_short(row, "step")]
        return list(reader.fieldnames or []), rows


def _truncate_csv(path: Path, keep: Callable[[Rows], int], *, header_lines: int = 0) -> tuple[Rows, int]:
    """Cut the CSV at ``path`` to its first ``keep(rows)`` rows (atomically: temp file, then
    rename; untouched when all are kept).

    :param header_lines: lines before the CSV header (a Monitor file's ``#{...}`` line), kept.
    :return: the rows kept and the number dropped.
    """
    with path.open(newline="") as f:
        preamble = [f.readline() for _ in range(header_lines)]
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = list(reader.fieldnames or [])
    kept = keep(rows)
    if kept < len(rows):
        with written_then_moved(path) as tmp, tmp.open("w", newline="") as f:
            f.writelines(preamble)
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows[:kept])
    return rows[:kept], len(rows) - kept


def _rows_up_to(column: str, steps: int) -> Callable[[Rows], int]:
    """Rows before the first whose ``column`` exceeds ``steps`` or is garbled (a line cut short
    by a crash); rows with the cell empty count as before it until then."""

    def beyond(row: Mapping[str, str | None]) -> bool:
        value = row.get(column)
        return value is not None and value != "" and not _number(value) <= steps

    return lambda rows: next((i for i, row in enumerate(rows) if beyond(row)), len(rows))


def _episodes_within(steps: int) -> Callable[[Rows], int]:
    """Monitor rows (episodes, in order) whose lengths add up to at most ``steps``, up to the
    first garbled one."""

    def kept(rows: Rows) -> int:
        whole = whole_episodes(rows)
        ends = itertools.accumulate(float(row["l"]) for row in whole)
        return next((i for i, end in enumerate(ends) if end > steps), len(whole))

    return kept


def whole_episodes(rows: Rows) -> Rows:
    """The rows of a Monitor CSV before the first that a crash cut short or garbled
    (:func:`cut_short` on its return and length): whatever follows is not counted either, since the
    episodes' lengths add up to the env's steps."""
    return rows[: next((i for i, row in enumerate(rows) if cut_short(row, "r", "l")), len(rows))]


def cut_short(row: Mapping[Any, str | None], *numbers: str) -> bool:
    """Whether a row of a ``csv.DictReader`` is one that a crash cut short or garbled: a cell
    missing (None), more cells than columns (a None key), or a cell of ``numbers`` not a finite
    number."""
    garbled = any(not math.isfinite(_number(row.get(k))) for k in numbers)
    return garbled or None in row or None in row.values()


def _number(value: str | None) -> float:
    """The cell as a float; nan when it is missing or not a number."""
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


@contextmanager
def written_then_moved(path: Path, tmp: Path | None = None, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to: moved onto ``path`` when the block
    ends, removed when it raises (Ctrl-C too), so ``path`` is never half written and keeps its
    old content on failure.

    :param tmp: the temporary path (default: ``path`` with ``.tmp`` added to its suffix).
    :param durable: flush the new content to the disk before the move (model zips: a power cut
        after the move must not leave an empty file in place of the old one).
    """
    tmp = tmp or path.with_suffix(path.suffix + ".tmp")
    try:
        yield tmp
        if durable:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # a read-only place: the first error is the one to tell
            tmp.unlink(missing_ok=True)
        raise


def model_problem(path: Path) -> str | None:
    """What makes a saved model zip unloadable, in words, or None when it looks whole: an
    empty file, a zip cut short (a save a kill interrupted: the zip's index is at its end), a zip
    without SB3's members (:data:`MODEL_MEMBERS`), a member whose data fails its checksum. Reads the
    file, unpickles nothing."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "it is empty (0 bytes)"
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in MODEL_MEMBERS if name not in archive.namelist()]
            if missing:
                return f"it is a zip without SB3's {' and '.join(missing)}: not a saved model"
            bad = archive.testzip()
            json.loads(archive.read("data"))
    except zipfile.BadZipFile as error:
        return f"it is not a whole zip ({size} bytes: {error}); a save cut short"
    except (OSError, ValueError, EOFError, zipfile.LargeZipFile) as error:
        return f"it cannot be read ({type(error).__name__}: {error})"
    return f"its member {bad} is corrupt (checksum)" if bad else None


def saved_steps(path: Path) -> int:
    """The env steps a whole saved model zip was trained for (``num_timesteps`` of its data, read
    as JSON: nothing is unpickled)."""
    with zipfile.ZipFile(path) as archive:
        steps = json.loads(archive.read("data")).get("num_timesteps", 0)
    return int(steps) if isinstance(steps, int) else 0


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    with written_then_moved(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the source checkout, or None outside git."""
    source = Path(__file__).resolve().parents[1]
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=source, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def _rows_with(path: Path, *keys: str) -> list[dict[str, str]]:
    """The rows of a logger CSV that have a value in every column of ``keys``."""
    with path.open() as f:
        return [row for row in csv.DictReader(f) if all(row.get(key) for key in keys)]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
