"""camal-rl train: the run directory, refusals, Ctrl-C / crash and resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import platform
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from camal_rl.agents import CamalDQN, CamalPPO
from camal_rl.config import TrainConfig
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir, cpu_description
from camal_rl.train import RunCallback, ScaledRewards, make_logger, make_training_envs, train
from tests.conftest import DEVICE, TINY_PPO_HP


def tiny(out: Path, **kwargs: object) -> TrainConfig:
    base = {
        "steps": 256,
        "n_envs": 2,
        "hp": TINY_PPO_HP,
        "eval_freq": 0,
        "checkpoint_freq": 0,
        "progress_bar": False,
        "device": DEVICE,
        "out": out,
    }
    return TrainConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def test_run_directory_layout(tiny_run: Path) -> None:
    run = RunDir(tiny_run)
    for name in ("config.json", "command.txt", "versions.json", "status.json", "model.zip", "progress.csv"):
        assert (tiny_run / name).exists(), name
    assert sorted(p.name for p in run.monitor.iterdir()) == ["0.monitor.csv", "1.monitor.csv"]
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["step_128.zip", "step_256.zip"]
    assert list(tiny_run.glob("events.out.tfevents.*"))
    assert run.read_status()["state"] == "complete"
    assert run.read_status()["num_timesteps"] == 256
    config = json.loads(run.config.read_text())
    assert config["algo_kwargs"]["n_steps"] == 64
    assert config["steps"] == 256
    versions = json.loads((tiny_run / "versions.json").read_text())
    assert versions["stable-baselines3"].startswith("2.9")
    assert versions["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    rows = run.read_evaluations()
    assert [row["step"] for row in rows] == [0, 128, 256]
    assert all(0 <= row["epg"] <= 1 and row["coverage"] == 1.0 for row in rows)
    assert all(0 <= row["flat_share"] <= 1 for row in rows)
    with (tiny_run / "progress.csv").open() as f:
        header = next(csv.reader(f))
    logged = {"camal/attention_loss", "camal/batch_epg", "eval/return_mean", "eval/flat_share", "train/loss"}
    assert logged <= set(header)
    model = CamalPPO.load(run.model, device=DEVICE)
    assert model.num_timesteps == 256
    assert model.camal_loss == "camal"


def test_the_cpu_is_named_from_cpuinfo_else_by_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n"
    )
    assert cpu_description(cpuinfo)["cpu"] == "Intel(R) Xeon(R) Processor"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert cpu_description(tmp_path / "missing")["cpu"] == "arm"  # macOS, Windows: no /proc/cpuinfo
    cpuinfo.write_text("processor\t: 0\nmodel name\t:\n")  # an empty name is no name
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_description(cpuinfo) == {
        "cpu": None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(
        InputError, match=r"exists and is not a camal-rl run directory \(no config.json; it holds notes"
    ):
        train(tiny(out, steps=64))
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="nothing to resume"):
        train(tiny(tmp_path / "empty", resume=True))


def test_bad_env_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"close matches: .*camal_rl/MiniGrid-DoorKey-5x5-v0"):
        train(tiny(tmp_path / "run", env="MiniGrid-DoorKey-5x6-v0"))
    with pytest.raises(InputError, match="did you mean n_steps"):
        train(tiny(tmp_path / "run", hp=("n_step=64",)))
    assert not (tmp_path / "run").exists()


def test_bad_hyperparameter_value_leaves_no_run_behind(tmp_path: Path) -> None:
    """A value out of range is refused before anything is written; one the algorithm itself
    refuses (PPO asserts batch_size > 1) after the run folder was, which is then removed."""
    out = tmp_path / "run"
    with pytest.raises(InputError, match="hyperparameter n_steps takes an integer >= 1, got 0"):
        train(tiny(out, algo="dqn", hp=("n_steps=0",)))
    assert not out.exists()
    with pytest.raises(
        InputError, match=r"CamalPPO refused its hyperparameters \(AssertionError: `batch_size` must"
    ):
        train(tiny(out, hp=(*TINY_PPO_HP, "batch_size=1")))
    assert not out.exists()  # fixing the value and running again needs no --overwrite
    out.mkdir()  # a folder the user made stays, empty
    with pytest.raises(InputError, match="batch_size=1"):
        train(tiny(out, hp=(*TINY_PPO_HP, "batch_size=1")))
    assert out.is_dir()
    assert not any(out.iterdir())


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int, error: BaseException) -> None:
    original = RunCallback._on_step

    def on_step(self: RunCallback) -> bool:
        if self.num_timesteps >= step:
            raise error
        return original(self)

    monkeypatch.setattr(RunCallback, "_on_step", on_step)


def test_ctrl_c_saves_and_resume_continues_the_step_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    cfg = tiny(out, eval_freq=64, eval_episodes=1)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 128, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    run = RunDir(out)
    assert run.read_status() | {"updated": None} == {
        "state": "interrupted",
        "num_timesteps": 128,
        "updated": None,
    }
    assert CamalPPO.load(run.model, device=DEVICE).num_timesteps == 128
    train(TrainConfig(out=out, resume=True, progress_bar=False, device=DEVICE))
    assert run.read_status()["state"] == "complete"
    model = CamalPPO.load(run.model, device=DEVICE)
    assert model.num_timesteps == 256
    assert [p.name for p in run.progress_files()] == ["progress.csv", "progress.1.csv"]
    steps = [int(row["step"]) for row in run.read_evaluations()]
    assert steps == [0, 64, 128, 192, 256]
    assert len((out / "command.txt").read_text().splitlines()) == 2
    # Monitor files were appended to, not replaced: episodes from both sessions are there.
    with (run.monitor / "0.monitor.csv").open() as f:
        assert f.readline().startswith("#")


def test_resume_trains_longer_with_more_steps(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny_run, out)
    train(TrainConfig(out=out, resume=True, steps=320, progress_bar=False, device=DEVICE))
    assert (
        CamalPPO.load(out / "model.zip", device=DEVICE).num_timesteps == 384
    )  # 2 rollouts of 2 x 64 past 256


def test_resume_refuses_the_options_it_would_ignore(tiny_run: Path, tmp_path: Path) -> None:
    """A resumed run keeps its saved settings: options asking for others are refused, naming them,
    before anything changes; options equal to the saved ones, the budget and the device pass."""
    import shutil

    out = Path(shutil.copytree(tiny_run, tmp_path / "copy"))
    files = {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}
    resume = {"out": out, "resume": True, "progress_bar": False, "device": DEVICE}
    with pytest.raises(InputError, match=r"saved -> asked: hp learning_rate 0.00025 -> 0.001\); drop those"):
        train(TrainConfig(hp=("learning_rate=1e-3",), steps=320, **resume))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"method camal -> none, camal_coef 1.0 -> 0.0\)"):
        train(TrainConfig(method="none", **resume))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"env_make_kwargs .*'view': 'partial'.* -> .*'view': 'full'"):
        train(TrainConfig(view="full", **resume))  # type: ignore[arg-type]
    assert files == {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}
    train(TrainConfig(hp=TINY_PPO_HP, n_envs=2, steps=320, **resume))  # type: ignore[arg-type]
    assert CamalPPO.load(out / "model.zip", device=DEVICE).num_timesteps == 384


def test_after_sigkill_resume_starts_from_the_last_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    """SIGKILL (or a power cut) saves nothing: model.zip is missing and the status still says
    running; --resume continues from the newest checkpoint."""
    import shutil

    out = tmp_path / "killed"
    shutil.copytree(tiny_run, out)
    run = RunDir(out)
    run.model.unlink()
    (run.checkpoints / "step_256.zip").unlink()
    run.write_status("running", num_timesteps=200)
    # What the killed session recorded after its last checkpoint (step 128) must not survive:
    run.append_evaluation({"step": 192, "return_mean": 123.0})  # a model that no longer exists
    with (run.monitor / "0.monitor.csv").open("a") as f:
        f.write("0.5,1000,9.0\n")  # an episode that ended after the checkpoint
    train(TrainConfig(out=out, resume=True, progress_bar=False, device=DEVICE))
    assert run.read_status()["state"] == "complete"
    assert CamalPPO.load(run.model, device=DEVICE).num_timesteps == 256  # 128 + one rollout of 2 x 64
    evaluations = run.read_evaluations()
    assert [row["step"] for row in evaluations] == [0, 128, 256]
    assert 123.0 not in [row["return_mean"] for row in evaluations]
    assert ",1000," not in (run.monitor / "0.monitor.csv").read_text()
    first, resumed = run.progress_files()
    for file, steps in ((first, range(1, 129)), (resumed, range(129, 257))):
        with file.open() as f:
            logged = [int(row["time/total_timesteps"]) for row in csv.DictReader(f)]
        assert logged, file.name
        assert all(step in steps for step in logged), (file.name, logged)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out))
    events.Reload()
    assert [e.step for e in events.Scalars("time/fps")] == [128, 256]  # the lost session's 256 purged


def test_resume_without_a_saved_model_trains_again_from_the_start(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run folder that lost its model and checkpoints (deleted, or a fresh clone of a study that
    commits only the records) resumes from step 0 with its saved settings, as the fresh run it
    was: the old records belong to a model that no longer exists and are dropped, not mixed with
    the new ones (evaluations at 0, 128, 256 once, not twice)."""
    import shutil

    out = tmp_path / "lost"
    shutil.copytree(tiny_run, out)
    run = RunDir(out)
    run.model.unlink()
    shutil.rmtree(run.checkpoints)
    run.write_status("interrupted", num_timesteps=256)
    run.append_evaluation({"step": 300, "return_mean": 123.0})
    train(TrainConfig(out=out, resume=True, progress_bar=False, device=DEVICE))
    said = capsys.readouterr().out
    assert "holds no saved model" in said
    assert "training it from step 0" in said
    assert "dropped what the run recorded before (3 evaluations," in said
    status = run.read_status()
    assert (status["state"], status["num_timesteps"]) == ("complete", 256)
    assert [row["step"] for row in run.read_evaluations()] == [0, 128, 256]
    assert 123.0 not in [row["return_mean"] for row in run.read_evaluations()]
    restarted = CamalPPO.load(run.model, device=DEVICE)
    fresh = CamalPPO.load(tiny_run / "model.zip", device=DEVICE)
    assert restarted.num_timesteps == 256
    fresh_params = fresh.policy.state_dict()
    for name, value in restarted.policy.state_dict().items():
        assert torch.equal(value, fresh_params[name]), name  # the same seeds: the fresh run again
    logged = []
    for file in run.progress_files():
        with file.open() as f:
            logged += [int(row["time/total_timesteps"]) for row in csv.DictReader(f)]
    assert logged == sorted(set(logged))  # no step logged twice
    assert logged[-1] == 256
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out))
    events.Reload()
    assert [e.step for e in events.Scalars("time/fps")] == [128, 256]  # the lost ones purged


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_a_run_dir_given_as_a_string_is_a_path(tmp_path: Path) -> None:
    run = RunDir(str(tmp_path))  # type: ignore[arg-type]  # as a user of the Python API may write it
    assert run == RunDir(tmp_path)
    assert run.metrics == tmp_path / "metrics.json"
    assert run.progress_files() == []


