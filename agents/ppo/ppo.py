"""CamalPPO: PPO that trains its CNN's Grad-CAM onto the task-relevant objects."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples
from stable_baselines3.common.utils import explained_variance
from torch import Tensor
from torch.nn import functional as F

from camal_rl.envs.base import MASK_KEY

from ..common.algorithm import CamalAlgorithm
from ..common.attention import (
    AttentionLog,
    Objective,
    decision_scores,
)
from .policies import AttentionForward, CamalActorCriticPolicy

PPO_TARGETS = ("action", "decision", "greedy", "value")


class MinibatchLoss(NamedTuple):
    """One minibatch's loss and the numbers SB3 logs about it."""

    objective: Objective
    policy_loss: float
    value_loss: float
    entropy_loss: float
    clip_fraction: float
    approx_kl: float


class CamalPPO(CamalAlgorithm, PPO):
    """PPO with the CAMAL auxiliary attention loss (Class Activation Map Attention Learning;
    Hundal, Xiao, Dong, Rigger, arXiv 2605.08325, 2026).

    Each minibatch adds ``camal_coef * attention_loss(grad_cam(maps, y), mask)`` to PPO's loss,
    in the same optimizer step: ``maps`` are the features extractor's attention-layer activations,
    ``y`` the target score, ``mask`` the env's segmentation mask of task-relevant objects. The
    policy never reads the mask; acting costs what stock PPO's forward costs.

    :param policy: ``"MultiInputPolicy"`` (= :class:`CamalActorCriticPolicy`) or a subclass of it.
    :param env: an env with ``{"image", "mask"}`` observations (``camal_rl.envs.make_masked_env``).
    :param camal_coef: weight of the attention term (>= 0), or a schedule of the progress
        remaining (1 at the start, 0 at the end). 0 trains exactly as stock PPO.
    :param camal_loss: ``camal`` (default; its gradient capped at ``camal_coef`` times PPO's, see
        docs/camal_loss.md), ``camal-v1`` (the first formulation), ``energy`` (Rao et al. 2023),
        ``rrr`` (Ross et al. 2017) or ``none`` (baseline; the attention statistics are still logged).
    :param camal_target: Grad-CAM target score: ``decision`` (the taken action's logit minus the
        mean logit; ``camal``'s default), ``action`` (logit of the taken action; the others'
        default), ``greedy`` (logit of the most likely action) or ``value`` (V(s), over the
        critic's extractor).
    :param kwargs: PPO's arguments (learning_rate, n_steps, batch_size, ..., policy_kwargs, seed).
        Without ``features_extractor_class`` in ``policy_kwargs``, MiniGrid envs get the
        cell-aligned :class:`MiniGridCNN` and other envs :class:`NatureCamCNN`; the attention layer
        is the extractor's ``attention_layer`` (last conv layer by default).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MultiInputPolicy": CamalActorCriticPolicy,
        "CamalPolicy": CamalActorCriticPolicy,
    }
    policy: CamalActorCriticPolicy
    camal_targets = PPO_TARGETS

    def train(self) -> None:
        """Update policy using the currently gathered rollout buffer.

        Copied from stable-baselines3 2.9.2 ``PPO.train``; the per-minibatch maths moved into
        :meth:`_minibatch_loss`, and every change is marked ``# CAMAL:``.
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        # Compute current clip range
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        # Optional: clip range for the value function
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]
        # CAMAL: the attention weight of this update and its statistics
        camal_coef = self.current_camal_coef()
        attention_log = AttentionLog()

        entropy_losses: list[float] = []
        pg_losses: list[float] = []
        value_losses: list[float] = []
        clip_fractions: list[float] = []
        loss: Tensor

        continue_training = True
        # train for n_epochs epochs
        for epoch in range(self.n_epochs):
            approx_kl_divs: list[float] = []
            # Do a complete pass on the rollout buffer
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                # CAMAL: the per-minibatch maths, attention term included, in one method
                assert isinstance(rollout_data, DictRolloutBufferSamples)
                terms = self._minibatch_loss(
                    rollout_data, clip_range, clip_range_vf, camal_coef, attention_log, alignment=epoch == 0
                )
                # CAMAL: the task loss and the attention term, backpropagated by _backward
                loss = terms.objective.total
                pg_losses.append(terms.policy_loss)
                clip_fractions.append(terms.clip_fraction)
                value_losses.append(terms.value_loss)
                entropy_losses.append(terms.entropy_loss)
                approx_kl_div = terms.approx_kl
                approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # Optimization step
                self.policy.optimizer.zero_grad()
                self._backward(terms.objective, attention_log)
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )

        # Logs
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        # CAMAL: attention statistics of this update
        attention_log.record(self.logger, camal_coef)

    def _minibatch_loss(
        self,
        rollout_data: DictRolloutBufferSamples,
        clip_range: float,
        clip_range_vf: float | None,
        camal_coef: float,
        attention_log: AttentionLog,
        *,
        alignment: bool,
    ) -> MinibatchLoss:
        """PPO's clipped-surrogate loss on one minibatch plus ``camal_coef`` times the attention
        loss; the body of SB3 2.9.2's minibatch loop, changes marked ``# CAMAL:``. ``alignment``:
        also log the batch EPG / IoU of this minibatch."""
        actions = rollout_data.actions
        if isinstance(self.action_space, spaces.Discrete):
            # Convert discrete action from float to long
            actions = rollout_data.actions.long().flatten()

        # CAMAL: evaluate_actions plus the attention maps, in the same forward pass
        train_attention = self.trains_attention
        forward = self.policy.evaluate_actions_with_maps(
            rollout_data.observations, actions, input_grad=train_attention and self.camal_loss == "rrr"
        )
        values, log_prob, entropy = forward.values, forward.log_prob, forward.entropy
        values = values.flatten()
        # Normalize advantage
        advantages = rollout_data.advantages
        # Normalization does not make sense if mini batchsize == 1, see GH issue #325
        if self.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # ratio between old and new policy, should be one at the first iteration
        ratio = th.exp(log_prob - rollout_data.old_log_prob)

        # clipped surrogate loss
        policy_loss_1 = advantages * ratio
        policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
        clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()

        if clip_range_vf is None:
            # No clipping
            values_pred = values
        else:
            # Clip the difference between old and new value
            # NOTE: this depends on the reward scaling
            values_pred = rollout_data.old_values + th.clamp(
                values - rollout_data.old_values, -clip_range_vf, clip_range_vf
            )
        # Value loss using the TD(gae_lambda) target
        value_loss = F.mse_loss(rollout_data.returns, values_pred)

        # Entropy loss favor exploration
        # CAMAL: Discrete actions only, so the entropy is always analytic (SB3's log-prob fallback dropped)
        entropy_loss = -th.mean(entropy)

        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        # CAMAL: the attention term, added to the same optimizer step
        target_scores, maps = self._camal_target_scores(forward, actions)
        objective = self._with_attention_term(
            loss,
            maps,
            target_scores,
            rollout_data.observations[MASK_KEY],
            attention_log,
            train=train_attention,
            alignment=alignment,
            coef=camal_coef,
            images=forward.images,
            log_prob=log_prob,
        )

        # Calculate approximate form of reverse KL Divergence for early stopping
        # see issue #417: https://github.com/DLR-RM/stable-baselines3/issues/417
        # and discussion in PR #419: https://github.com/DLR-RM/stable-baselines3/pull/419
        # and Schulman blog: http://joschu.net/blog/kl-approx.html
        with th.no_grad():
            log_ratio = log_prob - rollout_data.old_log_prob
            approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()

        return MinibatchLoss(
            objective,
            policy_loss.item(),
            value_loss.item(),
            entropy_loss.item(),
            clip_fraction,
            float(approx_kl_div),
        )

    def _camal_target_scores(self, forward: AttentionForward, actions: Tensor) -> tuple[Tensor, Tensor]:
        """The Grad-CAM target score per sample and the maps it is taken over."""
        if self.camal_target == "value":
            return forward.values.flatten(), forward.vf_maps
        if self.camal_target == "greedy":
            return forward.action_logits.max(dim=1).values, forward.pi_maps
        if self.camal_target == "decision":
            return decision_scores(forward.action_logits, actions), forward.pi_maps
        return forward.action_logits.gather(1, actions.view(-1, 1)).squeeze(1), forward.pi_maps
