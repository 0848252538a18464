"""User-facing exceptions: each message says what to do. The CLI prints them without a traceback."""


class InputError(ValueError):
    """Bad user input (an id, a name, a value, a path); the message says how to fix it."""


class WrongEnvTypeError(InputError, TypeError):
    """An environment of the wrong kind was given to a wrapper; the message names what to use."""


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` command."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs the optional extra '{extra}': pip install 'camal-rl[{extra}]'")
        self.extra = extra
