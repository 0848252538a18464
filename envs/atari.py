"""Masked Atari environments (optional extra ``atari``): ALE games with masks from OCAtari.

The emulator is ale-py's (Bellemare et al., "The Arcade Learning Environment", JAIR 2013), at
the ``ALE/<Game>-v5`` settings (sticky actions with probability 0.25, the minimal action set, at
most 108000 frames an episode). OCAtari reads every object's box from the RAM
(:mod:`camal_rl.envs.atari_classes` says which objects each game's mask labels, and how).

:class:`AtariMaskedEnv` applies the standard Atari preprocessing (Mnih et al., Nature 2015;
Machado et al., JAIR 2018; Stable-Baselines3's ``AtariWrapper``) to frame and mask alike:

- reset: 1 to ``noop_max`` random no-op frames;
- step: the action repeated ``frame_skip`` frames, rewards summed; the image is the pixel-wise
  maximum of the last two frames (Atari sprites flicker), and the mask the union of those two
  frames' masks (:func:`camal_rl.envs.atari_masks.paint_mask`);
- both resized to ``screen_size`` x ``screen_size``: the image with ``cv2.INTER_AREA``, the mask
  with :func:`camal_rl.envs.atari_masks.resize_mask` (a pixel is labelled where an object covers
  any part of it);
- with ``terminal_on_life_loss``, a lost life ends the episode for the agent, and the next reset
  continues the game (a no-op step) until it is over;
- with ``fire_reset``, every reset then presses FIRE and then action 2, one step each (SB3's
  ``FireResetEnv``), for games that wait for FIRE to start or to serve after a lost life
  (Breakout); the observation after them is the reset's, mask and all. A lost life that does not
  end the episode is served the same way, within the step that lost it (its reward includes the
  two steps'), so that a policy that never presses FIRE cannot stall a game until truncation;
- with ``frame_stack=k``, the last k images side by side in the channels, oldest first, and the
  newest frame's mask (:class:`camal_rl.envs.StackedImages`, as SB3's ``VecFrameStack`` stacks):
  ``image`` is (H, W, 3k). rl-baselines3-zoo's Atari agents see k = 4.

The image stays RGB, as in the other families. Rewards are the game's own (not clipped): the
monitor files log the game's score.

This module imports without the extra: listing and registration are static; building an env
raises :class:`MissingAtariError` when ale-py or OCAtari is missing.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from camal_rl.envs.atari_classes import (
    ATARI_GAMES,
    AtariClass,
    ale_id,
    game_of,
    registered_id,
    resolve_atari_classes,
)
from camal_rl.envs.atari_masks import Box, max_pool, paint_mask, resize_mask
from camal_rl.envs.base import EnvInfo, image_space, mask_space
from camal_rl.envs.stacking import StackedImages
from camal_rl.errors import InputError, MissingExtraError

ENTRY_POINT = "camal_rl.envs.atari:make_atari_masked_env"
OCATARI_VERSION = "2.2.1"
SCREEN_SIZE = 84
"""Side of the square image and mask by default (Mnih et al. 2015)."""
FRAME_SKIP = 4
NOOP_MAX = 30

MaskedObs = dict[str, np.ndarray]


class MissingAtariError(MissingExtraError):
    """ale-py or OCAtari is missing: the message gives both install commands (OCAtari declares
    ``numpy<2``, so it is installed without its dependencies, which the extra brings)."""

    def __init__(self, what: str) -> None:
        super().__init__("atari", what)
        self.args = (
            f"{self.args[0]} && pip install --no-deps ocatari=={OCATARI_VERSION} (OCAtari declares "
            "numpy<2 but its RAM mode runs on numpy 2; the extra installs its dependencies; "
            "`make install` does both)",
        )


def _import_ocatari(what: str) -> tuple[Any, Any, Any]:
    """ale_py, OCAtari's RAM readers (``ocatari.ram.extract_ram_info``) and ``ocatari.core``.

    :raises MissingAtariError: either is missing.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # OCAtari imports pygame
    try:
        ale_py = importlib.import_module("ale_py")
        core = importlib.import_module("ocatari.core")
        ram = importlib.import_module("ocatari.ram.extract_ram_info")
    except ImportError as error:
        raise MissingAtariError(what) from error
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every env made
    return ale_py, ram, core


