"""``evalsuite data status|fetch`` and the data column of ``evalsuite list tasks``.

``status`` reads only the local cache (or a ``-T data_dir`` folder written by ``fetch --to``): it works offline
and imports neither ``huggingface_hub`` nor ``datasets``. ``fetch`` downloads every file the selected tasks
read, verified against its pins, into the cache or, with ``--to DIR``, into DIR in the same layout.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping, Sequence

from . import sources
from .errors import UserError


def _selected(registry: Any, tasks: Sequence[str], options: Mapping[str, str]) -> tuple[list[str], dict]:
    from .taskopts import route_task_options

    names = registry.expand_tasks(tasks)
    if not names:
        raise UserError("no tasks selected")
    return names, route_task_options(registry, names, options)


def _needs(registry: Any, name: str, opts: Mapping[str, str]) -> list[sources.Need]:
    return sources.needs_of(registry.task(name).factory, opts)


def status(registry: Any, tasks: Sequence[str], options: Mapping[str, str]) -> dict[str, Any]:
    names, opts = _selected(registry, tasks, options)
    out: dict[str, Any] = {"cache": str(sources.cache_root()), "offline": sources.offline(), "tasks": {}}
    for n in names:
        o = opts[n]
        if o.get("data_file") or (o.get("data_dir") and not sources.is_data_folder(o.get("data_dir"))):
            where = o.get("data_file") or o.get("data_dir")
            out["tasks"][n] = {"local": where, "files": []}
            continue
        rows = sources.status(n, _needs(registry, n, o), o.get("data_dir"))
        out["tasks"][n] = {"local": None, "files": rows}
    return out


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "?"  # pragma: no cover


def print_status(doc: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"task data (cache: {doc['cache']}{', offline' if doc['offline'] else ''})")
    for col in ("task", "file", "present", "source", "size", "pin", "license"):
        table.add_column(col, overflow="fold")
    for task, entry in doc["tasks"].items():
        if entry["local"]:
            table.add_row(task, "(local files)", "given", str(entry["local"]), "", "", "")
            continue
        if not entry["files"]:
            table.add_row(task, "-", "yes", "none: generated or bundled", "", "", "")
        for r in entry["files"]:
            name = r["file"] + (f" : {r['member']}" if r.get("member") else "")
            if r["kind"] == "manual":
                table.add_row(task, name, "manual", r["step"], "", "", r["license"])
                continue
            present = "yes" if r["present"] else "no"
            table.add_row(task, name, present, f"{r['kind']}:{r['repo']}@{r['revision'][:8]}", _size(r.get("size")),
                          r["pin"], r["license"])
    Console(soft_wrap=False).print(table)


def fetch(registry: Any, tasks: Sequence[str], options: Mapping[str, str], to: str | None) -> dict[str, Any]:
    names, opts = _selected(registry, tasks, options)
    done: dict[str, Any] = {}
    manual: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for n in names:
        needs = []
        for need in _needs(registry, n, opts[n]):
            if isinstance(need.source, sources.ManualSource):
                manual[need.source.id] = need.source.step
                continue
            key = (need.source.id, need.name)
            if key not in seen:
                seen.add(key)
                needs.append(need)
        got = sources.fetch(n, needs, to)
        done[n] = [{"file": r.need.name, "path": str(r.path), "sha256": r.record.get("member_sha256")
                    or r.record.get("sha256"), "source": r.record.get("source"), "pin": r.record.get("pin")}
                   for r in got]
    return {"to": to, "cache": str(sources.cache_root()), "tasks": done, "manual": manual}


def print_fetch(doc: Mapping[str, Any]) -> None:
    n = sum(len(v) for v in doc["tasks"].values())
    where = doc["to"] or doc["cache"]
    print(f"{n} files verified in {where}")
    for sid, step in doc["manual"].items():
        print(f"manual ({sid}): {step}", file=sys.stderr)
    if doc["to"]:
        print(f"offline use: copy {where} to the other machine and pass -T data_dir=<that folder>")


def list_summary(factory: Any, name: str) -> dict[str, Any]:
    try:
        return sources.summary(factory, name)
    except (UserError, KeyError, ValueError) as exc:  # a plugin's broken declaration must not break `list`
        return {"source": f"? ({exc})", "available": False, "manual": False}


def main(args: Any) -> int:
    from .registry import default_registry

    reg = default_registry()
    tasks = [t for t in args.tasks.split(",") if t.strip()]
    options = dict(args.task_args)
    if args.data_command == "status":
        doc = status(reg, tasks, options)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print_status(doc)
        return 0
    doc = fetch(reg, tasks, options, args.to)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_fetch(doc)
    return 0
