"""``camal-rl compare``: a sweep of (env x method x seed) runs, trained and evaluated in parallel,
then compared from the files alone.

Every run is an ordinary run directory under ``OUT/<env>/<label>/seed<k>``. A run that is already
trained and evaluated is skipped; an unfinished one (crash, Ctrl-C, machine gone) is resumed, so
the same command continues a sweep. Runs execute in a local process pool (``--backend process``)
or as Ray tasks on an existing cluster (``--backend ray --address ADDR``); both call
:func:`run_one`, so they write the same files. Ray workers must see ``OUT`` at the same path
(one machine, or a shared filesystem).

Aggregation reads only the run directories: returns as IQM with 95% bootstrap CIs, attention
metrics as means with CIs, each variant tested against the baseline (and CAMAL against energy)
with Welch's t-test and the Mann-Whitney U test; ``OUT/comparison.md``, ``comparison.csv`` and
``OUT/plots/``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import difflib
import itertools
import math
import os
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro

from camal_rl.config import DEFAULT_ENV, Algo, TrainConfig, describe_changes, get_preset, training_differences
from camal_rl.errors import InputError, MissingExtraError, Terminated, raise_terminated
from camal_rl.evaluation import EvaluateConfig, QPolicy, flat_note
from camal_rl.outputs import check_output
from camal_rl.rundir import RunDir

if TYPE_CHECKING:
    from camal_rl.results import RunResult

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


@dataclass(frozen=True)
class SweepConfig:
    """Compare agent variants across seeds and envs: train every run in parallel (skipping finished
    ones, resuming unfinished ones), evaluate them, test each against the baseline, write tables
    and plots."""

    preset: str | None = None
    """A sweep preset from experiments/presets.py (e.g. demo); explicit options override it."""
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
    cells: Annotated[tuple[TrainConfig, ...], tyro.conf.Suppress] = ()
    """Base configs of the sweep's (env x algo) cells; set by study presets, not on the command line."""
    out: Path = Path("runs/compare")
    """Sweep folder: runs go to OUT/<env>/<label>/seed<k>, tables and plots to OUT."""
    workers: int = 2
    """Runs trained at the same time (processes, or concurrent Ray tasks)."""
    backend: Literal["process", "ray"] = "process"
    """process (a local pool) or ray (tasks on a Ray cluster; extra `ray`)."""
    address: str | None = None
    """Ray cluster address (default: start a local Ray instance)."""
    episodes: int = 20
    """Evaluation episodes per run and env variant."""
    distractors: int = 0
    """Also evaluate every run on the distractor variant with this many objects (0: skip)."""
    saliency: tuple[str, ...] = ("gradcam", "perturbation")
    """Saliency methods scored in evaluation (the second is one CAMAL was not trained on)."""
    faithfulness: bool = True
    """Score faithfulness metrics in evaluation (slower)."""
    max_steps_scored: int = 32
    """Evaluation: attention metrics on at most this many steps per episode."""
    q_policy: QPolicy = "softmax"
    """Evaluation of DQN runs: the action distribution of the faithfulness and behaviour metrics,
    softmax (of the Q-values) or epsilon-greedy (the policy the agent acts with)."""
    q_epsilon: float = 0.05
    """Evaluation of DQN runs: epsilon of --q-policy epsilon-greedy."""
    baseline: str = "none"
    """Method or label every variant is tested against."""
    pairs: tuple[str, ...] = ("camal:energy",)
    """Further tests A:B (each a method or label): every A against every B."""
    metrics: tuple[str, ...] = ()
    """Metrics of metrics.json in the tables (e.g. return gradcam/epg distractors/return; default:
    return, alignment and faithfulness of the first --saliency method, EPG and deletion AUC of each
    other one, the behaviour log ratio)."""
    device: str = "cpu"
    """Torch device of every run."""
    threads: int = 1
    """Torch threads per run: keep --workers x --threads at the machine's cores (a sweep's last run,
    alone, leaves the other cores idle on 1)."""
    aggregate_only: bool = False
    """Skip training and evaluation: only re-aggregate the runs already in OUT."""
    progress_every: float = 600.0
    """Every this many seconds while runs train, print how far each run in progress got and about
    how long it has left (0: never)."""
    max_runs: int | None = None
    """Train or evaluate at most this many runs in this call: the first, in run order, of those
    that need work; then aggregate. In time-limited sessions or jobs (a scheduler's time limit),
    start only the runs that can finish (the sweep's first line estimates their training time from
    its finished runs); the same command again takes the next ones."""

    def table_metrics(self) -> tuple[str, ...]:
        """``metrics``, or the default for the saliency methods this sweep scores."""
        if self.metrics:
            return self.metrics
        first, *others = self.saliency or ("gradcam",)
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
            start = get_preset(self.train_preset, TrainConfig) if self.train_preset else TrainConfig()
            cells = tuple(dataclasses.replace(start, env=env, algo=self.algo) for env in self.envs)
        return tuple(
            dataclasses.replace(
                cell,
                steps=self.steps if self.steps is not None else cell.steps,
                hp=cell.hp + self.hp,
                reward_scale=self.reward_scale if self.reward_scale is not None else cell.reward_scale,
                save_replay_buffer=self.save_replay_buffer or cell.save_replay_buffer,
                device=self.device,
                progress_bar=False,
                resume=False,
                overwrite=False,
            )
            for cell in cells
        )

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
        return EvaluateConfig(
            run=run,
            episodes=self.episodes,
            distractors=self.distractors,
            methods=self.saliency,
            faithfulness=self.faithfulness,
            max_steps_scored=self.max_steps_scored,
            q_policy=self.q_policy,
            q_epsilon=self.q_epsilon,
            device=self.device,
        )


