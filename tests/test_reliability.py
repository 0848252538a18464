"""Faults injected into train, resume and compare (issue 25): a kill while a file is written, a
full disk, a second Ctrl-C, a read-only folder, ``--overwrite`` on a folder that is not a run, a
sweep killed under its workers, two processes on one run. Each test checks that nothing the user
had is lost."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from stable_baselines3.common.base_class import BaseAlgorithm

from camal_rl.agents import CamalPPO
from camal_rl.cli import main
from camal_rl.config import TrainConfig
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.savedmodels import model_problem
from camal_rl.train import RunCallback, train
from tests.conftest import DEVICE, TINY_PPO_HP

RESUME = ["--no-progress-bar", "--device", DEVICE]


def copy_run(tiny_run: Path, tmp_path: Path) -> RunDir:
    """A copy of the shared 256-step run: model.zip and checkpoints at steps 128 and 256."""
    return RunDir(shutil.copytree(tiny_run, tmp_path / "run"))


def steps_of(path: Path) -> int:
    return int(CamalPPO.load(path, device=DEVICE).num_timesteps)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the lock) and its content."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def one_message(err: str) -> str:
    """The one line the command line printed: an error, no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("camal-rl: error: ")
    return lines[0]


# A kill while a model zip is written, and what resume makes of the broken file


