"""Read run directories (:mod:`camal_rl.rundir`) into tidy records, the per-seed values that
:mod:`camal_rl.statistics` summarises and tests.

``camal-rl compare`` and ``camal-rl plot`` work from files alone: :func:`load_results` finds the
runs under the given paths (a folder holding ``config.json`` is a run; other folders are searched
recursively), and reads each run's identity from ``config.json``, its state from
``status.json``, its periodic evaluations from ``evaluations.csv`` and its final evaluation from
``metrics.json`` (written by ``camal-rl evaluate``).

A **metric** names one number of ``metrics.json`` per run (per seed), as a path with ``/``::

    return                      variants.train.return.mean  (mean return over the episodes)
    success_rate                variants.train.success_rate
    gradcam/epg                 variants.train.saliency.gradcam.epg.mean
    behaviour/behaviour_log_ratio  variants.train.behaviour.behaviour_log_ratio.mean
    distractors/return          variants.distractors.return.mean

The seed is the unit of replication: :func:`metric_values` gives one value per run, and
:func:`group_results` the runs (seeds) of each agent variant ``(env, algo, label)``.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from camal_rl.config import TrainConfig
from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from camal_rl.runlogs import whole_episodes

VARIANTS = ("train", "distractors")
"""Env variants of ``metrics.json`` (``camal-rl evaluate``, ``--distractors``)."""
MetricPath = tuple[str, ...]
"""A metric as a path into ``metrics.json``: ``(variant, name)`` or ``(variant, group, name)``."""
GroupKey = tuple[str, str, str]
"""An agent variant: ``(env, algo, label)``."""
METHOD_ORDER = ("none", "camal", "camal-v1", "energy", "rrr")
"""Order of agent variants in tables and legends: the baseline first."""


@dataclass(frozen=True)
class RunResult:
    """What one run directory holds, read from its files."""

    path: Path
    """The run directory."""
    env: str
    """Env id without the ``camal_rl/`` prefix."""
    algo: str
    """``ppo`` or ``dqn``."""
    method: str
    """Attention loss: ``camal``, ``energy``, ``rrr`` or ``none``."""
    label: str
    """Agent variant (``TrainConfig.label``: ``ppo-camal``, ``ppo-camal-c0.1``, ...)."""
    seed: int
    """Training seed."""
    coef: float
    """Attention-loss weight it trained with (0 for ``none``)."""
    num_timesteps: int
    """Env steps trained so far (``status.json``; 0 when unknown)."""
    state: str
    """``complete``, ``running``, ``interrupted``, ``failed`` or ``missing`` (no status.json)."""
    evaluations: tuple[dict[str, float], ...] = ()
    """Rows of ``evaluations.csv`` (periodic evaluations during training), in file order."""
    metrics: dict[str, Any] | None = field(default=None, compare=False)
    """``metrics.json`` (``camal-rl evaluate``), or None when the run was not evaluated."""

    @property
    def key(self) -> GroupKey:
        """The agent variant this run is a seed of."""
        return (self.env, self.algo, self.label)

    @property
    def complete(self) -> bool:
        """Training finished."""
        return self.state == "complete"


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Run directories at or under ``paths``, sorted, each once.

    A folder holding ``config.json`` is a run (runs do not nest, so the search stops there);
    any other folder is searched recursively, hidden folders (``.git``, ...) skipped.

    :param paths: run directories or folders containing them.
    :raises InputError: a path does not exist.
    """
    found: set[Path] = set()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path} does not exist; pass run directories or folders containing them")
        if RunDir(path).exists():
            found.add(path)
            continue
        for folder, subfolders, files in os.walk(path):
            if "config.json" in files:
                found.add(Path(folder))
                subfolders.clear()
            else:
                subfolders[:] = [s for s in subfolders if not s.startswith(".")]
    return sorted(found)


def read_run(path: Path) -> RunResult:
    """Read one run directory.

    :raises InputError: ``config.json``, ``status.json``, ``metrics.json`` or ``evaluations.csv``
        is not readable.
    """
    run = RunDir(Path(path))
    cfg = TrainConfig.load(run.config)
    try:
        status = run.read_status()
        num_timesteps, state = int(status.get("num_timesteps", 0)), str(status.get("state", "missing"))
    except InputError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise InputError(
            f"cannot read {run.status} ({error}); delete it (the run then counts as not finished) "
            "or restore it"
        ) from error
    metrics = run.read_metrics()
    try:
        evaluations = run.read_evaluations()
    except (OSError, ValueError, csv.Error) as error:
        raise InputError(f"cannot read {run.evaluations} ({error}); fix or delete the file") from error
    return RunResult(
        path=run.path,
        env=cfg.env_name,
        algo=cfg.algo,
        method=cfg.method,
        label=cfg.label,
        seed=cfg.seed,
        coef=cfg.camal_coef,
        num_timesteps=num_timesteps,
        state=state,
        evaluations=tuple(evaluations),
        metrics=metrics,
    )


