"""Packaging: what setup.cfg and the Makefile promise a new user (issue 27's lean installs)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from camal_rl.rundir import git_revision

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {"camal_rl": "camal_rl", "envs": "camal_rl/envs", "agents": "camal_rl/agents"}
"""Source folder -> its path in a wheel (setup.cfg's package_dir)."""


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _names(requirements: str) -> dict[str, str]:
    """Requirement lines -> {name: version specifier}."""
    pairs = (re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line.strip()) for line in requirements.splitlines())
    return {match.group(1).lower(): match.group(2) for match in pairs if match}


def test_install_requires_is_lean() -> None:
    cfg = _setup_cfg()
    requires = _names(cfg["options"]["install_requires"])
    assert "opencv-python-headless" in requires  # no libGL on slim images
    assert "opencv-python" not in requires
    assert "pandas" not in requires  # only a study script reads it
    assert requires["tyro"] == ">=1.0,<2"
    assert "captum" in requires  # the gradient saliency methods are captum's
    dev = _names(cfg["options.extras_require"]["dev"])
    assert "pandas" in dev


def test_license_and_py_typed_ship() -> None:
    cfg = _setup_cfg()
    assert cfg["metadata"]["license"] == "MIT"
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 camal-rl developers" in license_text
    assert (ROOT / "camal_rl" / "py.typed").is_file()
    assert cfg["options.package_data"]["camal_rl"].split() == ["py.typed"]


def test_every_package_is_listed() -> None:
    """Each package folder (an __init__.py) of camal_rl, envs and agents is in setup.cfg's
    packages, under its installed name (package_dir: envs -> camal_rl.envs): a wheel lacks any
    that is not."""
    listed = set(_setup_cfg()["options"]["packages"].split())
    found = {
        ".".join((package, *path.parent.relative_to(ROOT / folder).parts))
        for folder, package in (
            ("camal_rl", "camal_rl"),
            ("envs", "camal_rl.envs"),
            ("agents", "camal_rl.agents"),
        )
        for path in (ROOT / folder).rglob("__init__.py")
    }
    assert found - listed == set()


def test_library_code_does_not_import_pandas() -> None:
    pattern = re.compile(r"^\s*(import pandas|from pandas)", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("camal_rl", "envs", "agents")
        for path in (ROOT / folder).rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def _make_dry_run(*args: str) -> str:
    """The commands ``make -n`` would run against a venv that does not exist (nothing installs)."""
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "VENV=/nonexistent/venv", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("target", "extras"),
    [("demo", '-e "."'), ("install", '-e ".[dev,vizdoom,ray,atari]"')],
)
def test_make_installs_only_what_the_target_needs(target: str, extras: str) -> None:
    commands = _make_dry_run(target)
    assert extras in commands
    assert "--index-url" not in commands  # pip's default index unless asked
    cpu = _make_dry_run(target, "TORCH_INDEX=cpu")
    assert '--index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"' in cpu


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def _user_project(folder: Path) -> Path:
    """``folder`` as a user's own git repository with one commit."""
    folder.mkdir(parents=True, exist_ok=True)
    _git(folder, "init", "-q")
    (folder / "notes.txt").write_text("a project that uses camal-rl\n")
    _git(folder, "add", "notes.txt")
    _git(folder, "commit", "-q", "-m", "user's project")
    return folder


def test_git_revision_is_only_a_checkouts(tmp_path: Path) -> None:
    """versions.json's git_revision is camal-rl's: a wheel in a venv inside a user's git repository
    (site-packages' parent is no checkout's root) has none, a source checkout has its own."""
    project = _user_project(tmp_path / "project")
    library = project / ".venv" / "lib" / "python3.11"
    (library / "site-packages" / "camal_rl").mkdir(parents=True)
    assert git_revision(library) is None
    assert git_revision(project) == _git(project, "rev-parse", "--short", "HEAD").strip()


# The installed wheel, end to end: built from this working tree, installed without its
# dependencies into a venv outside the source tree that reads them from the running interpreter's
# site-packages (nothing is downloaded), then run as a new user runs it.


