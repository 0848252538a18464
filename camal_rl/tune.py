"""``camal-rl tune``: choose an attention loss's coefficient on tuning seeds.

The study found that the coefficient that suits one task can fail another (CAMAL at 1 learnt
DoorKey and no LavaCrossing seed; at 0.1 both). ``tune`` runs the baseline and every
``METHOD:COEF`` on seeds that no reported result uses (a ``compare`` sweep: resumable, parallel),
then applies one rule, fixed before the runs:

    Per method, among the coefficients whose mean return over the tuning seeds is at least the
    baseline's mean return B minus ``return_tolerance`` x |B|, take the best mean ``criterion``
    (default Grad-CAM EPG); if none qualifies, the highest mean return.

It writes ``tuning.md`` and ``tuning.json`` beside the sweep's ``comparison.md``. Evaluate the
chosen coefficients on fresh seeds (``camal-rl compare --methods none camal:COEF --seeds 0 1 2 3
4``): numbers from the seeds a coefficient was chosen on are biased upwards.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from camal_rl.atomic import write_json
from camal_rl.compare import compare
from camal_rl.config import DEFAULT_ENV, Algo
from camal_rl.errors import InputError
from camal_rl.evaluation import ALIGNMENT_METRICS
from camal_rl.saliency import SALIENCY_METHODS
from camal_rl.settings import EvaluationSettings
from camal_rl.statistics import (
    RunResult,
    better_direction,
    load_results,
    mean_or_nan,
    metric_name,
    metric_values,
    parse_metric,
)
from camal_rl.sweep import (
    DEFAULT_EXECUTION,
    DEFAULT_TRAINING,
    ExecutionSettings,
    SweepConfig,
    TrainingSettings,
    require_some_runs,
    run_needs,
)
from camal_rl.tables import markdown_table

BASELINE = "none"


TUNE_EVALUATION = EvaluationSettings(episodes=10, saliency=(), faithfulness=False, max_steps_scored=32)
"""``tune``'s evaluation: 10 episodes, 32 steps scored per episode; the criterion's saliency method
alone, and faithfulness only for a faithfulness criterion (:meth:`TuneConfig.sweep`)."""


@dataclass(frozen=True)
class TuneConfig:
    """Choose each attention loss's coefficient on tuning seeds: train the baseline and every
    METHOD:COEF there (a compare sweep), then take per method the best --criterion among the
    coefficients whose mean return is close to the baseline's. The evaluation scores the
    criterion's saliency method (Grad-CAM for return) and, for a faithfulness criterion,
    faithfulness; --saliency and --faithfulness add to that."""

    env: str = DEFAULT_ENV
    """Environment id (as train takes it)."""
    algo: Algo = "ppo"
    """RL algorithm: ppo or dqn."""
    methods: tuple[str, ...] = ("camal",)
    """Attention losses to tune: camal, energy, rrr."""
    coefs: tuple[float, ...] = (0.1, 1.0, 10.0)
    """Coefficients tried for every method."""
    seeds: tuple[int, ...] = (100, 101)
    """Tuning seeds: keep them apart from the seeds you report results on."""
    criterion: str = "gradcam/epg"
    """What the chosen coefficient is best at, as a metric of metrics.json: an alignment metric of a
    saliency method (gradcam/epg, perturbation/iou, ...), or return."""
    return_tolerance: float = 0.05
    """A coefficient qualifies when its mean return is at least the baseline's mean return B minus
    this x |B| (0.05: 95% of a positive B)."""
    out: Path = Path("runs/tune")
    """Sweep folder: runs, comparison.md, tuning.md and tuning.json."""
    training: Annotated[TrainingSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_TRAINING
    """How every run trains."""
    evaluation: Annotated[EvaluationSettings, tyro.conf.OmitArgPrefixes] = TUNE_EVALUATION
    """How every run is evaluated."""
    execution: Annotated[ExecutionSettings, tyro.conf.OmitArgPrefixes] = DEFAULT_EXECUTION
    """Where the runs train, how many at a time."""
    select_only: bool = False
    """Skip training and evaluation: choose from the runs already in OUT."""

    def check(self) -> None:
        """:raises InputError: options tune cannot use (before any run starts)."""
        tuned = [m for m in self.methods if m != BASELINE]
        if not tuned or len(tuned) != len(self.methods):
            raise InputError(
                "--methods names the attention losses to tune (camal, energy, rrr); "
                f"the baseline ({BASELINE}) is always trained, got {' '.join(self.methods) or 'nothing'}"
            )
        if not self.coefs or any(not math.isfinite(c) or c <= 0 for c in self.coefs):
            raise InputError(f"--coefs must be finite numbers > 0, got {' '.join(map(str, self.coefs))}")
        if not self.seeds:
            raise InputError("--seeds must name at least one tuning seed, e.g. --seeds 100 101")
        if not 0 <= self.return_tolerance <= 1:
            raise InputError(f"--return-tolerance must lie in [0, 1], got {self.return_tolerance}")
        self.execution.check()
        self.sweep().evaluation.check()

    def sweep(self) -> SweepConfig:
        """The compare sweep behind the tuning: the baseline and every method x coefficient, on the
        tuning seeds, evaluated as the criterion needs (:func:`criterion_settings`)."""
        methods, faithfulness = criterion_settings(self.criterion)
        evaluation = dataclasses.replace(
            self.evaluation,
            saliency=tuple(dict.fromkeys((*methods, *self.evaluation.saliency))),
            faithfulness=faithfulness or self.evaluation.faithfulness,
        )
        return SweepConfig(
            envs=(self.env,),
            algo=self.algo,
            methods=(BASELINE, *(f"{m}:{c:g}" for m in self.methods for c in self.coefs)),
            seeds=self.seeds,
            run_order="seeds",
            out=self.out,
            training=self.training,
            evaluation=evaluation,
            execution=self.execution,
            pairs=(),
            aggregate_only=self.select_only,
        )


def criterion_settings(criterion: str) -> tuple[tuple[str, ...], bool]:
    """The saliency methods and the faithfulness switch the evaluation needs to score
    ``criterion``: its own method (Grad-CAM for ``return``), faithfulness only for a
    faithfulness metric.

    :raises InputError: not a metric of the training env's evaluation, or no agreed direction.
    """
    path = parse_metric(criterion)
    if path[0] != "train":
        raise InputError(f"--criterion {criterion!r}: tune scores the training env only; drop {path[0]}/")
    if path[1:] == ("return",):
        return ("gradcam",), False
    if len(path) != 3 or path[1] not in SALIENCY_METHODS or not better_direction(criterion):
        raise InputError(
            f"--criterion {criterion!r} is not a metric tune can choose by; use return or "
            f"METHOD/METRIC with METHOD in {', '.join(SALIENCY_METHODS)} (e.g. gradcam/epg, "
            "perturbation/deletion_auc)"
        )
    return (path[1],), path[2] not in ALIGNMENT_METRICS


@dataclass(frozen=True)
class TuningRow:
    """One variant over the tuning seeds."""

    method: str
    coef: float
    seeds: int
    mean_return: float
    score: float
    """Mean of the criterion over the seeds."""
    qualifies: bool
    """Mean return at or above the floor (the baseline always does)."""
    chosen: bool


@dataclass(frozen=True)
class Tuning:
    """The rule's inputs and outcome."""

    criterion: str
    direction: str
    """``higher`` or ``lower``: which criterion values are better."""
    baseline_return: float
    floor: float
    """Mean return a coefficient needs to qualify."""
    rows: tuple[TuningRow, ...]
    chosen: dict[str, float]
    """Method -> chosen coefficient."""
    by_return_alone: tuple[str, ...] = ()
    """Methods none of whose coefficients qualified: chosen by mean return alone."""


