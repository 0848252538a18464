"""Adapt a trained PPO, A2C or DQN model to :class:`camal_rl.adapters.ActionScorer`."""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.dqn.policies import DQNPolicy
from torch import Tensor, nn

from camal_rl.errors import InputError

from .extractors import IMAGE_KEY, CamFeaturesExtractor, image_subspace


class PolicyScorer:
    """The policy of a PPO, A2C or DQN model seen as ``images -> (scores, maps)``: action logits
    for an actor-critic, Q-values for DQN, and the attention maps of the actor's (or Q-network's)
    features extractor. Reads images only, never the mask.

    A CAMAL agent's extractor (a :class:`CamFeaturesExtractor`) gives the maps of its attention
    layer itself. Any other extractor, such as the NatureCNN of a stock SB3 ``CnnPolicy``, and any
    other layer of a CAMAL extractor, is read through a forward hook (:class:`LayerMaps`); an
    extractor's default is its last conv layer, taken after the activation that follows it, as a
    CAMAL extractor's maps are.

    :param model: a trained model, or its policy.
    :param layer: the name, in the extractor's ``named_modules()``, of the layer whose
        (B, K, h, w) output is the attention map (``"to_attention.1"``: a CAMAL extractor's first
        conv after its ReLU; ``"cnn.2"``: NatureCNN's second conv); default: the attention layer
        of a CAMAL extractor, the last conv layer's activation of another.
    """

    def __init__(self, model: BaseAlgorithm | BasePolicy, layer: str | None = None) -> None:
        policy = model.policy if isinstance(model, BaseAlgorithm) else model
        if isinstance(policy, ActorCriticPolicy):
            extractor = policy.pi_features_extractor
        elif isinstance(policy, DQNPolicy):
            extractor = policy.q_net.features_extractor
        else:
            raise InputError(
                f"expected an actor-critic (PPO, A2C) or DQN policy, got {type(policy).__name__}"
            )
        if not isinstance(policy.action_space, spaces.Discrete):
            raise InputError(
                f"the policy's actions must be Discrete to score them, got {policy.action_space}"
            )
        self.policy = policy
        self.image_space = image_subspace(policy.observation_space)
        self.extractor: CamFeaturesExtractor | LayerMaps
        if isinstance(extractor, CamFeaturesExtractor) and layer is None:
            self.extractor = extractor
        else:
            if not isinstance(extractor, CamFeaturesExtractor):  # CAMAL's read the image only
                self._check_reads_image_only(policy.observation_space, extractor)
            self.extractor = LayerMaps(extractor, layer)

    @property
    def device(self) -> torch.device:
        return self.policy.device

    @property
    def is_q_network(self) -> bool:
        """True for DQN (scores are Q-values), False for PPO / A2C (scores are logits)."""
        return isinstance(self.policy, DQNPolicy)

    def scores_and_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """:param images: (B, C, H, W) raw pixels in [0, 255], on any device (moved to the policy's).
        :return: logits or Q-values (B, n_actions), attention maps (B, K, h, w), on the policy's device."""
        features, maps = self.extractor.forward_with_maps(self._observations(images))
        if isinstance(self.policy, DQNPolicy):
            return self.policy.q_net.q_net(features), maps
        assert isinstance(self.policy, ActorCriticPolicy)
        latent_pi = self.policy.mlp_extractor.forward_actor(features)
        return self.policy.action_net(latent_pi), maps

    def state_values(self, images: Tensor) -> Tensor:
        """(B,) V(s) for PPO / A2C, max_a Q(s, a) for DQN."""
        if isinstance(self.policy, DQNPolicy):
            return self.scores_and_maps(images)[0].max(dim=1).values
        assert isinstance(self.policy, ActorCriticPolicy)
        features = self.policy.vf_features_extractor(self._observations(images))
        return self.policy.value_net(self.policy.mlp_extractor.forward_critic(features)).flatten()

    def _observations(self, images: Tensor) -> dict[str, Tensor] | Tensor:
        """What the extractor takes: ``{"image": x}`` for a Dict observation space, else ``x``,
        with ``x`` preprocessed as SB3 does (scaled to [0, 1] when the policy normalises)."""
        images = images.to(self.device)
        out = preprocess_obs(images, self.image_space, normalize_images=self.policy.normalize_images)
        assert isinstance(out, Tensor)
        return {IMAGE_KEY: out} if isinstance(self.policy.observation_space, spaces.Dict) else out

    @staticmethod
    def _check_reads_image_only(observation_space: spaces.Space, extractor: nn.Module) -> None:
        """A stock extractor over a Dict space reads every key (SB3's ``CombinedExtractor``):
        refuse one that sees more than the image, since it would see the mask."""
        if isinstance(observation_space, spaces.Dict) and set(observation_space.spaces) != {IMAGE_KEY}:
            raise InputError(
                f"the policy's {type(extractor).__name__} reads the observation keys "
                f"{sorted(observation_space.spaces)}, not the image alone: an agent that sees the mask "
                "cannot have its attention scored against it. Train on the image alone (a stock "
                "CnnPolicy on image observations, or camal_rl.agents.CamalPPO / CamalDQN)"
            )


