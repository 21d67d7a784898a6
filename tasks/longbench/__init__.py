"""LongBench v1 and LongBench-E (THUDM/LongBench, ``LongBench/``): 21 long-context datasets.

``register(registry)`` adds ``longbench/<dataset>`` (21 tasks), ``longbench_e/<dataset>`` (13) and the
groups ``longbench``, ``longbench_e``, ``longbench_en`` and ``longbench_zh`` (the README's English and
Chinese tables; both include the two code datasets). Both entry points (``longbench`` and
``longbench_e``) point here, since the registry loads a provider by the name before "/"; registering
twice is harmless. Importing this package is cheap: data is read when a task yields its samples.
See tasks/longbench/README.md for provenance and differences from upstream.
"""

from __future__ import annotations

from typing import Any, Mapping

from evalsuite.registry import family_class

from ._config import DATASETS, E_DATASETS, NEWLINE_STOP, NO_CHAT_TEMPLATE
from ._task import NEWLINE_STOP_OPTION, TOKEN_STOP_OPTION, LongBenchTask

__all__ = ["LongBenchTask", "register", "task_class", "task_names"]

PREFIX = {"v1": "longbench", "e": "longbench_e"}


def task_class(dataset: str, edition: str = "v1") -> type[LongBenchTask]:
    """The task class of one dataset (``edition``: ``v1`` or ``e``)."""
    if dataset not in DATASETS or (edition == "e" and dataset not in E_DATASETS):
        raise KeyError(f"no LongBench{'-E' if edition == 'e' else ''} dataset {dataset!r}")
    return family_class(PREFIX[edition], LongBenchTask, dataset, _config(dataset, edition))


def _config(dataset: str, edition: str) -> dict[str, Any]:
    info = DATASETS[dataset]
    chat = "raw prompt" if dataset in NO_CHAT_TEMPLATE else "chat template"
    attrs: dict[str, Any] = {
        "dataset": dataset, "edition": edition,
        "description": f"LongBench{'-E' if edition == 'e' else ''} {info.category}: {dataset} ({info.language}, {chat})"}
    if dataset in NEWLINE_STOP:
        attrs["options"] = {**LongBenchTask.options, "newline_stop": NEWLINE_STOP_OPTION,
                            "token_stop": TOKEN_STOP_OPTION}
        attrs["version"] = "2"  # 2: pred.py's "\n" token stop and min_tokens=1 (README changelog)
    return attrs


def task_names(edition: str = "v1") -> list[str]:
    sets = DATASETS if edition == "v1" else E_DATASETS
    return [f"{PREFIX[edition]}/{d}" for d in sets]


def _official(scores: Mapping[str, Any], task: str) -> float | None:
    """A dataset's score as eval.py prints it (rounded to 2), which the README tables average."""
    s = scores.get(task)
    if not s or not s.get("metrics"):
        return None
    m = s["metrics"][0]
    official = (m.get("details") or {}).get("official")
    return float(official) if official is not None else round(float(m["value"]), 2)


def summarize(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The README tables' aggregates: per category the mean of its datasets, and "Avg" the mean of the
    six category means, for the English table (en + code datasets) and the Chinese one (zh + code).
    LongBench-E: per length bucket, the mean over the 13 datasets. Only complete tables are reported."""
    out: list[dict[str, Any]] = []
    for table, langs in (("EN", ("en", "code")), ("ZH", ("zh", "code"))):
        cats: dict[str, list[float | None]] = {}
        for ds, info in DATASETS.items():
            if info.language in langs:
                cats.setdefault(info.category, []).append(_official(scores, f"longbench/{ds}"))
        if any(v is None for vals in cats.values() for v in vals):
            continue
        means = {c: sum(v) / len(v) for c, v in cats.items()}  # type: ignore[arg-type]
        for c, m in means.items():
            out.append({"name": f"longbench {table} {c}", "value": round(m, 2), "n_tasks": len(cats[c])})
        out.append({"name": f"longbench {table} Avg", "value": round(sum(means.values()) / len(means), 2),
                    "n_tasks": sum(len(v) for v in cats.values())})
    e_tasks = [f"longbench_e/{d}" for d in E_DATASETS]
    if all(t in scores and scores[t].get("metrics") for t in e_tasks):
        per_bucket: dict[str, list[float]] = {}
        for t in e_tasks:
            for b, v in ((scores[t]["metrics"][0].get("details") or {}).get("buckets") or {}).items():
                if v is not None:
                    per_bucket.setdefault(b, []).append(float(v))
        for b, vals in per_bucket.items():
            out.append({"name": f"longbench_e Avg {b}", "value": round(sum(vals) / len(vals), 2),
                        "n_tasks": len(vals)})
    return out


def register(registry: Any) -> None:
    for edition, sets in (("v1", list(DATASETS)), ("e", list(E_DATASETS))):
        registry.add_family(PREFIX[edition], LongBenchTask, {ds: _config(ds, edition) for ds in sets})
    registry.add_group("longbench_en", [f"longbench/{d}" for d, i in DATASETS.items() if i.language in ("en", "code")])
    registry.add_summary("longbench", summarize)
    registry.add_group("longbench_zh", [f"longbench/{d}" for d, i in DATASETS.items() if i.language in ("zh", "code")])
