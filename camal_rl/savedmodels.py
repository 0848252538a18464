"""A run's saved models: whether a model zip is whole, the step it was saved at, and the newest
one of a run that loads.

A run saves ``model.zip`` and ``checkpoints/step_<N>.zip`` (:class:`camal_rl.rundir.RunDir`), each
written to ``<name>.tmp`` and renamed into place (:func:`camal_rl.atomic.written_then_moved`), so a
kill at any moment leaves the previous file whole; a file that is not whole anyway (copied in part,
a disk that lost it) is skipped, named, by :func:`load_latest`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camal_rl.errors import InputError

if TYPE_CHECKING:
    from camal_rl.rundir import RunDir

MODEL_MEMBERS = ("data", "policy.pth")
"""Members every SB3 model zip holds: its settings (JSON) and the policy's weights."""


def latest_model(run: RunDir, say: Callable[[str], None] = print) -> Path:
    """The newest whole saved model of ``run`` (:func:`load_latest`, without loading it); the
    broken ones skipped are ``say``-ed.

    :raises InputError: there is none, naming the broken ones.
    """
    skipped: list[str] = []
    latest = load_latest(run, lambda path: path, skipped.append)
    if latest is None and skipped:
        raise InputError(
            f"{run.path} holds no saved model that loads ({'; '.join(skipped)}); "
            f"`camal-rl train --resume --out {run.path}` trains it again from step 0 with its saved "
            "settings, replacing its records (copy the folder first to keep them)"
        )
    for line in skipped:
        say(line)
    if latest is None:
        raise InputError(
            f"{run.path} holds no saved model (model.zip or checkpoints/step_*.zip): deleted, or "
            "never saved (a study's committed run folders keep the records, not the models); "
            f"`camal-rl train --resume --out {run.path}` trains it again with its saved settings, "
            "replacing its records (copy the folder first to keep them)"
        )
    return latest[0]


def load_latest(
    run: RunDir, load: Callable[[Path], Any], say: Callable[[str], None] = print
) -> tuple[Path, Any] | None:
    """``load`` the newest saved model of ``run`` that loads: ``model.zip`` or a checkpoint, newest
    first by the step its own data records (``model.zip`` first at a tie). Each file skipped is
    ``say``-ed with why: one that :func:`model_problem` finds broken (a save a kill cut short,
    an empty file), or that ``load`` refuses with an error of reading a zip (``ValueError``,
    ``RuntimeError``, ``KeyError``, ``EOFError``, ``AssertionError``: SB3 asserts there is data).

    :return: the path loaded and what ``load`` returned; None when no saved model loads.
    """
    skipped: list[str] = []
    steps: dict[Path, int] = {}
    for path in run.saved_models():
        problem = model_problem(path)
        if problem:
            skipped.append(f"{path.relative_to(run.path)}: {problem}")
        else:
            steps[path] = saved_steps(path)
    loaded: tuple[Path, Any] | None = None
    for path in sorted(steps, key=lambda p: (steps[p], p == run.model), reverse=True):
        try:
            loaded = path, load(path)
            break
        except (ValueError, RuntimeError, KeyError, EOFError, AssertionError) as error:
            why = f"it does not load ({type(error).__name__}: {error})"
            skipped.append(f"{path.relative_to(run.path)}: {why}")
    for line in skipped:
        say(f"skipped {run.path / line}")
    return loaded


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
