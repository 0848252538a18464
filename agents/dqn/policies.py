"""DQN policy over a features extractor that exposes attention maps."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import MultiInputPolicy, QNetwork
from torch import Tensor

from ..common.attention import as_image_observation
from ..common.extractors import IMAGE_KEY, CamFeaturesExtractor, NatureCamCNN, check_cam_extractor


class CamalDQNPolicy(MultiInputPolicy):
    """SB3's DQN ``MultiInputPolicy`` over a :class:`CamFeaturesExtractor`, which reads
    ``obs["image"]`` only; ``predict`` also takes a bare image.

    :param observation_space: ``{"image", "mask"}`` Dict space.
    :param action_space: Discrete action space.
    :param lr_schedule: learning-rate schedule.
    :param features_extractor_class: a :class:`CamFeaturesExtractor` (default :class:`NatureCamCNN`;
        CamalDQN picks :class:`MiniGridCNN` for MiniGrid envs).
    :param kwargs: the other (keyword) arguments of DQN's ``MultiInputPolicy``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
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


def q_values_with_maps(
    q_net: QNetwork, obs: PyTorchObs, *, input_grad: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """``q_net(obs)`` (same operations, same numbers) plus the attention maps.

    :param q_net: the online Q-network, whose extractor is a :class:`CamFeaturesExtractor`.
    :param obs: a batch of observations as the replay buffer returns them.
    :param input_grad: make the preprocessed images require grad (for input-gradient losses).
    :return: Q-values (B, n_actions), maps (B, K, h, w), preprocessed images (B, C, H, W).
    """
    extractor = q_net.features_extractor
    assert isinstance(extractor, CamFeaturesExtractor)
    assert isinstance(obs, dict)
    preprocessed = preprocess_obs(obs, q_net.observation_space, normalize_images=q_net.normalize_images)
    assert isinstance(preprocessed, dict)
    images = preprocessed[IMAGE_KEY]
    if input_grad:
        images = images.detach().requires_grad_(True)
        preprocessed = {**preprocessed, IMAGE_KEY: images}
    features, maps = extractor.forward_with_maps(preprocessed)
    return q_net.q_net(features), maps, images
