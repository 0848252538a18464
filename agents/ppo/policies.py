"""Actor-critic policy whose forward pass can also return the attention maps."""

from __future__ import annotations

from typing import NamedTuple

from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import Tensor

from ..common.algorithm import CamPolicy
from ..common.extractors import IMAGE_KEY, CamFeaturesExtractor


class AttentionForward(NamedTuple):
    """What :meth:`CamalActorCriticPolicy.evaluate_actions_with_maps` returns."""

    values: Tensor
    """(B, 1) state values."""
    log_prob: Tensor
    """(B,) log pi(a|x) of the given actions."""
    entropy: Tensor
    """(B,) entropy of the action distribution."""
    action_logits: Tensor
    """(B, n_actions) raw logits (the action net's output)."""
    pi_maps: Tensor
    """(B, K, h, w) attention maps of the actor's features extractor."""
    vf_maps: Tensor
    """(B, K, h, w) attention maps of the critic's extractor (the same tensor when shared)."""
    images: Tensor
    """(B, C, H, W) preprocessed images; they require grad when asked for (``rrr``)."""


class CamalActorCriticPolicy(CamPolicy, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputActorCriticPolicy`` over a :class:`CamFeaturesExtractor`, which reads
    ``obs["image"]`` only. Acting is SB3's own forward (no hooks, no extra cost); training reads the
    attention maps through :meth:`evaluate_actions_with_maps`. ``predict`` also takes a bare image.

    :param observation_space: ``{"image", "mask"}`` Dict space.
    :param action_space: Discrete action space.
    :param lr_schedule: learning-rate schedule.
    :param features_extractor_class: a :class:`CamFeaturesExtractor` (default :class:`NatureCamCNN`;
        CamalPPO picks :class:`MiniGridCNN` for MiniGrid envs).
    :param kwargs: the other (keyword) arguments of ``MultiInputActorCriticPolicy``.
    """

    features_extractor: CamFeaturesExtractor
    pi_features_extractor: CamFeaturesExtractor
    vf_features_extractor: CamFeaturesExtractor

    def evaluate_actions_with_maps(
        self, obs: PyTorchObs, actions: Tensor, *, input_grad: bool = False
    ) -> AttentionForward:
        """``evaluate_actions`` (same operations, same numbers) plus the attention maps.

        :param obs: a batch of observations as the rollout buffer stores them.
        :param actions: (B,) actions to evaluate.
        :param input_grad: make the preprocessed images require grad (for input-gradient losses).
        """
        assert isinstance(obs, dict)
        preprocessed = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        assert isinstance(preprocessed, dict)
        images = preprocessed[IMAGE_KEY]
        if input_grad:
            images = images.detach().requires_grad_(True)
            preprocessed = {**preprocessed, IMAGE_KEY: images}
        if self.share_features_extractor:
            features, pi_maps = self.features_extractor.forward_with_maps(preprocessed)
            vf_maps = pi_maps
            latent_pi, latent_vf = self.mlp_extractor(features)
        else:
            pi_features, pi_maps = self.pi_features_extractor.forward_with_maps(preprocessed)
            vf_features, vf_maps = self.vf_features_extractor.forward_with_maps(preprocessed)
            latent_pi = self.mlp_extractor.forward_actor(pi_features)
            latent_vf = self.mlp_extractor.forward_critic(vf_features)
        action_logits = self.action_net(latent_pi)
        distribution = self.action_dist.proba_distribution(action_logits=action_logits)
        log_prob = distribution.log_prob(actions)
        entropy = distribution.entropy()
        assert entropy is not None
        values = self.value_net(latent_vf)
        return AttentionForward(values, log_prob, entropy, action_logits, pi_maps, vf_maps, images)