class LayerMaps:
    """Attention maps of any features extractor: the output of one of its layers, captured by a
    forward hook while the extractor runs, so the maps stay in the autograd graph of the features.

    :param extractor: the features extractor (an ``nn.Module`` mapping observations to features).
    :param layer: the layer's name in ``extractor.named_modules()``; default
        :func:`default_attention_layer`.
    :raises InputError: no such layer, or no conv layer to default to.
    """

    def __init__(self, extractor: nn.Module, layer: str | None = None) -> None:
        self.extractor = extractor
        self.layer_name = default_attention_layer(extractor) if layer is None else layer
        layers = dict(extractor.named_modules())
        if self.layer_name not in layers or not self.layer_name:
            raise InputError(
                f"{type(extractor).__name__} has no layer named {self.layer_name!r}; "
                f"its layers are: {', '.join(name for name in layers if name)}"
            )
        self.layer = layers[self.layer_name]

    def forward_with_maps(self, observations: dict[str, Tensor] | Tensor) -> tuple[Tensor, Tensor]:
        """:return: the extractor's features and the layer's output (B, K, h, w) in that pass."""
        captured: list[object] = []
        handle = self.layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
        try:
            features = self.extractor(observations)
        finally:
            handle.remove()
        if not captured:
            raise InputError(
                f"layer {self.layer_name!r} of {type(self.extractor).__name__} did not run in its forward "
                "pass; name a layer the features pass through"
            )
        maps = captured[-1]
        if not isinstance(maps, Tensor) or maps.dim() != 4:
            shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
            raise InputError(
                f"layer {self.layer_name!r} of {type(self.extractor).__name__} outputs {shape}, not "
                "(batch, channels, height, width) maps; name a conv layer or the activation after it"
            )
        return features, maps


def default_attention_layer(extractor: nn.Module) -> str:
    """The name of the extractor's last ``Conv2d`` (in registration order), or of the activation
    right after it when both sit in an ``nn.Sequential`` (SB3's NatureCNN: ``cnn.5``, the ReLU of
    its third conv), matching the post-activation maps of a :class:`CamFeaturesExtractor`.

    :raises InputError: the extractor has no conv layer.
    """
    convs = [name for name, module in extractor.named_modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise InputError(
            f"{type(extractor).__name__} has no Conv2d layer to take attention maps from; "
            "pass layer=NAME of a layer with (batch, channels, height, width) output"
        )
    parent_name, _, index = convs[-1].rpartition(".")
    parent = extractor.get_submodule(parent_name)
    if isinstance(parent, nn.Sequential) and index.isdigit() and int(index) + 1 < len(parent):
        following = parent[int(index) + 1]
        if type(following).__module__ == nn.ReLU.__module__:  # torch.nn.modules.activation
            return f"{parent_name}.{int(index) + 1}" if parent_name else str(int(index) + 1)
    return convs[-1]
