"""What a run is asked to do (``RunConfig``), what it returns (``RunOutcome``), and how it stops."""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import UserError
from ..rows import TaskScores


@dataclass
class RunConfig:
    """Everything a run is asked to do (the CLI fills it from flags and EVALSUITE_* variables)."""

    tasks: list[str]
    model: str | None = None
    backend: str | None = None
    """Backend name; default ``embedded`` without --model, ``hf`` with one."""
    task_options: dict[str, str] = field(default_factory=dict)
    backend_options: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    """First N samples of each task."""
    samples: list[str] | None = None
    """Only these samples: ``<sample id>`` or ``<task>:<index>``."""
    run_id: str | None = None
    output: str = "results"
    log_prompts: bool = False
    max_tokens: int | None = None
    """Explicit override of every task's max_tokens (recorded)."""
    gen_overrides: dict[str, Any] = field(default_factory=dict)
    """Generation parameters for every request of every task (``--temperature``, ``--top-p``, ``--seed``,
    ``--gen-kwargs``): GenParams field -> value, applied like ``max_tokens`` and recorded."""
    progress: bool = True
    """A progress bar on a terminal, periodic log lines otherwise (``evalsuite.progress``); False: none."""
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    judge_backend: str | None = None
    """Backend of the judge model for metrics that need one (``evalsuite.judge``); None: no judge."""
    judge_model: str | None = None
    judge_options: dict[str, str] = field(default_factory=dict)
    """``-J key=value``: judge generation parameters and judge backend options."""
    workers: int = 1
    """Data-parallel workers: N > 1 (or a ``ray_address``) runs N Ray actors, each holding a warm backend."""
    ray_address: str | None = None
    """Join this existing Ray cluster (``auto`` or ``ray://host:port``) instead of starting a local one."""
    shard: tuple[int, int] | None = None
    """``(i, n)``: plan everything, generate only the i-th of n interleaved slices of each task's samples
    (``evalsuite merge`` combines the n shard runs into one)."""
    wait_lock: bool = False
    """Wait for another process that holds the run folder instead of failing at once (``evalsuite.lock``)."""

    def overrides(self) -> dict[str, Any]:
        """Every generation override: ``gen_overrides`` plus ``max_tokens``."""
        out = dict(self.gen_overrides)
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out

    def judge_config(self) -> Any:
        from ..judge import JudgeConfig

        if not self.judge_backend:
            if self.judge_model or self.judge_options:
                raise UserError("--judge-model / -J need --judge-backend")
            return None
        return JudgeConfig(self.judge_backend, self.judge_model, dict(self.judge_options))


@dataclass
class RunOutcome:
    run_dir: str
    run_id: str
    scores: Mapping[str, TaskScores]
    """Each task's scores (``scores.json``; a read-only mapping of the file's fields too)."""
    n_generated: int
    n_reused: int
    """Requests answered by an earlier invocation of this run (never regenerated)."""
    timings: dict[str, float]
    complete: bool = True
    """Every planned sample of the selected tasks has an answer and none failed (``evalsuite.completeness``)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, carrying where the run lives so the message can say how to resume it."""

    def __init__(self, run_id: str, run_dir: str):
        super().__init__(run_id)
        self.run_id = run_id
        self.run_dir = run_dir


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with 0 <= i < n."""
    try:
        i_s, n_s = text.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def now() -> str:
    """The time as recorded in results files (UTC, seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


__all__ = ["RunConfig", "RunInterrupted", "RunOutcome", "now", "parse_shard"]
