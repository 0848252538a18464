"""Masked environments (installed as ``camal_rl.envs``)."""
