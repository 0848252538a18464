"""CAMAL agents for Stable-Baselines3 (installed as ``camal_rl.agents``).

``CamalPPO`` and ``CamalDQN`` train with the CAMAL attention loss; the extractors read
``obs["image"]`` only and expose their attention maps; :class:`PolicyScorer` adapts a trained
model to the :class:`camal_rl.adapters.ActionScorer` interface of the saliency and metric tools.
"""

from .common.buffers import MaskPackedDictReplayBuffer
from .common.extractors import CamFeaturesExtractor, MiniGridCNN, NatureCamCNN
from .common.scorer import PolicyScorer
from .dqn import CamalDQN, CamalDQNPolicy
from .ppo import CamalActorCriticPolicy, CamalPPO

__all__ = [
    "CamFeaturesExtractor",
    "CamalActorCriticPolicy",
    "CamalDQN",
    "CamalDQNPolicy",
    "CamalPPO",
    "MaskPackedDictReplayBuffer",
    "MiniGridCNN",
    "NatureCamCNN",
    "PolicyScorer",
]