def test_an_older_evaluations_csv_gains_the_new_columns(tmp_path: Path) -> None:
    """A run trained before ``flat_share`` existed and resumed now: its file gains the column at
    its end, its rows keep their values with the new cell empty (nan), a column it had that camal-rl
    no longer writes stays, a line a crash cut short goes, and the new row lands under the right
    headers."""
    run = RunDir(tmp_path)
    write_lines(
        run.evaluations, ["step,return_mean,epg,old_column", "0,1.5,0.25,x", "128,2.5,0.5,y", "192,9"]
    )
    run.append_evaluation({"step": 256, "return_mean": 3.5, "epg": 0.75, "flat_share": 0.125})
    lines = run.evaluations.read_text().splitlines()
    assert lines[0].split(",") == [
        *("step", "return_mean", "epg", "old_column"),
        *("episodes", "return_std", "length_mean", "iou", "coverage", "flat_share", "wall_time_s"),
    ]
    assert lines[1:3] == ["0,1.5,0.25,x,,,,,,,", "128,2.5,0.5,y,,,,,,,"]
    with run.evaluations.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["epg"], r["old_column"], r["flat_share"]) for r in rows] == [
        ("0", "0.25", "x", ""),
        ("128", "0.5", "y", ""),
        ("256", "0.75", "", "0.125"),
    ]
    run.append_evaluation({"step": 384, "flat_share": 0.0})  # the header is now complete: appended as is
    assert run.evaluations.read_text().splitlines()[:3] == lines[:3]
    assert run.evaluations.read_text().splitlines()[-1] == "384,,,,,,,,,0.0,"


