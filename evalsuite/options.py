"""One option mechanism for tasks (``-T``), backends (``-B``), metrics and the judge (``-J``).

Each side declares a table ``{key: Option(type, default, help)}``; :func:`parse_options` turns the strings
given on the command line (or values given in code) into typed values, with one line naming the bad key and
value when one does not parse. The validators below are the shared ``type`` callables: each takes the string
and returns the value, or raises ``ValueError`` with a short reason (the caller adds who and which key).

    >>> parse_options({"n": Option(positive_int, 3)}, {"n": "5"}, "toy")
    {'n': 5}
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .errors import UserError


@dataclass(frozen=True)
class Option:
    """An option a task, backend, metric or the judge accepts: how to parse it, its default, its help."""

    type: Callable[[str], Any]
    default: Any = None
    help: str = ""

    def parse(self, raw: Any) -> Any:
        """A string (from the command line) through ``type``; a value given in code as it is."""
        return self.type(raw) if isinstance(raw, str) else raw


OptionSpec = Mapping[str, "Option | tuple[Callable[[str], Any], Any]"]
"""A table of options; a ``(type, default)`` pair (the older backend form) is read as ``Option(type, default)``."""


def as_option(spec: Option | tuple[Callable[[str], Any], Any]) -> Option:
    return spec if isinstance(spec, Option) else Option(*spec)


def suggest(word: str, choices: Iterable[str], template: str = "; did you mean {}?") -> str:
    """A "did you mean" tail for ``word`` among ``choices`` (empty when nothing is close)."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    return template.format(", ".join(repr(c) for c in close)) if close else ""


def parse_options(spec: OptionSpec, given: Mapping[str, Any], who: str, *,
                  unknown: Callable[[set[str]], str] | None = None,
                  bad: Callable[[str, Any, Exception], str] | None = None,
                  defaults: bool = True) -> dict[str, Any]:
    """``given`` parsed against ``spec``: every declared key (its default when not given, unless ``defaults``
    is False), each given string through its ``type``. Raises ``UserError``: ``unknown(keys)`` for keys not
    declared (default: "<who>: unknown option(s) [...]; accepted: [...]"), ``bad(key, raw, exc)`` for a value
    its type refuses (default: "<who>: bad value for option 'k': 'v' (reason)")."""
    extra = set(given) - set(spec)
    if extra:
        raise UserError(unknown(extra) if unknown else
                        f"{who}: unknown option(s) {sorted(extra)}; accepted: {sorted(spec)}")
    out: dict[str, Any] = {}
    for key, entry in spec.items():
        opt = as_option(entry)
        raw = given.get(key)
        if raw is None:
            if defaults:
                out[key] = opt.default
            continue
        try:
            out[key] = opt.parse(raw)
        except (TypeError, ValueError) as exc:
            raise UserError(bad(key, raw, exc) if bad else
                            f"{who}: bad value for option {key!r}: {raw!r} ({exc})") from None
    return out


# -- shared validators ---------------------------------------------------------------------------------------

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


def positive_int(v: str) -> int:
    """An integer > 0."""
    n = int(v)
    if n <= 0:
        raise ValueError("must be positive")
    return n


def non_negative_int(v: str) -> int:
    """An integer >= 0."""
    n = int(v)
    if n < 0:
        raise ValueError("must be >= 0")
    return n


def positive_float(v: str) -> float:
    """A number > 0 (not NaN)."""
    x = float(v)
    if not x > 0:
        raise ValueError("must be > 0")
    return x


def non_negative_float(v: str) -> float:
    """A number >= 0 (not NaN)."""
    x = float(v)
    if not x >= 0:
        raise ValueError("must be >= 0")
    return x


def probability(v: str) -> float:
    """A number in [0, 1]."""
    x = float(v)
    if not 0 <= x <= 1:
        raise ValueError("must be between 0 and 1")
    return x


def choice(*values: str, message: str | None = None) -> Callable[[str], str]:
    """A validator accepting exactly one of ``values`` (refused: "one of a, b, c", or ``message``)."""
    allowed = tuple(values)

    def check(v: str) -> str:
        if v not in allowed:
            raise ValueError(message or f"one of {', '.join(allowed)}")
        return v

    check.__name__ = f"choice({', '.join(allowed)})"
    return check


__all__ = ["Option", "OptionSpec", "as_option", "choice", "non_negative_float", "non_negative_int", "parse_bool",
           "parse_options", "positive_float", "positive_int", "probability", "suggest"]