def parse_variant(variant: str) -> tuple[str, float | None]:
    """``"camal:0.1"`` -> ``("camal", 0.1)``; ``"none"`` -> ``("none", None)``."""
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


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of the sweep."""

    run: str
    state: str
    """``skipped`` (already done), ``done``, ``failed``, ``stopped`` (Ctrl-C: the model is saved)
    or ``cancelled`` (not started because the sweep was interrupted)."""
    seconds: float
    error: str = ""


_interrupted = False
"""Set in a worker process once Ctrl-C reached it: the runs it is handed afterwards do not start
(a process pool keeps feeding queued runs to its workers while the sweep shuts down)."""

_in_hand = False
"""Set in a worker process while :func:`run_one` has a run in hand (see :func:`_worker_signal`)."""

_parent: int | None = None
"""A pool worker's parent, the sweep's process (:func:`_install_worker_signals`)."""

_orphaned = False
"""Set in a pool worker whose sweep's process died: it ends once its run is saved."""


def run_one(train_cfg: TrainConfig, eval_cfg: EvaluateConfig, threads: int = 1) -> RunOutcome:
    """Train (or resume) and evaluate one run, unless its directory says it is done. Runs in a pool
    worker or a Ray task; never raises, so one failed run does not stop the sweep. After Ctrl-C
    (``KeyboardInterrupt``) the run saves its model and ends ``stopped``, and the later runs of this
    process end ``cancelled`` without starting."""
    global _in_hand
    _in_hand = True
    try:
        return _run_one(train_cfg, eval_cfg, threads)
    finally:
        _in_hand = False
        if _orphaned:  # its run saved: no sweep is left to take the outcome or hand out more runs
            os._exit(128 + signal.SIGTERM)


