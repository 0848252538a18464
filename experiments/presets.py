"""Named presets: ``camal-rl train --preset NAME`` and ``camal-rl compare --preset NAME``.

TrainConfig entries fix one agent's settings (explicit command-line options override them; --hp
adds to their hp): they ship with the package (:mod:`camal_rl.presets`, which states their budgets)
and are repeated here. Study entries (:class:`camal_rl.sweep.SweepConfig`) fix a whole sweep of
the study or of the loss redesign; they stay in this source checkout, with their results.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from camal_rl.config import TrainConfig
from camal_rl.presets import DOORKEY_DQN, DOORKEY_PPO, LAVA_PPO, VIZDOOM_PPO
from camal_rl.presets import PRESETS as AGENT_PRESETS
from camal_rl.settings import EvaluationSettings
from camal_rl.sweep import ExecutionSettings, SweepConfig

STUDY = Path("experiments/camal_study/runs")
"""Where the study's sweeps write their runs (see experiments/camal_study/RESULTS.md)."""
LOSS = Path("experiments/camal_loss/runs")
"""Where the redesign of the camal loss writes its runs (see experiments/camal_loss/README.md)."""

LOSS_TUNE_DOORKEY_PPO = dataclasses.replace(DOORKEY_PPO, steps=150_000)
TUNING_GRID = (
    "none",
    "camal-v1:0.1",
    "camal-v1:1",
    "camal-v1:10",
    "energy:0.1",
    "energy:1",
    "energy:10",
    "rrr:10",
    "rrr:1000",
    "rrr:0.1",
    "rrr:1",
)
"""Coefficients tried per method. rrr's loss is ~1e-4 at coef 1 early on DoorKey, hence its first
range (10, 1000); both stopped PPO from learning, so 0.1 and 1 were added after them."""
STUDY_EVALUATION = EvaluationSettings(episodes=20, distractors=1, max_steps_scored=32)
"""The study's evaluation of every run: 20 episodes on the training env and on its distractor variant,
32 steps scored per episode, Grad-CAM and perturbation saliency with faithfulness."""
STUDY_DQN_EVALUATION = dataclasses.replace(STUDY_EVALUATION, q_policy="epsilon-greedy")
"""softmax(Q) is near-uniform at MiniGrid's reward scale: DQN faithfulness reads the epsilon-greedy
policy the agent acts with (docs/metrics.md, Faithfulness)."""
STUDY_VIZDOOM_EVALUATION = dataclasses.replace(STUDY_EVALUATION, distractors=0)
"""ViZDoom has no distractor variant."""
STUDY_PAIRS = ("camal-v1:energy",)

CHOSEN = {"camal-v1": 1.0, "energy": 1.0, "rrr": 0.1}
"""Coefficients chosen on the tuning seeds by experiments/camal_study/select_coefs.py. The study
trained the first formulation of the camal loss, now ``camal-v1`` (its runs were renamed by
experiments/camal_study/rename_camal_v1.py)."""
STUDY_METHODS = ("none", *(f"{method}:{coef:g}" for method, coef in CHOSEN.items()))

LOSS_TUNE_SWEEP: dict[str, Any] = {
    "seeds": (100, 101),
    "out": LOSS / "tune-doorkey-ppo",
    "evaluation": EvaluationSettings(episodes=10, max_steps_scored=32),
}
"""What the loss redesign's tuning sweeps share: the tuning seeds, one folder, 10 episodes."""
CONFIRM_METHODS = ("none", "camal", "energy")
CONFIRM_SEEDS = (0, 1, 2, 3, 4)


def confirm(cell: TrainConfig, folder: str, evaluation: EvaluationSettings = STUDY_EVALUATION) -> SweepConfig:
    """A confirmatory sweep of the redesigned camal: ``cell`` with seeds 0-4 of ``none``, ``camal``
    and ``energy``, into ``experiments/camal_loss/runs/<folder>``, evaluated as the study was
    (``evaluation``: e.g. DQN's epsilon-greedy faithfulness). Runs start seed by seed, so a cell
    stopped early compares every method."""
    return SweepConfig(
        cells=(cell,),
        methods=CONFIRM_METHODS,
        seeds=CONFIRM_SEEDS,
        run_order="seeds",
        out=LOSS / folder,
        evaluation=evaluation,
        pairs=("camal:energy",),
    )


def study(
    cell: TrainConfig,
    folder: str,
    *,
    methods: tuple[str, ...] = STUDY_METHODS,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    evaluation: EvaluationSettings = STUDY_EVALUATION,
    pairs: tuple[str, ...] = STUDY_PAIRS,
    **options: Any,
) -> SweepConfig:
    """A sweep of the study: ``cell`` with ``methods`` x ``seeds`` (by default the chosen
    coefficients on seeds 0-4), into ``experiments/camal_study/runs/<folder>``, evaluated as its
    protocol says (``options``: further SweepConfig fields)."""
    return SweepConfig(
        cells=(cell,),
        methods=methods,
        seeds=seeds,
        out=STUDY / folder,
        evaluation=evaluation,
        pairs=pairs,
        **options,
    )


