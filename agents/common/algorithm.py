"""What CamalPPO and CamalDQN add to their SB3 algorithm, written once."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from torch import Tensor

from camal_rl.envs.base import check_masked_observation_space
from camal_rl.losses import default_target, is_balanced_kind

from .attention import (
    AttentionLog,
    CoefSchedule,
    Objective,
    as_image_observation,
    attention_term,
    check_discrete_actions,
    coef_at,
    validate_camal_settings,
)
from .extractors import (
    CamFeaturesExtractor,
    NatureCamCNN,
    check_cam_extractor,
    default_extractor_kwargs,
    env_tile_size,
)


class CamalAlgorithm(BaseAlgorithm):
    """Mixin put before the SB3 algorithm (``class CamalPPO(CamalAlgorithm, PPO)``): stores and
    checks the CAMAL settings, refuses observation spaces without a mask, picks a features
    extractor that exposes attention maps, and lets ``predict`` take a bare image.

    :param policy: the policy (class or alias).
    :param env: an env with ``{"image", "mask"}`` observations.
    :param camal_coef: weight of the attention term (>= 0), or a schedule of the progress remaining.
    :param camal_loss: ``camal``, ``camal-v1``, ``energy``, ``rrr`` or ``none``.
    :param camal_target: the Grad-CAM target score, one of :attr:`camal_targets`; None: the
        loss's default (``decision`` for ``camal``, ``action`` for the others).
    :param kwargs: the SB3 algorithm's arguments.
    """

    camal_targets: ClassVar[tuple[str, ...]]
    """Grad-CAM targets the algorithm supports."""

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        camal_coef: CoefSchedule = 1.0,
        camal_loss: str = "camal",
        camal_target: str | None = None,
        **kwargs: Any,
    ) -> None:
        camal_target = default_target(camal_loss) if camal_target is None else camal_target
        validate_camal_settings(camal_coef, camal_loss, camal_target, self.camal_targets)
        self.camal_coef = camal_coef
        self.camal_loss = camal_loss
        self.camal_target = camal_target
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        check_masked_observation_space(self.observation_space)
        check_discrete_actions(self.action_space, type(self).__name__)
        if "features_extractor_class" not in self.policy_kwargs:
            self.policy_kwargs.update(default_extractor_kwargs(env_tile_size(self.env)))
        super()._setup_model()  # type: ignore[safe-super]  # the SB3 algorithm after this mixin

    def current_camal_coef(self) -> float:
        """The attention weight at the current training progress."""
        return coef_at(self.camal_coef, self._current_progress_remaining)

    def _with_attention_term(
        self,
        loss: Tensor,
        maps: Tensor,
        target_scores: Tensor,
        mask: Tensor,
        attention_log: AttentionLog,
        *,
        train: bool,
        alignment: bool,
        coef: float,
        images: Tensor | None,
        log_prob: Tensor,
    ) -> Objective:
        """``loss`` and the attention term of one minibatch (when ``train``), to backpropagate
        with :meth:`Objective.backward`; its statistics added to ``attention_log`` (with the batch
        EPG / IoU when ``alignment``). An agent that does not train attention computes the term,
        for the log alone, on the alignment minibatches only."""
        balanced = is_balanced_kind(self.camal_loss)
        if not (train or alignment):
            return Objective(loss, None, coef, balanced)
        term = attention_term(
            self.camal_loss, maps, target_scores, mask, train=train, images=images, log_prob=log_prob
        )
        attention_log.add(term, mask, alignment=alignment)
        return Objective(loss, term.loss, coef, balanced)

    def _backward(self, objective: Objective, attention_log: AttentionLog) -> None:
        """Backpropagate one minibatch's objective into the policy's ``.grad``."""
        attention_log.add_scale(objective.backward(list(self.policy.parameters())))

    @property
    def trains_attention(self) -> bool:
        """Whether this update adds the attention term (coef > 0 and a loss other than none)."""
        return self.current_camal_coef() > 0 and self.camal_loss != "none"

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The algorithm's ``predict``; also takes a bare image (no mask needed to act)."""
        return super().predict(as_image_observation(observation), state, episode_start, deterministic)


class CamPolicy(BasePolicy):
    """Mixin put before an SB3 policy (``class CamalDQNPolicy(CamPolicy, MultiInputPolicy)``): the
    features extractor must expose attention maps (default :class:`NatureCamCNN`), and ``predict``
    also takes a bare image.

    :param observation_space: ``{"image", "mask"}`` Dict space.
    :param action_space: Discrete action space.
    :param lr_schedule: learning-rate schedule.
    :param features_extractor_class: a :class:`CamFeaturesExtractor`.
    :param kwargs: the other (keyword) arguments of the SB3 policy.
    """

    def __init__(
        self,
        observation_space: Any,
        action_space: Any,
        lr_schedule: Schedule,
        features_extractor_class: type[CamFeaturesExtractor] = NatureCamCNN,
        **kwargs: Any,
    ) -> None:
        check_cam_extractor(features_extractor_class)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        return super().predict(as_image_observation(observation), state, episode_start, deterministic)