def test_evaluations_cut_short_by_a_crash_are_read_and_appended_to(tmp_path: Path) -> None:
    """A crash in the middle of writing row 128 left it without its last cells and without a
    newline; before, reading the file raised TypeError (in train --resume, compare, plot) and the
    next row was glued onto it ("0.52560,...": step 128 with a return of 0.5256). Now the next
    row starts a line of its own and readers leave out the cut row and the rows that cannot be
    placed (a step that is not a number, more cells than columns)."""
    run = RunDir(tmp_path)
    run.append_evaluation({"step": 0, "return_mean": 0.25, "epg": 0.5})
    with run.evaluations.open("a") as f:
        f.write("x5,1,1,1,1,1,1,1,1,1\n0,1,2,3,4,5,6,7,8,9,10,11\n128,2.0,0.5")
    run.append_evaluation({"step": 256, "return_mean": 0.75, "epg": 0.125})
    assert run.evaluations.read_text().splitlines()[-2:] == ["128,2.0,0.5", "256,,0.75,,,0.125,,,,"]
    rows = run.read_evaluations()
    assert [(row["step"], row["return_mean"], row["epg"]) for row in rows] == [
        (0, 0.25, 0.5),
        (256, 0.75, 0.125),
    ]
    assert math.isnan(rows[0]["iou"])


