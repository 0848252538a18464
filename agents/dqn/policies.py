"""DQN policy over a features extractor that exposes attention maps."""

from __future__ import annotations

from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import MultiInputPolicy, QNetwork
from torch import Tensor

from ..common.algorithm import CamPolicy
from ..common.extractors import IMAGE_KEY, CamFeaturesExtractor


class CamalDQNPolicy(CamPolicy, MultiInputPolicy):
    """SB3's DQN ``MultiInputPolicy`` over a :class:`CamFeaturesExtractor`, which reads
    ``obs["image"]`` only; ``predict`` also takes a bare image.

    :param observation_space: ``{"image", "mask"}`` Dict space.
    :param action_space: Discrete action space.
    :param lr_schedule: learning-rate schedule.
    :param features_extractor_class: a :class:`CamFeaturesExtractor` (default :class:`NatureCamCNN`;
        CamalDQN picks :class:`MiniGridCNN` for MiniGrid envs).
    :param kwargs: the other (keyword) arguments of DQN's ``MultiInputPolicy``.
    """


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
