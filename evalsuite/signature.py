"""Metric signatures as structured values (the idea of sacrebleu's ``Signature``): everything that moves a
metric's number, as an ordered list of parts, rendered one way.

    >>> str(Signature("string_match_all", scale=100.0, v="1"))
    'string_match_all|scale:100|v:1'
    >>> str(Signature("deltabench", "strict", "f1", "macro", scale=100, v="1"))
    'deltabench|strict|f1|macro|scale:100|v:1'

Bare parts (the metric name, a variant, a nested signature) come first, then ``key:value`` parts in the
order given; a float renders with ``:g`` (``100.0`` -> ``100``), anything else with ``str``. Recorded
signatures are compared across runs (``compare`` refuses runs whose signatures differ), so a rendered
signature must never change for the same settings: build it from the settings, never edit the string.
"""

from __future__ import annotations

from typing import Any, Iterator


def _text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class Signature:
    """An ordered list of bare parts and ``key:value`` parts; ``str()`` renders it."""

    __slots__ = ("parts",)

    def __init__(self, *bare: Any, **keyed: Any):
        self.parts: list[tuple[str | None, str]] = [(None, _text(b)) for b in bare]
        self.parts += [(k, _text(v)) for k, v in keyed.items()]

    def add(self, key: str | None, value: Any) -> "Signature":
        """Append a part (``key`` None: a bare part); returns ``self``."""
        self.parts.append((key, _text(value)))
        return self

    def extend(self, **keyed: Any) -> "Signature":
        """Append ``key:value`` parts in order; returns ``self``."""
        for k, v in keyed.items():
            self.add(k, v)
        return self

    def __iter__(self) -> Iterator[tuple[str | None, str]]:
        return iter(self.parts)

    def __str__(self) -> str:
        return "|".join(v if k is None else f"{k}:{v}" for k, v in self.parts)

    def __repr__(self) -> str:
        return f"Signature({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other) if isinstance(other, (Signature, str)) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of the first ``key:value`` part named ``key``."""
        return next((v for k, v in self.parts if k == key), default)

    @classmethod
    def parse(cls, text: str) -> "Signature":
        """A rendered signature read back: each ``|``-separated part with a ``:`` before any other ``|`` is
        ``key:value`` (split at the first ``:``), the others bare (values stay text)."""
        sig = cls()
        for part in text.split("|") if text else []:
            key, sep, value = part.partition(":")
            if sep and key and " " not in key:
                sig.parts.append((key, value))
            else:
                sig.parts.append((None, part))
        return sig


__all__ = ["Signature"]