def variant_groups(results: Iterable[RunResult]) -> dict[tuple[str, float], list[RunResult]]:
    """The evaluated runs by ``(method, coefficient)`` (the baseline's coefficient is 0)."""
    groups: dict[tuple[str, float], list[RunResult]] = defaultdict(list)
    for result in results:
        if result.metrics is not None:
            groups[(result.method, float(result.coef))].append(result)
    return groups


def select_coefficients(
    results: Sequence[RunResult], criterion: str = "gradcam/epg", return_tolerance: float = 0.05
) -> Tuning:
    """Apply the tuning rule (module docstring) to evaluated runs of one env and algorithm.

    :param results: the baseline's and each ``METHOD:COEF`` variant's runs, with metrics.
    :param criterion: the metric the chosen coefficient is best at.
    :param return_tolerance: share of |baseline return| a coefficient may fall short by.
    :raises InputError: no evaluated baseline run, or no run of any other method.
    """
    direction = "higher" if criterion == "return" else better_direction(criterion)
    groups = variant_groups(results)
    baseline_runs = [run for (method, _), runs in groups.items() if method == BASELINE for run in runs]
    if not baseline_runs:
        raise InputError(f"no evaluated baseline ({BASELINE}) run to compare returns with")
    baseline_return = mean_or_nan(metric_values(baseline_runs, "return"))
    floor = baseline_return - return_tolerance * abs(baseline_return)
    means = {
        key: (mean_or_nan(metric_values(runs, "return")), mean_or_nan(metric_values(runs, criterion)))
        for key, runs in groups.items()
    }
    sign = 1.0 if direction == "higher" else -1.0

    def score(key: tuple[str, float]) -> float:
        """The criterion's mean, larger = better, ``nan`` worst."""
        return _or_worst(sign * means[key][1])

    chosen: dict[str, float] = {}
    by_return_alone: list[str] = []
    for method in sorted({method for method, _ in groups} - {BASELINE}):
        candidates = sorted(key for key in groups if key[0] == method)
        good = [key for key in candidates if means[key][0] >= floor]
        if good:
            best = max(good, key=score)
        else:  # the highest return; among equal returns, the best criterion
            best = max(candidates, key=lambda key: (_or_worst(means[key][0]), score(key)))
            by_return_alone.append(method)
        chosen[method] = best[1]
    if not chosen:
        raise InputError("no evaluated run of a tuned method (camal, energy, rrr)")
    rows = tuple(
        TuningRow(
            method,
            coef,
            len(groups[(method, coef)]),
            means[(method, coef)][0],
            means[(method, coef)][1],
            means[(method, coef)][0] >= floor,
            chosen.get(method) == coef and method != BASELINE,
        )
        for method, coef in sorted(groups, key=lambda key: (key[0] != BASELINE, key))
    )
    return Tuning(
        metric_name(criterion), direction, baseline_return, floor, rows, chosen, tuple(by_return_alone)
    )


