"""Routing of ``-T`` options to the selected tasks.

Three levels, most specific wins:

* ``-T key=value``: every selected task that declares ``key``;
* ``-T <group>.key=value``: every selected task of that group (a registered group such as ``longbench`` or
  ``longproc/0.5k``, or a task-name prefix such as ``ruler`` for ``ruler/*``) that declares ``key``;
* ``-T <task>.key=value``: that one task.

Where several groups match a task, the smaller group is the more specific one. The data location options
(``data_dir``, ``data_file``) are one setting: the most specific level that gives either of them decides both,
so ``-T drt/direct.data_file=x.jsonl`` next to a global ``-T data_dir=DIR`` gives that task only its file
instead of colliding with the folder. A key no selected task accepts, or a target that is neither a selected
task nor a group of one, is an error with a "did you mean".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .errors import UserError
from .options import suggest

DATA_KEYS = ("data_dir", "data_file")
"""Options that say where a task's data is: set together, never mixed across levels."""


@dataclass(frozen=True)
class _Level:
    rank: int
    """0 global, 1 + (large groups first) for groups, a large number for a task."""
    raw_key: str
    key: str
    value: str


def _declared(registry: Any, name: str) -> Mapping[str, Any] | None:
    from .task import accepted_options

    return accepted_options(registry.task(name).factory)


def _accepts(registry: Any, name: str, key: str) -> bool:
    declared = _declared(registry, name)
    return declared is None or key in declared


def _groups_of(registry: Any, names: Sequence[str]) -> dict[str, set[str]]:
    """Every group that holds at least one selected task -> the selected tasks it holds."""
    selected = set(names)
    out: dict[str, set[str]] = {}
    groups: dict[str, list[str]] = dict(registry.groups)  # the selected tasks' providers are loaded already

    def members(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found: set[str] = set()
        for m in groups.get(group, ()):
            if m in groups and m not in seen:
                found |= members(m, seen | {group})
            else:
                found.add(m)
        return found

    for group in groups:
        hit = members(group) & selected
        if hit:
            out[group] = hit
    for n in names:  # task-name prefixes: "ruler" for ruler/*, "longproc/0.5k" is a registered group
        parts = n.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            out.setdefault(prefix, set()).add(n)
    return out


def route_task_options(registry: Any, names: Sequence[str],
                       options: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Each selected task's ``-T`` options (see the module docstring)."""
    groups = _groups_of(registry, names)
    levels: dict[str, list[_Level]] = {n: [] for n in names}
    used: set[str] = set()
    for raw_key, value in options.items():
        target, key = None, raw_key
        if "." in raw_key:
            target, key = raw_key.rsplit(".", 1)
            if not key:
                raise UserError(f"-T {raw_key}=...: no option name after the last '.'")
        if target is None:
            members, rank = list(names), 0
        elif target in levels:
            members, rank = [target], 10 ** 9
        elif target in groups:
            members = sorted(groups[target], key=names.index)
            rank = 10 ** 9 - len(members)  # smaller group = more specific
        else:
            raise UserError(f"-T {raw_key}: {target!r} is neither a selected task nor a group of one "
                            f"(selected: {', '.join(names)})" + suggest(target, list(names) + list(groups)))
        takers = [n for n in members if _accepts(registry, n, key)]
        if not takers:
            accepted = {k for n in members for k in (_declared(registry, n) or {})}
            where = "any selected task" if target is None else (
                f"task {target}" if rank == 10 ** 9 else f"any selected task of {target}")
            raise UserError(f"task option {key!r} (-T {raw_key}) is not accepted by {where}"
                            + suggest(key, accepted))
        for n in takers:
            levels[n].append(_Level(rank, raw_key, key, value))
        used.add(raw_key)
    out: dict[str, dict[str, str]] = {}
    for n, lv in levels.items():
        lv.sort(key=lambda x: x.rank)
        data_ranks = [x.rank for x in lv if x.key in DATA_KEYS]
        data_rank = max(data_ranks) if data_ranks else None
        opts: dict[str, str] = {}
        for x in lv:  # ascending rank: later (more specific) values overwrite earlier ones
            if x.key in DATA_KEYS and x.rank != data_rank:
                continue
            opts[x.key] = x.value
        out[n] = opts
    return out


def unknown_option_message(task: str, unknown: Iterable[str], accepted: Iterable[str]) -> str:
    """One line for a task built with options it does not declare."""
    unknown = sorted(unknown)
    accepted = sorted(accepted)
    hints = "".join(suggest(u, accepted) for u in unknown[:1])
    return f"{task}: unknown option(s) {unknown}; accepted: {accepted}{hints}"
