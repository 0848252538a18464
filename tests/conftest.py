"""Shared fixtures. Tests are fast by default; long runs carry the ``slow`` marker."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
