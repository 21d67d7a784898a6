"""The evalsuite user cache folder (converted models, the jieba dictionary cache, the COMET environment).

Task data has its own layout under ``$EVALSUITE_CACHE/data`` (``evalsuite.sources``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The evalsuite user cache: ``$EVALSUITE_CACHE``, ``$XDG_CACHE_HOME/evalsuite`` or ``~/.cache/evalsuite``."""
    if os.environ.get("EVALSUITE_CACHE"):
        return Path(os.environ["EVALSUITE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "evalsuite"
    return Path.home() / ".cache" / "evalsuite"


__all__ = ["cache_root"]
