"""RULER (NVIDIA/RULER): synthetic long-context tasks generated with the model's tokenizer.

``register(registry)`` adds one task per implemented configuration of RULER's ``synthetic.yaml``
(``ruler/niah_single_1`` ...) and the group ``ruler``. Importing this package is cheap: nltk,
wonderwords and the tokenizer are loaded only when a task prepares its samples.
See tasks/ruler/README.md for provenance and differences from upstream.
"""

from __future__ import annotations

from typing import Any

from ._resources import resources

# synthetic.yaml family -> task class (module, attribute). vt / cwe / fwe / qa: issue #4.
_FAMILIES = {"niah": ("niah", "NiahTask")}

_DESCRIPTIONS = {
    "noise": "repeated noise sentences",
    "essay": "Paul Graham essays",
    "needle": "distractor needles",
}


def _task_class(name: str, spec: dict[str, Any]) -> type:
    import importlib

    module, attr = _FAMILIES[spec["task"]]
    base = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    cls_name = "Ruler_" + name.title().replace("_", "")
    return type(cls_name, (base,), {"name": f"ruler/{name}", "config_name": name,
                                    "description": _describe(name, spec), "__module__": base.__module__})


def _describe(name: str, spec: dict[str, Any]) -> str:
    a = spec["args"]
    if spec["task"] == "niah":
        k = max(a["num_needle_k"], a["num_needle_q"])  # upstream: num_needle_k = max(k, q)
        return (f"RULER {name}: {k} key(s) ({a['type_needle_k']}) x {a['num_needle_v']} value(s) "
                f"({a['type_needle_v']}), {a['num_needle_q']} queried, haystack: {_DESCRIPTIONS[a['type_haystack']]}")
    return f"RULER {name}"


def task_names() -> list[str]:
    """The implemented RULER tasks, in synthetic.yaml order."""
    return [f"ruler/{n}" for n, spec in resources().tasks.items() if spec["task"] in _FAMILIES]


def register(registry: Any) -> None:
    names = []
    for name, spec in resources().tasks.items():
        if spec["task"] not in _FAMILIES:
            continue
        cls = _task_class(name, spec)
        registry.add_task(cls.name, cls, cls.description)
        names.append(cls.name)
    registry.add_group("ruler", names)
