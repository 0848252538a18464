"""CamalPPO: PPO with the CAMAL attention loss."""

from .policies import CamalActorCriticPolicy
from .ppo import CamalPPO

__all__ = ["CamalActorCriticPolicy", "CamalPPO"]
