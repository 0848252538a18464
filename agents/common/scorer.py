"""Adapt a trained PPO or DQN model to :class:`camal_rl.adapters.ActionScorer`."""

from __future__ import annotations

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.dqn.policies import DQNPolicy
from torch import Tensor

from camal_rl.errors import InputError

from .extractors import IMAGE_KEY, CamFeaturesExtractor, image_subspace


class PolicyScorer:
    """The policy of a PPO or DQN model (CAMAL or stock SB3 with a :class:`CamFeaturesExtractor`)
    seen as ``images -> (scores, maps)``: action logits for PPO, Q-values for DQN, and the actor's
    (or Q-network's) attention maps. Reads images only, never the mask.

    :param model: a trained model, or its policy.
    """

    def __init__(self, model: BaseAlgorithm | BasePolicy) -> None:
        policy = model.policy if isinstance(model, BaseAlgorithm) else model
        if isinstance(policy, ActorCriticPolicy):
            extractor = policy.pi_features_extractor
        elif isinstance(policy, DQNPolicy):
            extractor = policy.q_net.features_extractor
        else:
            raise InputError(f"expected a PPO or DQN policy, got {type(policy).__name__}")
        if not isinstance(extractor, CamFeaturesExtractor):
            raise InputError(
                f"the policy's features extractor ({type(extractor).__name__}) exposes no attention maps; "
                "train with camal_rl.agents.CamalPPO / CamalDQN or a CamFeaturesExtractor"
            )
        self.policy = policy
        self.extractor = extractor
        self.image_space = image_subspace(policy.observation_space)

    @property
    def device(self) -> torch.device:
        return self.policy.device

    @property
    def is_q_network(self) -> bool:
        """True for DQN (scores are Q-values), False for PPO (scores are logits)."""
        return isinstance(self.policy, DQNPolicy)

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """:param images: (B, C, H, W) raw pixels in [0, 255], on any device (moved to the policy's).
        :return: logits or Q-values (B, n_actions), attention maps (B, K, h, w), on the policy's device."""
        features, maps = self.extractor.forward_with_maps({IMAGE_KEY: self._preprocess(images)})
        if isinstance(self.policy, DQNPolicy):
            return self.policy.q_net.q_net(features), maps
        assert isinstance(self.policy, ActorCriticPolicy)
        latent_pi = self.policy.mlp_extractor.forward_actor(features)
        return self.policy.action_net(latent_pi), maps

    def state_values(self, images: Tensor) -> Tensor:
        """(B,) V(s) for PPO, max_a Q(s, a) for DQN."""
        if isinstance(self.policy, DQNPolicy):
            return self.scores_and_maps(images)[0].max(dim=1).values
        assert isinstance(self.policy, ActorCriticPolicy)
        extractor = self.policy.vf_features_extractor
        assert isinstance(extractor, CamFeaturesExtractor)
        features, _ = extractor.forward_with_maps({IMAGE_KEY: self._preprocess(images)})
        return self.policy.value_net(self.policy.mlp_extractor.forward_critic(features)).flatten()

    def _preprocess(self, images: Tensor) -> Tensor:
        images = images.to(self.device)
        out = preprocess_obs(images, self.image_space, normalize_images=self.policy.normalize_images)
        assert isinstance(out, Tensor)
        return out
