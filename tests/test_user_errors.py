"""A user's mistake is one message and exit status 2, never a traceback, and costs nothing: every
subcommand is walked through each class of mistake (env keywords an env refuses, an output path
that cannot be written, a run's broken files, a zip without a model, an env training would refuse),
and the place it ran in holds the same files afterwards (no stray ``.tmp``)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from camal_rl.cli import main
from tests.synthetic_runs import metrics_report, write_run
from tests.toy_envs import FindObjectEnv

DOORKEY = "MiniGrid-DoorKey-5x5-v0"


class BoxActions(FindObjectEnv):
    """The toy env with a continuous action space, which CAMAL agents refuse."""

    def __init__(self) -> None:
        super().__init__(cells=2, tile=8)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        return super().step(0)


class ExtraClasses(FindObjectEnv):
    """The toy env naming three mask classes where its mask space declares one."""

    mask_classes = ("object", "door", "key")

    def __init__(self) -> None:
        super().__init__(cells=2, tile=8)


@dataclass(frozen=True)
class Place:
    """Where a case runs: a trained run, and the paths its mistakes name."""

    run: Path
    """A copy of the session's trained run (cases may break its files)."""
    tmp: Path
    """The test's folder; it must hold the same files after the refusal."""
    file: Path
    """A regular file."""
    folder: Path
    """An existing, empty folder (named like a video, so that record's --out takes it for one)."""
    read_only: Path
    """A folder no new file can be written in."""

    def broken(self, name: str, content: str) -> Path:
        """The run with its file ``name`` replaced by ``content``."""
        (self.run / name).write_text(content)
        return self.run


Case = Callable[[Place], list[str]]
"""(train --resume rewrites a broken status.json: resuming goes by the saved models.)"""


def zip_without_model(place: Place) -> list[str]:
    path = place.tmp / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "no model here")
    return ["evaluate", str(path), "--env", DOORKEY]


def sweep_with_broken(name: str, content: str) -> Case:
    """``compare --aggregate-only`` on a sweep of one synthetic run whose ``name`` is ``content``."""

    def argv(place: Place) -> list[str]:
        run = write_run(place.tmp / "sweep", method="none", metrics=metrics_report([1.0, 0.0]))
        (run / name).write_text(content)
        return ["compare", "--aggregate-only", "--out", str(place.tmp / "sweep"), "--methods", "none"]

    return argv


def case(name: str, argv: Case, message: str, fixed_elsewhere: str | None = None) -> Any:
    """One mistake: its command line and a part of the message it must print (a strict xfail,
    with the reason, while the fix belongs to a module this test does not cover)."""
    marks = [pytest.mark.xfail(strict=True, reason=fixed_elsewhere)] if fixed_elsewhere else []
    return pytest.param(argv, message, id=name, marks=marks)


