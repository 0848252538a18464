"""The ``camal-rl`` console script: one subcommand per importable function.

Each subcommand's options are the fields of a frozen config dataclass (their docstrings are the
``--help`` text), parsed by tyro. User errors (:class:`camal_rl.errors.InputError`) print one
message and exit with status 2, never a traceback; Ctrl-C exits with 130 after the command
saved what it had.
"""

from __future__ import annotations

import dataclasses
import difflib
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import tyro

from camal_rl.errors import InputError, Terminated, sigterm_as_interrupt


@dataclass(frozen=True)
class Command:
    """A subcommand: its config class and function, by import path (loaded on use)."""

    summary: str
    config: str
    function: str

    def load(self) -> tuple[type, Callable[[Any], Any]]:
        config_module, config_name = self.config.split(":")
        function_module, function_name = self.function.split(":")
        config_class = getattr(import_module(config_module), config_name)
        function = getattr(import_module(function_module), function_name)
        return config_class, function


COMMANDS: dict[str, Command] = {
    "demo": Command(
        "the main job: train a CAMAL agent and a baseline, compare them, record a video",
        "camal_rl.demo:DemoConfig",
        "camal_rl.demo:demo",
    ),
    "envs": Command("list the masked environments", "camal_rl.cli:EnvsConfig", "camal_rl.cli:envs"),
    "train": Command(
        "train one agent into a run directory", "camal_rl.config:TrainConfig", "camal_rl.train:train"
    ),
    "compare": Command(
        "a sweep of methods x seeds x envs, with statistics, tables and plots",
        "camal_rl.compare:SweepConfig",
        "camal_rl.compare:compare",
    ),
    "tune": Command(
        "choose an attention loss's coefficient on tuning seeds (a compare sweep and a fixed rule)",
        "camal_rl.tune:TuneConfig",
        "camal_rl.tune:tune",
    ),
    "evaluate": Command(
        "returns and attention metrics of a trained agent",
        "camal_rl.evaluation:EvaluateConfig",
        "camal_rl.evaluation:evaluate",
    ),
    "record": Command("saliency videos of rollouts", "camal_rl.video:RecordConfig", "camal_rl.video:record"),
    "export-weights": Command(
        "a run's policy as weights alone (small enough to commit), which evaluate and record load",
        "camal_rl.export:ExportWeightsConfig",
        "camal_rl.export:export_weights_command",
    ),
    "plot": Command(
        "learning curves, metric bars and performance profiles from run directories",
        "camal_rl.plots:PlotConfig",
        "camal_rl.plots:plot",
    ),
}


@dataclass(frozen=True)
class EnvsConfig:
    """List every masked environment with its view, image size and mask classes."""

    contains: str = ""
    """Only ids containing this text (case-insensitive)."""
    check: str | None = None
    """Check one env instead of listing: any id train takes, e.g. an env of your own
    (MODULE:ID); its spaces, mask classes, gymnasium's checks, and a random policy's observations."""
    steps: int = 200
    """--check: random-policy steps whose observations are checked."""
    env_kwargs: tuple[str, ...] = ()
    """--check: keywords KEY=VALUE for the env."""
    png: Path | None = None
    """--check: also write an observation (frame beside its mask) to this PNG."""


def envs(cfg: EnvsConfig) -> str:
    """``camal-rl envs``: print the table of masked environments (or, with ``--check``, the check of
    one) and return it."""
    from camal_rl.envs import format_env_table, list_envs

    if cfg.check is not None:
        return check_env_command(cfg)
    if cfg != EnvsConfig(contains=cfg.contains):
        raise InputError("--steps, --env-kwargs and --png go with --check ID")
    rows = [row for row in list_envs() if cfg.contains.lower() in row.env_id.lower()]
    if not rows:
        raise InputError(f"no masked env id contains {cfg.contains!r}; `camal-rl envs` lists them all")
    table = format_env_table(rows)
    print(table)
    return table