def test_rewind_drops_what_was_recorded_after_the_resumed_model(tmp_path: Path) -> None:
    """Numbers by hand: 2 envs, the model resumed from is from step 40, so each env had taken
    20 steps: env 0's episodes 8 + 12 = 20 are kept, its 5 is not; env 1's 6 + 10 = 16 are kept,
    its 7 would end at 23 > 20; the 4 steps of env 1's running episode are remembered."""
    run = RunDir(tmp_path)
    run.monitor.mkdir()
    header = ['#{"t_start": 1.0}', "r,l,t"]
    write_lines(run.monitor / "0.monitor.csv", [*header, "0.0,8,1.0", "0.5,12,2.0", "0.0,5,3.0"])
    write_lines(run.monitor / "1.monitor.csv", [*header, "0.0,6,1.0", "0.0,10,2.0", "0.9,7,3.0"])
    for step in (0, 20, 40, 60):
        run.append_evaluation({"step": step, "return_mean": step / 100})
    write_lines(
        run.path / "progress.csv",
        ["time/total_timesteps,train/loss", "16,0.5", "32,0.4", "48,0.3", ",0.2"],
    )
    assert run.rewind(40, 2) == {"evaluations": 1, "episodes": 2, "progress": 2}
    assert (run.monitor / "0.monitor.csv").read_text().splitlines() == [*header, "0.0,8,1.0", "0.5,12,2.0"]
    assert (run.monitor / "1.monitor.csv").read_text().splitlines()[2:] == ["0.0,6,1.0", "0.0,10,2.0"]
    assert json.loads((run.monitor / "unrecorded.json").read_text()) == {"0": 0, "1": 4}
    assert [row["step"] for row in run.read_evaluations()] == [0, 20, 40]
    progress = (run.path / "progress.csv").read_text().splitlines()
    assert progress == ["time/total_timesteps,train/loss", "16,0.5", "32,0.4"]

    # The resumed session (envs reset at step 40) appends env 1's episodes of 9 and 3 steps; then
    # it dies and resumes from step 60: each env had taken 30 steps, 4 of env 1's unrecorded, so
    # 26 recorded ones fit: 6 + 10 + 9 = 25 kept, the 3-step episode (ending at 28) dropped; env 0
    # recorded 20 of 30 (an episode was running).
    with (run.monitor / "1.monitor.csv").open("a") as f:
        f.write("1.0,9,4.0\n0.0,3,5.0\n")
    assert run.rewind(60, 2) == {"evaluations": 0, "episodes": 1, "progress": 0}
    episodes = (run.monitor / "1.monitor.csv").read_text().splitlines()[2:]
    assert episodes == ["0.0,6,1.0", "0.0,10,2.0", "1.0,9,4.0"]
    assert json.loads((run.monitor / "unrecorded.json").read_text()) == {"0": 10, "1": 5}
    assert run.rewind(60, 2) == {"evaluations": 0, "episodes": 0, "progress": 0}  # idempotent

    # A line cut short by a crash (power loss mid-write) ends what is kept, whatever follows. At
    # step 70 env 0 may hold 35 - 10 = 25 recorded steps: its 3-step episode fits (23 steps). The
    # cut line lacks its time: its length may be cut too ("1" of "12"), so it goes although 24 fits.
    with (run.monitor / "0.monitor.csv").open("a") as f:
        f.write("0.0,3,6.0\n1.0,1\n0.0,2,7.0\n")
    run.append_evaluation({"step": 50})
    with (run.path / "evaluations.csv").open("a") as f:
        f.write("5x\n")
    assert run.rewind(70, 2) == {"evaluations": 1, "episodes": 2, "progress": 0}
    assert (run.monitor / "0.monitor.csv").read_text().splitlines()[-1] == "0.0,3,6.0"
    assert [row["step"] for row in run.read_evaluations()] == [0, 20, 40, 50]


