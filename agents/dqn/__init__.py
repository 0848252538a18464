"""CamalDQN: DQN with the CAMAL attention loss."""

from .dqn import CamalDQN
from .policies import CamalDQNPolicy

__all__ = ["CamalDQN", "CamalDQNPolicy"]
