"""The plan of a sweep: its config, the runs it is made of, and the checks made before any run.

A sweep is (env x algo) cells x agent variants (``METHOD`` or ``METHOD:COEF``) x seeds; every run is
an ordinary run directory under ``OUT/<env>/<label>/seed<k>``, trained with a :class:`TrainConfig`
and evaluated with an :class:`EvaluateConfig` (a :data:`Job`). What a run still needs is asked of
its directory (:func:`run_needs`, :meth:`RunDir.needs`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from camal_rl.config import DEFAULT_ENV, Algo, TrainConfig, describe_changes, get_preset
from camal_rl.errors import InputError
from camal_rl.evaluation import EvaluateConfig
from camal_rl.outputs import check_output
from camal_rl.rundir import RunDir
from camal_rl.runneeds import RunNeeds
from camal_rl.settings import AgentSettings, EvaluationSettings
from camal_rl.statistics import Correction

DEFAULT_METHODS = ("none", "camal", "energy")
FIRST_SALIENCY_METRICS = (
    "epg",
    "iou",
    "pointing_game",
    "deletion_auc",
    "insertion_auc",
    "occlusion_kl_log_ratio",
)
"""Default table metrics of the first saliency method scored (Grad-CAM by default)."""
OTHER_SALIENCY_METRICS = ("epg", "deletion_auc")
"""Default table metrics of every further saliency method scored."""

Job = tuple[TrainConfig, EvaluateConfig]
"""One run of a sweep: how to train it and how to evaluate it."""


@dataclass(frozen=True)
class TrainingSettings:
    """How every run of a sweep trains, over its cell's settings (compare, tune)."""

    steps: int | None = None
    """Env steps per run (default: the train preset's, else 100000)."""
    train_preset: str | None = None
    """TrainConfig preset every run starts from (budget, n_envs, hyperparameters)."""
    hp: tuple[str, ...] = ()
    """Hyperparameters KEY=VALUE for every run, over the train preset's."""
    reward_scale: float | None = None
    """Multiply the rewards every run learns from by this (default: the cell's, else the env
    family's: 0.01 for ViZDoom, 1 for MiniGrid)."""
    save_replay_buffer: bool = False
    """DQN runs: save the replay buffer with the model, so a resumed run keeps it (about 2 GB a
    run at 100k transitions of MiniGrid's images); without it a resumed run collects
    learning_starts transitions before its next update."""

    def apply(self, cell: TrainConfig, device: str) -> TrainConfig:
        """``cell`` as every run of the sweep trains it, on ``device``."""
        return dataclasses.replace(
            cell,
            steps=self.steps if self.steps is not None else cell.steps,
            hp=cell.hp + self.hp,
            reward_scale=self.reward_scale if self.reward_scale is not None else cell.reward_scale,
            save_replay_buffer=self.save_replay_buffer or cell.save_replay_buffer,
            device=device,
            progress_bar=False,
            resume=False,
            overwrite=False,
        )


@dataclass(frozen=True)
class ExecutionSettings:
    """Where a sweep's runs train and how many at a time (compare, tune)."""

    workers: int = 2
    """Runs trained at the same time (processes, or concurrent Ray tasks)."""
    backend: Literal["process", "ray"] = "process"
    """process (a local pool) or ray (tasks on a Ray cluster; extra `ray`)."""
    address: str | None = None
    """Ray cluster address (default: start a local Ray instance)."""
    device: str = "cpu"
    """Torch device of every run, in training and evaluation."""
    threads: int = 1
    """Torch threads per run: keep --workers x --threads at the machine's cores (a sweep's last run,
    alone, leaves the other cores idle on 1)."""
    progress_every: float = 600.0
    """Every this many seconds while runs train, print how far each run in progress got and about
    how long it has left (0: never)."""
    max_runs: int | None = None
    """Train or evaluate at most this many runs in this call: the first, in run order, of those
    that need work; then aggregate. In time-limited sessions or jobs (a scheduler's time limit),
    start only the runs that can finish (the sweep's first line estimates their training time from
    its finished runs); the same command again takes the next ones."""

    def check(self) -> None:
        """:raises InputError: a setting out of range."""
        if self.workers < 1 or self.threads < 1:
            raise InputError(f"--workers and --threads must be >= 1, got {self.workers} and {self.threads}")
        if not self.progress_every >= 0:
            raise InputError(f"--progress-every must be >= 0 seconds (0: never), got {self.progress_every}")
        if self.max_runs is not None and self.max_runs < 1:
            raise InputError(f"--max-runs must be >= 1 (leave it out to run them all), got {self.max_runs}")


DEFAULT_TRAINING = TrainingSettings()
DEFAULT_EXECUTION = ExecutionSettings()
SWEEP_EVALUATION = EvaluationSettings(max_steps_scored=32)
"""A sweep's evaluation of every run: 20 episodes, Grad-CAM and perturbation saliency (the second one
CAMAL was not trained on), faithfulness, 32 steps scored per episode."""