def _run_one(train_cfg: TrainConfig, eval_cfg: EvaluateConfig, threads: int) -> RunOutcome:
    global _interrupted
    import torch

    from camal_rl.evaluation import evaluate
    from camal_rl.train import train

    torch.set_num_threads(threads)
    start = time.monotonic()
    run = RunDir(train_cfg.run_dir)
    log = sweep_log(run)
    if _interrupted:
        return RunOutcome(str(run.path), "cancelled", 0.0)
    try:
        short = steps_short(run, train_cfg)
        evaluated = run.is_evaluated() and not short
        changed = changed_settings(run, eval_cfg, train_cfg.algo) if evaluated else {}
        if evaluated and not changed:
            return RunOutcome(str(run.path), "skipped", 0.0)
        log.parent.mkdir(parents=True, exist_ok=True)
        # the lock refuses a run that another process trains (a worker of a sweep killed before)
        with run.locked(), log.open("a") as stream:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = stream
            try:
                if changed:
                    print(f"evaluating again: the sweep's evaluation settings differ: {changed}")
                if short:
                    print(f"training on: the run has {short} steps fewer than the sweep's --steps")
                if short or not run.is_trained():
                    resume = run.exists()
                    train(dataclasses.replace(train_cfg, resume=resume), argv=["camal-rl", "compare"])
                evaluate(eval_cfg)
            finally:
                sys.stdout, sys.stderr = stdout, stderr
        return RunOutcome(str(run.path), "done", time.monotonic() - start)
    except KeyboardInterrupt:
        _interrupted = True
        return RunOutcome(str(run.path), "stopped", time.monotonic() - start)
    except Exception as error:
        detail = "".join(traceback.format_exception(error))
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as stream:
            stream.write(detail)
        return RunOutcome(
            str(run.path), "failed", time.monotonic() - start, f"{type(error).__name__}: {error}"
        )


def changed_settings(run: RunDir, eval_cfg: EvaluateConfig, algo: str) -> dict[str, Any]:
    """The evaluation settings recorded in the run's ``metrics.json`` that ``eval_cfg`` changes,
    as ``{name: [recorded, wanted]}``; empty when the run is not evaluated, when they agree, or
    when the file records none (written before camal-rl recorded them: kept as they are)."""
    recorded = (run.read_metrics() or {}).get("settings")
    if not isinstance(recorded, dict):
        return {}
    wanted = eval_cfg.settings(algo)
    return {k: [recorded.get(k), v] for k, v in wanted.items() if recorded.get(k) != v}


def trained_differently(run: RunDir, cfg: TrainConfig) -> dict[str, list[Any]]:
    """:func:`camal_rl.config.training_differences` between the run's saved ``config.json`` and
    ``cfg`` (empty for a run not started): a resumed run keeps its saved settings, so a sweep
    would otherwise report such a run as its own."""
    if not run.config.exists():
        return {}
    return training_differences(TrainConfig.load(run.config), cfg)


def steps_short(run: RunDir, cfg: TrainConfig) -> int:
    """How many env steps a trained run lacks of ``cfg``'s budget: after ``--steps`` is raised, a
    finished run trains on (as ``train --resume --steps`` does) and is evaluated again. 0 for a run
    not trained yet, or trained as long or longer (kept as it is)."""
    if not run.is_complete():
        return 0
    steps = cfg.resolved().steps
    assert steps is not None
    return max(0, steps - int(run.read_status().get("num_timesteps", steps)))


def steps_to_train(run: TrainConfig) -> int:
    """Env steps a sweep will train the run for: from its last saved model to the budget, or the
    whole budget when it has no saved model (never started, or its model is gone); 0 when it is
    trained to the budget."""
    run_dir = RunDir(run.run_dir)
    steps = run.resolved().steps
    assert steps is not None
    if not run_dir.has_model():
        return steps
    return max(0, steps - int(run_dir.read_status().get("num_timesteps", 0)))


def sweep_estimate(now: Sequence[Job], jobs: Sequence[Job], workers: int) -> tuple[float, list[str]] | None:
    """Wall seconds the ``now`` jobs should take, ``workers`` at a time (each to the first free
    worker, in order), at the pace of the sweep's ``jobs`` done: for training, the median logged
    seconds per env step of the finished runs of the same env and variant (periodic evaluations
    included); for the final evaluation, the median ``evaluation_seconds`` of the variant's runs
    evaluated with the same settings.

    :return: the seconds, and the variants (labels) whose evaluations they leave out, no run of
        theirs having recorded how long one took; None when a job that trains has no finished run
        to go by.
    """
    paces: dict[tuple[str, str], list[float]] = {}
    evaluations: dict[tuple[str, str], list[float]] = {}
    for run, eval_cfg in jobs:
        run_dir, variant = RunDir(run.run_dir), (run.env_name, run.label)
        steps, seconds = run_dir.training_time() if run_dir.is_complete() else (0.0, 0.0)
        if steps > 0:
            paces.setdefault(variant, []).append(seconds / steps)
        took = evaluation_seconds(run_dir)
        if took is not None and not changed_settings(run_dir, eval_cfg, run.algo):
            evaluations.setdefault(variant, []).append(took)
    loads = [0.0] * workers
    uncounted: dict[str, None] = {}  # ordered, without repeats
    for run, _ in now:
        variant, left = (run.env_name, run.label), steps_to_train(run)
        if left and variant not in paces:
            return None
        seconds = statistics.median(paces[variant]) * left if left else 0.0
        if variant in evaluations:
            seconds += statistics.median(evaluations[variant])
        else:
            uncounted[run.label] = None
        loads[loads.index(min(loads))] += seconds
    return max(loads), list(uncounted)