def _or_worst(value: float) -> float:
    """``nan`` (a criterion no seed defines) ranks below every number."""
    return -math.inf if math.isnan(value) else value


def format_tuning(tuning: Tuning, cfg: TuneConfig) -> str:
    """``tuning.md``: the rule, the table, the chosen coefficients and what to run next."""
    header = [
        "method",
        "coef",
        "seeds",
        "mean return",
        f"mean {tuning.criterion}",
        "qualifies",
        "chosen",
    ]
    cells = [
        [
            row.method,
            "-" if row.method == BASELINE else f"{row.coef:g}",
            str(row.seeds),
            f"{row.mean_return:.3f}",
            f"{row.score:.3f}",
            "yes" if row.qualifies else "no",
            "**yes**" if row.chosen else "",
        ]
        for row in tuning.rows
    ]
    variants = " ".join(f"{method}:{coef:g}" for method, coef in tuning.chosen.items())
    lines = [
        f"# camal-rl tune: {cfg.out}",
        "",
        f"{cfg.env}, {cfg.algo}, tuning seeds {', '.join(map(str, cfg.seeds))}. Rule: per method, among the "
        f"coefficients whose mean return is at least {tuning.floor:.3f} (the baseline's "
        f"{tuning.baseline_return:.3f} minus {cfg.return_tolerance:g} x its magnitude), the "
        f"{'highest' if tuning.direction == 'higher' else 'lowest'} mean {tuning.criterion}; "
        "if none qualifies, the highest mean return.",
        "",
        *markdown_table(header, cells),
        "",
        *(
            f"**No {method} coefficient kept the baseline's return**: {method} "
            f"{tuning.chosen[method]:g} is chosen by return alone. Try smaller coefficients, or a "
            "budget at which the baseline has learnt (its return is the bar)."
            for method in tuning.by_return_alone
        ),
        *([""] if tuning.by_return_alone else []),
        f"Chosen: {', '.join(f'{method} {coef:g}' for method, coef in tuning.chosen.items())}. Evaluate them "
        f"on fresh seeds, not the tuning seeds: `camal-rl compare --envs {shlex.quote(cfg.env)} "
        f"--algo {cfg.algo} --methods none {variants} --seeds 0 1 2 3 4"
        f"{''.join(' ' + o for o in same_settings(cfg))}`.",
    ]
    return "\n".join(lines) + "\n"