def test_a_resumed_session_purges_the_tensorboard_events_after_its_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 0 logs at steps 100, 200, 300 and dies; the model resumed from is from step 200,
    so its 300 belongs to a lost trajectory: TensorBoard shows 100, 200 and the new 250, 350
    (without the purge it showed 300 as well, out of order)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.summary.writer import event_file_writer

    # TensorBoard reads a folder's event files in name order: time in seconds, host, pid, then a
    # per-process writer count. Both sessions here start in the same second of one process, so
    # after 9 earlier writers (other tests) their files end .9 and .10 and sort the wrong way.
    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(0))
    run = RunDir(tmp_path)
    for session, resumed_at, values in (
        (0, 0, {100: 1.0, 200: 2.0, 300: 3.0}),
        (1, 200, {250: 25.0, 350: 35.0}),
    ):
        logger = make_logger(run, session, verbose=0, resumed_at=resumed_at)
        for step, value in values.items():
            logger.record("camal/loss", value)
            logger.dump(step)
        logger.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("camal/loss")] == [
        (100, 1.0),
        (200, 2.0),
        (250, 25.0),
        (350, 35.0),
    ]


def test_crash_saves_the_model_and_records_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    out = tmp_path / "run"
    interrupt_at(monkeypatch, 128, RuntimeError("disk on fire"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(tiny(out, progress_bar=True))
    assert not list(getattr(tqdm, "_instances", []))  # the progress bar is closed, not left to shutdown
    status = RunDir(out).read_status()
    assert status["state"] == "failed"
    assert status["error"] == "RuntimeError: disk on fire"
    assert CamalPPO.load(out / "model.zip", device=DEVICE).num_timesteps == 128


def test_dqn_run(tmp_path: Path) -> None:
    out = tmp_path / "dqn"
    cfg = tiny(
        out, algo="dqn", method="energy", hp=("learning_starts=64", "buffer_size=1000", "batch_size=16")
    )
    train(cfg)
    model = CamalDQN.load(out / "model.zip", device=DEVICE)
    assert model.num_timesteps == 256
    assert model.camal_loss == "energy"


@pytest.mark.parametrize(
    ("save_first", "save_at_resume", "updates"),
    [(False, False, 32 + 32), (True, False, 32 + 64), (False, True, 32 + 32)],
)
def test_a_resumed_dqn_waits_for_its_replay_buffer_to_refill(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    save_first: bool,
    save_at_resume: bool,
    updates: int,
) -> None:
    """2 envs, learning_starts 64, one update per vector step after it. The first 128 steps
    update at steps 66, 68, ..., 128: 32 times. Resumed to 256 without the buffer, updates wait
    for 64 new transitions (after step 192): 194 ... 256, 32 more; with the saved buffer (128
    transitions) they go on at once: 130 ... 256, 64 more. Asked for at the resume, the buffer is
    saved from then on."""
    out = tmp_path / "dqn"
    hp = ("learning_starts=64", "buffer_size=1000", "batch_size=16")
    train(tiny(out, algo="dqn", steps=128, hp=hp, save_replay_buffer=save_first))
    assert CamalDQN.load(out / "model.zip", device=DEVICE)._n_updates == 32
    assert (out / "replay_buffer.pkl").exists() is save_first
    capsys.readouterr()
    resume = TrainConfig(
        out=out, resume=True, steps=256, progress_bar=False, device=DEVICE, save_replay_buffer=save_at_resume
    )
    train(resume)
    waited = (
        "the replay buffer holds 0 of learning_starts=64 transitions (it is saved with "
        "--save-replay-buffer): gradient updates wait until step 192"
    )
    assert (waited in capsys.readouterr().out) is not save_first
    model = CamalDQN.load(out / "model.zip", device=DEVICE)
    assert (model.num_timesteps, model._n_updates) == (256, updates)
    assert (model.learning_starts, model.updates_resume_at) == (64, 0)  # the wait is not saved
    assert (out / "replay_buffer.pkl").exists() is (save_first or save_at_resume)
    assert TrainConfig.load(out / "config.json").save_replay_buffer is (save_first or save_at_resume)


class ScriptedRewards(gym.Env[np.ndarray, int]):
    """One episode after another, each giving ``rewards`` in turn, a step each."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, rewards: tuple[float, ...]) -> None:
        self.rewards = rewards

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.zeros(1, np.float32), self.rewards[self.t - 1], self.t == len(self.rewards), False, {}


def one_episode(
    path: Path, rewards: tuple[float, ...], scale: float, clip: bool = False
) -> tuple[list[float], dict]:
    """The rewards the agent gets over one monitored episode of :class:`ScriptedRewards`, and the
    episode's monitor record."""
    venv = ScaledRewards(
        DummyVecEnv([lambda: Monitor(ScriptedRewards(rewards), str(path))]), scale, clip=clip
    )
    venv.reset()
    got, infos = [], []
    for _ in rewards:
        _, reward, _, info = venv.step(np.zeros(1, np.int64))
        got.append(float(reward[0]))
        infos.extend(info)
    return got, infos[-1]["episode"]


def test_scaled_rewards_reach_the_agent_and_the_monitor_keeps_the_envs_own(tmp_path: Path) -> None:
    rewards, episode = one_episode(tmp_path / "m", (2.0, 2.0, 2.0), 0.01)
    assert rewards == pytest.approx([0.02, 0.02, 0.02])
    assert episode["r"] == 6.0  # what the logger and the monitor file report
    assert (tmp_path / "m.monitor.csv").read_text().splitlines()[2].startswith("6.0,3,")


def test_clipped_rewards_reach_the_agent_and_the_monitor_keeps_the_game_score(tmp_path: Path) -> None:
    """A brick, nothing, a lost point, a bonus: 7, 0, -3, 0.5 sign-clipped -> 1, 0, -1, 1, then
    scaled by 0.5 -> 0.5, 0, -0.5, 0.5; the episode's logged return stays 4.5."""
    rewards, episode = one_episode(tmp_path / "m", (7.0, 0.0, -3.0, 0.5), 0.5, clip=True)
    assert rewards == [0.5, 0.0, -0.5, 0.5]
    assert episode["r"] == 4.5


def test_reward_clipping_defaults_to_the_env_family_and_is_recorded(tmp_path: Path) -> None:
    assert TrainConfig().resolved().reward_clip is False
    assert TrainConfig(env="VizdoomBasic-v1").resolved().reward_clip is False
    assert TrainConfig(env="ALE/Pong-v5").resolved().reward_clip is True
    assert TrainConfig(env="ALE/Pong-v5", reward_clip=False).resolved().reward_clip is False
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    clipped = make_training_envs(tiny(run.path, reward_clip=True).resolved(), run, resumed_at=0)
    assert isinstance(clipped, ScaledRewards)
    assert (clipped.clip, clipped.scale) == (True, 1.0)
    clipped.close()
    out = tmp_path / "trained"
    train(tiny(out, reward_clip=True, steps=128))
    saved = json.loads((out / "config.json").read_text())
    assert saved["reward_clip"] is True
    with pytest.raises(InputError, match=r"reward_clip True -> False"):
        train(tiny(out, reward_clip=False, steps=256, resume=True))
    del saved["reward_clip"]  # a run recorded before the option existed trained unclipped
    assert TrainConfig.from_json({**saved, "env": "ALE/Pong-v5"}).resolved().reward_clip is False


def test_training_envs_are_scaled_by_the_resolved_reward_scale(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    scaled = make_training_envs(tiny(run.path, reward_scale=0.5).resolved(), run, resumed_at=0)
    assert isinstance(scaled, ScaledRewards)
    assert scaled.scale == 0.5
    plain = make_training_envs(tiny(run.path).resolved(), run, resumed_at=0)  # MiniGrid: 1
    assert not isinstance(plain, ScaledRewards)
    for venv in (scaled, plain):
        venv.close()


def test_the_reward_scale_is_recorded_and_kept_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(out, reward_scale=0.5, steps=128))
    assert json.loads((out / "config.json").read_text())["reward_scale"] == 0.5
    train(tiny(out, steps=256, resume=True))  # no --reward-scale: the run's own
    assert TrainConfig.load(out / "config.json").reward_scale == 0.5
    old = json.loads((out / "config.json").read_text())
    del old["reward_scale"]  # a run recorded before the option existed trained unscaled
    assert TrainConfig.from_json({**old, "env": "VizdoomBasic-v1"}).resolved().reward_scale == 1.0


def scripted_returns(monkeypatch: pytest.MonkeyPatch, returns: dict[int, float]) -> None:
    """Periodic evaluations report ``returns[step]`` as their mean return (0 at other steps)."""
    import camal_rl.train as train_module

    evaluate = train_module.quick_evaluation

    def scripted(model: object, *args: object, **kwargs: object) -> dict[str, float]:
        row = evaluate(model, *args, **kwargs)  # type: ignore[arg-type]
        return {**row, "return_mean": returns.get(int(model.num_timesteps), 0.0)}  # type: ignore[attr-defined]

    monkeypatch.setattr(train_module, "quick_evaluation", scripted)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_stop_return_ends_training_at_the_first_evaluation_that_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algo: str
) -> None:
    """Evaluations every 128 steps return 0.5 at 128 and 0.95 at 256: --stop-return 0.9 stops at
    256 of 1024 steps, the run complete there and saying why; 0.5 at 128 does not stop it."""
    scripted_returns(monkeypatch, {128: 0.5, 256: 0.95, 384: 1.0})
    out = tmp_path / "run"
    hp = TINY_PPO_HP if algo == "ppo" else ("learning_starts=64", "buffer_size=1000", "batch_size=16")
    cfg = tiny(out, algo=algo, hp=hp, steps=1024, eval_freq=128, eval_episodes=1, stop_return=0.9)
    train(cfg)
    run = RunDir(out)
    status = run.read_status()
    assert (status["state"], status["num_timesteps"], status["stopped_at_return"]) == ("complete", 256, 0.95)
    assert [int(row["step"]) for row in run.read_evaluations()] == [0, 128, 256]
    assert [float(row["return_mean"]) for row in run.read_evaluations()] == [0.0, 0.5, 0.95]
    assert (CamalPPO if algo == "ppo" else CamalDQN).load(run.model, device=DEVICE).num_timesteps == 256
    # the run needs nothing more while the stop return asked for accepts 0.95; otherwise it trains on
    needs = run.needs(cfg)
    assert (needs.steps_to_train, needs.steps_short, needs.done) == (0, 0, False)  # not evaluated yet
    assert "not evaluated" in needs.reason
    for asked in (None, 0.99):
        needs = run.needs(dataclasses.replace(cfg, stop_return=asked))
        assert (needs.steps_to_train, needs.steps_short) == (768, 768)
        assert needs.reason == "to train on to 1,024 steps"


def test_a_run_stopped_at_its_return_resumes_only_past_a_higher_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scripted_returns(monkeypatch, {128: 0.95, 256: 0.97, 384: 0.99})
    out = tmp_path / "run"
    train(tiny(out, steps=1024, eval_freq=128, eval_episodes=1, stop_return=0.9))
    assert RunDir(out).read_status()["num_timesteps"] == 128
    assert (
        "evaluation return 0.950 >= --stop-return 0.9 at step 128; training stopped"
        in capsys.readouterr().out
    )
    resume = {"out": out, "resume": True, "progress_bar": False, "device": DEVICE}
    files = {
        path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file() and path.name != ".lock"
    }
    train(TrainConfig(**resume))  # type: ignore[arg-type]  # the saved --stop-return 0.9: nothing to do
    assert (
        "reached --stop-return 0.9 at 128 steps (evaluation return 0.950); to train on, resume with a higher"
        in (capsys.readouterr().out)
    )
    assert files == {
        path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file() and path.name != ".lock"
    }
    train(TrainConfig(stop_return=0.98, **resume))  # type: ignore[arg-type]
    status = RunDir(out).read_status()
    assert (status["state"], status["num_timesteps"], status["stopped_at_return"]) == ("complete", 384, 0.99)
    train(TrainConfig(stop_return=math.inf, **resume))  # type: ignore[arg-type]  # on to --steps
    status = RunDir(out).read_status()
    assert (status["state"], status["num_timesteps"], "stopped_at_return" in status) == (
        "complete",
        1024,
        False,
    )


def test_a_sweep_without_a_stop_return_trains_a_stopped_run_on_to_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compare's run of a cell without --stop-return over a run that stopped at 0.95: trained on to
    the cell's 512 steps (a resume would otherwise keep the run's own 0.9), then evaluated."""
    from camal_rl.evaluation import EvaluateConfig
    from camal_rl.settings import EvaluationSettings
    from camal_rl.sweep.executors import run_one

    scripted_returns(monkeypatch, {128: 0.95})
    out = tmp_path / "run"
    cell = tiny(out, steps=512, eval_freq=128, eval_episodes=1)
    train(dataclasses.replace(cell, stop_return=0.9))
    assert RunDir(out).read_status()["num_timesteps"] == 128
    evaluation = EvaluationSettings(episodes=1, saliency=("gradcam",), faithfulness=False, distractors=0)
    outcome = run_one(cell, EvaluateConfig(run=out, evaluation=evaluation))
    assert outcome.state == "done", outcome
    status = RunDir(out).read_status()
    assert (status["state"], status["num_timesteps"], "stopped_at_return" in status) == (
        "complete",
        512,
        False,
    )
    assert (out / "metrics.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stop_return": math.nan}, "--stop-return must be a number (inf: never stop), got nan"),
        (
            {"stop_return": 0.9, "eval_freq": 0},
            "--stop-return acts on the periodic evaluations: give --eval-freq > 0",
        ),
    ],
)
def test_bad_stop_return_is_refused_before_writing(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(InputError, match=re.escape(message)):
        train(tiny(out, **kwargs))
    assert not out.exists()


def test_an_infinite_stop_return_needs_no_evaluations() -> None:
    """inf never stops a run (compare passes it to train a stopped run on), so --eval-freq 0 takes it."""
    assert TrainConfig(eval_freq=0, stop_return=math.inf).resolved().stop_return == math.inf
    with pytest.raises(InputError, match="give --eval-freq > 0"):
        TrainConfig(eval_freq=0, stop_return=-math.inf).resolved()