def evaluation_seconds(run: RunDir) -> float | None:
    """How long the run's evaluation took, from its ``metrics.json`` (None: not evaluated, or
    evaluated before camal-rl recorded it)."""
    try:
        took = (run.read_metrics() or {}).get("evaluation_seconds")
    except InputError:  # not readable: no time to go by
        return None
    return float(took) if isinstance(took, int | float) and not isinstance(took, bool) else None


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1 h 30 min"``, ``720`` -> ``"12 min"``, ``40`` -> ``"40 s"``."""
    if seconds < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def unfinished(run: TrainConfig, eval_cfg: EvaluateConfig) -> str:
    """What the run still needs from the sweep, in words ("" when nothing): to start, to train
    (on, to a raised budget), to be evaluated (for the first time, or again with changed
    settings); or that it was trained with other settings than the sweep's (which a sweep
    refuses to run over, and whose tables leave it out)."""
    run_dir = RunDir(run.run_dir)
    steps = run.resolved().steps
    changed = trained_differently(run_dir, run)
    if changed:
        return f"trained with other settings (saved -> sweep: {describe_changes(changed)})"
    gone = "" if run_dir.has_model() else " (its model is gone: it trains again from step 0)"
    if not run_dir.is_complete():
        status = run_dir.read_status()
        if status["state"] == "missing":
            attempted = sweep_log(run_dir).exists()  # failed before its folder was written, or removed
            return "not started (an earlier attempt's output is in its .log)" if attempted else "not started"
        # status.json holds the step of the last save; a running run's evaluations go further
        evaluated = [row["step"] for row in run_dir.read_evaluations()]
        reached = int(max([status.get("num_timesteps", 0), *evaluated]))
        if status["state"] == "running":  # may not have saved yet
            return f"running (or killed) at {reached:,} of {steps:,} steps"
        return f"{status['state']} at {reached:,} of {steps:,} steps{gone}"
    if steps_short(run_dir, run) > 0:
        return f"to train on to {steps:,} steps{gone}"
    if not run_dir.metrics.exists():
        return f"not evaluated{gone}"
    if changed_settings(run_dir, eval_cfg, run.algo):
        return f"evaluated with other settings{gone}"
    return ""


def check_same_training(runs: Sequence[TrainConfig], out: Path) -> None:
    """Refuse, before any run starts, a sweep whose folder holds runs trained with other settings:
    resuming or skipping them would put their results in this sweep's tables.

    :raises InputError: naming the runs (up to three) and what differs.
    """
    clashes = [(run, trained_differently(RunDir(run.run_dir), run)) for run in runs]
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


def needs_work(run: TrainConfig, eval_cfg: EvaluateConfig) -> bool:
    """The run is to train (for the first time, or on to a raised budget), or to evaluate (for the
    first time, or again with changed settings)."""
    return bool(unfinished(run, eval_cfg))


def partial_note(reasons: Mapping[Path, str], out: Path) -> str | None:
    """None when every run is done, else which runs are not and why (lines of markdown); ``reasons``
    maps each run directory under ``out`` to :func:`unfinished`'s words."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in reasons.items():
        if reason:
            by_reason.setdefault(reason, []).append(str(path.relative_to(out)))
    if not by_reason:
        return None
    done = len(reasons) - sum(len(paths) for paths in by_reason.values())
    lines = (f"- {why}: {', '.join(paths)}" for why, paths in by_reason.items())
    return "\n".join((f"Partial sweep: {done} of {len(reasons)} runs done; not in the tables:", *lines))


def sweep_log(run: RunDir) -> Path:
    """Where a sweep writes a run's output: ``<run>.log`` beside the run directory."""
    return run.path.with_name(run.path.name + ".log")


