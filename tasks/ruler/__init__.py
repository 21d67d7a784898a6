"""RULER (NVIDIA/RULER): synthetic long-context tasks generated with the model's tokenizer.

``register(registry)`` adds one task per implemented configuration of RULER's ``synthetic.yaml``
(``ruler/niah_single_1`` ...) and the group ``ruler``. Importing this package is cheap: nltk,
wonderwords and the tokenizer are loaded only when a task prepares its samples.
See tasks/ruler/README.md for provenance and differences from upstream.
"""

from __future__ import annotations

from typing import Any

from ._resources import resources

# synthetic.yaml family -> task class (module, attribute).
_FAMILIES = {
    "niah": ("niah", "NiahTask"),
    "variable_tracking": ("vt", "VtTask"),
    "common_words_extraction": ("cwe", "CweTask"),
    "freq_words_extraction": ("fwe", "FweTask"),
    "qa": ("qa", "QaTask"),
}

_DESCRIPTIONS = {
    "noise": "repeated noise sentences",
    "essay": "Paul Graham essays",
    "needle": "distractor needles",
}


def _task_class(name: str, spec: dict[str, Any]) -> type:
    """The task class of one synthetic.yaml configuration, as registered (HELMET's recall tasks reuse it)."""
    from evalsuite.registry import family_class

    from ._base import RulerTask

    return family_class("ruler", RulerTask, name, _config(name, spec))


def _config(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The class attributes of one synthetic.yaml configuration's task, its base class (``base``) among them."""
    import importlib

    module, attr = _FAMILIES[spec["task"]]
    base = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    return {"base": base, "config_name": name, "description": _describe(name, spec)}


def _describe(name: str, spec: dict[str, Any]) -> str:
    a = spec["args"]
    if spec["task"] == "niah":
        k = max(a["num_needle_k"], a["num_needle_q"])  # upstream: num_needle_k = max(k, q)
        return (f"RULER {name}: {k} key(s) ({a['type_needle_k']}) x {a['num_needle_v']} value(s) "
                f"({a['type_needle_v']}), {a['num_needle_q']} queried, haystack: {_DESCRIPTIONS[a['type_haystack']]}")
    if spec["task"] == "variable_tracking":
        return (f"RULER {name}: variable tracking, {a.get('num_chains', 1)} chain(s) of {a.get('num_hops', 4)} hops, "
                f"haystack: {_DESCRIPTIONS[a.get('type_haystack', 'noise')]}")
    if spec["task"] == "common_words_extraction":
        return (f"RULER {name}: the {a.get('num_cw', 10)} most common words of a numbered list "
                f"({a.get('freq_cw', 30)} vs {a.get('freq_ucw', 3)} repeats)")
    if spec["task"] == "freq_words_extraction":
        return f"RULER {name}: the 3 most frequent coded words (zeta alpha {a.get('alpha', 2.0)})"
    if spec["task"] == "qa":
        ds = {"squad": "SQuAD v2 dev", "hotpotqa": "HotpotQA dev distractor"}.get(a["dataset"], a["dataset"])
        return f"RULER {name}: question answering over documents ({ds})"
    return f"RULER {name}"


def task_names() -> list[str]:
    """The implemented RULER tasks, in synthetic.yaml order."""
    return [f"ruler/{n}" for n, spec in resources().tasks.items() if spec["task"] in _FAMILIES]


EFFECTIVE_THRESHOLD = 85.6
"""RULER's effective-length threshold: Llama-2-7B-chat's 4K score."""
N_TASKS = 13
"""Tasks of RULER's table (synthetic.yaml); per-length means over fewer are reported with n_tasks."""


def aggregate(per_length: dict[int, float], threshold: float = EFFECTIVE_THRESHOLD) -> dict[str, Any]:
    """RULER README's table columns from per-length scores: ``Avg`` (mean over lengths), ``wAvg (inc)``
    / ``wAvg (dec)`` (weights 1..k increasing / decreasing with length) and the effective length (the
    largest length whose score exceeds ``threshold``; None when none does)."""
    lengths = sorted(per_length)
    vals = [per_length[L] for L in lengths]
    k = len(vals)
    if not k:
        return {}
    w = list(range(1, k + 1))
    return {
        "avg": sum(vals) / k,
        "wavg_inc": sum(wi * v for wi, v in zip(w, vals)) / sum(w),
        "wavg_dec": sum(wi * v for wi, v in zip(reversed(w), vals)) / sum(w),
        "effective_length": max((L for L in lengths if per_length[L] > threshold), default=None),
    }


def _by_length(entry: dict[str, Any]) -> dict[int, float]:
    metrics = entry.get("metrics") or []
    if not metrics:
        return {}
    by = (metrics[0].get("details") or {}).get("by_length") or {}
    return {int(L): float(v) for L, v in by.items() if v is not None}


def summarize(scores: dict[str, Any], threshold: float = EFFECTIVE_THRESHOLD) -> list[dict[str, Any]]:
    """Per length, the mean over the RULER tasks scored at it ("ruler 4096"); then, over the lengths,
    "ruler Avg", "ruler wAvg (inc)", "ruler wAvg (dec)" and "ruler effective length". ``n_tasks`` says
    how many tasks each number averages (RULER's table uses all 13); the aggregates use only lengths
    scored by the same tasks as the most complete length, and report the smallest n_tasks."""
    names = [n for n in scores if n.startswith("ruler/")]
    per: dict[int, list[float]] = {}
    for n in names:
        for L, v in _by_length(scores[n]).items():
            per.setdefault(L, []).append(v)
    if not per:
        return []
    out: list[dict[str, Any]] = []
    means = {L: sum(vs) / len(vs) for L, vs in sorted(per.items())}
    for L, m in means.items():
        out.append({"name": f"ruler {L}", "value": round(m, 2), "n_tasks": len(per[L])})
    full = max(len(vs) for vs in per.values())
    usable = {L: m for L, m in means.items() if len(per[L]) == full}
    agg = aggregate(usable, threshold)
    for key, label in (("avg", "Avg"), ("wavg_inc", "wAvg (inc)"), ("wavg_dec", "wAvg (dec)")):
        out.append({"name": f"ruler {label}", "value": round(agg[key], 2), "n_tasks": full,
                    "lengths": sorted(usable)})
    out.append({"name": "ruler effective length", "value": agg["effective_length"], "n_tasks": full,
                "threshold": threshold, "lengths": sorted(usable)})
    return out


def register(registry: Any) -> None:
    from ._base import RulerTask

    registry.add_family("ruler", RulerTask, {name: _config(name, spec) for name, spec in resources().tasks.items()
                                             if spec["task"] in _FAMILIES})
    registry.add_summary("ruler", summarize)
