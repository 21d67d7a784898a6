"""Is a run complete? One answer shared by ``run``, ``score``, ``show``, ``show --json``, the leaderboard,
``compare``, ``gate`` and the pandas API.

A task is *complete* when every planned sample has a final answer that is not an error, and its
``scores.json`` was computed over exactly the current plan and log. Anything else is *partial*:

* ``missing``: planned samples with no answer yet (a killed run, or a plan extended by ``--limit``);
* ``failed``: samples whose (last) request failed (server down, prompt too long, ...), scored as 0;
* ``stale``: ``scores.json`` predates the current plan or log (a resumed run stopped before scoring),
  so its numbers describe another set of samples; the counts then come from the logs.

Cheap by design: when ``scores.json`` matches the plan (``plan_sha256``) and the samples log has not
changed since scoring (``log_bytes``), the counts are read from ``scores.json`` and nothing else; only
a stale or unscored task has its samples log read.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from .rows import TaskScores
from .store import PLAN, SAMPLES, ResultsStore  # noqa: F401  (PLAN: importable from here too)


def plan_sha256(keys: Sequence[str]) -> str:
    """Fingerprint of a task's plan (its stage-0 request keys, in plan order)."""
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def log_bytes(store: ResultsStore, task: str) -> int:
    """Size of the task's samples log (0 when absent): scores.json records it to detect a changed log."""
    try:
        return (store.task_dir(task) / SAMPLES).stat().st_size
    except OSError:
        return 0


def read_plan(store: ResultsStore, task: str) -> list[str] | None:
    """The task's planned keys (None: no plan, or not a readable one)."""
    plan = store.read_plan(task)
    return list(plan.keys) if plan is not None else None


@dataclass(frozen=True)
class TaskCompleteness:
    task: str
    planned: int
    """Samples planned (the union of every invocation's selection)."""
    scored: int
    """Samples with a final answer (failed ones included: they score 0)."""
    missing: int
    """Planned samples without a final answer."""
    failed: int
    """Samples whose final request failed."""
    scores_current: bool
    """``scores.json`` exists and was computed over the current plan and log."""
    has_scores: bool = False
    """``scores.json`` exists (current or not)."""

    @property
    def stale(self) -> bool:
        return not self.scores_current

    @property
    def complete(self) -> bool:
        return self.scores_current and self.missing == 0 and self.failed == 0

    def reasons(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{self.missing} of {self.planned} planned samples missing")
        if self.failed:
            out.append(f"{self.failed} failed generation{'s' if self.failed != 1 else ''}")
        if not self.scores_current:
            out.append("scores out of date" if self.has_scores else "not scored")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


@dataclass(frozen=True)
class RunCompleteness:
    tasks: tuple[TaskCompleteness, ...]

    @property
    def planned(self) -> int:
        return sum(t.planned for t in self.tasks)

    @property
    def scored(self) -> int:
        return sum(t.scored for t in self.tasks)

    @property
    def missing(self) -> int:
        return sum(t.missing for t in self.tasks)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tasks)

    @property
    def complete(self) -> bool:
        return bool(self.tasks) and all(t.complete for t in self.tasks)

    def task(self, name: str) -> TaskCompleteness | None:
        return next((t for t in self.tasks if t.task == name), None)

    def summary(self) -> str:
        """One line: ``complete`` or ``partial: ...`` with the counts."""
        if self.complete:
            return f"complete: {self.scored}/{self.planned} samples scored"
        parts = [f"{self.scored}/{self.planned} samples answered"]
        if self.missing:
            parts.append(f"{self.missing} missing")
        if self.failed:
            parts.append(f"{self.failed} failed")
        stale = [t.task for t in self.tasks if not t.scores_current]
        if stale:
            parts.append(f"{len(stale)} task{'s' if len(stale) != 1 else ''} not scored over the current plan")
        return "partial: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "planned": self.planned, "scored": self.scored,
                "missing": self.missing, "failed": self.failed,
                "tasks": {t.task: t.to_dict() for t in self.tasks}}


def scores_are_current(store: ResultsStore, task: str, scores: TaskScores | Mapping[str, Any] | None,
                       plan: Sequence[str] | None) -> bool:
    """Whether ``scores`` (a scores.json) was computed over the task's current plan and samples log."""
    if scores is None:
        return False
    if not isinstance(scores, TaskScores):
        scores = TaskScores.from_dict(dict(scores))
    if scores is None or "n_planned" not in scores:
        return False
    if plan is not None:
        if scores.plan_sha256 is not None:
            if scores.plan_sha256 != plan_sha256(plan):
                return False
        elif scores.n_planned != len(plan):  # scores.json from before plan_sha256 was recorded
            return False
    if "log_bytes" in scores and scores.log_bytes != log_bytes(store, task):
        return False
    return True


def _from_logs(store: ResultsStore, task: str, plan: Sequence[str]) -> tuple[int, int]:
    """(answered, failed) among the planned samples, following each sample's passes in the log."""
    from .runner.scoring import final_row  # the runner owns how a sample's passes chain

    latest = store.latest_rows(task)
    answered = failed = 0
    for key in plan:
        row = final_row(latest, key)
        if row is None:
            continue
        answered += 1
        if not row.ok:
            failed += 1
    return answered, failed


def task_completeness(store: ResultsStore, task: str, manifest: Mapping[str, Any] | None = None) -> TaskCompleteness:
    scores = store.read_scores(task)
    plan = read_plan(store, task)
    if scores_are_current(store, task, scores, plan):
        assert scores is not None
        planned = scores.n_planned if "n_planned" in scores else scores.n
        return TaskCompleteness(task, planned, scores.n, max(0, planned - scores.n), scores.n_errors, True, True)
    if plan is None:
        # planned in the manifest but killed before its plan was written: nothing of it exists
        entry = (manifest or {}).get("tasks", {}).get(task, {})
        planned = int(entry.get("n_planned", 0) or 0)
        return TaskCompleteness(task, planned, 0, planned, 0, False, scores is not None)
    answered, failed = _from_logs(store, task, plan)
    return TaskCompleteness(task, len(plan), answered, len(plan) - answered, failed, False, scores is not None)


def run_completeness(store: ResultsStore) -> RunCompleteness:
    """Completeness of every task the run planned (manifest order), scored or not."""
    manifest = store.read_manifest()
    names = list(manifest.get("tasks", {}))
    names += [t for t in store.tasks() if t not in names]
    return RunCompleteness(tuple(task_completeness(store, t, manifest) for t in names))


__all__ = ["RunCompleteness", "TaskCompleteness", "plan_sha256", "run_completeness", "scores_are_current",
           "task_completeness"]