Job = tuple[TrainConfig, EvaluateConfig]
"""One run of a sweep: how to train it and how to evaluate it."""


def run_process_pool(jobs: Sequence[Job], cfg: SweepConfig) -> list[RunOutcome]:
    """Run the jobs in a local pool of ``cfg.workers`` processes (spawned: no fork after torch)."""
    outcomes: list[RunOutcome] = []
    with ProcessPoolExecutor(
        max_workers=cfg.workers,
        mp_context=get_context("spawn"),
        initializer=_install_worker_signals,
        initargs=(os.getpid(),),
    ) as pool:
        try:
            started = time.time()
            futures = {pool.submit(run_one, t, e, cfg.threads): t for t, e in jobs}
            pending: set[Future[RunOutcome]] = set(futures)
            while pending:
                done, pending = wait(pending, timeout=cfg.progress_every or None, return_when=FIRST_COMPLETED)
                if not done:
                    in_progress = [futures[f] for f in pending if f.running()]
                    print(progress_line(in_progress, cfg.out, since=started), flush=True)
                for future in done:
                    outcomes.append(_report(future.result(), len(outcomes) + 1, len(jobs)))
        except KeyboardInterrupt as interrupt:
            # Ctrl-C reaches the workers too: their runs save and stop, and the runs already queued
            # to them end "cancelled" (run_one); the rest are cancelled here, not drained by the
            # `with` block's shutdown. Wait for the saves. SIGTERM may have been sent to this
            # process alone (`kill PID`): pass it on (a worker ignores a second one).
            if isinstance(interrupt, Terminated):
                workers = getattr(pool, "_processes", None) or {}  # pid -> Process
                for process in list(workers.values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return outcomes


def progress_line(runs: Sequence[TrainConfig], out: Path, since: float) -> str:
    """``HH:MM in progress: <run> at N of M steps (about T left), <run> evaluating, ...``: the runs
    among ``runs`` that wrote to their folder or sweep log after ``since`` (a time.time(); a pool
    hands a queued run to a worker before it starts), with how far their logger got and, at the
    speed of its current session, how long the rest takes; a run whose logger reached the steps
    is finishing its training (PPO's last update, the final evaluation and save: it said ``at
    301,056 of 300,000 steps``), and a run trained to the end is being evaluated."""
    parts = []
    for run in runs:
        run_dir = RunDir(run.run_dir)
        files = (run_dir.status, sweep_log(run_dir), *run_dir.progress_files())
        touched = [p.stat().st_mtime for p in files if p.exists()]
        if not touched or max(touched) < since:
            continue
        if run_dir.is_complete():
            parts.append(f"{run_dir.path.relative_to(out)} evaluating")
            continue
        steps, fps = run_dir.logged_progress()
        target = run.resolved().steps
        assert target is not None
        if steps >= target:
            left = " (finishing its training)"
        else:
            left = f" (about {format_duration((target - steps) / fps)} left)" if fps > 0 else ""
        parts.append(f"{run_dir.path.relative_to(out)} at {steps:,} of {target:,} steps{left}")
    return f"{time.strftime('%H:%M')} in progress: {', '.join(parts) or 'starting'}"


def _install_worker_signals(parent: int) -> None:
    """Pool worker initializer: SIGTERM and Ctrl-C go to :func:`_worker_signal` (a run in hand
    saves and stops, resumable; an idle worker ignores them), and the worker dies with the sweep's
    process ``parent``: on Linux the kernel sends it SIGTERM when the parent dies (even by
    SIGKILL), elsewhere a thread watches the parent's pid; a parent already gone ends it now."""
    global _parent
    _parent = parent
    signal.signal(signal.SIGTERM, _worker_signal)
    signal.signal(signal.SIGINT, _worker_signal)
    if not _signal_at_parent_death():
        threading.Thread(target=_watch_parent, name="watch-sweep", daemon=True).start()
    if os.getppid() != parent:  # died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


def _signal_at_parent_death() -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
    False where that cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) == 0)


