"""PunchBench (OuyangKun10/PunchBench, ACL 2025): does an image–caption pair carry a punchline, and why.

``register(registry)`` adds ``punchbench/<format>/<caption variant>`` for the six formats
(``perception_yes_no``, ``perception_matching``, ``perception_multi_option``, ``reasoning_yes_no``,
``reasoning_matching``, ``reasoning_generation``) and the three caption variants (``original``,
``synonymous``, ``antonymous``): 18 tasks, with the groups ``punchbench``, ``punchbench/<layer>`` and
``punchbench/<variant>``. Data: ``-T data_dir=<folder>`` (the schema we assume and the ``field_map``
option are in tasks/punchbench/README.md). Importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

from evalsuite.registry import family_class

from ._task import FORMATS, LAYERS, VARIANTS, PunchBenchTask

__all__ = ["PunchBenchTask", "register", "task_class", "task_names"]


def task_class(fmt: str, variant: str) -> type[PunchBenchTask]:
    if fmt not in FORMATS or variant not in VARIANTS:
        raise KeyError(f"no PunchBench task {fmt}/{variant}")
    return family_class("punchbench", PunchBenchTask, f"{fmt}/{variant}", _config(fmt, variant))


def _config(fmt: str, variant: str) -> dict[str, Any]:
    layer = FORMATS[fmt][0]
    attrs = {"fmt": fmt, "variant": variant,
             "description": f"PunchBench {layer} {fmt.split('_', 1)[1].replace('_', ' ')} ({variant} captions)"}
    if FORMATS[fmt][2] == -1:  # the judged generation format scores judged_accuracy, not accuracy
        attrs["primary_metric"] = "judged_accuracy"
    return attrs


def task_names() -> list[str]:
    return [f"punchbench/{f}/{v}" for f in FORMATS for v in VARIANTS]


def register(registry: Any) -> None:
    registry.add_family("punchbench", PunchBenchTask, {f"{f}/{v}": _config(f, v) for f in FORMATS for v in VARIANTS})
    for layer in LAYERS:
        registry.add_group(f"punchbench/{layer}", [n for n in task_names() if n.split("/")[1].startswith(layer)])
    for v in VARIANTS:
        registry.add_group(f"punchbench/{v}", [n for n in task_names() if n.endswith("/" + v)])