@dataclass(frozen=True)
class SweepConfig:
    """Compare agent variants across seeds and envs: train every run in parallel (skipping finished
    ones, resuming unfinished ones), evaluate them, test each against the baseline, write tables
    and plots."""

    preset: str | None = None
    """A sweep preset from experiments/presets.py (e.g. study-doorkey-ppo); --config and explicit
    options override it."""
    config: Path | None = None
    """YAML or JSON file of these options, keyed as the options are named (_ for -, e.g.
    episodes: 10), its cells a list of run configs keyed as a run's config.json; explicit options
    override it, --hp adds to its hp."""
    envs: tuple[str, ...] = (DEFAULT_ENV,)
    """Environment ids (ignored when a preset gives its own cells)."""
    algo: Algo = "ppo"
    """RL algorithm of every run (ignored when a preset gives its own cells)."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Agent variants as METHOD or METHOD:COEF, e.g. none camal camal:0.1 energy rrr."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of every variant."""
    run_order: Literal["methods", "seeds"] = "methods"
    """Order the runs start in: methods (every seed of a variant, then the next variant) or seeds
    (seed 0 of every variant, then seed 1, ...: a sweep stopped early has runs of every variant to
    compare, and runs side by side share the machine's load)."""
    cells: Annotated[tuple[TrainConfig, ...], tyro.conf.Suppress] = ()
    """Base configs of the sweep's (env x algo) cells; set by study presets and --config files, not
    on the command line."""
    out: Path = Path("runs/compare")
    """Sweep folder: runs go to OUT/<env>/<label>/seed<k>, tables and plots to OUT."""
    training: Annotated[TrainingSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_TRAINING
    """How every run trains."""
    evaluation: Annotated[EvaluationSettings, tyro.conf.OmitArgPrefixes] = SWEEP_EVALUATION
    """How every run is evaluated."""
    execution: Annotated[ExecutionSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_EXECUTION
    """Where the runs train, how many at a time."""
    baseline: str = "none"
    """Method or label every variant is tested against."""
    pairs: tuple[str, ...] = ("camal:energy",)
    """Further tests A:B (each a method or label): every A against every B."""
    correction: Correction = "holm"
    """Multiplicity correction over each env's table of tests (every comparison x metric, per test
    kind): holm (Holm 1979; family-wise) or bh (Benjamini-Hochberg 1995; false discovery rate).
    Bold cells survive it in both tests."""
    metrics: tuple[str, ...] = ()
    """Metrics of metrics.json in the tables (e.g. return gradcam/epg distractors/return; default:
    return, alignment and faithfulness of the first --saliency method, EPG and deletion AUC of each
    other one, the behaviour log ratio)."""
    aggregate_only: bool = False
    """Skip training and evaluation: only re-aggregate the runs already in OUT."""

    def table_metrics(self) -> tuple[str, ...]:
        """``metrics``, or the default for the saliency methods this sweep scores."""
        if self.metrics:
            return self.metrics
        first, *others = self.evaluation.saliency or ("gradcam",)
        return (
            "return",
            *(f"{first}/{name}" for name in FIRST_SALIENCY_METRICS),
            *(f"{method}/{name}" for method in others for name in OTHER_SALIENCY_METRICS),
            "behaviour/behaviour_log_ratio",
        )

    def base_configs(self) -> tuple[TrainConfig, ...]:
        """The (env x algo) cells every variant and seed is run on."""
        if self.cells:
            cells = self.cells
        else:
            preset = self.training.train_preset
            start = get_preset(preset, TrainConfig) if preset else TrainConfig()
            cells = tuple(dataclasses.replace(start, env=env, algo=self.algo) for env in self.envs)
        return tuple(self.training.apply(cell, self.execution.device) for cell in cells)

    def run_configs(self) -> list[TrainConfig]:
        """Every run of the sweep, each with its own run directory under ``out``."""
        runs = []
        for cell in self.base_configs():
            pairs: Iterable[tuple[str, int]] = itertools.product(self.methods, self.seeds)
            if self.run_order == "seeds":
                pairs = ((variant, seed) for seed, variant in itertools.product(self.seeds, self.methods))
            for variant, seed in pairs:
                method, coef = parse_variant(variant)
                cfg = dataclasses.replace(cell, method=method, coef=coef, seed=seed)  # type: ignore[arg-type]
                out = self.out / cfg.env_name / cfg.label / f"seed{seed}"
                runs.append(dataclasses.replace(cfg, out=out))
        return runs

    def evaluate_config(self, run: Path) -> EvaluateConfig:
        """How the sweep evaluates the run in folder ``run``: its evaluation settings, on its device."""
        return EvaluateConfig(
            run=run, agent=AgentSettings(device=self.execution.device), evaluation=self.evaluation
        )

    def jobs(self) -> list[Job]:
        """Every run of the sweep with its evaluation, in run order."""
        return [(run, self.evaluate_config(run.run_dir)) for run in self.run_configs()]


def parse_variant(variant: str) -> tuple[str, float | None]:
    """``"camal:0.1"`` -> ``("camal", 0.1)``; ``"none"`` -> ``("none", None)``.

    :raises InputError: an unknown method, or a coefficient that is not a finite number >= 0.
    """
    from camal_rl.losses import LOSS_KINDS

    method, _, coef = variant.partition(":")
    if method not in LOSS_KINDS:
        raise InputError(
            f"unknown method {method!r} in {variant!r}; use METHOD or METHOD:COEF with METHOD in {LOSS_KINDS}"
        )
    try:
        value = float(coef) if coef else None
    except ValueError:
        raise InputError(f"the coefficient in {variant!r} is not a number; write e.g. camal:0.1") from None
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(f"the coefficient in {variant!r} must be a finite number >= 0; write e.g. camal:0.1")
    return method, value


def run_needs(run: TrainConfig, evaluation: EvaluateConfig) -> RunNeeds:
    """What a sweep's run still needs (:meth:`RunDir.needs`): its training settings and those of
    its evaluation."""
    return RunDir(run.run_dir).needs(run, evaluation.settings(run.algo))


def check_sweep(cfg: SweepConfig) -> list[TrainConfig]:
    """Every check that can be made before any run starts: the options, ``--out``, the variants,
    each run's settings, the table options, and the distractor variant of every env.

    :return: the sweep's runs (:meth:`SweepConfig.run_configs`).
    :raises InputError: saying what to change.
    """
    cfg.execution.check()
    cfg.evaluation.check()  # evaluation settings fail here, not after training
    check_output(cfg.out, "--out", folder=True)
    empty = [option for option, given in (("--methods", cfg.methods), ("--seeds", cfg.seeds)) if not given]
    if not cfg.cells and not cfg.envs:
        empty.insert(0, "--envs")
    if empty:
        raise InputError(
            f"{' and '.join(empty)} named nothing: the sweep would have no runs; name at least one"
        )
    runs = cfg.run_configs()
    for run in runs:
        run.resolved()  # bad settings fail here, before any worker starts
    check_table_options(cfg, runs)
    distractors = cfg.evaluation.distractors
    if distractors and not cfg.aggregate_only:  # an env without that variant: now, not after training
        from camal_rl.envs import make_masked_env

        for cell in cfg.base_configs():
            make_masked_env(cell.env, **{**cell.env_make_kwargs, "distractors": distractors}).close()
    return runs


def check_table_options(cfg: SweepConfig, runs: Sequence[TrainConfig]) -> None:
    """Before any run: ``--metrics`` are metric names, and ``--baseline`` and ``--pairs``, when
    given, name methods or labels of the sweep's runs (their defaults may name ones a sweep lacks:
    those tests are left out).

    :raises InputError: an empty metric name, a pair not written A:B, or a name no run has, with
        the names there are.
    """
    from camal_rl.statistics import parse_metric

    for metric in cfg.metrics:
        parse_metric(metric)
    malformed = [pair for pair in cfg.pairs if len(pair.split(":")) != 2]
    if malformed:
        raise InputError(f"--pairs takes A:B (each a method or label, e.g. camal:energy), got {malformed}")
    default = SweepConfig()
    given = [("--baseline", cfg.baseline)] if cfg.baseline != default.baseline else []
    if cfg.pairs != default.pairs:
        given += [("--pairs", name) for pair in cfg.pairs for name in pair.split(":")]
    names = {run.method for run in runs} | {run.label for run in runs}
    unknown = [f"{option} {name!r}" for option, name in given if name not in names]
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} names no run of this sweep; its methods and labels: "
            f"{', '.join(sorted(names))}"
        )