def _watch_parent() -> None:
    """Send this process SIGTERM once its parent is no longer :data:`_parent`."""
    while os.getppid() == _parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_signal(signum: int, frame: FrameType | None) -> None:
    """A pool worker's SIGTERM and SIGINT handler. With a run in hand: SIGTERM raises
    :class:`Terminated` (once), SIGINT ``KeyboardInterrupt``, and the run saves and stops. Without
    one (its run done, waiting for the next): ignored. There is nothing to save, and the exception
    would kill the worker inside the pool's queue (a traceback, and a broken pool whose shutdown
    waits on the other workers); the sweep's process shuts the pool down instead. When that
    process is gone (killed), the worker ends: at once when idle, else once its run is saved
    (:func:`run_one`); left alone it would wait for runs forever, or train its run to the end
    with no sweep to own it."""
    global _orphaned
    if _parent is not None and os.getppid() != _parent:
        _orphaned = True
        if not _in_hand:
            os._exit(128 + signum)
    if not _in_hand:
        return
    if signum == signal.SIGTERM:
        raise_terminated(signum, frame)
    signal.default_int_handler(signum, frame)


def run_ray(jobs: Sequence[Job], cfg: SweepConfig) -> list[RunOutcome]:
    """Run the jobs as Ray tasks (one CPU each) on the cluster at ``cfg.address``, or on a local
    Ray instance of ``cfg.workers`` CPUs. On Ctrl-C or SIGTERM the tasks are cancelled: a run in
    progress gets a ``KeyboardInterrupt``, saves its model and stops, and this waits for it."""
    try:
        import ray
    except ImportError as error:
        raise MissingExtraError("ray", "camal-rl compare --backend ray") from error
    with _ray_session(ray, cfg) as sigterms:
        task = ray.remote(num_cpus=1)(_ray_task)
        started = time.time()
        refs = {task.remote(t, e, cfg.threads): t for t, e in jobs}
        pending = list(refs)
        outcomes: list[RunOutcome] = []
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=cfg.progress_every or None)
                if not done:  # Ray does not say which tasks run: the line names those that wrote
                    print(progress_line([refs[r] for r in pending], cfg.out, since=started), flush=True)
                for ref in done:
                    outcomes.append(_report(ray.get(ref), len(outcomes) + 1, len(jobs)))
        except KeyboardInterrupt as interrupt:
            for ref in pending:
                ray.cancel(ref)  # not force: the task's run gets a KeyboardInterrupt and saves
            if pending:
                ray.wait(pending, num_returns=len(pending))
            if sigterms and not isinstance(interrupt, Terminated):
                raise Terminated(f"received signal {sigterms[0]} (SIGTERM)") from None
            raise
        return outcomes


@contextmanager
def _ray_session(ray: Any, cfg: SweepConfig) -> Iterator[list[int]]:
    """Ray for the sweep: a session started here (local, or joining ``cfg.address``) ends with
    the block; one the caller started is used as it is. Ray's init replaces this process's
    SIGTERM handler with one that ends it at once, leaving the runs in progress unsaved: the
    handler is put back (the command line's stops the sweep as Ctrl-C does) for the block, and
    each SIGTERM it sees is added to the list yielded, because ``ray.wait`` raises a bare
    ``KeyboardInterrupt`` for whatever a handler raised during it."""
    sigterms: list[int] = []
    if ray.is_initialized():
        yield sigterms
        return
    # signal handlers live in the main thread; None: one not set from Python
    on_sigterm = (
        signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    )
    if cfg.address is None:
        ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=cfg.address, log_to_driver=False)
    try:
        if callable(on_sigterm):

            def noted(signum: int, frame: FrameType | None) -> None:
                sigterms.append(signum)
                on_sigterm(signum, frame)

            signal.signal(signal.SIGTERM, noted)
        elif on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)
        yield sigterms
    finally:
        ray.shutdown()
        if on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)


def _ray_task(train_cfg: TrainConfig, eval_cfg: EvaluateConfig, threads: int) -> RunOutcome:
    """:func:`run_one` as a Ray task. Ray cancels a stopped sweep's tasks itself, and its worker
    processes outlive the sweep while the driver's Ray session lasts (a notebook's, whose user
    interrupted one sweep and starts another): a worker that stopped a run must not cancel the
    runs it is given next, as a pool's worker does with its queued runs before it ends."""
    global _interrupted
    _interrupted = False
    return run_one(train_cfg, eval_cfg, threads)


