"""A replay buffer that stores the mask at one bit per pixel.

docs/design.md lets SB3's DictReplayBuffer store the mask beside the image. A uint8 mask costs a third
of an RGB frame's bytes (H*W vs 3*H*W), for observations and next observations alike, which
breaks the replay-memory target (CamalDQN <= 1.3x DQN). The losses only read ``mask > 0``, so this
buffer keeps that bit, packed with :func:`numpy.packbits` (H*W/8 bytes), and unpacks the sampled
batch: 1/24 of a frame instead of 1/3. Class identities (k >= 1) are not kept in the buffer;
the sampled mask holds 0/1.

It also gives n-step returns (``n_steps > 1``), which SB3's own buffers offer for Box observations
only (``NStepReplayBuffer``); the computation is theirs, on Dict observations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from camal_rl.envs.base import MASK_KEY, check_masked_observation_space
from camal_rl.errors import InputError


class MaskPackedDictReplayBuffer(DictReplayBuffer):
    """:class:`~stable_baselines3.common.buffers.DictReplayBuffer` storing ``obs["mask"] > 0``
    bit-packed. Sampling consumes the random generator exactly as the parent does, so a DQN
    trained through it takes the same steps as one trained through the parent.

    :param buffer_size: max number of transitions.
    :param observation_space: ``{"image", "mask"}`` Dict space.
    :param action_space: action space.
    :param device: torch device of the sampled tensors.
    :param n_envs: number of parallel environments.
    :param optimize_memory_usage: not supported by Dict buffers (must be False).
    :param handle_timeout_termination: see the parent class.
    :param n_steps: transitions per sample: 1 (one-step TD targets, the parent's samples) or more:
        the discounted sum of up to ``n_steps`` rewards, cut at the episode's end, with the
        observation after the last of them and ``discounts`` = gamma ** (rewards summed), as
        SB3's ``NStepReplayBuffer`` computes them.
    :param gamma: the discount of the n-step sum (the algorithm's gamma).
    :raises InputError: ``n_steps`` < 1 or ``gamma`` outside [0, 1].
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
            raise InputError(f"n_steps must be an integer >= 1 (1: one-step returns), got {n_steps!r}")
        if not 0.0 <= gamma <= 1.0:
            raise InputError(f"gamma must be in [0, 1], got {gamma!r}")
        self.n_steps, self.gamma = int(n_steps), float(gamma)
        check_masked_observation_space(observation_space)
        mask_shape = observation_space[MASK_KEY].shape
        assert mask_shape is not None
        n_bytes = (int(np.prod(mask_shape)) + 7) // 8
        packed_space = spaces.Dict(
            {**observation_space.spaces, MASK_KEY: spaces.Box(0, 255, (n_bytes,), np.uint8)}
        )
        super().__init__(
            buffer_size,
            packed_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.mask_shape: tuple[int, ...] = tuple(mask_shape)

    def add(  # type: ignore[override]
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        super().add(self._pack(obs), self._pack(next_obs), action, reward, done, infos)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> DictReplayBufferSamples:
        if self.n_steps == 1:
            samples = super()._get_samples(batch_inds, env)
        else:
            samples = self._n_step_samples(batch_inds, env)
        return samples._replace(
            observations=self._unpack(samples.observations),
            next_observations=self._unpack(samples.next_observations),
        )

    def _n_step_samples(self, batch_inds: np.ndarray, env: VecNormalize | None) -> DictReplayBufferSamples:
        """SB3 2.9.2's ``NStepReplayBuffer._get_samples`` on Dict observations."""
        env_indices = np.random.randint(0, self.n_envs, size=batch_inds.shape)  # noqa: NPY002 - as SB3
        # The newest transition's successor is not stored yet: end every sum there (a timeout)
        # so that no sum runs on into the oldest transitions of a full buffer.
        newest = self.pos - 1
        saved_timeouts = self.timeouts[newest].copy()
        self.timeouts[newest] = np.logical_or(saved_timeouts, np.logical_not(self.dones[newest]))
        try:
            steps = np.arange(self.n_steps).reshape(1, -1)
            indices = (batch_inds[:, None] + steps) % self.buffer_size  # (batch, n_steps)
            envs = env_indices[:, None]
            rewards = self._normalize_reward(self.rewards[indices, envs], env)
            ended = np.logical_or(self.dones[indices, envs], self.timeouts[indices, envs])
            last_step = np.where(ended.any(axis=1), ended.argmax(axis=1), self.n_steps - 1)
            kept = steps <= last_step[:, None]  # the rewards up to and including the episode's end
            returns = (rewards * self.gamma**steps * kept).sum(axis=1, keepdims=True)
            discounts = self.gamma ** kept.sum(axis=1, keepdims=True)
            last = (batch_inds + last_step) % self.buffer_size
            dones = self.dones[last, env_indices] * (1.0 - self.timeouts[last, env_indices])
        finally:
            self.timeouts[newest] = saved_timeouts
        obs = self._normalize_obs({k: v[batch_inds, env_indices] for k, v in self.observations.items()}, env)
        next_obs = self._normalize_obs(
            {k: v[last, env_indices] for k, v in self.next_observations.items()}, env
        )
        assert isinstance(obs, dict)
        assert isinstance(next_obs, dict)
        return DictReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in obs.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={key: self.to_torch(value) for key, value in next_obs.items()},
            dones=self.to_torch(dones.reshape(-1, 1).astype(np.float32)),
            rewards=self.to_torch(returns.astype(np.float32)),
            discounts=self.to_torch(discounts.astype(np.float32)),
        )

    def _pack(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        bits = np.asarray(obs[MASK_KEY]).reshape(self.n_envs, -1) > 0
        return {**obs, MASK_KEY: np.packbits(bits, axis=1)}

    def _unpack(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        packed = obs[MASK_KEY].cpu().numpy()
        n_pixels = int(np.prod(self.mask_shape))
        bits = np.unpackbits(packed, axis=1, count=n_pixels).reshape(-1, *self.mask_shape)
        return {**obs, MASK_KEY: self.to_torch(bits)}
