"""CAMAL agents for Stable-Baselines3 (installed as ``camal_rl.agents``)."""