def test_resume_skips_a_checkpoint_that_a_kill_cut_short(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL while step_256.zip was written (before saves were atomic): 100,000 of its ~6 MB
    bytes, no model.zip. Resume names the broken file, goes on from step_128.zip and writes a
    whole step_256.zip in its place."""
    run = copy_run(tiny_run, tmp_path)
    run.model.unlink()
    broken = run.checkpoints / "step_256.zip"
    with broken.open("rb+") as f:
        f.truncate(100_000)
    run.write_status("running", num_timesteps=256)
    train(TrainConfig(out=run.path, resume=True, progress_bar=False, device=DEVICE))
    said = capsys.readouterr().out
    assert f"skipped {broken}: it is not a whole zip (100000 bytes: " in said
    assert f"resuming {run.path} from step_128.zip at 128 steps" in said
    assert run.read_status()["state"] == "complete"
    assert steps_of(run.model) == 256
    assert model_problem(broken) is None  # saved again, whole


def test_an_empty_model_zip_is_skipped_for_the_checkpoint_of_the_same_step(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk left model.zip at 0 bytes: the newest whole model is step_256.zip."""
    run = copy_run(tiny_run, tmp_path)
    run.model.write_bytes(b"")
    assert run.latest_model() == run.checkpoints / "step_256.zip"
    assert capsys.readouterr().out == f"skipped {run.model}: it is empty (0 bytes)\n"
    (run.checkpoints / "step_256.zip").write_bytes(b"PK\x03\x04")  # a zip's first 4 bytes
    assert run.latest_model() == run.checkpoints / "step_128.zip"
    for broken in (run.checkpoints / "step_128.zip", run.model):
        broken.write_bytes(b"")
    with pytest.raises(
        InputError, match=r"holds no saved model that loads \(skipped .*model.zip: it is empty"
    ):
        run.latest_model()


def test_what_makes_a_model_zip_broken(tiny_run: Path, tmp_path: Path) -> None:
    whole = tiny_run / "model.zip"
    assert model_problem(whole) is None
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    assert model_problem(empty) == "it is empty (0 bytes)"
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    assert model_problem(foreign) == "it is a zip without SB3's data and policy.pth: not a saved model"
    flipped = tmp_path / "flipped.zip"
    data = bytearray(whole.read_bytes())
    with zipfile.ZipFile(whole) as archive:
        info = archive.getinfo("policy.pth")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2  # within its data
    data[middle] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert model_problem(flipped) == "its member policy.pth is corrupt (checksum)"


# A full disk, and a second Ctrl-C, during a save


def failing_save(error: BaseException, calls: list[str]) -> Any:
    """``BaseAlgorithm.save`` that writes 1,000 bytes of the file, then raises ``error``."""

    def save(self: BaseAlgorithm, path: Path, *args: Any, **kwargs: Any) -> None:
        calls.append(Path(path).name)
        Path(path).write_bytes(b"PK" + bytes(998))
        raise error

    return save


def test_a_full_disk_marks_the_run_failed_in_one_message_and_keeps_its_files(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resumed from 256 to 384 steps on a full disk: the checkpoint at 384 fails, then model.zip.
    One message, exit 2, the run marked failed at step 256, every earlier file as it was and no
    temporary file left; with space again, resume trains on."""
    run = copy_run(tiny_run, tmp_path)
    before = files(run.path)
    calls: list[str] = []
    full = OSError(errno.ENOSPC, "No space left on device")
    with monkeypatch.context() as patch:
        patch.setattr(BaseAlgorithm, "save", failing_save(full, calls))
        assert main(["train", "--resume", "--out", str(run.path), "--steps", "384", *RESUME]) == 2
    assert calls == ["step_384.zip.tmp", "model.zip.tmp"]
    message = one_message(capsys.readouterr().err)
    assert message.startswith(f"camal-rl: error: cannot save {run.model} (No space left on device): it keeps")
    assert f"camal-rl train --resume --out {run.path}" in message
    status = run.read_status()
    assert (status["state"], status["num_timesteps"]) == ("failed", 256)
    assert status["error"] == f"cannot save {run.model} (No space left on device)"
    now = files(run.path)
    assert {name: now[name] for name in before if name.endswith(".zip")} == {
        name: content for name, content in before.items() if name.endswith(".zip")
    }
    assert not list(run.path.rglob("*.tmp"))
    assert not (run.checkpoints / "step_384.zip").exists()
    assert main(["train", "--resume", "--out", str(run.path), "--steps", "384", *RESUME]) == 0
    assert steps_of(run.model) == 384


def test_a_second_ctrl_c_during_the_final_save_keeps_the_earlier_model(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C at step 320, then another while model.zip is saved: model.zip keeps its step-256
    model, the status says interrupted (not running) at 256, and resume goes on from there."""
    run = copy_run(tiny_run, tmp_path)
    before = run.model.read_bytes()
    original = RunCallback._on_step

    def on_step(self: RunCallback) -> bool:
        if self.num_timesteps >= 320:
            raise KeyboardInterrupt
        return original(self)

    calls: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(RunCallback, "_on_step", on_step)
        patch.setattr(BaseAlgorithm, "save", failing_save(KeyboardInterrupt(), calls))
        with pytest.raises(KeyboardInterrupt):
            train(TrainConfig(out=run.path, resume=True, steps=384, progress_bar=False, device=DEVICE))
    assert calls == ["model.zip.tmp"]
    assert f"interrupted while saving {run.model}: it keeps what it held before" in capsys.readouterr().err
    assert run.model.read_bytes() == before
    assert not list(run.path.rglob("*.tmp"))
    status = run.read_status()
    assert (status["state"], status["num_timesteps"]) == ("interrupted", 256)
    train(TrainConfig(out=run.path, resume=True, steps=384, progress_bar=False, device=DEVICE))
    assert f"resuming {run.path} from model.zip at 256 steps" in capsys.readouterr().out
    assert steps_of(run.model) == 384


# --out: what train may write, and what --overwrite may delete


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "important.txt").write_text("keep me")
    (out / "data" / "x.csv").write_text("1,2\n")
    before = files(out)
    with pytest.raises(InputError, match=r"--overwrite replaces only a run, so nothing was deleted"):
        train(TrainConfig(out=out, overwrite=True, progress_bar=False))
    with pytest.raises(
        InputError,
        match=r"exists and is not a camal-rl run directory \(no config.json; it holds data/, important.txt\)",
    ):
        train(TrainConfig(out=out, progress_bar=False))
    assert files(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["data", "important.txt"]  # no lock left behind


def test_overwrite_refuses_a_run_holding_files_of_the_user(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path)
    (run.path / "notes.md").write_text("what I saw")
    before = files(run.path)
    also = r"is a camal-rl run, but it also holds what camal-rl did not write \(notes.md\)"
    with pytest.raises(InputError, match=also):
        train(TrainConfig(out=run.path, overwrite=True, progress_bar=False))
    with pytest.raises(InputError, match=r"run directory .* exists; pass --resume to continue it"):
        train(TrainConfig(out=run.path, progress_bar=False))
    assert files(run.path) == before


def test_a_run_with_its_weights_file_is_still_a_run(tiny_run: Path, tmp_path: Path) -> None:
    """camal-rl export-weights writes policy.weights.pt into the run: --overwrite may replace it."""
    run = copy_run(tiny_run, tmp_path)
    (run.path / "policy.weights.pt").write_bytes(b"")
    assert run.is_run()
    assert run.foreign_entries() == []
    (run.path / "notes.md").write_text("what I saw")
    assert run.foreign_entries() == ["notes.md"]


def test_overwrite_replaces_a_run(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path)
    new = {"steps": 128, "n_envs": 2, "hp": TINY_PPO_HP, "eval_freq": 0, "checkpoint_freq": 0}
    train(TrainConfig(out=run.path, overwrite=True, progress_bar=False, device=DEVICE, **new))  # type: ignore[arg-type]
    assert steps_of(run.model) == 128
    assert not run.checkpoints.exists()  # the old run's are gone with it


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "--out {out} is a file; pass --out a folder"),
        ("below", "--out {out} lies below {file}, which is a file"),
        ("read-only", "--out {out}: cannot write in {folder} (Read-only file system)"),
    ],
)
def test_train_out_that_cannot_be_written_is_one_message_before_any_work(
    where: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    folder = tmp_path / "ro"
    folder.mkdir()
    out = {"file": file, "below": file / "run", "read-only": folder / "run"}[where]
    if where == "read-only":  # as a read-only mount refuses every new file (root too)

        def refused(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr("camal_rl.outputs.tempfile.TemporaryFile", refused)
    for resume in ([], ["--resume"]):
        assert main(["train", "--out", str(out), *resume, *RESUME]) == 2
        line = one_message(capsys.readouterr().err)
        assert message.format(out=out, file=file, folder=folder) in line
    assert file.read_text() == "keep me"
    assert list(folder.iterdir()) == []


def test_a_coefficient_that_is_not_a_finite_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for coef in ("nan", "inf", "-inf"):
        assert main(["train", f"--coef={coef}", "--out", str(tmp_path / "run"), *RESUME]) == 2
        assert f"--coef must be >= 0 and finite, got {float(coef)}" in one_message(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


# Two processes on one run


HOLD_LOCK = """
import sys, time
from camal_rl.rundir import RunDir
with RunDir(sys.argv[1]).locked():
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_run_that_another_process_holds_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    """A worker of a killed sweep (or any process) trains the run: a resume is refused, naming
    it, and changes nothing; once that process is gone (SIGKILL too), the lock is free."""
    run = copy_run(tiny_run, tmp_path)
    before = files(run.path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        in_use = f"{run.path} is in use: process {holder.pid} is training or evaluating it"
        with pytest.raises(InputError, match=re.escape(in_use)):
            train(TrainConfig(out=run.path, resume=True, steps=384, progress_bar=False, device=DEVICE))
        with pytest.raises(InputError, match="is in use"):
            train(TrainConfig(out=run.path, overwrite=True, progress_bar=False, device=DEVICE))
    finally:
        holder.kill()
        holder.wait()
    assert files(run.path) == before
    with run.locked(), run.locked():  # free again; re-entrant in one process
        pass


def test_a_lock_taken_on_a_new_folder_leaves_nothing(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "sweep" / "seed0")
    with run.locked():
        assert (run.path / ".lock").read_text() == f"{os.getpid()}\n"
    assert not run.path.exists()


# A sweep killed under its workers


POOL_PARENT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def start(parent):  # the sweep's initializer, imported in the worker only: the parent starts fast
    from camal_rl.sweep.executors import _install_worker_signals

    _install_worker_signals(parent)


if __name__ == "__main__":
    spawn = get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=start, initargs=(os.getpid(),)) as pool:
        print(pool.submit(os.getpid).result(), flush=True)  # an idle worker from now on
        time.sleep(120)
"""


def alive(pid: int) -> bool:
    """The process runs (a zombie, dead and not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.slow  # a process pool: `make test-all` runs it
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_pool_worker_dies_with_its_sweep(tmp_path: Path) -> None:
    """SIGKILL of the sweep's process: its idle worker (which ignores SIGTERM and SIGINT, so that
    Ctrl-C does not break the pool) ended within seconds; before, it waited for runs forever."""
    script = tmp_path / "sweep.py"
    script.write_text(POOL_PARENT)
    log = tmp_path / "sweep.err"  # the killed parent's resource tracker complains there
    with log.open("w") as err:
        parent = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=err, text=True
        )
    worker = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), log.read_text()
        worker = int(line)
        assert alive(worker)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(worker), "the worker outlived its sweep by 10 s"
    finally:
        if parent.poll() is None:
            parent.kill()
        if worker is not None and alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_an_orphaned_worker_ends_once_its_run_is_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep died while the worker trained: the signal stops the run (which saves, as on
    Ctrl-C) and the worker ends after it rather than wait for the next run."""
    import camal_rl.sweep.executors as executors

    monkeypatch.setattr(executors, "_parent", -1)  # not our parent: the sweep is gone
    monkeypatch.setattr(executors, "_orphaned", False)
    monkeypatch.setattr(executors, "_interrupted", False)

    def exit_(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(executors.os, "_exit", exit_)

    def training(*args: Any) -> executors.RunOutcome:
        try:
            executors._worker_signal(signal.SIGINT, None)  # as the kernel's signal arrives mid-run
        except KeyboardInterrupt:
            return executors.RunOutcome("run", "stopped", 1.0)
        raise AssertionError("the run was not stopped")

    monkeypatch.setattr(executors, "_run_one", training)
    with pytest.raises(SystemExit) as ended:
        executors.run_one(TrainConfig(), executors.EvaluateConfig(run=Path("run")))
    assert ended.value.code == 128 + signal.SIGTERM
