"""Whether stored weights predict as the policy did (:func:`prediction_check`): the check that
:mod:`camal_rl.weights` makes of each encoding before it writes one, on observations of the
policy's env (:func:`check_images`)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from torch import Tensor

CHECK_OBSERVATIONS = 256
"""Observations the compact weights are checked on (:func:`prediction_check`)."""
TOLERANCE = 1e-3
"""Largest difference of a logit (PPO) or Q-value (DQN) that stored weights may make, relative to
the largest score in the check batch (or to 1, if it is smaller). Rounding a weight to float16
moves it by at most 2^-11 of itself, to int10 by at most 1/1022 of its group's largest. On the three
confirmatory DoorKey PPO agents of the camal-loss study, on 1024 observations, the logits moved by
at most 2.4e-4 of the largest in float16 and 4.1e-4 in int10 (from the model zips); on the check's
256, int10 moved them by at most 3.0e-4 of the largest from the committed float16 files (2.9e-3 on
9.6)."""
MAP_TOLERANCES = (1e-2, 5e-2)
"""Largest differences of the Grad-CAM maps (of the original's greedy actions, on the layer
evaluation reads) that stored weights may make: on average, relative to the mean of the original's
maps (the held-out metrics average over maps); and anywhere, relative to their largest value (one
unit of the linear layer switching on or off on one image, which the mean dilutes, moves that
image's metrics). The scores cannot show it: a unit whose input to its ReLU is near 0 adds next to
nothing to them, but all it passes on to the gradient a map reads.

Measured on the same three agents, on average and anywhere: float16 at most 6.2e-4 and 6.0e-4, int10
6.5e-4 and 7.9e-4 (from the model zips, on 1024 observations); int10 from the float16 files 7.4e-4
and 2.4e-3 (on the check's 256). Int8 with one scale a row, tried first, moved the ppo-none agent's
maps by 2.5e-2 and 3.7e-1, and its held-out Grad-CAM metrics by up to 1.4e-2 (means), though its
logits by 8e-4 of the largest: these tolerances refuse it. The check reads no perturbation
saliency: int8 by groups of 64 passed it (3.0e-3 and 8.9e-3) yet moved the ppo-energy agent's
perturbation comprehensiveness by 1.1e-2 (a mean), which int10 does not (its held-out metrics
stay within float16's distance of the zip's: :mod:`camal_rl.weights`)."""


@dataclass(frozen=True)
class PredictionCheck:
    """How the stored weights predict against the original ones on a batch of observations."""

    observations: int
    """Observations compared."""
    greedy_agreement: float
    """Share of observations whose greedy action is the same."""
    max_abs_diff: float
    """Largest difference of a logit (PPO) or Q-value (DQN)."""
    tolerance: float
    """The largest difference allowed: :data:`TOLERANCE` times max(1, the largest score)."""
    mean_map_diff: float
    """Mean difference of the Grad-CAM map values, relative to the mean value of the original's
    maps."""
    max_map_diff: float
    """Largest difference of a Grad-CAM map value, relative to the largest value of the original's
    maps (one unit switching on or off on one image gives it, which the mean dilutes)."""
    map_tolerances: tuple[float, float]
    """The largest mean and largest relative differences of the maps allowed
    (:data:`MAP_TOLERANCES`)."""

    @property
    def passed(self) -> bool:
        return (
            self.greedy_agreement == 1.0
            and self.max_abs_diff <= self.tolerance
            and self.mean_map_diff <= self.map_tolerances[0]
            and self.max_map_diff <= self.map_tolerances[1]
        )

    def describe(self) -> str:
        """One phrase: the check's result."""
        same = "identical" if self.greedy_agreement == 1.0 else f"{self.greedy_agreement:.1%} identical"
        return (
            f"greedy actions {same} on {self.observations} observations, largest score difference "
            f"{self.max_abs_diff:.1e} (tolerance {self.tolerance:.1e}), Grad-CAM maps moved by "
            f"{self.mean_map_diff:.1e} of their mean (tolerance {self.map_tolerances[0]:.0e}) and by at "
            f"most {self.max_map_diff:.1e} of the largest (tolerance {self.map_tolerances[1]:.0e})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "observations": self.observations,
            "greedy_agreement": self.greedy_agreement,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "mean_map_diff": self.mean_map_diff,
            "max_map_diff": self.max_map_diff,
            "map_tolerances": list(self.map_tolerances),
        }


def check_images(
    model: BaseAlgorithm, make_env: Callable[[], gym.Env], n: int = CHECK_OBSERVATIONS, per_episode: int = 32
) -> np.ndarray:
    """``n`` images (N, H, W, C) of the model's env to check stored weights on: the first
    ``per_episode`` steps of episodes seeded from the evaluation seed on, acting greedily in every
    other episode (the states evaluation visits) and at random in the others (states off its path),
    the random actions drawn from a generator seeded here: the same images on every call."""
    from camal_rl.evaluation import EVAL_SEED

    rng = np.random.default_rng(EVAL_SEED)
    images: list[np.ndarray] = []
    env = make_env()
    try:
        episode = 0
        while len(images) < n:
            obs, _ = env.reset(seed=EVAL_SEED + episode)
            for _ in range(min(per_episode, n - len(images))):
                images.append(obs["image"])
                if episode % 2 == 0:
                    action = int(model.predict(obs["image"], deterministic=True)[0])
                else:
                    action = int(rng.integers(env.action_space.n))  # type: ignore[attr-defined]
                obs, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    break
            episode += 1
    finally:
        env.close()
    return np.stack(images)


def prediction_check(policy: BasePolicy, state: Mapping[str, Tensor], images: np.ndarray) -> PredictionCheck:
    """Compare ``policy`` with a copy of it that holds ``state`` (its ``state_dict``, e.g. decoded
    from int10) on ``images``: the greedy actions, the logits (PPO) or Q-values (DQN) that the
    attention metrics read, and the Grad-CAM maps of the original's greedy actions. The maps read
    the gradients through the layers after the maps, which no score shows: a unit of the linear
    layer whose input to its ReLU is near 0 on an image may switch on or off, which moves the
    scores by next to nothing but the gradient by all that unit passes on.

    :param policy: the original policy (left as it is).
    :param state: a full ``state_dict`` for a copy of it.
    :param images: (N, H, W, C) images of its env (:func:`check_images`).
    """
    from camal_rl.adapters import images_to_tensor
    from camal_rl.agents import PolicyScorer
    from camal_rl.saliency import GradCAM

    trial = copy.deepcopy(policy)
    trial.load_state_dict(state)
    batch = images_to_tensor(images)
    with torch.no_grad():
        before = PolicyScorer(policy).scores_and_maps(batch)[0].double()
        after = PolicyScorer(trial).scores_and_maps(batch)[0].double()
    greedy = before.argmax(dim=1)
    maps_before = GradCAM()(PolicyScorer(policy), batch, greedy).double()
    maps_after = GradCAM()(PolicyScorer(trial), batch, greedy).double()
    map_diffs = (maps_after - maps_before).abs()
    return PredictionCheck(
        observations=len(images),
        greedy_agreement=(greedy == after.argmax(dim=1)).double().mean().item(),
        max_abs_diff=(after - before).abs().max().item(),
        tolerance=TOLERANCE * max(1.0, before.abs().max().item()),
        mean_map_diff=_relative(map_diffs.mean().item(), maps_before.mean().item()),
        max_map_diff=_relative(map_diffs.max().item(), maps_before.max().item()),
        map_tolerances=MAP_TOLERANCES,
    )


def _relative(difference: float, reference: float) -> float:
    """``difference / reference`` of maps >= 0: 0 for no difference, inf for maps that were 0."""
    if difference == 0:
        return 0.0
    return difference / reference if reference > 0 else math.inf