def _report(outcome: RunOutcome, k: int, n: int) -> RunOutcome:
    detail = f" ({outcome.error}; see {outcome.run}.log)" if outcome.error else ""
    print(f"[{k}/{n}] {outcome.state:<7} {outcome.seconds:7.0f} s  {outcome.run}{detail}", flush=True)
    return outcome


def flat_notes(results: Sequence[RunResult], methods: Iterable[str]) -> str:
    """A line per agent variant and saliency method whose maps are mostly flat (mean
    ``flat_share`` over the runs that report it, :func:`~camal_rl.evaluation.flat_note`; how many
    of the variant's runs those are when not all), or ''."""
    from camal_rl.results import group_results, metric_values

    lines = []
    for (env, _, label), runs in group_results(results).items():
        for method in methods:
            shares = [v for v in metric_values(runs, f"{method}/flat_share") if math.isfinite(v)]
            note = flat_note(method, statistics.fmean(shares)) if shares else None
            if note and len(shares) < len(runs):
                note += (
                    f"; from {len(shares)} of its {len(runs)} runs, the others evaluated before "
                    "camal-rl recorded flat_share (evaluate them again to count them)"
                )
            lines += [f"- {label} on {env}: {note}"] if note else []
    return "\n".join(lines)


def aggregate_sweep(
    cfg: SweepConfig, paths: Iterable[Path] | None = None, *, note: str | None = None
) -> dict[str, Path]:
    """Tables and plots of the runs under ``cfg.out`` (or ``paths``), from their files alone;
    ``note`` (e.g. which runs are not complete) heads ``comparison.md``."""
    from camal_rl.plots import DEFAULT_BAR_METRICS, write_plots
    from camal_rl.results import available_metrics, load_results, metric_name
    from camal_rl.stats import comparison_table
    from camal_rl.tables import write_csv, write_markdown

    paths = list(paths) if paths is not None else [cfg.out]
    results = load_results(paths) if paths else []
    evaluated = [r for r in results if r.metrics is not None]
    written: dict[str, Path] = {}
    rows: list[dict[str, Any]] = []
    if evaluated:
        present = available_metrics(evaluated)
        wanted = [metric_name(m) for m in cfg.table_metrics()]
        metrics = [m for m in wanted if m in present]
        missing = [m for m in wanted if m not in present] if cfg.metrics else []
        if missing:
            close = {m: difflib.get_close_matches(m, present, n=1, cutoff=0.6) for m in missing}
            named = ", ".join(f"{m} (did you mean {close[m][0]}?)" if close[m] else m for m in missing)
            print(
                f"--metrics {named}: in no evaluated run's metrics.json, left out of the tables; "
                f"the runs have {', '.join(present)}"
            )
        available = set(present)
        pairs = [tuple(p.split(":", 1)) for p in cfg.pairs if ":" in p]
        names = {r.method for r in evaluated} | {r.label for r in evaluated}
        baseline = cfg.baseline if cfg.baseline in names else None
        pairs = [p for p in pairs if p[0] in names and p[1] in names]
        rows = comparison_table(evaluated, metrics, baseline=baseline, pairs=pairs)  # type: ignore[arg-type]
        written["csv"] = write_csv(rows, cfg.out / "comparison.csv")
    flat = flat_notes(evaluated, cfg.saliency)
    if flat:
        print(flat)
        note = f"{note}\n\n{flat}" if note else flat
    if evaluated or note:
        title = f"camal-rl compare: {cfg.out}"
        written["markdown"] = write_markdown(rows, cfg.out / "comparison.md", title=title, note=note)
    bars = None  # the plots' defaults, and the EPG of every saliency method the sweep scores
    if evaluated:
        bar_metrics = (*DEFAULT_BAR_METRICS, *(f"{method}/epg" for method in cfg.saliency))
        bars = [m for m in dict.fromkeys(bar_metrics) if m in available]
    plots = write_plots(results, cfg.out / "plots", metrics=bars) if results else []
    written.update({p.stem: p for p in plots})
    return written


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