PRESETS: dict[str, Any] = {
    # Single agents (camal_rl/presets.py, installed with the package): the study's (env x algo) cells.
    **AGENT_PRESETS,
    # The study (experiments/camal_study): one sweep per step, run in this order by run_study.sh.
    "study-sanity": study(DOORKEY_PPO, "sanity", methods=("none", "camal-v1"), seeds=(0,), pairs=()),
    # Coefficient tuning on seeds that the study never reports (100, 101), at 150k steps.
    "study-tune": study(
        dataclasses.replace(DOORKEY_PPO, steps=150_000),
        "tune",
        methods=TUNING_GRID,
        seeds=(100, 101),
        evaluation=EvaluationSettings(episodes=10, faithfulness=False, max_steps_scored=32),
    ),
    # The study proper: fresh seeds, the chosen coefficients (DQN reuses PPO's: not tuned apart).
    "study-doorkey-ppo": study(DOORKEY_PPO, "doorkey-ppo"),
    "study-doorkey-dqn": study(DOORKEY_DQN, "doorkey-dqn", seeds=(0, 1, 2), evaluation=STUDY_DQN_EVALUATION),
    "study-lava-ppo": study(LAVA_PPO, "lava-ppo"),
    # Post hoc, not part of the protocol: CAMAL at 0.1, the coefficient that tied with the chosen 1 on
    # the DoorKey tuning seeds (EPG 0.684 v 0.685, both learn), on LavaCrossing's study seeds, where
    # CAMAL at 1 solved none of the five.
    "study-lava-diagnostic": study(LAVA_PPO, "lava-diagnostic", methods=("camal-v1:0.1",), pairs=()),
    "study-vizdoom-ppo": study(
        VIZDOOM_PPO,
        "vizdoom-ppo",
        evaluation=STUDY_VIZDOOM_EVALUATION,
        run_order="seeds",  # 70 min a run on 2 cores: a session's partial cell compares every method
    ),
    # The ViZDoom cell cut to what one GPU machine (one H100, 16 cores) runs in the 15 device minutes
    # a session is lent: 100k steps, seeds 0-3, no rrr; experiments/camal_study/vizdoom_gpu.sh runs it
    # (RESULTS.md, ViZDoom). Not the protocol's cell, which study-vizdoom-ppo keeps. Its first run
    # (runs/vizdoom-ppo-gpu-unscaled) trained on unscaled rewards and no agent learnt; runs now
    # train on rewards x 0.01 (TrainConfig.reward_scale's ViZDoom default).
    "study-vizdoom-gpu": study(
        dataclasses.replace(VIZDOOM_PPO, steps=100_000, eval_freq=10_000),
        "vizdoom-ppo-gpu",
        methods=STUDY_METHODS[:3],
        seeds=(0, 1, 2, 3),
        evaluation=STUDY_VIZDOOM_EVALUATION,
        execution=ExecutionSettings(workers=12, device="cuda"),
    ),
    # The redesign of the camal loss (experiments/camal_loss): tuning seeds only (100, 101), the
    # study-tune budget (DoorKey PPO, 150k), faithfulness scored. camal (the redesign) beside the
    # baseline, camal-v1 (the study's formulation) and energy, all at coefficient 1.
    "loss-tune-doorkey-ppo": SweepConfig(
        cells=(LOSS_TUNE_DOORKEY_PPO,),
        methods=("none", "camal", "camal-v1", "energy"),
        run_order="seeds",
        **LOSS_TUNE_SWEEP,
    ),
    # Ablations of camal's two changes, in the same folder: camal on the taken action's logit
    # (balanced gradient, no decision target) and energy on the decision target (decision target,
    # no balanced gradient).
    "loss-ablate-target-doorkey-ppo": SweepConfig(
        cells=(dataclasses.replace(LOSS_TUNE_DOORKEY_PPO, target="action"),),
        methods=("camal",),
        **LOSS_TUNE_SWEEP,
    ),
    "loss-ablate-balance-doorkey-ppo": SweepConfig(
        cells=(dataclasses.replace(LOSS_TUNE_DOORKEY_PPO, target="decision"),),
        methods=("energy",),
        **LOSS_TUNE_SWEEP,
    ),
    # The second tuning round (experiments/camal_loss/TUNING-COEF.md): camal's cap ratio 3 and 10 on
    # DoorKey's tuning seeds (1, energy and none ran in the first round, same folder), and 1, 3, 10
    # beside energy on LavaCrossing's, at its confirmatory budget.
    "loss-tune-coef-doorkey-ppo": SweepConfig(
        cells=(LOSS_TUNE_DOORKEY_PPO,),
        methods=("camal:3", "camal:10"),
        run_order="seeds",
        **LOSS_TUNE_SWEEP,
    ),
    "loss-tune-coef-lava-ppo": SweepConfig(
        cells=(LAVA_PPO,),
        methods=("camal", "camal:3", "camal:10", "energy"),
        run_order="seeds",
        **{**LOSS_TUNE_SWEEP, "out": LOSS / "tune-lava-ppo"},
    ),
    # The confirmatory runs of the redesigned camal (experiments/camal_loss/PREREGISTRATION.md):
    # the study's cells and evaluation, seeds 0-4 in every cell, camal at its default coefficient.
    "loss-confirm-doorkey-ppo": confirm(DOORKEY_PPO, "doorkey-ppo"),
    "loss-confirm-doorkey-dqn": confirm(DOORKEY_DQN, "doorkey-dqn", STUDY_DQN_EVALUATION),
    "loss-confirm-lava-ppo": confirm(LAVA_PPO, "lava-ppo"),
    "loss-confirm-vizdoom-ppo": confirm(VIZDOOM_PPO, "vizdoom-ppo", STUDY_VIZDOOM_EVALUATION),
}
