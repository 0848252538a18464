"""Refuse, before any work, an output path that cannot be written.

``evaluate``, ``record`` and ``plot`` roll out or draw for minutes before they write; a path that
is a folder where a file goes, lies below a regular file, or sits on a read-only filesystem would
only fail then, with the work lost. :func:`check_output` asks first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from camal_rl.errors import InputError


def check_output(path: Path, option: str, *, folder: bool = False) -> None:
    """Refuse an output ``path`` that cannot be written: a folder where a file goes (a file where
    a folder goes), a path below a regular file, or a place whose nearest existing folder cannot
    take a new file (a read-only filesystem, no permission). Creates nothing: a probe file is made
    and removed at once.

    :param path: the file (or, with ``folder``, the folder) to be written.
    :param option: the option that names it, for the message (``--out``).
    :param folder: ``path`` is a folder to write files into, not a file.
    :raises InputError: saying which, and what to pass instead.
    """
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; pass {option} a folder (the files are written into it)")
    if not folder and path.is_dir():
        raise InputError(f"{option} {path} is a folder; pass {option} a file path")
    nearest = next(p for p in ((path,) if folder else ()) + tuple(path.parents) if p.exists())
    if not nearest.is_dir():
        raise InputError(f"{option} {path} lies below {nearest}, which is a file; pass {option} another path")
    try:
        with tempfile.TemporaryFile(dir=nearest, prefix=".camal-rl-probe-"):
            pass
    except OSError as error:
        raise InputError(
            f"{option} {path}: cannot write in {nearest} ({error.strerror or error}); pass {option} a "
            "place you can write"
        ) from error