def require_some_runs(runs: Sequence[TrainConfig], out: Path, option: str, naming: str) -> None:
    """Refuse to only aggregate (``option``) a folder holding none of the sweep's runs: a mistyped
    ``--out`` or an option ``naming`` the runs otherwise would write an empty table into a new folder.

    :raises InputError: no run folder exists.
    """
    if not any(run.run_dir.exists() for run in runs):
        raise InputError(
            f"{option}: {out} holds none of this sweep's {len(runs)} runs (such as "
            f"{runs[0].run_dir.relative_to(out)}); check --out and the options that name the runs "
            f"({naming}), or drop {option} to train them"
        )


def check_same_training(runs: Sequence[TrainConfig], out: Path) -> None:
    """Refuse, before any run starts, a sweep whose folder holds runs trained with other settings:
    resuming or skipping them would put their results in this sweep's tables.

    :raises InputError: naming the runs (up to three) and what differs.
    """
    clashes = [(run, RunDir(run.run_dir).needs(run).trained_differently) for run in runs]
    clashes = [(run, changed) for run, changed in clashes if changed]
    if clashes:
        named = "; ".join(
            f"{run.run_dir.relative_to(out)}: {describe_changes(changed)}" for run, changed in clashes[:3]
        )
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        raise InputError(
            f"{len(clashes)} runs in {out} were trained with other settings than this sweep's "
            f"(saved -> sweep): {named}{more}. Pass another --out for the new settings, or delete "
            "those run folders to train them again; --aggregate-only tables the others"
        )
