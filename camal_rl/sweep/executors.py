"""Running a sweep's jobs: in a local process pool (``--backend process``) or as Ray tasks on an
existing cluster (``--backend ray --address ADDR``). Both call :func:`run_one`, so they write the
same files; Ray workers must see ``OUT`` at the same path (one machine, or a shared filesystem).

Ctrl-C and SIGTERM stop a sweep resumably: each run in progress saves its model and ends
``stopped``, the runs not started end ``cancelled``. A pool's workers die with the sweep's
process, however it ends. While runs train, a line every ``--progress-every`` seconds says how far
each got; the sweep's first line estimates how long the runs to do take, at the pace of the runs
done.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from types import FrameType
from typing import Any

from camal_rl.config import TrainConfig
from camal_rl.errors import InputError, MissingExtraError, Terminated, raise_terminated
from camal_rl.evaluation import EvaluateConfig
from camal_rl.rundir import RunDir
from camal_rl.sweep.plan import Job, SweepConfig, run_needs


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one run of the sweep."""

    run: str
    state: str
    """``skipped`` (already done), ``done``, ``failed``, ``stopped`` (Ctrl-C: the model is saved)
    or ``cancelled`` (not started because the sweep was interrupted)."""
    seconds: float
    error: str = ""


def run_sweep(cfg: SweepConfig, jobs: Sequence[Job]) -> list[RunOutcome]:
    """Train and evaluate the jobs that need it (the first ``max_runs`` of them), with the backend
    of ``cfg.execution``, after a line that says how many there are and about how long they take.

    :return: what happened to each job handed to the executor.
    :raises KeyboardInterrupt: Ctrl-C or SIGTERM (:class:`Terminated`), once the runs in progress
        saved their models.
    """
    pending = [job for job in jobs if not run_needs(*job).done]
    execution = cfg.execution
    later = {id(job) for job in pending[execution.max_runs :]} if execution.max_runs is not None else set()
    limited = f", {execution.max_runs} in this call (--max-runs)" if later else ""
    now = [job for job in pending if id(job) not in later]
    # on a Ray cluster, --workers does not say how many run at once
    estimate = sweep_estimate(now, jobs, execution.workers) if execution.address is None else None
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
        f"sweep {cfg.out}: {len(jobs)} runs, {len(pending)} to train or evaluate{limited}, "
        f"{execution.workers} at a time ({execution.backend}){expected}"
    )
    execute = run_ray if execution.backend == "ray" else run_process_pool
    try:
        return execute([job for job in jobs if id(job) not in later], cfg)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the runs in progress saved their models; "
            "run the same command again to resume the sweep",
            file=sys.stderr,
        )
        raise


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
    log = run.sweep_log
    if _interrupted:
        return RunOutcome(str(run.path), "cancelled", 0.0)
    try:
        needs = run_needs(train_cfg, eval_cfg)
        if not needs.to_evaluate:
            return RunOutcome(str(run.path), "skipped", 0.0)
        changed = needs.evaluation_changes if needs.evaluated else {}
        log.parent.mkdir(parents=True, exist_ok=True)
        # the lock refuses a run that another process trains (a worker of a sweep killed before)
        with run.locked(), log.open("a") as stream:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = stream
            try:
                if changed:
                    print(f"evaluating again: the sweep's evaluation settings differ: {changed}")
                short = needs.steps_short
                if short:
                    print(f"training on: the run has {short} steps fewer than the sweep's --steps")
                if needs.to_train:
                    resume = run.exists()
                    asked = dataclasses.replace(train_cfg, resume=resume)
                    if resume and asked.stop_return is None:  # else it keeps the run's own
                        asked = dataclasses.replace(asked, stop_return=math.inf)
                    train(asked, argv=["camal-rl", "compare"])
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
        if took is not None and not run_needs(run, eval_cfg).evaluation_changes:
            evaluations.setdefault(variant, []).append(took)
    loads = [0.0] * workers
    uncounted: dict[str, None] = {}  # ordered, without repeats
    for run, eval_cfg in now:
        variant, left = (run.env_name, run.label), run_needs(run, eval_cfg).steps_to_train
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
        files = (run_dir.status, run_dir.sweep_log, *run_dir.progress_files())
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


def _report(outcome: RunOutcome, k: int, n: int) -> RunOutcome:
    detail = f" ({outcome.error}; see {outcome.run}.log)" if outcome.error else ""
    print(f"[{k}/{n}] {outcome.state:<7} {outcome.seconds:7.0f} s  {outcome.run}{detail}", flush=True)
    return outcome


def run_process_pool(jobs: Sequence[Job], cfg: SweepConfig) -> list[RunOutcome]:
    """Run the jobs in a local pool of ``--workers`` processes (spawned: no fork after torch)."""
    outcomes: list[RunOutcome] = []
    with (
        _openmp_threads(cfg.execution.threads),
        ProcessPoolExecutor(
            max_workers=cfg.execution.workers,
            mp_context=get_context("spawn"),
            initializer=_install_worker_signals,
            initargs=(os.getpid(),),
        ) as pool,
    ):
        try:
            started = time.time()
            futures = {pool.submit(run_one, t, e, cfg.execution.threads): t for t, e in jobs}
            pending: set[Future[RunOutcome]] = set(futures)
            while pending:
                done, pending = wait(
                    pending, timeout=cfg.execution.progress_every or None, return_when=FIRST_COMPLETED
                )
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


@contextmanager
def _openmp_threads(threads: int) -> Iterator[None]:
    """``OMP_NUM_THREADS=threads`` for the worker processes spawned meanwhile, unless it is set
    already. Each worker calls ``torch.set_num_threads(threads)``, but that comes after torch has
    loaded its OpenMP runtime, whose pool still spans every core: two workers on 2 cores then
    train about 10% slower than with the variable set (DoorKey-5x5 CamalPPO, 10k steps: 88 s
    against 78 s)."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


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
    """Run the jobs as Ray tasks (one CPU each) on the cluster at ``--address``, or on a local
    Ray instance of ``--workers`` CPUs. On Ctrl-C or SIGTERM the tasks are cancelled: a run in
    progress gets a ``KeyboardInterrupt``, saves its model and stops, and this waits for it."""
    try:
        import ray
    except ImportError as error:
        raise MissingExtraError("ray", "camal-rl compare --backend ray") from error
    with _ray_session(ray, cfg) as sigterms:
        task = ray.remote(num_cpus=1)(_ray_task)
        started = time.time()
        refs = {task.remote(t, e, cfg.execution.threads): t for t, e in jobs}
        pending = list(refs)
        outcomes: list[RunOutcome] = []
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=cfg.execution.progress_every or None)
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
    """Ray for the sweep: a session started here (local, or joining ``--address``) ends with
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
    if cfg.execution.address is None:
        ray.init(num_cpus=cfg.execution.workers, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=cfg.execution.address, log_to_driver=False)
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
