"""Features extractors that read ``obs["image"]`` only and expose their attention maps.

Both return features through ``forward`` (what SB3 calls when acting) and, through
:meth:`CamFeaturesExtractor.forward_with_maps`, the features together with the activations of
the attention layer, in one pass and inside the autograd graph, so Grad-CAM can differentiate
through them. Nothing is stored on ``self`` between calls.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from torch import Tensor, nn

from camal_rl.envs.base import IMAGE_KEY
from camal_rl.errors import InputError


def image_subspace(observation_space: spaces.Space) -> spaces.Box:
    """The channel-first image space inside a ``{"image", "mask"}`` Dict space, or the space
    itself when it is an image Box (a deployment without masks).

    Any number of channels is accepted: one RGB frame has 3, a stack of k RGB frames 3k (SB3's
    ``VecFrameStack``, :class:`camal_rl.envs.StackedImages`), k grey frames k. Channels first means
    what SB3 takes it to mean (``is_image_space_channels_first``: the channel axis is the
    smallest), so an image SB3's ``VecTransposeImage`` transposed passes, and one it did not
    (channel-last) does not.
    """
    space: spaces.Space | None = observation_space
    if isinstance(observation_space, spaces.Dict):
        space = observation_space.spaces.get(IMAGE_KEY)
    if not isinstance(space, spaces.Box) or len(space.shape) != 3:
        raise InputError(
            f"the features extractor needs an image observation (Box of rank 3, or a Dict with an "
            f"'{IMAGE_KEY}' entry); got {observation_space}. Wrap the env with camal_rl.envs.make_masked_env."
        )
    if not (is_image_space(space) and is_image_space_channels_first(space)):
        raise InputError(
            f"image space {space} is not a channel-first uint8 image; let SB3's VecTransposeImage "
            "transpose it (do not pass channel-last images to the policy directly)"
        )
    return space


class CamFeaturesExtractor(BaseFeaturesExtractor):
    """Base class: a conv stack, an attention layer inside it, then a linear head.

    :param observation_space: Dict with an ``image`` entry (C, H, W), or that image Box.
    :param convs: the conv layers; each is followed by a ReLU.
    :param attention_layer: index into ``convs`` whose (post-ReLU) output is the attention map;
        negative values count from the end (default: the last conv layer).
    :param features_dim: size of the linear head's output.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        convs: Sequence[nn.Conv2d],
        attention_layer: int,
        features_dim: int,
    ) -> None:
        super().__init__(observation_space, features_dim)
        n_convs = len(convs)
        if not -n_convs <= attention_layer < n_convs:
            raise InputError(
                f"attention_layer={attention_layer} is out of range for {n_convs} conv layers; "
                f"use an index in [{-n_convs}, {n_convs - 1}] (-1 is the last conv layer)"
            )
        split = attention_layer % n_convs + 1
        self.to_attention = nn.Sequential(*[m for conv in convs[:split] for m in (conv, nn.ReLU())])
        self.after_attention = nn.Sequential(
            *[m for conv in convs[split:] for m in (conv, nn.ReLU())], nn.Flatten()
        )
        image_shape = image_subspace(observation_space).shape
        with torch.no_grad():
            n_flat = self.after_attention(self.to_attention(torch.zeros(1, *image_shape))).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: dict[str, Tensor] | Tensor) -> Tensor:
        return self.forward_with_maps(observations)[0]

    def forward_with_maps(self, observations: dict[str, Tensor] | Tensor) -> tuple[Tensor, Tensor]:
        """:param observations: preprocessed observations (images scaled to [0, 1]); only the
            image is read.
        :return: features (B, features_dim) and attention maps (B, K, h, w)."""
        images = observations[IMAGE_KEY] if isinstance(observations, dict) else observations
        maps = self.to_attention(images)
        return self.linear(self.after_attention(maps)), maps