CASES = [
    # --env-kwargs: a keyword the env does not take, a value it cannot use
    case(
        "train-unknown-keyword",
        lambda p: ["train", "--env-kwargs", "foo=1", "--out", str(p.tmp / "t")],
        "'foo'",
    ),
    case(
        "train-bad-value", lambda p: ["train", "--env-kwargs", "size=abc", "--out", str(p.tmp / "t")], "'abc'"
    ),
    case("evaluate-unknown-keyword", lambda p: ["evaluate", str(p.run), "--env-kwargs", "foo=1"], "'foo'"),
    case("record-bad-value", lambda p: ["record", str(p.run), "--env-kwargs", "size=abc"], "'abc'"),
    case(
        "envs-check-unknown-keyword", lambda p: ["envs", "--check", DOORKEY, "--env-kwargs", "foo=1"], "'foo'"
    ),
    case(
        "envs-check-classes", lambda p: ["envs", "--check", DOORKEY, "--env-kwargs", "classes=7"], "classes"
    ),
    # an output that cannot be written: a folder where a file goes (or the other way round), a
    # path below a regular file, a read-only place
    case("evaluate-out-folder", lambda p: ["evaluate", str(p.run), "--out", str(p.folder)], "is a folder"),
    case(
        "evaluate-out-below-file",
        lambda p: ["evaluate", str(p.run), "--out", str(p.file / "m.json")],
        "below",
    ),
    case(
        "evaluate-out-read-only",
        lambda p: ["evaluate", str(p.run), "--out", str(p.read_only / "m.json")],
        "write",
    ),
    case("record-out-folder", lambda p: ["record", str(p.run), "--out", str(p.folder)], "folder"),
    case("record-out-below-file", lambda p: ["record", str(p.run), "--out", str(p.file / "v.mp4")], "below"),
    case(
        "record-out-read-only", lambda p: ["record", str(p.run), "--out", str(p.read_only / "v.mp4")], "write"
    ),
    case("plot-out-file", lambda p: ["plot", str(p.run), "--out", str(p.file)], "is a file"),
    case("plot-out-below-file", lambda p: ["plot", str(p.run), "--out", str(p.file / "plots")], "below"),
    case("plot-out-read-only", lambda p: ["plot", str(p.run), "--out", str(p.read_only / "plots")], "write"),
    case("demo-out-file", lambda p: ["demo", "--out", str(p.file)], "is a file"),
    case(
        "compare-out-file",
        lambda p: ["compare", "--out", str(p.file), "--methods", "none", "--seeds", "0", "--steps", "64"],
        "is a file",
    ),
    case(
        "envs-check-png-below-file",
        lambda p: ["envs", "--check", DOORKEY, "--png", str(p.file / "x.png")],
        "below",
    ),
    # a run's broken files
    case(
        "evaluate-config-not-json",
        lambda p: ["evaluate", str(p.broken("config.json", "{algo"))],
        "config.json",
    ),
    case("evaluate-config-list", lambda p: ["evaluate", str(p.broken("config.json", "[1]"))], "a JSON list"),
    case(
        "evaluate-config-algo",
        lambda p: ["evaluate", str(p.broken("config.json", '{"algo": "sac"}'))],
        "'sac'",
    ),
    case("record-config-empty", lambda p: ["record", str(p.broken("config.json", ""))], "config.json"),
    case("plot-config-list", lambda p: ["plot", str(p.broken("config.json", "[]"))], "a JSON list"),
    case("plot-status-not-json", lambda p: ["plot", str(p.broken("status.json", "{"))], "status.json"),
    case(
        "resume-config-not-json",
        lambda p: ["train", "--resume", "--out", str(p.broken("config.json", "{"))],
        "config",
    ),
    case("aggregate-only-config-list", sweep_with_broken("config.json", "[]"), "a JSON list"),
    case("aggregate-only-status-list", sweep_with_broken("status.json", "[]"), "status.json"),
    # a zip with no model in it
    case("evaluate-zip-without-model", zip_without_model, "cannot read model zip"),
    # an env whose spaces training refuses
    case("envs-check-box-actions", lambda p: ["envs", "--check", "camal_tests/BoxActions-v0"], "Discrete"),
    case(
        "envs-check-extra-classes",
        lambda p: ["envs", "--check", "camal_tests/ExtraClasses-v0"],
        "mask_classes",
    ),
]


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder no new file can be written in: mode 0o555; as root, whom the mode does not stop,
    a new file there is refused as a read-only filesystem refuses it (EROFS), by wrapping
    ``tempfile.TemporaryFile``, which :func:`camal_rl.outputs.check_output` probes with."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root
        make = tempfile.TemporaryFile

        def refuse(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
            if dir is not None and Path(dir) == folder:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))
            return make(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def toy_envs() -> Iterator[None]:
    """The toy envs training refuses, registered for the test."""
    ids = {"camal_tests/BoxActions-v0": BoxActions, "camal_tests/ExtraClasses-v0": ExtraClasses}
    for env_id, entry_point in ids.items():
        gym.register(env_id, entry_point=entry_point)
    yield
    for env_id in ids:
        gym.registry.pop(env_id)


@pytest.mark.parametrize(("argv", "message"), CASES)
@pytest.mark.usefixtures("toy_envs")
def test_a_mistake_is_one_message_and_exit_2(
    argv: Case,
    message: str,
    tiny_run: Path,
    tmp_path: Path,
    read_only: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    place = Place(
        run=Path(shutil.copytree(tiny_run, tmp_path / "run")),
        tmp=tmp_path,
        file=tmp_path / "notes.txt",
        folder=tmp_path / "taken.mp4",
        read_only=read_only,
    )
    place.file.write_text("a file of the user's\n")
    place.folder.mkdir()
    args = argv(place)
    before = sorted(tmp_path.rglob("*"))
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith("camal-rl: error: ")
    assert err.count("camal-rl: error:") == 1
    assert message in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no stray .tmp
