"""camal-rl: CAMAL (Class Activation Map Attention Learning) for deep RL.

Environments emit a per-step segmentation mask of the task-relevant objects
(:mod:`camal_rl.envs`), Stable-Baselines3 agents train with an auxiliary loss that pulls the
CNN's Grad-CAM onto those objects (:mod:`camal_rl.agents`), and :mod:`camal_rl.metrics` scores
whether the attention is on the objects and whether it drives the action.

Importing this package is cheap: submodules load on first use.
"""

__version__ = "0.1.0"
