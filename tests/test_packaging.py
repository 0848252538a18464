"""Packaging: what setup.cfg and the Makefile promise a new user (issue 27's lean installs)."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
    [("demo", '-e "."'), ("install", '-e ".[dev,vizdoom,ray]"')],
)
def test_make_installs_only_what_the_target_needs(target: str, extras: str) -> None:
    commands = _make_dry_run(target)
    assert extras in commands
    assert "--index-url" not in commands  # pip's default index unless asked
    cpu = _make_dry_run(target, "TORCH_INDEX=cpu")
    assert '--index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"' in cpu