def _source_files() -> list[Path]:
    """The working tree's files that git tracks or would (not ignored), less experiments/."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    names = (Path(name) for name in listed if name and not name.startswith("experiments/"))
    return [name for name in names if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the working tree (no stale build/ folder of the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    for name in _source_files():
        (base / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, base / "src" / name)
    offline = ("--quiet", "--no-deps", "--no-build-isolation", "--no-index")
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "-w", str(dist), str(base / "src")], check=True
    )
    (built,) = dist.glob("camal_rl-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_every_package_file(wheel: Path) -> None:
    """Every file of the package folders (modules and package data: py.typed, any presets or
    templates added later) is in the wheel at its installed path, and LICENSE in its metadata."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        (PACKAGE_FOLDERS[name.parts[0]] / Path(*name.parts[1:])).as_posix()
        for name in _source_files()
        if name.parts[0] in PACKAGE_FOLDERS
    }
    assert expected - names == set()
    assert "camal_rl/py.typed" in names
    (license_file,) = (name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
    assert zipfile.ZipFile(wheel).read(license_file).decode().startswith("MIT License")
    assert not any(name.startswith("experiments/") for name in names)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """``(folder, env)``: the wheel installed alone into a venv in ``folder``, a user's git
    repository outside the source tree, and the environment to run its ``camal-rl`` in."""
    home = _user_project(tmp_path_factory.mktemp("user") / "project")
    venv = home / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the running interpreter's packages come after the venv's own, so its camal_rl (an editable
    # install of this checkout, whose import hook a bare path does not run) cannot shadow the wheel's
    dependencies = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["platlib"]])
    Path(purelib, "_dependencies.pth").write_text("".join(f"{folder}\n" for folder in dependencies))
    pip = (sys.executable, "-m", "pip", "--python", str(python))
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "CAMAL_RL_PRESETS"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return home, env


def _camal_rl(installed: tuple[Path, dict[str, str]], *args: str, status: int = 0) -> str:
    """What ``camal-rl ARGS`` prints (stdout, or stderr for a nonzero ``status``), run in the user's
    project folder; it must exit with ``status``."""
    home, env = installed
    result = subprocess.run(
        [str(home / ".venv" / "bin" / "camal-rl"), *args], cwd=home, env=env, capture_output=True, text=True
    )
    assert result.returncode == status, f"camal-rl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout if status == 0 else result.stderr


@pytest.mark.slow
def test_installed_wheel_trains_a_preset_and_evaluates_its_checkpoint(
    installed: tuple[Path, dict[str, str]],
) -> None:
    """issue 27: `pip install .`, then from outside the source tree `camal-rl train --preset
    doorkey-ppo`, `camal-rl evaluate RUN/checkpoints/step_N.zip` (and `RUN --checkpoint N`) and
    `camal-rl train --config RUN/config.json --seed 3`."""
    home, env = installed
    where = subprocess.run(
        [str(home / ".venv" / "bin" / "python"), "-c", "import camal_rl; print(camal_rl.__file__)"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(home / ".venv")  # the wheel's, not the checkout's
    assert "train" in _camal_rl(installed, "--help")
    assert "camal_rl/MiniGrid-DoorKey-5x5-v0" in _camal_rl(installed, "envs")
    # the study's presets stay in a clone: the message says how to reach them
    refused = _camal_rl(installed, "compare", "--preset", "study-doorkey-ppo", status=2)
    assert "CAMAL_RL_PRESETS=CLONE/experiments/presets.py" in refused

    _camal_rl(
        installed,
        *("train", "--preset", "doorkey-ppo", "--method", "camal", "--steps", "256", "--n-envs", "2"),
        *("--eval-freq", "256", "--eval-episodes", "1", "--checkpoint-freq", "128", "--no-progress-bar"),
        *("--out", "runs/x"),
    )
    run = home / "runs" / "x"
    config = json.loads((run / "config.json").read_text())
    assert (config["preset"], config["env"], config["seed"]) == ("doorkey-ppo", "MiniGrid-DoorKey-5x5-v0", 0)
    assert json.loads((run / "versions.json").read_text())["git_revision"] is None  # not the user's repo
    assert sorted(path.name for path in (run / "checkpoints").glob("*.zip")) == [
        "step_128.zip",
        "step_256.zip",
    ]

    scoring = ("--episodes", "1", "--max-steps-scored", "4", "--saliency", "gradcam", "--no-faithfulness")
    _camal_rl(installed, "evaluate", "runs/x/checkpoints/step_128.zip", *scoring)  # the run's env: no --env
    metrics = json.loads((run / "checkpoints" / "step_128.metrics.json").read_text())
    assert (metrics["env"], metrics["method"], metrics["num_timesteps"]) == (
        "MiniGrid-DoorKey-5x5-v0",
        "camal",
        128,
    )
    _camal_rl(installed, "evaluate", "runs/x", "--checkpoint", "256", *scoring)
    assert json.loads((run / "checkpoints" / "step_256.metrics.json").read_text())["num_timesteps"] == 256

    reproduced = ("--steps", "128", "--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress-bar")
    _camal_rl(
        installed, "train", "--config", "runs/x/config.json", "--seed", "3", *reproduced, "--out", "runs/y"
    )
    again = json.loads((home / "runs" / "y" / "config.json").read_text())
    assert {key: again[key] for key in ("preset", "env", "method", "seed")} == {
        "preset": "doorkey-ppo",
        "env": "MiniGrid-DoorKey-5x5-v0",
        "method": "camal",
        "seed": 3,
    }