def atari_installed() -> bool:
    """ale-py and OCAtari are importable (without importing them)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("ale_py", "ocatari"))
    except ValueError:  # sys.modules[name] is None: importing it is blocked
        return False


def supported_games() -> list[str]:
    """OCAtari names of the games with default classes, in table order."""
    return list(ATARI_GAMES)


def list_atari_envs() -> list[EnvInfo]:
    """One row per supported game at the default settings; static, so it also works without the
    extra (``available=False`` then)."""
    available = atari_installed()
    shape = (SCREEN_SIZE, SCREEN_SIZE, 3)
    return [
        EnvInfo(registered_id(game), "screen", shape, tuple(classes), available)
        for game, classes in ATARI_GAMES.items()
    ]


def register_atari_envs() -> None:
    """Register ``camal_rl/ALE-<Game>-v5`` with gymnasium for every supported game; builds no env,
    works without the extra, leaves ids already registered alone."""
    for game in ATARI_GAMES:
        if registered_id(game) not in gym.registry:
            gym.register(id=registered_id(game), entry_point=ENTRY_POINT, kwargs={"env_id": ale_id(game)})


def unsupported_game_message(env_id: str, game: str | None, categories: Sequence[str]) -> str:
    """What to do about an Atari id without default classes."""
    supported = ", ".join(ale_id(g) for g in ATARI_GAMES)
    if game is None or not categories:
        known = list(ATARI_GAMES)
        matches = difflib.get_close_matches(game or env_id, known, n=3, cutoff=0.5)
        hint = f" (close matches: {', '.join(ale_id(m) for m in matches)})" if matches else ""
        return (
            f"{env_id!r} is not an Atari game OCAtari {OCATARI_VERSION} reads{hint}; Atari ids are "
            f"ALE/<Game>-v5, and these have mask classes: {supported}"
        )
    return (
        f"{env_id} has no default mask classes: camal-rl supports {supported}, whose RAM readers run on "
        "numpy 2 and whose masks were checked against the frames. To mask this game's boxes anyway, "
        "name its OCAtari categories, unchecked: classes={'name': ['Category', ...]} (its categories: "
        f"{', '.join(categories)})"
    )


def make_atari_masked_env(
    env_id: str,
    *,
    classes: Sequence[str] | Mapping[str, Sequence[str] | str] | str | None = None,
    screen_size: int | None = SCREEN_SIZE,
    frame_skip: int = FRAME_SKIP,
    noop_max: int = NOOP_MAX,
    terminal_on_life_loss: bool = False,
    fire_reset: bool = False,
    frame_stack: int = 1,
    **ale_kwargs: Any,
) -> AtariMaskedEnv | StackedImages:
    """An Atari game whose observations are ``{"image": uint8 (H, W, 3 x frame_stack), "mask":
    uint8 (H, W)}``.

    :param env_id: ``"ALE/Pong-v5"``, or the registered ``"camal_rl/ALE-Pong-v5"``; a game of
        :data:`camal_rl.envs.atari_classes.ATARI_GAMES`, or any other OCAtari game with a
        ``classes`` mapping.
    :param classes: default: the game's classes. Class names of the game (a subset or a new
        order; a comma-separated string also works), or ``{class name: OCAtari categories}``.
    :param screen_size: side of the square image and mask; None keeps the 210x160 screen.
    :param frame_skip: frames an action is repeated, >= 1; the last two are max-pooled.
    :param noop_max: most no-op frames at reset, >= 0 (0: none).
    :param terminal_on_life_loss: end the agent's episode when a life is lost.
    :param fire_reset: press FIRE, then action 2, at every reset (SB3's ``FireResetEnv``) and
        after every lost life, for games that wait for FIRE (Breakout); only for games whose
        action 1 is FIRE.
    :param frame_stack: images stacked, >= 1 (:class:`camal_rl.envs.StackedImages`; the mask is
        the newest frame's); 1 returns the :class:`AtariMaskedEnv` itself.
    :param ale_kwargs: ale-py's ``AtariEnv`` keywords (``repeat_action_probability``,
        ``full_action_space``, ``mode``, ``difficulty``, ``max_num_frames_per_episode``).
    :raises InputError: an id that is no OCAtari game, a game without default classes and no
        mapping, bad classes or settings (``fire_reset`` for a game without FIRE); a refused ALE
        keyword.
    :raises MissingAtariError: ale-py or OCAtari is not installed.
    """
    game = game_of(env_id)
    _, _, core = _import_ocatari(f"the Atari env {env_id!r}")
    available = getattr(core, "AVAILABLE_GAMES", [])
    categories: list[str] = []
    if game is not None and game in available:
        ram_module = importlib.import_module(f"ocatari.ram.{game.lower()}")
        categories = list(getattr(ram_module, "MAX_NB_OBJECTS_HUD", {}))
    if game is None or not categories or (game not in ATARI_GAMES and not isinstance(classes, Mapping)):
        raise InputError(unsupported_game_message(env_id, game, categories))
    mask_classes = resolve_atari_classes(game, classes, categories)
    if "frameskip" in ale_kwargs:
        raise InputError(
            "set the frames an action is repeated with frame_skip=N (the last two are max-pooled)"
        )
    for name, value, low in (
        ("frame_skip", frame_skip, 1),
        ("noop_max", noop_max, 0),
        ("frame_stack", frame_stack, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    if screen_size is not None and (
        isinstance(screen_size, bool) or not isinstance(screen_size, int) or screen_size < 8
    ):
        raise InputError(
            f"screen_size must be an integer >= 8 (pixels), or None for 210x160; got {screen_size!r}"
        )
    env = AtariMaskedEnv(
        game,
        mask_classes,
        screen_size=screen_size,
        frame_skip=frame_skip,
        noop_max=noop_max,
        terminal_on_life_loss=terminal_on_life_loss,
        fire_reset=fire_reset,
        **ale_kwargs,
    )
    return StackedImages(env, frame_stack) if frame_stack > 1 else env


class AtariMaskedEnv(gym.Env[dict[str, Any], np.int64]):
    """An ALE game with the standard preprocessing and a mask of its task-relevant objects, read
    by OCAtari from the RAM (CAMAL, Hundal et al. 2026: the mask is the ground-truth attention
    region). See the module docstring for the preprocessing.

    OCAtari's RAM readers are given the RAM as int64, not uint8: under numpy 2 uint8 scalar
    arithmetic raises ``OverflowError`` where numpy 1 widened (SpaceInvaders, Seaquest) and wraps
    a position that goes below 0 round to 250-odd, off the screen; in integers it stays at the
    screen's left or top edge, where the object is drawn.

    :param game: OCAtari game name (``"Pong"``).
    :param classes: mask class name -> :class:`AtariClass`, in mask-value order.
    :param screen_size: side of the square image and mask; None keeps the 210x160 screen.
    :param frame_skip: frames an action is repeated.
    :param noop_max: most no-op frames at reset.
    :param terminal_on_life_loss: end the agent's episode when a life is lost.
    :param fire_reset: press FIRE, then action 2, at every reset (SB3's ``FireResetEnv``) and
        after every lost life.
    :param ale_kwargs: ale-py ``AtariEnv`` keywords.
    :raises InputError: ``fire_reset`` for a game whose action 1 is not FIRE.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 (gymnasium's Env declares it so)

    def __init__(
        self,
        game: str,
        classes: Mapping[str, AtariClass],
        *,
        screen_size: int | None = SCREEN_SIZE,
        frame_skip: int = FRAME_SKIP,
        noop_max: int = NOOP_MAX,
        terminal_on_life_loss: bool = False,
        fire_reset: bool = False,
        render_mode: str | None = None,
        **ale_kwargs: Any,
    ) -> None:
        ale_py, self._ram_readers, _ = _import_ocatari(f"the Atari env {ale_id(game)!r}")
        gym.register_envs(ale_py)
        try:
            made = gym.make(ale_id(game), frameskip=1, disable_env_checker=True, **ale_kwargs)
        except (TypeError, ValueError, gym.error.Error) as error:
            raise InputError(
                f"{ale_id(game)} refused the keywords {ale_kwargs} ({error}); pass ale-py AtariEnv keywords "
                "(repeat_action_probability, full_action_space, mode, difficulty, max_num_frames_per_episode)"
            ) from error
        ale_env: Any = made.unwrapped  # ale_py.env.AtariEnv
        self._ale_env = ale_env
        self._ale = ale_env.ale
        self.game = game
        self.mask_classes: tuple[str, ...] = tuple(classes)
        """Names of mask values 1..n: value k is ``mask_classes[k - 1]``."""
        self._class_of = {
            cat: (k, cls) for k, cls in enumerate(classes.values(), 1) for cat in cls.categories
        }
        self.screen_size = screen_size
        self.frame_skip = frame_skip
        self.noop_max = noop_max
        self.terminal_on_life_loss = terminal_on_life_loss
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(len(ale_env._action_set))
        self.action_names = tuple(name.lower() for name in ale_env.get_action_meanings())
        """Names of the actions (``noop``, ``fire``, ``right``, ...), for videos."""
        if fire_reset and self.action_names[1:2] != ("fire",):
            made.close()
            raise InputError(
                f"fire_reset presses FIRE (action 1) at each reset, but {ale_id(game)}'s actions are "
                f"{', '.join(self.action_names)}: leave fire_reset off for this game"
            )
        self.fire_reset = fire_reset
        height, width = (210, 160) if screen_size is None else (screen_size, screen_size)
        self._shape = (height, width)
        self.observation_space = spaces.Dict(
            {"image": image_space(height, width), "mask": mask_space(height, width, len(self.mask_classes))}
        )
        self._objects: list[Any] = []
        self._frames = [np.zeros((210, 160, 3), np.uint8) for _ in range(2)]
        self._lives = 0
        self._game_over = True
        self._last: MaskedObs | None = None

    # -- emulator -----------------------------------------------------------------------------

    def _detect(self) -> None:
        """Update OCAtari's objects from the RAM (as int64: see the class docstring)."""
        self._ram_readers.detect_objects_ram(
            self._objects, self._ale.getRAM().astype(np.int64), self.game, False
        )

    def _boxes(self) -> list[Box]:
        """The task-relevant objects now on screen as :data:`~camal_rl.envs.atari_masks.Box`."""
        boxes: list[Box] = []
        for obj in self._objects:
            if not obj:
                continue
            found = self._class_of.get(obj.category)
            if found is None:
                continue
            k, cls = found
            x, y, w, h = (int(v) for v in obj.xywh)
            m = cls.margin
            x, y, w, h = x - m, y - m, w + 2 * m, h + 2 * m
            if cls.rows is not None:
                top, bottom = max(y, cls.rows[0]), min(y + h, cls.rows[1])
                y, h = top, bottom - top
            rgb = (int(obj.rgb[0]), int(obj.rgb[1]), int(obj.rgb[2])) if cls.colour else None
            boxes.append((k, x, y, w, h, rgb))
        return boxes

    def _capture(self, index: int, mask: np.ndarray) -> np.ndarray:
        """Read the screen into frame buffer ``index``, detect the objects and paint their mask."""
        frame = self._frames[index]
        self._ale.getScreenRGB(frame)
        self._detect()
        paint_mask(mask, frame, self._boxes())
        return frame

    def _observation(self, frames: list[np.ndarray], mask: np.ndarray) -> MaskedObs:
        image = max_pool(frames)
        if self.screen_size is not None:
            image = cv2.resize(image, (self.screen_size, self.screen_size), interpolation=cv2.INTER_AREA)
            mask = resize_mask(mask, self._shape, len(self.mask_classes))
        self._last = {"image": image, "mask": mask}
        return self._last

    # -- gymnasium API --------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[MaskedObs, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        if seed is not None or self._game_over or not self.terminal_on_life_loss:
            self._ale_env.reset(seed=None if seed is None else int(self.np_random.integers(2**31)))
            self._objects = self._ram_readers.init_objects(self.game, False)
            noops = int(self.np_random.integers(1, self.noop_max + 1)) if self.noop_max else 0
            for _ in range(noops):
                self._ale.act(self._ale_env._action_set[0])
                if self._ale.game_over():
                    self._ale_env.reset()
            self._game_over = False
            mask = np.zeros((210, 160), np.uint8)
            obs = self._observation([self._capture(0, mask)], mask)
        else:  # a life was lost, the game goes on: one no-op step, as SB3's EpisodicLifeEnv does
            obs, _, terminated, truncated, _ = self._act(0)
            if terminated or truncated:
                return self.reset(options=options)
        if self.fire_reset:
            obs, _, terminated, truncated, _ = self._serve()
            if terminated or truncated:
                return self.reset(options=options)
        self._lives = self._ale.lives()
        return obs, {"lives": self._lives}

    def step(self, action: Any) -> tuple[MaskedObs, float, bool, bool, dict[str, Any]]:
        lives_before = self._lives
        obs, reward, terminated, truncated, info = self._act(action)
        if self.fire_reset and not (terminated or truncated) and 0 < self._lives < lives_before:
            # a lost life in a game that goes on: serve as at a reset; the serve's rewards count,
            # since the episode is the game
            obs, more, terminated, truncated, info = self._serve()
            reward += more
        return obs, reward, terminated, truncated, info

    def _serve(self) -> tuple[MaskedObs, float, bool, bool, dict[str, Any]]:
        """FIRE, then action 2, one step each, as SB3's ``FireResetEnv`` presses them; stops at the
        end of the game. Returns the last step's outcome with the two steps' rewards summed."""
        reward = 0.0
        for action in (1, 2):
            obs, more, terminated, truncated, info = self._act(action)
            reward += more
            if terminated or truncated:
                break
        return obs, reward, terminated, truncated, info

    def _act(self, action: Any) -> tuple[MaskedObs, float, bool, bool, dict[str, Any]]:
        """One agent step: the action repeated ``frame_skip`` frames (the class docstring)."""
        ale_action = self._ale_env._action_set[int(action)]
        ale = self._ale
        reward = 0.0
        mask = np.zeros((210, 160), np.uint8)
        frames: list[np.ndarray] = []
        for i in range(self.frame_skip):
            reward += ale.act(ale_action)
            over = ale.game_over()
            if over or i >= self.frame_skip - 2:
                frames.append(self._capture(len(frames) % 2, mask))
            if over:
                break
        terminated = ale.game_over(with_truncation=False)
        truncated = ale.game_truncated()
        self._game_over = terminated or truncated
        lives = ale.lives()
        if self.terminal_on_life_loss and 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return self._observation(frames[-2:], mask), reward, terminated, truncated, {"lives": lives}

    def render(self) -> np.ndarray | None:
        """The last observation's image (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array" or self._last is None:
            return None
        return self._last["image"]

    def close(self) -> None:
        self._ale_env.close()
