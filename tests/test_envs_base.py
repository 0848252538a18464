"""The observation contract (camal_rl.envs.base): its space check, and that the envs never import
the agents (the contract lives in one place, so no import cycle runs between the two)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from camal_rl.envs import make_masked_env
from camal_rl.envs.base import IMAGE_KEY, MASK_KEY, check_masked_observation_space
from camal_rl.errors import InputError
from tests.import_graph import import_chains


def contract_space(image_shape: tuple[int, int, int], mask_shape: tuple[int, ...]) -> spaces.Dict:
    return spaces.Dict(
        {
            IMAGE_KEY: spaces.Box(0, 255, image_shape, np.uint8),
            MASK_KEY: spaces.Box(0, 2, mask_shape, np.uint8),
        }
    )


def test_space_check_takes_the_image_as_envs_declare_it_and_as_agents_see_it() -> None:
    check_masked_observation_space(make_masked_env("MiniGrid-DoorKey-5x5-v0").observation_space)
    check_masked_observation_space(contract_space((40, 56, 3), (40, 56)))  # channel-last (H, W, 3)
    check_masked_observation_space(contract_space((3, 40, 56), (40, 56)))  # after VecTransposeImage


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (spaces.Box(0, 255, (40, 56, 3), np.uint8), "make_masked_env"),
        (spaces.Dict({MASK_KEY: spaces.Box(0, 2, (40, 56), np.uint8)}), "no 'image' entry"),
        (contract_space((40, 56, 3), (40, 56, 1)), r"expected image \(H, W, 3\) and mask \(H, W\)"),
        (contract_space((40, 56, 3), (20, 28)), r"mask \(20x28\) must be the size of the image \(40x56\)"),
    ],
)
def test_space_check_says_what_to_change(space: spaces.Space, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_masked_observation_space(space)


def test_envs_never_import_the_agents() -> None:
    """A static walk, so that imports inside functions count too (the old cycle was one)."""
    chains = import_chains("camal_rl.envs", "camal_rl.agents")
    assert not chains, "camal_rl.envs imports the agents:\n" + "\n".join(chains)
    # the walk does find them where they are imported, in functions too: `envs --check` asks the agents
    assert "camal_rl.agents.common.extractors <- camal_rl.envcheck" in import_chains(
        "camal_rl.envcheck", "camal_rl.agents"
    )


def test_the_agents_take_the_contract_from_the_envs() -> None:
    from camal_rl.agents.common import algorithm, buffers

    assert algorithm.check_masked_observation_space is check_masked_observation_space
    assert buffers.check_masked_observation_space is check_masked_observation_space