def load_results(paths: Iterable[Path], *, complete_only: bool = False) -> list[RunResult]:
    """Every run at or under ``paths`` (:func:`find_runs`), read with :func:`read_run`.

    :param paths: run directories or folders containing them.
    :param complete_only: leave out runs whose training did not finish (``state`` is not
        ``complete``); by default they are kept and their ``state`` says how far they got.
    :return: the runs, sorted by (env, algo, label, seed).
    :raises InputError: a path does not exist, no run is found, or a run's files are unreadable.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no paths given: pass run directories or folders containing them")
    runs = find_runs(paths)
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise InputError(
            f"no run directories (folders with a config.json) at or under {where}; "
            "pass the --out of camal-rl train or camal-rl compare"
        )
    results = [read_run(run) for run in runs]
    if complete_only:
        results = [r for r in results if r.complete]
        if not results:
            raise InputError(
                f"none of the {len(runs)} runs found is complete; drop --complete-only to use them anyway"
            )
    return sorted(results, key=lambda r: (*r.key, r.seed, str(r.path)))


def state_counts(results: Iterable[RunResult]) -> dict[str, int]:
    """How many runs are in each state, e.g. ``{"complete": 12, "running": 3}``."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.state] = counts.get(result.state, 0) + 1
    return counts


def variant_order(result: RunResult) -> tuple[str, str, int, float, str]:
    """Sort key of a run's agent variant: env, algo, method (:data:`METHOD_ORDER`), coefficient
    (``camal:0.1``, ``camal``, ``camal:3``, ``camal:10``; by label they would sort 1, 0.1, 10, 3),
    label."""
    method = METHOD_ORDER.index(result.method) if result.method in METHOD_ORDER else len(METHOD_ORDER)
    return (result.env, result.algo, method, result.coef, result.label)


def group_results(results: Iterable[RunResult]) -> dict[GroupKey, list[RunResult]]:
    """Runs by agent variant ``(env, algo, label)``, variants in :func:`variant_order` (the
    baseline first), runs sorted by seed.

    :raises InputError: two runs of one variant have the same seed (they would count twice).
    """
    groups: dict[GroupKey, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.key, []).append(result)
    for key, runs in groups.items():
        runs.sort(key=lambda r: r.seed)
        for a, b in itertools.pairwise(runs):
            if a.seed == b.seed:
                raise InputError(
                    f"two runs of {key[2]} on {key[0]} have seed {a.seed}: {a.path} and {b.path}; "
                    "pass only one of them (runs that differ in other settings need different labels)"
                )
    return dict(sorted(groups.items(), key=lambda item: variant_order(item[1][0])))


def parse_metric(metric: str | Sequence[str]) -> MetricPath:
    """A metric name as a path into ``metrics.json``: ``"gradcam/epg"`` -> ``("train", "gradcam",
    "epg")``; a leading ``train/`` or ``distractors/`` picks the env variant (default ``train``).

    :raises InputError: the name is empty.
    """
    parts = tuple(p for p in (metric.split("/") if isinstance(metric, str) else metric) if p)
    if not parts or (parts[0] in VARIANTS and len(parts) == 1):
        raise InputError(f"metric {metric!r} names nothing; e.g. return, gradcam/epg, distractors/return")
    return parts if parts[0] in VARIANTS else ("train", *parts)


def metric_name(metric: str | Sequence[str]) -> str:
    """The canonical name of a metric: ``("train", "gradcam", "epg")`` -> ``"gradcam/epg"``."""
    path = parse_metric(metric)
    return "/".join(path[1:] if path[0] == "train" else path)


def metric_value(metrics: Mapping[str, Any] | None, metric: str | Sequence[str]) -> float:
    """One run's value of ``metric`` from its ``metrics.json``: a summary's ``mean`` (over
    episodes), or the number itself (``success_rate``); ``nan`` when absent or undefined.

    :param metrics: the parsed ``metrics.json`` (None: not evaluated).
    :param metric: a name (``"gradcam/epg"``) or path (:func:`parse_metric`).
    """
    if metrics is None:
        return math.nan
    variant, *rest = parse_metric(metric)
    node: Any = metrics.get("variants", {}).get(variant)
    if node is None:
        return math.nan
    if len(rest) >= 2 and rest[0] != "behaviour":
        node = node.get("saliency", {})
    for key in rest:
        if not isinstance(node, Mapping) or key not in node:
            return math.nan
        node = node[key]
    if isinstance(node, Mapping):
        node = node.get("mean")
    if isinstance(node, bool) or not isinstance(node, int | float):
        return math.nan
    return float(node)