class MiniGridCNN(CamFeaturesExtractor):
    """Cell-aligned CNN for MiniGrid frames: the first conv's kernel and stride equal the tile
    size, so every activation map has exactly one position per grid cell and the Grad-CAM of any
    layer is a per-cell map aligned with the env's mask blocks.

    :param observation_space: Dict with an ``image`` entry (C, n * tile_size, m * tile_size): one
        RGB frame (C = 3) or a stack of them (C = 3k).
    :param tile_size: pixels per grid cell (must divide the image size).
    :param channels: output channels of each conv layer; layers after the first are 3x3,
        padding 1, so the maps keep one position per cell.
    :param attention_layer: index of the conv layer used as the attention map (default: last).
    :param features_dim: size of the output features.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        tile_size: int = 8,
        channels: Sequence[int] = (32, 64, 64),
        attention_layer: int = -1,
        features_dim: int = 128,
    ) -> None:
        n_channels, height, width = image_subspace(observation_space).shape
        if tile_size < 1 or height % tile_size or width % tile_size:
            raise InputError(
                f"tile_size={tile_size} must be >= 1 and divide the image size {height}x{width}; "
                "pass the env's tile size in policy_kwargs['features_extractor_kwargs']['tile_size']"
            )
        if not channels:
            raise InputError("channels must name at least one conv layer, e.g. (32, 64, 64)")
        convs = [nn.Conv2d(n_channels, channels[0], kernel_size=tile_size, stride=tile_size)]
        convs += [nn.Conv2d(c_in, c_out, 3, padding=1) for c_in, c_out in itertools.pairwise(channels)]
        super().__init__(observation_space, convs, attention_layer, features_dim)
        self.tile_size = tile_size


class NatureCamCNN(CamFeaturesExtractor):
    """NatureCNN (Mnih et al., Nature 2015) for larger frames such as ViZDoom's and Atari's, with
    its last conv layer (or another) as the attention layer. The first conv reads every channel,
    so a stack of k RGB frames (C = 3k, Atari's usual k = 4) gives one set of maps, and one
    Grad-CAM (h, w) map per sample, as a single frame does.

    :param observation_space: Dict with an ``image`` entry (C, H, W), C any number of channels
        (one RGB frame, or a stack of RGB or grey frames), H and W >= 44 (the attention maps of the
        last conv layer are then at least 2 x 2).
    :param attention_layer: index of the conv layer used as the attention map (default: last).
    :param features_dim: size of the output features.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        attention_layer: int = -1,
        features_dim: int = 512,
    ) -> None:
        n_channels, height, width = image_subspace(observation_space).shape
        if min(height, width) < 44:  # 8/4, 4/2, 3/1 convs: 36 -> 1, 44 -> 2, 52 -> 3 positions
            raise InputError(
                f"NatureCamCNN needs frames of at least 44x44 pixels, got {height}x{width}: below that "
                "its last conv layer's maps are 1 position wide, so Grad-CAM is uniform and the "
                "attention losses have nothing to move. Render larger frames, or for a grid env give "
                "it a tile_size attribute (pixels per cell), which selects the cell-aligned MiniGridCNN"
            )
        convs = [
            nn.Conv2d(n_channels, 32, kernel_size=8, stride=4),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
        ]
        super().__init__(observation_space, convs, attention_layer, features_dim)


def default_extractor_kwargs(tile_size: int | None) -> dict[str, object]:
    """Policy kwargs choosing the extractor when the user names none: the cell-aligned
    :class:`MiniGridCNN` for grid worlds (``tile_size`` known), :class:`NatureCamCNN` otherwise.

    :param tile_size: the env's pixels per grid cell, or None for frames without a grid.
    """
    if tile_size is None:
        return {"features_extractor_class": NatureCamCNN}
    return {"features_extractor_class": MiniGridCNN, "features_extractor_kwargs": {"tile_size": tile_size}}


def default_attention_maps(
    image_shape: tuple[int, ...], tile_size: int | None
) -> tuple[str, tuple[int, int]]:
    """The features extractor agents pick by default for (H, W, C) frames and the (h, w) of its
    attention maps, the resolution of Grad-CAM (built and run once on a blank frame).

    :raises InputError: frames the extractor cannot take (too small, tile_size not dividing them).
    """
    height, width, channels = image_shape
    kwargs = default_extractor_kwargs(tile_size)
    extractor_class = cast(type[CamFeaturesExtractor], kwargs["features_extractor_class"])
    options = cast(dict[str, Any], kwargs.get("features_extractor_kwargs", {}))
    extractor = extractor_class(spaces.Box(0, 255, (channels, height, width), np.uint8), **options)
    with torch.no_grad():
        _, maps = extractor.forward_with_maps({IMAGE_KEY: torch.zeros(1, channels, height, width)})
    return extractor_class.__name__, (int(maps.shape[2]), int(maps.shape[3]))


def check_cam_extractor(extractor_class: type[BaseFeaturesExtractor]) -> None:
    """CAMAL needs the attention maps: refuse extractors without ``forward_with_maps``."""
    if not (isinstance(extractor_class, type) and issubclass(extractor_class, CamFeaturesExtractor)):
        raise InputError(
            f"features_extractor_class={extractor_class!r} does not expose attention maps; use "
            "camal_rl.agents.MiniGridCNN, camal_rl.agents.NatureCamCNN or a subclass of "
            "camal_rl.agents.CamFeaturesExtractor"
        )


def env_tile_size(env: object) -> int | None:
    """The pixels per grid cell of a (vectorised) MiniGrid masked env, or None for other envs."""
    if not isinstance(env, VecEnv) or not env.has_attr("tile_size"):
        return None
    return int(env.get_attr("tile_size")[0])
