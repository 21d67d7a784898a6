"""The Backend protocol: a batch of requests in, a list of generations of the same length and order out.

Per-request failures come back as values (``Generation.failed(...)``); a backend raises only when it
is down as a whole (``BackendUnavailable``). Modules under ``evalsuite.backends`` import their heavy
libraries (torch, transformers, vllm) inside methods, never at module level.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from ..errors import UserError
from ..tokenizer import Tokenizer
from ..types import Generation, Request


@runtime_checkable
class Backend(Protocol):
    id: str
    """Identity that enters every resume key, e.g. ``hf:/models/smollm2@sha256:ab12..:bfloat16``."""
    tokenizer: Tokenizer | None
    max_model_len: int | None
    batch_size: int
    """How many requests the runner hands over per call (persistence happens between calls)."""
    sort_by_length: bool
    """Whether batches benefit from being grouped by prompt length."""

    def generate(self, requests: Sequence[Request]) -> list[Generation]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def parse_options(name: str, spec: Mapping[str, tuple[Callable[[str], Any], Any]],
                  given: Mapping[str, Any]) -> dict[str, Any]:
    """Parse ``-B key=value`` options against ``{key: (type, default)}``; unknown keys are an error."""
    unknown = set(given) - set(spec)
    if unknown:
        import difflib

        hints = [m for k in sorted(unknown) for m in difflib.get_close_matches(k, list(spec), n=1)]
        hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
        raise UserError(f"backend {name}: unknown option(s) {sorted(unknown)}{hint}; accepted: {sorted(spec)}")
    out = {}
    for key, (typ, default) in spec.items():
        raw = given.get(key)
        if raw is None:
            out[key] = default
            continue
        try:
            out[key] = typ(raw) if isinstance(raw, str) else raw
        except (TypeError, ValueError) as exc:
            raise UserError(f"backend {name}: bad value for {key}={raw!r} ({exc})") from None
    return out


def construct_backend(factory: Callable[..., Any], name: str, model: str | None,
                      options: Mapping[str, Any]) -> Any:
    """Build a backend the one way the runner, the judge and Ray workers all do.

    ``--model`` goes in as ``model=`` unless the backend has an option of its own named ``model``
    (lmeval: ``-B model=<lm-eval model name>``); then it goes positionally. The embedded backend takes
    no ``model`` at all when none is given."""
    if "model" in options:
        return factory(model, **options)
    if model is not None or name != "embedded":
        return factory(model=model, **options)
    return factory(**options)


class BaseBackend:
    """Defaults for the optional parts of the protocol."""

    id = "base"
    tokenizer: Tokenizer | None = None
    max_model_len: int | None = None
    batch_size = 64
    sort_by_length = False

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        raise NotImplementedError

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        """Yield ``(position, generation)`` as generations finish (any order). The runner persists
        each as it arrives. Default: one ``generate`` call per ``batch_size`` chunk."""
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start:start + self.batch_size]
            outs = self.generate(chunk)
            check_batch(chunk, outs, self.id)
            for i, g in enumerate(outs):
                yield start + i, g

    def describe(self) -> dict[str, Any]:
        return {"id": self.id}

    def close(self) -> None:
        pass


def check_batch(requests: Sequence[Request], outs: Sequence[Generation], backend_id: str) -> None:
    if len(outs) != len(requests):
        raise RuntimeError(f"backend {backend_id} returned {len(outs)} generations for {len(requests)} requests")
