"""The Backend protocol: a batch of requests in, a list of generations of the same length and order out.

Per-request failures come back as values (``Generation.failed(...)``); a backend raises only when it
is down as a whole (``BackendUnavailable``). Modules under ``evalsuite.backends`` import their heavy
libraries (torch, transformers, vllm) inside methods, never at module level.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

from ..contracts import Backend, Batched, ModelInfo, Streaming, Tokenized
from ..errors import UserError
from ..options import OptionSpec
from ..options import parse_options as _parse_options
from ..tokenizer import Tokenizer
from ..types import Generation, Request


def parse_options(name: str, spec: OptionSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Parse ``-B key=value`` options against the backend's ``{key: Option}`` table (``evalsuite.options``;
    a ``(type, default)`` pair is read as an ``Option``); unknown keys are an error."""

    def unknown(keys: set[str]) -> str:
        import difflib

        hints = [m for k in sorted(keys) for m in difflib.get_close_matches(k, list(spec), n=1)]
        hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
        return f"backend {name}: unknown option(s) {sorted(keys)}{hint}; accepted: {sorted(spec)}"

    return _parse_options(spec, given, f"backend {name}", unknown=unknown,
                          bad=lambda key, raw, exc: f"backend {name}: bad value for {key}={raw!r} ({exc})")


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


class BaseBackend(Batched, Tokenized, ModelInfo, Streaming):
    """Defaults for the optional parts of the contract (``evalsuite.contracts``): a batch of 64, no length
    sort, no tokenizer, no known window, and ``generate_iter`` as one ``generate`` call per batch."""

    id = "base"
    tokenizer: Tokenizer | None = None
    max_model_len: int | None = None
    batch_size = 64
    sort_by_length = False
    model_name: str | None = None
    tokenizer_hint = "--model <local model or tokenizer folder>"

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        raise NotImplementedError

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        """Yield ``(position, generation)`` as generations finish (any order). The runner persists
        each as it arrives. Default: one ``generate`` call per ``batch_size`` chunk."""
        return in_batches(self, requests, self.batch_size)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id}

    def close(self) -> None:
        pass


DEFAULT_BATCH = 64
"""Requests per ``generate`` call for a backend that does not say (``contracts.Batched``)."""


def iterate(backend: Backend, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
    """``(position, generation)`` for every request, as the backend finishes them: the one way the runner, the
    judge and Ray workers ask a backend. A ``Streaming`` backend yields them itself; any other gets one
    ``generate`` call per batch (its ``batch_size`` when it declares ``Batched``)."""
    if isinstance(backend, Streaming):
        return backend.generate_iter(requests)
    return in_batches(backend, requests, backend.batch_size if isinstance(backend, Batched) else DEFAULT_BATCH)


def in_batches(backend: Backend, requests: Sequence[Request], batch_size: int) -> Iterator[tuple[int, Generation]]:
    """One ``generate`` call per ``batch_size`` chunk, each answer checked to be one per request."""
    bs = max(1, int(batch_size))
    for start in range(0, len(requests), bs):
        chunk = requests[start:start + bs]
        outs = backend.generate(chunk)
        check_batch(chunk, outs, backend.id)
        yield from ((start + i, g) for i, g in enumerate(outs))


def check_batch(requests: Sequence[Request], outs: Sequence[Generation], backend_id: str) -> None:
    if len(outs) != len(requests):
        raise RuntimeError(f"backend {backend_id} returned {len(outs)} generations for {len(requests)} requests")
