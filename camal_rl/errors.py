"""User-facing exceptions: each message says what to do. The CLI prints them without a traceback."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class InputError(ValueError):
    """Bad user input (an id, a name, a value, a path); the message says how to fix it."""


class WrongEnvTypeError(InputError, TypeError):
    """An environment of the wrong kind was given to a wrapper; the message names what to use."""


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` command."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs the optional extra '{extra}': pip install 'camal-rl[{extra}]'")
        self.extra = extra


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's pre-emption, ``docker stop``), raised where Ctrl-C raises
    ``KeyboardInterrupt``, so that every path that saves a run on Ctrl-C saves it on SIGTERM too."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: raise :class:`Terminated` once; a repeated SIGTERM is ignored (it must not
    cut short the save the first one started; SIGKILL still ends the process)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"received signal {signum} (SIGTERM)")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``); the previous
    handler is restored after it. Signal handlers live in the main thread: elsewhere this does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
