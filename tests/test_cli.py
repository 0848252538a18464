"""The camal-rl console script: dispatch, presets, errors without tracebacks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from camal_rl.cli import COMMANDS, main, parse
from camal_rl.config import TrainConfig
from camal_rl.rundir import RunDir
from tests.conftest import DEVICE


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0, name
        assert "usage: camal-rl " + name in capsys.readouterr().out


def test_usage_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "commands:" in capsys.readouterr().out
    assert main(["trian"]) == 2
    assert "unknown command 'trian' (did you mean train?)" in capsys.readouterr().err


def test_envs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs", "--contains", "doorkey-5x5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [
        "camal_rl/MiniGrid-DoorKey-5x5-v0",
        "partial",
        "56x56x3",
        "key,",
        "door,",
        "goal",
    ]
    assert lines[2].split()[:3] == ["camal_rl/MiniGrid-DoorKey-5x5-v0", "full", "40x40x3"]
    assert main(["envs", "--contains", "DorKey"]) == 2
    assert "no masked env id contains 'DorKey'; `camal-rl envs` lists them all" in capsys.readouterr().err


def test_train_and_evaluate_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--steps", "128", "--n-envs", "2", "--hp", "n_steps=64", "batch_size=64", "n_epochs=1"]
    args += ["--eval-freq", "0", "--no-progress-bar", "--device", DEVICE, "--out", str(out)]
    assert main(args) == 0
    assert RunDir(out).is_trained()
    assert main(args) == 2
    assert "exists; pass --resume" in capsys.readouterr().err
    evaluate = ["evaluate", str(out), "--episodes", "1", "--saliency", "gradcam", "--no-faithfulness"]
    assert main([*evaluate, "--max-steps-scored", "2", "--device", DEVICE]) == 0
    assert RunDir(out).metrics.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--env", "MiniGrid-DorKey-5x5-v0"], "close matches: camal_rl/MiniGrid-DoorKey-5x5-v0"),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--hp", "gama=0.9"], "did you mean gamma"),
        (["evaluate", "missing-run"], "missing-run does not exist"),
        (["compare", "--methods", "gradcam"], "unknown method 'gradcam'"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, *(["--out", str(tmp_path / "x")] if args[0] != "evaluate" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_option_values_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "sac"])
    assert exit_info.value.code == 2


def test_preset_is_the_default_and_hp_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = tmp_path / "presets.py"
    presets.write_text(
        "from camal_rl.config import TrainConfig\n"
        "PRESETS = {'small': TrainConfig(steps=512, seed=3, hp=('n_steps=64',))}\n"
    )
    monkeypatch.setenv("CAMAL_RL_PRESETS", str(presets))
    _, cfg = parse(["train", "--preset", "small", "--seed", "5", "--hp", "batch_size=32"])
    assert isinstance(cfg, TrainConfig)
    assert (cfg.steps, cfg.seed, cfg.preset) == (512, 5, "small")
    assert cfg.hp == ("n_steps=64", "batch_size=32")


def test_config_file_reproduces_a_run_on_another_seed(tmp_path: Path) -> None:
    """`train --config RUN/config.json --seed 3`: the run's settings, another seed, its own folder."""
    first = tmp_path / "x"
    args = ["train", "--steps", "128", "--n-envs", "2", "--hp", "n_steps=64", "batch_size=64", "n_epochs=1"]
    args += ["--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress-bar", "--device", DEVICE]
    assert main([*args, "--coef", "0.5", "--out", str(first)]) == 0
    saved = TrainConfig.load(first / "config.json")
    _, cfg = parse(["train", "--config", str(first / "config.json"), "--seed", "3"])
    assert cfg.run_dir == Path("runs/MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed3")  # not the saved out
    second = tmp_path / "y"
    assert main(["train", "--config", str(first / "config.json"), "--seed", "3", "--out", str(second)]) == 0
    again = TrainConfig.load(second / "config.json")
    assert again == dataclasses.replace(saved, seed=3, out=second, config=first / "config.json")
    assert RunDir(second).is_trained()
    _, cfg = parse(["train", "--config", str(first / "config.json"), "--hp", "gamma=0.9", "--steps", "64"])
    assert cfg.resolved().algo_kwargs == {**saved.algo_kwargs, "gamma": 0.9}  # over the run's own
    assert (cfg.steps, cfg.hp) == (64, (*saved.hp, "gamma=0.9"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "No such file or directory"),
        ("[1, 2]", "it is a list, not a mapping of options to values"),
        ('{"seed": 1, "sede": 2}', "unknown key 'sede' (did you mean seed?)"),
        ('{"seed": ', "Expecting value"),
    ],
)
def test_a_bad_config_file_is_one_message(
    text: str | None, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"camal-rl: error: cannot read --config {path} ({reason}")
    assert err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_console_script_smoke() -> None:
    script = Path(sys.executable).parent / "camal-rl"
    assert script.exists(), "pip install -e . installs the camal-rl console script next to python"
    result = subprocess.run(
        [str(script), "envs", "--contains", "LavaCrossingS9N1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "camal_rl/MiniGrid-LavaCrossingS9N1-v0  partial" in result.stdout


def test_sigterm_raises_terminated_once_and_the_handler_is_restored() -> None:
    import os
    import signal

    from camal_rl.errors import Terminated, sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    saved = False
    with sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM did not raise")
        except Terminated:
            os.kill(os.getpid(), signal.SIGTERM)  # a second one, while "saving": ignored
            saved = True
    assert saved
    assert signal.getsignal(signal.SIGTERM) is before
    assert issubclass(Terminated, KeyboardInterrupt)  # every Ctrl-C path handles it


@pytest.mark.slow  # signals: `make test-all` runs it
@pytest.mark.parametrize("vec_env", ["dummy", "subproc"])
def test_sigterm_saves_the_run_like_ctrl_c(tmp_path: Path, vec_env: str) -> None:
    """`kill PID`, a scheduler's pre-emption or `docker stop`: the run saves and can resume. With
    `--vec-env subproc` the signal goes to the whole process group, as `timeout`'s does: the env
    workers end with it, and closing them after the save must not print a traceback."""
    import json
    import os
    import signal
    import time

    from camal_rl.agents import CamalPPO

    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "camal_rl", "train", "--out", str(out), "--steps", "100000",
        "--no-progress-bar", "--device", DEVICE, "--eval-freq", "0", "--n-envs", "2",
        "--hp", "n_steps=64", "batch_size=64", "n_epochs=1", "--vec-env", vec_env,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        progress = out / "progress.csv"
        while not progress.exists() or len(progress.read_text().splitlines()) < 3:  # 2 updates logged
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no training progress in 120 s"
            time.sleep(0.2)
        if vec_env == "subproc":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    assert f"Continue with: camal-rl train --resume --out {out}" in output
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "interrupted"
    assert status["num_timesteps"] >= 256
    assert CamalPPO.load(out / "model.zip", device=DEVICE).num_timesteps == status["num_timesteps"]
