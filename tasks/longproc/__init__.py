"""LongProc (princeton-pli/LongProc): six procedural long-generation tasks at up to three output lengths.

``register(registry)`` adds ``longproc/<task>_<level>`` for html_to_tsv (0.5k, 2k, 8k), pseudo_to_code
(0.5k, 2k), path_traversal, tom_tracking and countdown (0.5k, 2k, 8k) and travel_planning (2k, 8k);
the group ``longproc`` (all 16) and the per-level groups ``longproc/0.5k``, ``longproc/2k``,
``longproc/8k``. Importing is cheap: data is read when a task yields its samples. See
tasks/longproc/README.md for provenance, semantics and differences from upstream.
"""

from __future__ import annotations

from typing import Any

from evalsuite.registry import family_class

from ._task import LEVELS, MAX_NEW_TOKENS, LongProcTask

__all__ = ["LongProcTask", "register", "task_class", "task_names"]

_TITLES = {
    "html_to_tsv": "HTML to TSV (extract a table from a web page)",
    "pseudo_to_code": "pseudocode to C++ (compiled and tested in a sandbox)",
    "path_traversal": "path traversal (follow one-way connections)",
    "tom_tracking": "theory-of-mind tracking (belief trace)",
    "countdown": "countdown (verbalised DFS search)",
    "travel_planning": "travel planning (constraint search trace + plan)",
}


def task_class(task: str, level: str) -> type[LongProcTask]:
    if task not in LEVELS or level not in LEVELS[task]:
        raise KeyError(f"no LongProc dataset {task}_{level}")
    return family_class("longproc", LongProcTask, f"{task}_{level}", _config(task, level))


def _config(task: str, level: str) -> dict[str, Any]:
    from ._task import BASE_OPTIONS, CODE_OPTIONS

    attrs: dict[str, Any] = {
        "task": task, "level": level,
        "description": f"LongProc {_TITLES[task]}, {level} output tokens (max_tokens {MAX_NEW_TOKENS[level]})",
    }
    if task == "pseudo_to_code":
        attrs["options"] = {**BASE_OPTIONS, **CODE_OPTIONS}
    return attrs


def task_names(level: str | None = None) -> list[str]:
    return [f"longproc/{t}_{lv}" for t, lvs in LEVELS.items() for lv in lvs if level in (None, lv)]


def register(registry: Any) -> None:
    registry.add_family("longproc", LongProcTask,
                        {f"{t}_{lv}": _config(t, lv) for t, levels in LEVELS.items() for lv in levels})
    for level in ("0.5k", "2k", "8k"):
        registry.add_group(f"longproc/{level}", task_names(level))
