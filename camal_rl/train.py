"""``camal-rl train``: train one agent into a run directory, resumably.

Ctrl-C or a crash saves the model before the process exits, and ``--resume`` continues from the
newest saved model that loads (``model.zip`` or the last checkpoint) with the step count where it
stopped. Every save goes to a temporary file renamed into place, so a kill or a full disk in the
middle of one leaves the earlier file whole; a save that fails says so in one message and marks
the run ``failed``. The process that trains a run holds its lock (``RunDir.locked``).
"""

from __future__ import annotations

import dataclasses
import errno
import pickle
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from camal_rl.atomic import write_json, written_then_moved
from camal_rl.config import TrainConfig, describe_changes, resume_request
from camal_rl.errors import InputError
from camal_rl.evaluation import EVAL_SEED, quick_evaluation
from camal_rl.hyperparams import algo_schedules, check_algo_kwargs
from camal_rl.loading import algorithm_classes
from camal_rl.rundir import STOPPED_AT_RETURN, RunDir

if TYPE_CHECKING:
    from camal_rl.agents import CamalDQN, CamalPPO

STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
"""The errors of a file that cannot be written (a full disk, a quota, read-only, permissions): the
user's to fix, said in one message rather than a traceback."""


class SaveFailedError(InputError):
    """A model, checkpoint or replay buffer that could not be written; the earlier file is kept.

    :param run: the run directory.
    :param path: the file that was being saved.
    :param error: why it could not be.
    """

    def __init__(self, run: RunDir, path: Path, error: OSError) -> None:
        self.summary = f"cannot save {path} ({error.strerror or error})"
        super().__init__(
            f"{self.summary}: it keeps what it held before, and the run is marked failed. Free some "
            f"space (or make {run.path} writable), then continue from its newest saved model: "
            f"camal-rl train --resume --out {run.path}"
        )


def save_file(run: RunDir, path: Path, save: Callable[[Path], None]) -> None:
    """``save`` a model zip or replay buffer to a temporary file beside ``path``, flushed to the
    disk and renamed onto ``path``: a kill or a failure on the way leaves ``path`` as it was.

    :raises SaveFailedError: the file cannot be written (e.g. the disk is full).
    """
    try:
        with written_then_moved(path, durable=True) as tmp:
            save(tmp)
    except OSError as error:
        raise SaveFailedError(run, path, error) from error


def env_factory(cfg: TrainConfig, **overrides: Any) -> Callable[[], gym.Env]:
    """A picklable thunk building one masked env of the run (for vec envs and evaluation)."""
    from functools import partial

    from camal_rl.envs import make_masked_env

    return partial(make_masked_env, cfg.env, **{**cfg.env_make_kwargs, **overrides})


def check_env_config(cfg: TrainConfig) -> None:
    """Build the env once, so a bad id or keyword fails before the run directory is touched."""
    env = env_factory(cfg)()
    env.close()