def check_env_command(cfg: EnvsConfig) -> str:
    """``camal-rl envs --check ID``: print :func:`camal_rl.envcheck.check_env`'s report."""
    from camal_rl.envcheck import check_env
    from camal_rl.hyperparams import parse_assignments
    from camal_rl.outputs import check_output

    assert cfg.check is not None
    if cfg.png is not None:
        check_output(cfg.png, "--png")
    kwargs = parse_assignments(cfg.env_kwargs, "--env-kwargs")
    report = check_env(cfg.check, steps=cfg.steps, env_kwargs=kwargs)
    text = report.format()
    if cfg.png is not None:
        from camal_rl.visual import frame_mask_panel, write_png

        panel = frame_mask_panel(report.example["image"], report.example["mask"], report.mask_classes)
        text += f"\nwrote {write_png(cfg.png, panel)}"
    print(text)
    return text


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: camal-rl COMMAND [OPTIONS]   (camal-rl COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> tuple[str, Any]:
    """Parse a command line into (command name, config); tyro exits on bad options."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], list(argv[1:])
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InputError(f"unknown command {name!r}{hint}\n{usage()}")
    check_renamed(name, rest)
    config_class, _ = COMMANDS[name].load()
    default = _default_config(config_class, rest)
    cfg = tyro.cli(config_class, args=rest, prog=f"camal-rl {name}", default=default)
    return name, _hp_added(cfg, default)


def _hp_added(cfg: Any, default: Any) -> Any:
    """``cfg`` with its ``--hp`` after those of ``default`` (the preset's and the file's, which the
    parser's values replace); a run's resolved hyperparameters (``train --config``) take them too."""
    from camal_rl.options import get_option, with_options

    if default is None or get_option(cfg, "hp") == get_option(default, "hp"):
        return cfg
    given = get_option(cfg, "hp")
    cfg = with_options(cfg, hp=get_option(default, "hp") + given)
    if getattr(default, "algo_kwargs", None):  # a run's resolved hyperparameters, from --config
        from camal_rl.hyperparams import parse_assignments

        cfg = dataclasses.replace(
            cfg, algo_kwargs={**default.algo_kwargs, **parse_assignments(given, "--hp")}
        )
    return cfg


RENAMED: dict[str, dict[str, str]] = {
    "evaluate": {"--methods": "--saliency", "--method": "--saliency"},
    "record": {"--method": "--saliency", "--methods": "--saliency"},
}
"""Old spellings of options, by command: the option that replaced each (one name per concept:
--saliency names saliency methods, --method and --methods attention losses)."""


def check_renamed(command: str, args: Sequence[str]) -> None:
    """Refuse an option's old spelling (:data:`RENAMED`), naming the new one.

    :raises InputError: ``args`` hold an old spelling, as ``--old`` or ``--old=VALUE``.
    """
    renamed = RENAMED.get(command, {})
    for old in (arg.partition("=")[0] for arg in args):
        if old in renamed:
            raise InputError(
                f"camal-rl {command} takes its saliency methods as {renamed[old]}, not {old} "
                "(--method and --methods name attention losses, in train, compare and tune)"
            )


def _default_config(config_class: type, args: Sequence[str]) -> Any:
    """With ``--preset NAME`` or ``--config FILE`` (train, compare), the preset under the
    file's values is the parser's default (:func:`camal_rl.configfile.start_config`), so every option
    given explicitly overrides them; ``--hp`` adds to their hyperparameters."""
    from camal_rl.configfile import start_config

    names = {f.name for f in dataclasses.fields(config_class)}
    if "preset" not in names:
        return None
    config = _option_value(args, "--config") if "config" in names else None
    return start_config(
        config_class, preset=_option_value(args, "--preset"), config=None if config is None else Path(config)
    )


def _option_value(args: Sequence[str], option: str) -> str | None:
    """The value of ``option`` in ``args`` (``--option VALUE`` or ``--option=VALUE``), else None."""
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{option}="):
            return arg.partition("=")[2]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``camal-rl``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with sigterm_as_interrupt():  # SIGTERM saves and stops a run as Ctrl-C does
            name, cfg = parse(argv)
            _, function = COMMANDS[name].load()
            function(cfg)
    except InputError as error:
        print(f"camal-rl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
