"""Parsing of ``-T`` / ``-B`` option values (strings from the command line or the environment)."""

from __future__ import annotations

def parse_bool(v: str | bool) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (case-insensitive)."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in {"1", "true", "yes", "on"}:
        return True
    if s in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {v!r}")


__all__ = ["parse_bool"]