def same_settings(cfg: TuneConfig) -> list[str]:
    """The compare options that train and evaluate fresh seeds as the tuning runs were (those
    set away from their defaults)."""
    training, evaluation = cfg.training, cfg.evaluation
    options = [f"--steps {training.steps}"] if training.steps is not None else []
    options += [f"--train-preset {training.train_preset}"] if training.train_preset else []
    options += [f"--hp {' '.join(map(shlex.quote, training.hp))}"] if training.hp else []
    options += [f"--reward-scale {training.reward_scale:g}"] if training.reward_scale is not None else []
    if cfg.algo == "dqn" and evaluation.q_policy != "softmax":
        options += [f"--q-policy {evaluation.q_policy} --q-epsilon {evaluation.q_epsilon:g}"]
    return options


def tune(cfg: TuneConfig) -> Tuning:
    """``camal-rl tune``: run the tuning sweep (unless ``select_only``), choose the coefficients,
    write ``tuning.md`` and ``tuning.json`` into ``cfg.out`` and print the table.

    :raises InputError: bad options; a failed run; runs not yet complete (nothing is chosen
        from a partial sweep: run the same command again to finish it).
    """
    cfg.check()
    sweep = cfg.sweep()
    if cfg.select_only:
        require_some_runs(
            sweep.run_configs(), cfg.out, "--select-only", "--env, --algo, --methods, --coefs, --seeds"
        )
    compare(sweep)
    runs = sweep.run_configs()
    missing = [run.run_dir for run, evaluation in sweep.jobs() if not run_needs(run, evaluation).done]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(runs)} tuning runs are not complete (e.g. {missing[0]}); run the same "
            "command again (without --select-only) to finish them: coefficients are chosen from all runs"
        )
    tuning = select_coefficients(
        load_results([run.run_dir for run in runs]), cfg.criterion, cfg.return_tolerance
    )
    text = format_tuning(tuning, cfg)
    (cfg.out / "tuning.md").write_text(text)
    write_json(cfg.out / "tuning.json", _tuning_json(tuning, cfg))
    print(text)
    print(f"wrote {cfg.out / 'tuning.md'}, {cfg.out / 'tuning.json'}")
    return tuning


def _tuning_json(tuning: Tuning, cfg: TuneConfig) -> dict[str, Any]:
    return {
        "env": cfg.env,
        "algo": cfg.algo,
        "seeds": list(cfg.seeds),
        "return_tolerance": cfg.return_tolerance,
        "q_policy": cfg.evaluation.q_policy,
        "q_epsilon": cfg.evaluation.q_epsilon,
        **{key: value for key, value in asdict(tuning).items() if key != "rows"},
        "rows": [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(row).items()}
            for row in tuning.rows
        ],
    }
