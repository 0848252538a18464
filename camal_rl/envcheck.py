"""``camal-rl envs --check ID``: does an env (above all one of the user's) follow the contract?

Makes the env as training does (:func:`camal_rl.envs.make_masked_env`), asks of its spaces what
training asks (the declared spaces, ``mask_classes``, a ``Discrete`` action space, with training's
own checks), runs gymnasium's own checker on it, then rolls a seeded random policy
and checks every observation against its space. It reports what CAMAL's loss will see: how often
the mask marks anything, and each class's share of the pixels.

It lives beside the agents rather than in :mod:`camal_rl.envs` because it asks what the agents
ask (their action check, their default extractor): the envs never import the agents.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from camal_rl.agents.common.attention import check_discrete_actions
from camal_rl.agents.common.extractors import default_attention_maps
from camal_rl.envs.base import IMAGE_KEY, MASK_KEY, check_masked_env
from camal_rl.envs.registry import make_masked_env
from camal_rl.errors import InputError

WRAPPED = "is different from the unwrapped version"
"""gymnasium's warning that it checks a wrapped env, as it is meant to here: not reported."""


@dataclass(frozen=True)
class EnvCheck:
    """What :func:`check_env` found; :meth:`format` prints it."""

    env_id: str
    image_shape: tuple[int, ...]
    mask_classes: tuple[str, ...]
    steps: int
    """Random-policy steps taken."""
    episodes: int
    """Episodes that ended within them."""
    observations: int
    """Observations checked: of every reset and every step (terminal ones included)."""
    coverage: float
    """Share of the observations whose mask marks at least one pixel."""
    class_shares: tuple[float, ...]
    """Per class, its mean share of the pixels over the observations."""
    warnings: tuple[str, ...]
    """gymnasium's checker's warnings."""
    example: dict[str, np.ndarray]
    """The first observation whose mask marks something (else the first observation)."""
    extractor: str
    """The features extractor agents pick by default (MiniGridCNN when the env has a tile_size)."""
    attention_maps: tuple[int, int]
    """(h, w) of its attention maps: Grad-CAM's resolution."""

    def format(self) -> str:
        h, w = self.image_shape[:2]
        lines = [
            f"{self.env_id}: follows the {{'{IMAGE_KEY}', '{MASK_KEY}'}} contract",
            f"  image {h}x{w}x3 uint8, mask {h}x{w} uint8, classes: {', '.join(self.mask_classes)}",
            f"  random policy: {self.steps} steps, {self.episodes} episode(s) ended, {self.observations} "
            f"observations; the mask marks something in {self.coverage:.0%} of them",
        ]
        shares = zip(self.mask_classes, self.class_shares, strict=True)
        lines += [f"    {name}: {share:.2%} of the pixels" for name, share in shares]
        h_maps, w_maps = self.attention_maps
        lines.append(
            f"  agents use {self.extractor} by default: attention maps {h_maps}x{w_maps} (Grad-CAM's "
            f"resolution, {h / h_maps:.3g}x{w / w_maps:.3g} pixels a position)"
        )
        if self.coverage == 0:
            lines.append(
                "  warning: the mask is empty in every observation: the attention losses have nothing "
                "to pull the map onto (are the objects in view? is the mask drawn?)"
            )
        lines += [f"  gymnasium: {message}" for message in self.warnings]
        return "\n".join(lines)


def check_env(
    env_id: str, *, steps: int = 200, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None
) -> EnvCheck:
    """Check ``env_id`` (see the module's doc).

    :param env_id: any id :func:`~camal_rl.envs.make_masked_env` takes.
    :param steps: random-policy steps whose observations are checked (>= 1).
    :param seed: seed of the resets and of the random actions.
    :param env_kwargs: keywords for :func:`~camal_rl.envs.make_masked_env`.
    :raises InputError: the env breaks the contract or gymnasium's checks; the message says where.
    """
    if steps < 1:
        raise InputError(f"--steps must be >= 1, got {steps}")
    env = make_masked_env(env_id, **dict(env_kwargs or {}))
    try:
        classes = _training_checks(env, env_id)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                gymnasium_check_env(env, skip_render_check=True)  # the wrappers training sees
            except (AssertionError, AttributeError, TypeError, ValueError) as error:
                raise InputError(f"{env_id} fails gymnasium's env checker: {error}") from error
        extractor, maps = _default_attention_maps(env)
        tally = _MaskTally(env_id, env.observation_space, len(classes))
        env.action_space.seed(seed)
        tally.add(env.reset(seed=seed)[0])
        episodes = 0
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            tally.add(obs)  # a terminal observation too
            if terminated or truncated:
                episodes += 1
                tally.add(env.reset()[0])
        assert tally.example is not None
        return EnvCheck(
            env_id=env_id,
            image_shape=tally.example[IMAGE_KEY].shape,
            mask_classes=classes,
            steps=steps,
            episodes=episodes,
            observations=tally.count,
            coverage=tally.covered / tally.count,
            class_shares=tuple(float(share) for share in tally.shares / tally.count),
            warnings=tuple(dict.fromkeys(str(w.message) for w in caught if WRAPPED not in str(w.message))),
            example=tally.example,
            extractor=extractor,
            attention_maps=maps,
        )
    finally:
        env.close()


def _training_checks(env: Any, env_id: str) -> tuple[str, ...]:
    """What training asks of an env's spaces, asked with training's own checks: observations
    ``{image, mask}`` of one size, ``mask_classes`` naming each class the mask space declares (no
    more, no fewer), a ``Discrete`` action space. Returns the mask classes.

    :raises InputError: the first check that fails, with its message.
    """
    classes = check_masked_env(env, env_id)
    try:
        check_discrete_actions(env.action_space, "training (CamalPPO, CamalDQN)")
    except InputError as error:
        raise InputError(f"{env_id}: {error}") from None
    return classes


def _default_attention_maps(env: Any) -> tuple[str, tuple[int, int]]:
    """The extractor training would pick for the env's frames (the cell-aligned MiniGridCNN when
    the env, or a wrapper, has a ``tile_size`` attribute) and its attention maps' (h, w).

    :raises InputError: frames that extractor refuses, with its message.
    """
    try:
        tile_size: int | None = int(env.get_wrapper_attr("tile_size"))
    except AttributeError:
        tile_size = None
    return default_attention_maps(env.observation_space[IMAGE_KEY].shape, tile_size)


class _MaskTally:
    """Checks observations against the space and counts what their masks mark."""

    def __init__(self, env_id: str, space: spaces.Space[Any], n_classes: int) -> None:
        self.env_id, self.space = env_id, space
        self.count = self.covered = 0
        self.shares = np.zeros(n_classes)
        self.example: dict[str, np.ndarray] | None = None

    def add(self, obs: dict[str, np.ndarray]) -> None:
        if not self.space.contains(obs):
            raise InputError(
                f"{self.env_id}: observation {self.count} of the random rollout (resets counted) lies "
                f"outside the observation space {self.space}"
            )
        mask = obs[MASK_KEY]
        marked = bool(mask.any())
        if self.example is None or (marked and not self.covered):
            self.example = obs  # the first observation whose mask marks something, else the first
        self.count += 1
        self.covered += marked
        self.shares += np.bincount(mask.ravel(), minlength=len(self.shares) + 1)[1:] / mask.size