def metric_values(results: Sequence[RunResult], metric: str | Sequence[str]) -> np.ndarray:
    """Per-run (per-seed) values of ``metric`` (:func:`metric_value`), aligned with ``results``;
    ``nan`` for runs without ``metrics.json`` or without that metric.

    ``("train", "return")`` gives each seed's mean return over its evaluation episodes,
    ``("train", "gradcam", "epg")`` each seed's mean EPG (per step -> per episode -> mean).
    """
    return np.array([metric_value(r.metrics, metric) for r in results], dtype=np.float64)


def available_metrics(results: Iterable[RunResult]) -> list[str]:
    """Every metric name present in at least one ``metrics.json``, in file order."""
    names: dict[str, None] = {}
    for result in results:
        for variant, data in (result.metrics or {}).get("variants", {}).items():
            prefix = "" if variant == "train" else f"{variant}/"
            for key in ("return", "length", "success_rate"):
                if key in data:
                    names[prefix + key] = None
            for method, summaries in data.get("saliency", {}).items():
                for name in summaries:
                    names[f"{prefix}{method}/{name}"] = None
            for name in data.get("behaviour", {}):
                names[f"{prefix}behaviour/{name}"] = None
    return list(names)


def check_metrics(results: Sequence[RunResult], metrics: Iterable[str | Sequence[str]]) -> None:
    """Raise if a metric is in no run's ``metrics.json`` (a typo, or runs not evaluated).

    :raises InputError: naming the metric and the ones available.
    """
    for metric in metrics:
        if not np.isfinite(metric_values(results, metric)).any():
            available = available_metrics(results)
            if not available:
                raise InputError(
                    f"no metrics.json in the {len(results)} runs: run camal-rl evaluate RUN on each first"
                )
            raise InputError(
                f"metric {metric_name(metric)!r} is in no metrics.json of these runs; "
                f"available: {', '.join(available)}"
            )


@dataclass(frozen=True)
class MonitorEpisodes:
    """Training episodes of one run from its SB3 Monitor CSVs, ordered by env step."""

    steps: np.ndarray
    """(E,) total env steps (over all envs) when each episode ended."""
    returns: np.ndarray
    """(E,) episode returns."""
    lengths: np.ndarray
    """(E,) episode lengths."""


def read_monitor(path: Path) -> MonitorEpisodes:
    """The training episodes of a run from ``monitor/<rank>.monitor.csv``.

    SB3's vectorised envs step in lockstep, so when env ``k`` ends an episode every env has taken
    ``cumsum(lengths of k's episodes)`` steps and the run ``n_envs`` times that. Unlike
    ``stable_baselines3.common.monitor.load_results`` (which orders episodes by wall time) this
    stays right after ``--resume``, which appends to the files with a fresh clock.

    :param path: the run directory.
    :return: episodes of all envs, sorted by step (empty arrays when there are none).
    :raises InputError: a monitor file is not an SB3 Monitor CSV.
    """
    files = sorted(RunDir(Path(path)).monitor.glob("*monitor.csv"))
    steps, returns, lengths = [], [], []
    for file in files:
        try:
            with file.open() as f:
                first = f.readline()
                if not first.startswith("#"):
                    raise ValueError("missing the '#{...}' header line")
                reader = csv.DictReader(f)
                if not {"r", "l"} <= set(reader.fieldnames or []):
                    raise ValueError("no 'r' and 'l' columns")
                rows = whole_episodes(list(reader))  # as RunDir.rewind reads them
            r, length = (np.array([float(row[k]) for row in rows], dtype=np.float64) for k in "rl")
        except (OSError, ValueError, csv.Error) as error:
            raise InputError(
                f"cannot read {file} as an SB3 Monitor CSV ({error}); fix or delete it"
            ) from error
        steps.append(np.cumsum(length) * len(files))
        returns.append(r)
        lengths.append(length)
    if not files:
        return MonitorEpisodes(np.empty(0), np.empty(0), np.empty(0))
    all_steps = np.concatenate(steps)
    order = np.argsort(all_steps, kind="stable")
    return MonitorEpisodes(all_steps[order], np.concatenate(returns)[order], np.concatenate(lengths)[order])