def check_table_options(cfg: SweepConfig, runs: Sequence[TrainConfig]) -> None:
    """Before any run: ``--metrics`` are metric names, and ``--baseline`` and ``--pairs``, when
    given, name methods or labels of the sweep's runs (their defaults may name ones a sweep lacks:
    those tests are left out).

    :raises InputError: an empty metric name, a pair not written A:B, or a name no run has, with
        the names there are.
    """
    from camal_rl.results import parse_metric

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


def compare(cfg: SweepConfig) -> dict[str, Path]:
    """``camal-rl compare``: run the sweep (unless ``aggregate_only``), then aggregate it.

    The command line loads ``--preset NAME`` before parsing the other options; from Python, start
    from ``camal_rl.config.from_preset(NAME, SweepConfig, ...)``.

    :return: the tables and plots written, by name.
    :raises InputError: bad options; also when some runs failed (after aggregating the others).
    """
    if cfg.workers < 1 or cfg.episodes < 1 or cfg.threads < 1:
        raise InputError("--workers, --episodes and --threads must be >= 1")
    if not cfg.progress_every >= 0:
        raise InputError(f"--progress-every must be >= 0 seconds (0: never), got {cfg.progress_every}")
    if cfg.max_runs is not None and cfg.max_runs < 1:
        raise InputError(f"--max-runs must be >= 1 (leave it out to run them all), got {cfg.max_runs}")
    cfg.evaluate_config(cfg.out).check()  # evaluation settings fail here, not after training
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
    if cfg.distractors and not cfg.aggregate_only:  # an env without that variant: now, not after training
        from camal_rl.envs import make_masked_env

        for cell in cfg.base_configs():
            make_masked_env(cell.env, **{**cell.env_make_kwargs, "distractors": cfg.distractors}).close()
    jobs = [(run, cfg.evaluate_config(run.run_dir)) for run in runs]
    if cfg.aggregate_only:
        require_some_runs(runs, cfg.out, "--aggregate-only", "--preset, --envs, --algo, --methods, --seeds")
    failed: list[RunOutcome] = []
    if not cfg.aggregate_only:
        check_same_training(runs, cfg.out)
        pending = [job for job in jobs if needs_work(*job)]
        later = {id(job) for job in pending[cfg.max_runs :]} if cfg.max_runs is not None else set()
        limited = f", {cfg.max_runs} in this call (--max-runs)" if later else ""
        now = [job for job in pending if id(job) not in later]
        # on a Ray cluster, --workers does not say how many run at once
        estimate = sweep_estimate(now, jobs, cfg.workers) if cfg.address is None else None
        expected = ""
        if estimate and estimate[0]:
            seconds, uncounted = estimate
            work = "training them" if uncounted else "training and evaluating them"
            expected = f"; {work} takes about {format_duration(seconds)} at the pace of the runs done" + (
                f" (not counting the evaluations of {', '.join(uncounted)}: no run of theirs recorded"
                " how long one took)"
                if uncounted
                else ""
            )
        print(
            f"sweep {cfg.out}: {len(runs)} runs, {len(pending)} to train or evaluate{limited}, "
            f"{cfg.workers} at a time ({cfg.backend}){expected}"
        )
        execute = run_ray if cfg.backend == "ray" else run_process_pool
        try:
            outcomes = execute([job for job in jobs if id(job) not in later], cfg)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: the runs in progress saved their models; "
                "run the same command again to resume the sweep",
                file=sys.stderr,
            )
            raise
        failed = [o for o in outcomes if o.state == "failed"]
    # The tables hold only the runs trained and evaluated as this sweep asks; the others are named.
    reasons = {run.run_dir: unfinished(run, evaluation) for run, evaluation in jobs}
    complete = [path for path, reason in reasons.items() if not reason]
    partial = partial_note(reasons, cfg.out)
    if partial:
        print(partial)
    written = aggregate_sweep(cfg, complete, note=partial)
    for path in written.values():
        print(f"wrote {path}")
    if failed:
        raise InputError(
            f"{len(failed)} of {len(runs)} runs failed ({'; '.join(o.error for o in failed[:3])}); "
            "the <run>.log file beside each holds its traceback. Run the same command again to resume them."
        )
    return written
