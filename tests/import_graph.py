"""The import graph of camal_rl, read statically from the sources: imports inside functions and
under ``TYPE_CHECKING`` count too, so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path


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


def import_chains(root: str, forbidden: str) -> list[str]:
    """How ``root`` reaches the package ``forbidden`` or a module in it, one chain
    ``forbidden... <- ... <- root`` per module reached; empty when it never does."""
    reached = camal_imports_reachable_from(root)
    chains = []
    for name in sorted(reached):
        if name != forbidden and not name.startswith(forbidden + "."):
            continue
        chain = [name]
        while chain[-1] != root:
            chain.append(reached[chain[-1]])
        chains.append(" <- ".join(chain))
    return chains
