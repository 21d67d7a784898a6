"""Generation: every planned request not answered yet, pass by pass, each answer made safe to store and
appended to the samples log (``store.append``) the moment the backend returns it.

A request answered by an earlier invocation is never asked again; a failed one is. A sample's next pass
(``contracts.MultiPass``) is planned from its answer, here or from the log on resume.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..backends import iterate
from ..contracts import Backend, Batched, MultiPass, Task
from ..redact import redact_text
from ..rows import PromptRow, SampleRow
from ..store import ResultsStore, valid_text
from ..types import Generation
from .config import RunConfig, now
from .planning import PlannedItem, apply_overrides, stamp


def checked_generation(gen: Any) -> tuple[Generation, list[str]]:
    """A backend's answer made safe to store and reuse: a text that is not a string (a replay file's
    ``123``, a plugin's ``None``) becomes a per-request error, and a text that is not valid Unicode (a
    lone surrogate from a replay file or a server's JSON) is repaired. Returns (generation, repaired
    fields)."""
    if not isinstance(gen, Generation):
        return Generation.failed(f"backend returned {type(gen).__name__}, not a Generation"), []
    if not isinstance(gen.text, str):
        kind = "null" if gen.text is None else type(gen.text).__name__
        return replace(gen, text="", finish_reason="error",
                       error=f"backend returned a text that is {kind}, not text"), []
    text, repaired = valid_text(gen.text)
    if not repaired:
        return gen, []
    return replace(gen, text=text), ["generation.text"]


def sample_row(item: PlannedItem, gen: Generation, backend_id: str, next_key: str | None,
               repaired: Sequence[str] = ()) -> SampleRow:
    """The log row of one answered request (the error redacted: ``evalsuite.redact``)."""
    req, s = item.request, item.sample
    if gen.error:
        gen = replace(gen, error=redact_text(gen.error))
    return SampleRow(key=item.key, generation=gen, task=item.task, sample_id=s.id, index=s.index, stage=item.stage,
                     parent=item.parent, next=next_key, prompt_sha256=req.prompt_hash(),
                     prompt_chars=req.prompt_chars(), prompt_tokens=gen.prompt_tokens, truncated=req.truncated,
                     params=req.params.to_dict(), backend=backend_id, target=s.target, metadata=dict(s.metadata),
                     time=now(), repaired=tuple(repaired))


def follow_up(task: Task, item: PlannedItem, gen: Generation, backend_id: str,
              overrides: Mapping[str, Any] | None) -> PlannedItem | None:
    """The sample's next pass, when its task has one (``MultiPass``: CoT, then the answer).

    Generation overrides (``--max-tokens``, ``--temperature``, ...) apply to every pass; a task's
    truncation policy applies to the first pass only (follow-ups are built from the task's own short
    templates).
    """
    if not isinstance(task, MultiPass) or not gen.ok:
        return None
    history = item.history + ((item.request, gen),)
    req = task.next_request(item.sample, list(history))
    if req is None:
        return None
    req = apply_overrides(stamp(req, item.task, item.sample), overrides or {})
    return PlannedItem(item.task, item.sample, req, req.key(backend_id), stage=item.stage + 1,
                       parent=item.key, history=history)


def generate(store: ResultsStore, backend: Backend, tasks: Mapping[str, Task], items: list[PlannedItem],
             cfg: RunConfig, on_generation: Callable[[PlannedItem, Generation], None] | None,
             progress: Any = None) -> tuple[int, int]:
    """Generate every request not yet answered, pass by pass. Returns (generated, reused)."""
    from ..progress import Progress

    latest = {name: store.latest_rows(name) for name in tasks}
    progress = progress if progress is not None else Progress("off")
    overrides = cfg.overrides()
    n_generated = n_reused = 0
    frontier = items
    try:
        while frontier:
            pending: list[PlannedItem] = []
            follow: list[PlannedItem] = []
            for it in frontier:
                row = latest[it.task].get(it.key)
                if row is not None and row.reusable:
                    n_reused += 1
                    nxt = follow_up(tasks[it.task], it, row.generation, backend.id, overrides)
                    if nxt is not None:
                        follow.append(nxt)
                else:
                    pending.append(it)
            if isinstance(backend, Batched) and backend.sort_by_length:
                pending.sort(key=lambda it: -(len(it.request.prompt_ids) if it.request.prompt_ids is not None
                                              else it.request.prompt_chars()))
            progress.grow(len(pending))
            for item, gen in _answers(backend, pending):
                gen, repaired = checked_generation(gen)
                nxt = follow_up(tasks[item.task], item, gen, backend.id, overrides)
                row = sample_row(item, gen, backend.id, nxt.key if nxt is not None else None, repaired)
                prompts = []
                if cfg.log_prompts:
                    req = item.request
                    prompts.append(PromptRow(item.key, item.sample.id, item.stage, row.prompt_sha256 or "",
                                             req.prompt_payload(), req.prompt_ids))
                store.append(item.task, [row], prompts)
                n_generated += 1
                progress.advance(item.task, gen)
                if nxt is not None:
                    follow.append(nxt)
                if on_generation is not None:
                    on_generation(item, gen)
            frontier = follow
    finally:
        progress.close()
    return n_generated, n_reused


def _answers(backend: Backend, pending: list[PlannedItem]) -> Iterator[tuple[PlannedItem, Generation]]:
    """``(item, generation)`` as the backend finishes them."""
    if not pending:
        return
    for pos, gen in iterate(backend, [it.request for it in pending]):
        yield pending[pos], gen


__all__ = ["checked_generation", "follow_up", "generate", "sample_row"]