class RunCallback(BaseCallback):
    """Periodic evaluation (returns + Grad-CAM alignment, to ``evaluations.csv`` and ``eval/``
    logger keys) and checkpoints (``checkpoints/step_<N>.zip``) of a run.

    :param run: the run directory.
    :param cfg: the resolved config.
    """

    def __init__(self, run: RunDir, cfg: TrainConfig) -> None:
        super().__init__()
        self.run, self.cfg = run, cfg
        self.make_eval_env = env_factory(cfg)
        self.last_eval = -1
        self.last_checkpoint = 0
        self.reached_stop_return: float | None = None
        self.started = time.monotonic()

    def _on_training_start(self) -> None:
        self.last_checkpoint = self.num_timesteps
        evaluated = [int(row["step"]) for row in self.run.read_evaluations()]
        self.last_eval = max(evaluated, default=-1)
        if self.cfg.eval_freq and (self.last_eval < 0 or self.num_timesteps >= self._next(self.last_eval)):
            self.evaluate()

    def _on_step(self) -> bool:
        if self.cfg.eval_freq and self.num_timesteps >= self._next(self.last_eval):
            self.evaluate()
        if self.cfg.checkpoint_freq and self.num_timesteps - self.last_checkpoint >= self.cfg.checkpoint_freq:
            self.checkpoint()
        return self.reached_stop_return is None  # False stops learn() (SB3's callback contract)

    def _on_training_end(self) -> None:
        if self.cfg.eval_freq and self.last_eval != self.num_timesteps:
            self.evaluate()

    def _next(self, last: int) -> int:
        """The first multiple of ``eval_freq`` after step ``last``: evaluations fall on the same
        steps in every run, resumed or not."""
        return (max(last, 0) // self.cfg.eval_freq + 1) * self.cfg.eval_freq

    def evaluate(self) -> None:
        """One periodic evaluation at the current step."""
        from camal_rl.agents import PolicyScorer

        row = quick_evaluation(
            self.model,
            PolicyScorer(self.model),
            self.make_eval_env,
            episodes=self.cfg.eval_episodes,
            seed=EVAL_SEED,
        )
        for key in ("return_mean", "length_mean", "epg", "iou", "coverage", "flat_share"):
            self.logger.record(f"eval/{key}", row[key])
        self.run.append_evaluation(
            {"step": self.num_timesteps, "wall_time_s": round(time.monotonic() - self.started, 1), **row}
        )
        self.last_eval = self.num_timesteps
        if self.cfg.stop_return is not None and row["return_mean"] >= self.cfg.stop_return:
            self.reached_stop_return = float(row["return_mean"])

    def checkpoint(self) -> None:
        """Save ``checkpoints/step_<N>.zip`` (and the replay buffer if asked)."""
        self.run.checkpoints.mkdir(exist_ok=True)
        save_file(self.run, self.run.checkpoints / f"step_{self.num_timesteps}.zip", self.model.save)
        save_replay_buffer(self.model, self.run, self.cfg)
        self.run.write_status("running", num_timesteps=self.num_timesteps)
        self.last_checkpoint = self.num_timesteps


def save_replay_buffer(model: BaseAlgorithm, run: RunDir, cfg: TrainConfig) -> None:
    if cfg.save_replay_buffer and isinstance(model, OffPolicyAlgorithm):
        save_file(run, run.replay_buffer, model.save_replay_buffer)


class ScaledRewards(VecEnvWrapper):
    """Clips the rewards the agent learns from to their sign (with ``clip``), then multiplies them
    by ``scale``. The envs' Monitor wrappers sit inside, so monitor files and the logger's episode
    returns keep the envs' own rewards."""

    def __init__(self, venv: VecEnv, scale: float, clip: bool = False):
        super().__init__(venv)
        self.scale, self.clip = scale, clip

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, (np.sign(rewards) if self.clip else rewards) * self.scale, dones, infos


def close_training_envs(venv: VecEnv) -> None:
    """Close the training envs, whose subprocess workers may have ended already: a SIGTERM to the
    whole process group (``timeout``, a batch scheduler, ``kill -- -PGID``) kills them with the
    trainer, and SB3's ``SubprocVecEnv.close`` then writes to their closed pipes. The run is
    saved by then; what is left is to reap the workers, not to print a traceback."""
    try:
        venv.close()
    except (BrokenPipeError, ConnectionResetError, EOFError):
        base = venv.unwrapped
        if not isinstance(base, SubprocVecEnv):
            raise
        for process in base.processes:
            if process.is_alive():
                process.kill()
            process.join()
        for remote in base.remotes:
            remote.close()
        base.closed = True


def make_training_envs(cfg: TrainConfig, run: RunDir, *, resumed_at: int) -> VecEnv:
    """``n_envs`` monitored masked envs, their rewards clipped (``reward_clip``) and scaled by
    ``reward_scale`` (when either changes them); a resumed run appends to its monitor files and
    reseeds its envs from where it stopped, so it does not replay the first episodes."""
    run.monitor.mkdir(exist_ok=True)
    assert cfg.n_envs is not None
    envs = make_vec_env(
        env_factory(cfg),
        n_envs=cfg.n_envs,
        seed=cfg.seed + resumed_at,
        monitor_dir=str(run.monitor),
        monitor_kwargs={"override_existing": resumed_at == 0},
        vec_env_cls=SubprocVecEnv if cfg.vec_env == "subproc" else DummyVecEnv,
    )
    return with_training_rewards(envs, cfg)


def with_training_rewards(envs: VecEnv, cfg: TrainConfig) -> VecEnv:
    """``envs`` giving the rewards a run of ``cfg`` learns from: clipped (``reward_clip``) and
    scaled by ``reward_scale`` (:class:`ScaledRewards`), or ``envs`` itself when neither changes
    them."""
    assert cfg.reward_scale is not None
    if cfg.reward_scale == 1 and not cfg.reward_clip:
        return envs
    return ScaledRewards(envs, cfg.reward_scale, clip=bool(cfg.reward_clip))


class ResumedTensorBoardOutputFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard output for a session resumed from a model saved at step ``resumed_at``:
    TensorBoard hides the events that earlier sessions wrote after that step (logged by models
    that no longer exist), as ``RunDir.rewind`` drops those CSV rows."""

    def __init__(self, folder: str, resumed_at: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=folder, purge_step=resumed_at + 1)
        self._is_closed = False


def make_logger(run: RunDir, session: int, verbose: int, *, resumed_at: int = 0) -> Logger:
    """CSV (``progress.csv``, then ``progress.<k>.csv`` per resumed session) and TensorBoard (a
    resumed session hides the earlier sessions' events after step ``resumed_at``; 0 when the run
    lost its model and trains again from the start)."""
    suffix = "" if session == 0 else f".{session}"
    tensorboard = (
        ResumedTensorBoardOutputFormat(str(run.path), resumed_at)
        if session or resumed_at
        else make_output_format("tensorboard", str(run.path))
    )
    formats = [make_output_format("csv", str(run.path), suffix), tensorboard]
    if verbose:
        formats.append(make_output_format("stdout", str(run.path)))
    return Logger(folder=str(run.path), output_formats=formats)


def train(cfg: TrainConfig, argv: Sequence[str] | None = None) -> RunDir:
    """Train an agent as ``cfg`` says and return its run directory.

    :param cfg: the run's config (resolved here). With ``resume``, the run's saved config is used
        and only ``steps`` and ``stop_return`` (if given) change; ``save_replay_buffer`` can be
        switched on (and is recorded in config.json from then on).
    :param argv: the command line to record (default: ``sys.argv``).
    :raises InputError: bad settings, an ``--out`` that cannot take the run (a file, below a file,
        read-only, a folder that is not a run), an existing run without --resume / --overwrite, a
        run another process holds, a save that failed (:class:`SaveFailedError`).
    """
    run = RunDir(cfg.run_dir)
    run.check_target(overwrite=cfg.overwrite, resume=cfg.resume)
    existed = run.path.exists()
    switched_on = False  # --save-replay-buffer given at --resume
    if cfg.resume:
        saved = TrainConfig.load(run.config)
        asked = run.needs(resume_request(cfg, saved)).trained_differently
        if asked:
            raise InputError(
                f"--resume continues {run.path} with its saved settings, but the options ask for "
                f"others (saved -> asked: {describe_changes(asked)}); drop those options to resume, "
                "or train a new run with them (another --out, or --overwrite)"
            )
        switched_on = cfg.save_replay_buffer and not saved.save_replay_buffer
        saved = dataclasses.replace(
            saved, save_replay_buffer=saved.save_replay_buffer or cfg.save_replay_buffer
        )
        stop_return = saved.stop_return if cfg.stop_return is None else cfg.stop_return
        cfg = dataclasses.replace(saved, steps=cfg.steps or saved.steps, stop_return=stop_return, resume=True)
    cfg = cfg.resolved()
    algo_class = algorithm_classes()[cfg.algo]
    check_algo_kwargs(algo_class, cfg.algo_kwargs)
    check_env_config(cfg)
    with run.locked():
        if switched_on:  # recorded from now on
            write_json(run.config, saved.to_json())
        if not cfg.resume:
            run.prepare(overwrite=cfg.overwrite, resume=False)
            write_json(run.config, cfg.to_json())
            run.write_versions()
        reached = run.reached_stop_return(cfg.stop_return) if cfg.resume else None
        if reached is not None:
            print(
                f"{run.path} reached --stop-return {cfg.stop_return} at "
                f"{run.read_status().get('num_timesteps')} steps (evaluation return {reached:.3f}); "
                "to train on, resume with a higher --stop-return (inf: on to --steps)"
            )
            return run
        run.append_command(argv if argv is not None else sys.argv)
        return _train(cfg, run, algo_class, existed=existed)


def _train(
    cfg: TrainConfig, run: RunDir, algo_class: type[CamalPPO] | type[CamalDQN], *, existed: bool
) -> RunDir:
    """:func:`train` once its run directory is written and locked."""
    try:
        model, resumed_at = _build_model(cfg, run, algo_class)
    except BaseException:
        if not cfg.resume:  # a new run that could not start (e.g. a bad --hp value) leaves nothing
            shutil.rmtree(run.path, ignore_errors=True)
            if existed:
                run.path.mkdir()
        raise
    assert cfg.steps is not None
    remaining = cfg.steps - resumed_at
    if remaining <= 0:
        print(
            f"{run.path} already has {resumed_at} of {cfg.steps} steps; pass a larger --steps to train longer"
        )
        run.write_status("complete", num_timesteps=resumed_at)
        return run
    session = len(run.progress_files())
    model.set_logger(make_logger(run, session, cfg.verbose, resumed_at=resumed_at))
    run.write_status("running", num_timesteps=resumed_at)
    # SB3's own progress bar (learn(progress_bar=True)), held here so that a crash closes it too:
    # left open, it raises again at interpreter shutdown, under the crash's traceback
    progress = ProgressBarCallback() if cfg.progress_bar else None
    run_callback = RunCallback(run, cfg)
    try:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList([run_callback, *([progress] if progress else [])]),
            reset_num_timesteps=resumed_at == 0,
        )
    except KeyboardInterrupt:
        _save(model, run, cfg, "interrupted")
        print(
            f"\ninterrupted at {model.num_timesteps} steps; model saved to {run.model}. "
            f"Continue with: camal-rl train --resume --out {run.path}",
            file=sys.stderr,
        )
        raise
    except BaseException as error:
        _save(model, run, cfg, "failed", error=f"{type(error).__name__}: {error}")
        if isinstance(error, OSError) and error.errno in STORAGE_ERRORS:
            raise InputError(
                f"training stopped at {model.num_timesteps} steps: cannot write "
                f"{error.filename or 'a file of the run'} ({error.strerror}); the model is saved to "
                f"{run.model} and the run marked failed. Free some space (or make {run.path} writable), "
                f"then continue with: camal-rl train --resume --out {run.path}"
            ) from error
        raise
    finally:
        if progress is not None and hasattr(progress, "pbar"):
            progress.pbar.close()  # closed already when training ended; a second close does nothing
        model.logger.close()  # progress.csv and the TensorBoard writer
        close_training_envs(model.get_env())  # type: ignore[arg-type]
    reached = run_callback.reached_stop_return
    _save(model, run, cfg, "complete", **({} if reached is None else {STOPPED_AT_RETURN: reached}))
    if reached is not None:
        print(
            f"{run.path}: evaluation return {reached:.3f} >= --stop-return {cfg.stop_return} "
            f"at step {model.num_timesteps}; training stopped"
        )
    return run


def _build_model(
    cfg: TrainConfig, run: RunDir, algo_class: type[CamalPPO] | type[CamalDQN]
) -> tuple[BaseAlgorithm, int]:
    """A fresh model, or the newest saved one of a resumed run, on the run's envs. A resumed run
    that holds no saved model (deleted, or killed before its first save) trains from step 0: what it
    recorded, its metrics too, belonged to a model that no longer exists and is dropped."""
    latest = run.load_latest(lambda p: algo_class.load(p, device=cfg.device)) if cfg.resume else None
    if latest is not None:
        path, model = latest
        steps = int(model.num_timesteps)
        assert cfg.n_envs is not None
        dropped = run.rewind(steps, cfg.n_envs)
        if any(dropped.values()):
            print(
                f"{path.name} is from step {steps}: dropped what the run recorded after it "
                f"({dropped['evaluations']} evaluations, {dropped['episodes']} training episodes, "
                f"{dropped['progress']} logger rows)"
            )
        model.set_env(make_training_envs(cfg, run, resumed_at=steps))
        if isinstance(model, OffPolicyAlgorithm) and run.replay_buffer.exists():
            try:
                model.load_replay_buffer(run.replay_buffer)
            except (EOFError, pickle.UnpicklingError, ValueError) as error:  # saved before saves were atomic
                print(f"skipped {run.replay_buffer}: it does not load ({type(error).__name__}: {error})")
        print(f"resuming {run.path} from {path.name} at {steps} steps")
        from camal_rl.agents import CamalDQN

        if isinstance(model, CamalDQN) and (missing := model.hold_updates_for_refill()):
            print(
                f"the replay buffer holds {model.learning_starts - missing} of learning_starts="
                f"{model.learning_starts} transitions (it is saved with --save-replay-buffer): "
                f"gradient updates wait until step {model.updates_resume_at}"
            )
        return model, steps
    if cfg.resume:
        assert cfg.n_envs is not None
        dropped = run.rewind(0, cfg.n_envs)
        run.metrics.unlink(missing_ok=True)
        print(
            f"{run.path} holds no saved model that loads (model.zip or checkpoints/step_*.zip): training "
            f"it from step 0 with its saved settings; dropped what the run recorded before "
            f"({dropped['evaluations']} evaluations, {dropped['episodes']} training episodes, "
            f"{dropped['progress']} logger rows)"
        )
    venv = make_training_envs(cfg, run, resumed_at=0)
    try:
        model = new_model(cfg, algo_class, venv)
    except InputError:
        venv.close()
        raise
    return model, 0


def new_model(
    cfg: TrainConfig, algo_class: type[CamalPPO] | type[CamalDQN], env: gym.Env | VecEnv
) -> CamalPPO | CamalDQN:
    """A new, untrained agent of a resolved config on ``env``: how :func:`train` builds one, and
    how :func:`camal_rl.weights.load_weights` rebuilds one (on one env, for its spaces) to take a
    run's saved policy weights. Its ``lin_<number>`` hyperparameters become SB3's linear schedules
    (:func:`camal_rl.hyperparams.algo_schedules`).

    :raises InputError: the algorithm refuses the config's hyperparameters.
    """
    try:
        return algo_class(
            "MultiInputPolicy",
            env,
            camal_coef=cfg.camal_coef,
            camal_loss=cfg.method,
            camal_target=cfg.target,
            seed=cfg.seed,
            device=cfg.device,
            verbose=cfg.verbose,
            **algo_schedules(cfg.algo_kwargs),
        )
    except (TypeError, ValueError, AssertionError) as error:  # SB3 checks its keywords with asserts
        hp = ", ".join(f"{k}={v!r}" for k, v in cfg.algo_kwargs.items())
        raise InputError(
            f"{algo_class.__name__} refused its hyperparameters ({type(error).__name__}: {error}); "
            f"check the values given with --hp (the run's: {hp})"
        ) from error


def _save(model: BaseAlgorithm, run: RunDir, cfg: TrainConfig, state: str, **fields: Any) -> None:
    """Save ``model.zip`` (and the replay buffer if asked) and record ``state``. A save that fails,
    or that a second Ctrl-C cuts short, leaves the earlier files whole (:func:`save_file`) and
    marks the run ``failed`` or ``interrupted`` at the step of its last save; then it raises."""
    try:
        save_file(run, run.model, model.save)
        save_replay_buffer(model, run, cfg)
    except (SaveFailedError, KeyboardInterrupt) as error:
        failed = isinstance(error, SaveFailedError)
        why = (
            error.summary if isinstance(error, SaveFailedError) else f"the save of {run.model} was cut short"
        )
        try:  # the status keeps the step of the last whole save
            steps = run.read_status().get("num_timesteps", 0)
            run.write_status("failed" if failed else "interrupted", num_timesteps=steps, error=why)
        except (OSError, ValueError) as failure:  # a full disk takes status.json too
            print(f"{run.status} not updated either ({failure})", file=sys.stderr)
        if not failed:
            print(
                f"\ninterrupted while saving {run.model}: it keeps what it held before. Continue from the "
                f"newest saved model with: camal-rl train --resume --out {run.path}",
                file=sys.stderr,
            )
        raise
    run.write_status(state, num_timesteps=int(model.num_timesteps), **fields)
