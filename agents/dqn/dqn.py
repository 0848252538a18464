"""CamalDQN: DQN that trains its CNN's Grad-CAM onto the task-relevant objects."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv
from torch.nn import functional as F

from camal_rl.envs.base import MASK_KEY

from ..common.algorithm import CamalAlgorithm
from ..common.attention import AttentionLog, decision_scores
from ..common.buffers import MaskPackedDictReplayBuffer
from .policies import CamalDQNPolicy, q_values_with_maps

DQN_TARGETS = ("action", "decision", "greedy")
ALIGNMENT_EVERY = 10
"""CamalDQN computes the batch EPG and IoU it logs (``camal/batch_epg``, ``camal/batch_iou``) on
every 10th gradient step only: with one update per vector step they cost about a tenth of an
update (each CAM brought to the input's resolution), and SB3's logger keeps just the last value
recorded before each dump."""


class CamalDQN(CamalAlgorithm, DQN):
    """DQN with the CAMAL auxiliary attention loss (Class Activation Map Attention Learning;
    Hundal, Xiao, Dong, Rigger, arXiv 2605.08325, 2026).

    Each gradient step adds ``camal_coef * attention_loss(grad_cam(maps, y), mask)`` to the TD
    loss, in the same optimizer step; ``y`` is Q(s, a) of the replayed action or of the greedy
    action. The replay buffer keeps the mask at one bit per pixel
    (:class:`MaskPackedDictReplayBuffer`) unless another ``replay_buffer_class`` is given; it also
    gives ``n_steps``-step returns, which SB3 offers for Box observations only.

    :param policy: ``"MultiInputPolicy"`` (= :class:`CamalDQNPolicy`) or a subclass of it.
    :param env: an env with ``{"image", "mask"}`` observations (``camal_rl.envs.make_masked_env``).
    :param camal_coef: weight of the attention term (>= 0), or a schedule of the progress
        remaining. 0 trains exactly as stock DQN.
    :param camal_loss: ``camal`` (default; its gradient capped at ``camal_coef`` times the TD
        loss's, see docs/camal_loss.md), ``camal-v1``, ``energy``, ``rrr`` (on log softmax(Q)) or
        ``none``.
    :param camal_target: ``decision`` (Q(s, a) - mean_b Q(s, b) of the replayed action;
        ``camal``'s default), ``action`` (Q of the replayed action; the others' default) or
        ``greedy`` (max_a Q).
    :param kwargs: DQN's arguments (learning_rate, buffer_size, ..., policy_kwargs, seed).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": CamalDQNPolicy,
        "CamalPolicy": CamalDQNPolicy,
    }

    camal_targets = DQN_TARGETS

    updates_resume_at: int = 0
    """No gradient updates until ``num_timesteps`` passes this step (:meth:`hold_updates_for_refill`);
    not saved with the model."""

    def __init__(self, policy: str | type[CamalDQNPolicy], env: GymEnv | str | None, **kwargs: Any) -> None:
        if kwargs.get("replay_buffer_class") is None:
            kwargs["replay_buffer_class"] = MaskPackedDictReplayBuffer
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        if not issubclass(self.replay_buffer_class or object, MaskPackedDictReplayBuffer):
            super()._setup_model()
            return
        # n-step returns: SB3 sets them up for Box observations only; this buffer does them, from
        # the model's own n_steps and gamma (explicit replay_buffer_kwargs win)
        n_step = {"n_steps": self.n_steps, "gamma": self.gamma}
        self.replay_buffer_kwargs = {**n_step, **self.replay_buffer_kwargs}
        with warnings.catch_warnings():
            # SB3 warns that n_steps is ignored with a custom buffer class: this one uses it
            warnings.filterwarnings("ignore", r"`n_steps=\d+` is ignored", UserWarning)
            super()._setup_model()

    def hold_updates_for_refill(self) -> int:
        """Hold gradient updates until the replay buffer holds ``learning_starts`` transitions again.

        For a model loaded to train on without its saved replay buffer: SB3 trains it at once,
        sampling every batch from the few transitions collected since (a fresh model waits for
        ``learning_starts``). The agent meanwhile acts with its epsilon-greedy policy, not the
        uniform warm-up of a fresh model. Returns the transitions still missing (0: none);
        updates resume after step :attr:`updates_resume_at`.
        """
        assert self.replay_buffer is not None, "call after load and set_env"
        missing = max(0, self.learning_starts - self.replay_buffer.size() * self.replay_buffer.n_envs)
        self.updates_resume_at = self.num_timesteps + missing
        return missing

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "updates_resume_at"]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Copied from stable-baselines3 2.9.2 ``DQN.train``; every change is marked ``# CAMAL:``."""
        # CAMAL: a resumed model waits for its replay buffer to refill
        if self.num_timesteps <= self.updates_resume_at:
            return
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)
        # CAMAL: the attention weight of this update and its statistics
        camal_coef = self.current_camal_coef()
        train_attention = self.trains_attention
        attention_log = AttentionLog()

        losses = []
        for step in range(gradient_steps):
            # Sample replay buffer
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # Compute the next Q-values using the target network
                next_q_values = self.q_net_target(replay_data.next_observations)
                # Follow greedy policy: use the one with the highest value
                next_q_values, _ = next_q_values.max(dim=1)
                # Avoid potential broadcast issue
                next_q_values = next_q_values.reshape(-1, 1)
                # 1-step TD target
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates
            # CAMAL: the same forward pass, also returning the attention maps
            q_values, maps, images = q_values_with_maps(
                self.q_net, replay_data.observations, input_grad=train_attention and self.camal_loss == "rrr"
            )

            # Retrieve the q-values for the actions from the replay buffer
            current_q_values = th.gather(q_values, dim=1, index=replay_data.actions.long())

            # Compute Huber loss (less sensitive to outliers)
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())

            # CAMAL: the attention term, added to the same optimizer step
            actions = replay_data.actions.long().view(-1, 1)
            if self.camal_target == "greedy":
                target_scores = q_values.max(dim=1).values
            elif self.camal_target == "decision":
                target_scores = decision_scores(q_values, actions)
            else:
                target_scores = current_q_values.squeeze(1)
            assert isinstance(replay_data.observations, dict)
            objective = self._with_attention_term(
                loss,
                maps,
                target_scores,
                replay_data.observations[MASK_KEY],
                attention_log,
                train=train_attention,
                alignment=(self._n_updates + step) % ALIGNMENT_EVERY == 0,
                coef=camal_coef,
                images=images,
                log_prob=F.log_softmax(q_values, dim=1).gather(1, actions).squeeze(1),
            )

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            self._backward(objective, attention_log)
            # Clip gradient norm
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        # CAMAL: attention statistics of this update
        attention_log.record(self.logger, camal_coef)
