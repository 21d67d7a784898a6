"""LongBench v2 (THUDM/LongBench-v2): 503 long-context multiple-choice questions, official protocols.

``register(registry)`` adds ``longbench_v2`` (zero-shot, the main setting), ``longbench_v2/cot`` (chain of
thought, two passes), ``longbench_v2/no_context`` and ``longbench_v2/rag``, and the group
``longbench_v2/leaderboard`` (the two protocols of the official leaderboard: w/o and w/ CoT). Importing
this package is cheap; data is read when a task builds its samples. See tasks/longbench_v2/README.md for
provenance and differences from upstream.
"""

from __future__ import annotations

from typing import Any

from ._task import TASKS, ChainOfThought, LongBenchV2Task, NoContext, Rag, ZeroShot

GROUP = "longbench_v2/leaderboard"

__all__ = ["GROUP", "TASKS", "ChainOfThought", "LongBenchV2Task", "NoContext", "Rag", "ZeroShot", "register"]


def register(registry: Any) -> None:
    for cls in TASKS:
        registry.add_task(cls.name, cls, cls.description)
    registry.add_group(GROUP, [ZeroShot.name, ChainOfThought.name])
