"""The observation contract (camal_rl.envs.base): its space check, and that the envs never import
the agents (the contract lives in one place, so no import cycle runs between the two)."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from camal_rl.envs import make_masked_env
from camal_rl.envs.base import IMAGE_KEY, MASK_KEY, check_masked_observation_space
from camal_rl.errors import InputError


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


def _file_of(module: str) -> Path | None:
    """The source file of a ``camal_rl`` module, or None for a name that is no module (an
    attribute, as in ``from camal_rl.envs.base import IMAGE_KEY``)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ModuleNotFoundError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module name ``path`` imports anywhere (top level, in functions, under TYPE_CHECKING),
    relative imports resolved, with the packages Python imports on the way: ``from a.b import c``
    yields ``a``, ``a.b`` and ``a.b.c``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            yield from (".".join(parts[:end]) for end in range(1, len(parts) + 1))


def camal_imports_reachable_from(root: str) -> dict[str, str]:
    """Every ``camal_rl`` module that ``root`` imports, directly or through other ``camal_rl``
    modules, mapped to the module that first imports it."""
    seen: dict[str, str] = {root: root}
    queue = [root]
    while queue:
        module = queue.pop()
        path = _file_of(module)
        if path is None:
            continue
        for name in _imported(module, path):
            if name.startswith("camal_rl.") and name not in seen and _file_of(name) is not None:
                seen[name] = module
                queue.append(name)
    return seen


def test_envs_never_import_the_agents() -> None:
    """A static walk, so that imports inside functions count too (the old cycle was one)."""
    reached = camal_imports_reachable_from("camal_rl.envs")
    assert {"camal_rl.envs.base", "camal_rl.errors"} <= set(reached)  # the walk sees the imports
    agents = sorted(
        name for name in reached if name == "camal_rl.agents" or name.startswith("camal_rl.agents.")
    )
    chains = []
    for name in agents:
        chain = [name]
        while chain[-1] != "camal_rl.envs":
            chain.append(reached[chain[-1]])
        chains.append(" <- ".join(chain))
    assert not chains, "camal_rl.envs imports the agents:\n" + "\n".join(chains)


def test_the_agents_take_the_contract_from_the_envs() -> None:
    from camal_rl.agents.common import algorithm, buffers

    assert algorithm.check_masked_observation_space is check_masked_observation_space
    assert buffers.check_masked_observation_space is check_masked_observation_space
