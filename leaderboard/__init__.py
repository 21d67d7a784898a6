"""The static leaderboard site (``evalsuite leaderboard build``), installed as ``evalsuite.leaderboard``.

Templates (``templates/``), the stylesheet and the script (``static/``) ship as package data; charts are
SVG and HTML written directly (``charts.py``), so building needs nothing beyond evalsuite's own
dependencies.
"""

from __future__ import annotations

from typing import Any


def build_site(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from .build import build_site as _build

    return _build(*args, **kwargs)


__all__ = ["build_site"]
