"""Atomic file writes: new content goes to a temporary file that is then renamed into place, so
that a kill at any moment leaves the previous file whole (run records, model zips, videos)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def written_then_moved(path: Path, tmp: Path | None = None, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to: moved onto ``path`` when the block
    ends, removed when it raises (Ctrl-C too), so ``path`` is never half written and keeps its
    old content on failure.

    :param tmp: the temporary path (default: ``path`` with ``.tmp`` added to its suffix).
    :param durable: flush the new content to the disk before the move (model zips: a power cut
        after the move must not leave an empty file in place of the old one).
    """
    tmp = tmp or path.with_suffix(path.suffix + ".tmp")
    try:
        yield tmp
        if durable:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # a read-only place: the first error is the one to tell
            tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    with written_then_moved(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)
