"""What a run still needs, given the training and evaluation settings it is asked for: the one
answer that ``train --resume``, ``compare`` and ``tune`` go by (:meth:`camal_rl.rundir.RunDir.needs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camal_rl.config import TrainConfig
    from camal_rl.rundir import RunDir


@dataclass(frozen=True)
class RunNeeds:
    """What a run still needs, given the training and evaluation settings it is asked for
    (:meth:`RunDir.needs`). Each answer reads the run's files when first asked for, and only the
    files it needs: ``train --resume`` asks only whether the saved settings differ, which a broken
    ``status.json`` does not stop.

    :param run: the run directory.
    :param train: the training settings asked for; the budget is its resolved ``steps``.
    :param evaluation: the evaluation settings asked for, as ``metrics.json`` records them
        (``EvaluateConfig.settings``); None: only training is asked about.
    """

    run: RunDir
    train: TrainConfig
    evaluation: Mapping[str, Any] | None = None

    @cached_property
    def budget(self) -> int:
        """Env steps the run is to be trained for."""
        steps = self.train.resolved().steps
        assert steps is not None
        return steps

    @cached_property
    def trained_differently(self) -> dict[str, list[Any]]:
        """:func:`camal_rl.config.training_differences` between the run's saved ``config.json`` and
        the settings asked for (empty for a run not started). A resumed run keeps its saved
        settings, so a run with any is not the one asked for: a sweep refuses to run over it, and
        ``train --resume`` refuses options that would be ignored."""
        from camal_rl.config import TrainConfig, training_differences

        if not self.run.config.exists():
            return {}
        return training_differences(TrainConfig.load(self.run.config), self.train)

    @cached_property
    def reached_stop_return(self) -> bool:
        """Training ended at ``--stop-return`` with a return that the ``stop_return`` asked for
        accepts (:meth:`RunDir.reached_stop_return`): the run needs no more steps."""
        return self.run.reached_stop_return(self.train.stop_return) is not None

    @cached_property
    def steps_short(self) -> int:
        """Env steps a trained run lacks of the budget: after ``--steps`` is raised, it trains on
        (``train --resume --steps``) and is evaluated again. 0 for a run not trained yet, or trained
        as long or longer (kept as it is), or stopped at a return that the ``stop_return`` asked
        for accepts."""
        if not self.run.is_complete() or self.reached_stop_return:
            return 0
        return max(0, self.budget - int(self.run.read_status().get("num_timesteps", self.budget)))

    @cached_property
    def steps_to_train(self) -> int:
        """Env steps training still takes: from the last saved model to the budget, or the whole
        budget without a saved model (never started, or its model is gone); 0 when it is trained
        to the budget or stopped at an accepted return."""
        if not self.run.has_model():
            return self.budget
        if self.reached_stop_return:
            return 0
        return max(0, self.budget - int(self.run.read_status().get("num_timesteps", 0)))

    @cached_property
    def evaluation_changes(self) -> dict[str, list[Any]]:
        """The evaluation settings recorded in ``metrics.json`` that the ones asked for change, as
        ``{name: [recorded, asked]}``; empty when none are asked for, the run is not evaluated,
        they agree, or the file records none (written before camal-rl recorded them: kept as
        they are).

        :raises InputError: ``metrics.json`` is not readable.
        """
        if self.evaluation is None:
            return {}
        recorded = (self.run.read_metrics() or {}).get("settings")
        if not isinstance(recorded, dict):
            return {}
        return {k: [recorded.get(k), v] for k, v in self.evaluation.items() if recorded.get(k) != v}

    @property
    def evaluated(self) -> bool:
        """The run is evaluated as trained to the budget (complete, ``metrics.json`` written, no
        steps short); that evaluation stands unless :attr:`evaluation_changes` has any."""
        return self.run.is_evaluated() and not self.steps_short

    @property
    def to_train(self) -> bool:
        """Training is to run: the run is not trained to the end (not started, stopped, its final
        model gone) or is short of the budget."""
        return bool(self.steps_short) or not self.run.is_trained()

    @property
    def to_evaluate(self) -> bool:
        """An evaluation is to run (after any training): the run is not :attr:`evaluated`, or was
        evaluated with other settings."""
        return not self.evaluated or bool(self.evaluation_changes)

    @cached_property
    def reason(self) -> str:
        """What the run still needs, in words ("" when nothing): to start, to train (on, to a
        raised budget), to be evaluated (for the first time, or again with changed settings); or
        that it was trained with other settings than asked (a sweep's tables leave it out)."""
        if self.trained_differently:
            from camal_rl.config import describe_changes

            changed = describe_changes(self.trained_differently)
            return f"trained with other settings (saved -> sweep: {changed})"
        gone = "" if self.run.has_model() else " (its model is gone: it trains again from step 0)"
        if not self.run.is_complete():
            status = self.run.read_status()
            if status["state"] == "missing":
                if self.run.sweep_log.exists():  # failed before its folder was written, or removed
                    return "not started (an earlier attempt's output is in its .log)"
                return "not started"
            # status.json holds the step of the last save; a running run's evaluations go further
            evaluated = [row["step"] for row in self.run.read_evaluations()]
            reached = int(max([status.get("num_timesteps", 0), *evaluated]))
            if status["state"] == "running":  # may not have saved yet
                return f"running (or killed) at {reached:,} of {self.budget:,} steps"
            return f"{status['state']} at {reached:,} of {self.budget:,} steps{gone}"
        if self.steps_short > 0:
            return f"to train on to {self.budget:,} steps{gone}"
        if not self.run.metrics.exists():
            return f"not evaluated{gone}"
        if self.evaluation_changes:
            return f"evaluated with other settings{gone}"
        return ""

    @property
    def done(self) -> bool:
        """Nothing is left: trained to the budget with the settings asked for, and evaluated with
        them."""
        return not self.reason
