"""One registry for tasks, backends and metrics.

Built-ins are declared as entry points in evalsuite's own ``pyproject.toml``, exactly as a third-party
plugin declares its own:

.. code-block:: toml

    [project.entry-points."evalsuite.backends"]
    mybackend = "my_pkg.backend:MyBackend"        # a Backend factory: MyBackend(model=..., **options)
    [project.entry-points."evalsuite.metrics"]
    mymetric = "my_pkg.metric:MyMetric"           # a Metric factory: MyMetric(**options)
    [project.entry-points."evalsuite.tasks"]
    mybench = "my_pkg.tasks:register"             # register(registry) adds tasks and groups

Entry points load lazily (on the first lookup that needs them); a plugin that fails to import, or whose
classes break their declared contracts (``evalsuite.contracts.check_class``: a capability declared without
its method), is recorded and skipped, never fatal to the others; looking it up then fails with that one
line. Unknown names raise a ``UserError`` with "did you mean" suggestions.

A benchmark with one task class per configuration registers them with :meth:`Registry.add_family`.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable, Mapping

from .contracts import check_class
from .errors import UserError

log = logging.getLogger(__name__)

GROUPS = {"task": "evalsuite.tasks", "backend": "evalsuite.backends", "metric": "evalsuite.metrics"}


def _import_path_state() -> tuple[Any, ...]:
    """``sys.path`` with each folder's modification time: it changes when a distribution is installed."""
    out = []
    for p in sys.path:
        try:
            out.append((p, os.stat(p or ".").st_mtime_ns))
        except OSError:
            out.append((p, None))
    return tuple(out)


@dataclass
class TaskEntry:
    name: str
    factory: Callable[..., Any]
    """``factory(**options) -> Task``; options come from ``-T key=value``."""
    description: str = ""


@dataclass
class Registry:
    tasks: dict[str, TaskEntry] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    backends: dict[str, Callable[..., Any]] = field(default_factory=dict)
    metrics: dict[str, Callable[..., Any]] = field(default_factory=dict)
    summaries: dict[str, Callable[..., Any]] = field(default_factory=dict)
    """Benchmark-level aggregates over task scores (e.g. LongBench's EN/ZH/category averages)."""
    load_errors: dict[str, str] = field(default_factory=dict)
    _loaded: set[str] = field(default_factory=set)
    _task_providers: dict[str, Any] = field(default_factory=dict)
    _eps: dict[str, list[metadata.EntryPoint]] = field(default_factory=dict)
    """Entry points per kind, read again only when the import path changed (a scan reads every installed
    distribution: a few ms, paid once per lookup before)."""
    _eps_path: tuple[Any, ...] = ()

    # -- registration (used by entry points and by code/tests directly) ---------------------------
    def add_task(self, name: str, factory: Callable[..., Any], description: str = "") -> None:
        """Register a task factory (a ``BaseTask`` subclass, usually); a class is checked against its
        declared contracts here (``ContractError`` when it declares a capability without its method)."""
        check_class(factory, "task", name)
        self.tasks[name] = TaskEntry(name, factory, description)

    def add_group(self, name: str, members: Iterable[str]) -> None:
        self.groups[name] = list(members)

    def add_family(self, prefix: str, base: type, configs: Mapping[str, Mapping[str, Any]],
                   group: str | None = "") -> list[type]:
        """Register one task class per configuration of a benchmark, as ``<prefix>/<suffix>``.

        ``configs`` maps each suffix to the class attributes that make that configuration (``dataset``,
        ``description``, ``version``, ``options``...); an attribute ``base`` gives that one configuration
        another base class. Each class is built by :func:`family_class` and registered with its
        ``description``; the family's names become the group ``prefix`` (``group``: another group name, None:
        no group). Returns the classes, in the order of ``configs``."""
        classes = [family_class(prefix, base, suffix, attrs) for suffix, attrs in configs.items()]
        for cls in classes:
            self.add_task(cls.name, cls, cls.description)
        if group is not None:
            self.add_group(group or prefix, [cls.name for cls in classes])
        return classes

    def add_summary(self, name: str, fn: Callable[..., Any]) -> None:
        """``fn(scores: {task: scores.json dict}) -> [{"name", "value", ...}]``; an empty list when the
        tasks it needs are not all scored."""
        self.summaries[name] = fn

    def summarize(self, scores: dict[str, Any]) -> list[dict[str, Any]]:
        """Every registered summary that applies to these task scores."""
        for name in scores:
            try:
                self._load_tasks_for(name)
            except UserError:
                continue
        out: list[dict[str, Any]] = []
        for fn in self.summaries.values():
            out.extend(fn(scores))
        return out

    def add_backend(self, name: str, factory: Callable[..., Any]) -> None:
        check_class(factory, "backend", name)
        self.backends[name] = factory

    def add_metric(self, name: str, factory: Callable[..., Any]) -> None:
        check_class(factory, "metric", name)
        self.metrics[name] = factory

    # -- entry points -----------------------------------------------------------------------------
    def _entry_points(self, kind: str) -> list[metadata.EntryPoint]:
        state = _import_path_state()
        if state != self._eps_path:  # a folder added to sys.path, or a package installed into one
            self._eps, self._eps_path = {}, state
        if kind not in self._eps:
            self._eps[kind] = list(metadata.entry_points(group=GROUPS[kind]))
        return self._eps[kind]

    def _load_kind(self, kind: str, only: str | None = None) -> None:
        for ep in self._entry_points(kind):
            tag = f"{kind}:{ep.name}"
            if tag in self._loaded or (only is not None and ep.name != only):
                continue
            self._loaded.add(tag)
            try:
                obj = ep.load()
                if kind == "task":
                    obj(self)
                else:
                    check_class(obj, kind, ep.name)
            except Exception as exc:  # a broken plugin must not break the harness
                self.load_errors[tag] = f"{type(exc).__name__}: {exc}"
                log.debug("evalsuite: could not load %s plugin %r (%s): %s", kind, ep.name, ep.value, exc)
                continue
            if kind == "backend":
                self.backends.setdefault(ep.name, obj)
            elif kind == "metric":
                self.metrics.setdefault(ep.name, obj)

    def load_all(self) -> None:
        for kind in GROUPS:
            self._load_kind(kind)

    # -- lookup -----------------------------------------------------------------------------------
    def backend(self, name: str) -> Callable[..., Any]:
        if name not in self.backends:
            self._load_kind("backend", only=name)
        if name not in self.backends:
            self._load_kind("backend")
            if f"backend:{name}" in self.load_errors:
                raise UserError(f"backend {name!r} could not be loaded: {self.load_errors['backend:' + name]}")
            if name not in self.backends:
                raise UserError(_unknown("backend", name, self.backends, self.load_errors))
        return self.backends[name]

    def metric(self, name: str) -> Callable[..., Any]:
        if name not in self.metrics:
            self._load_kind("metric")
            if name not in self.metrics:
                raise UserError(_unknown("metric", name, self.metrics, self.load_errors))
        return self.metrics[name]

    def _load_tasks_for(self, name: str) -> None:
        if name in self.tasks or name in self.groups:
            return  # already registered: no entry-point scan (tens of ms each)
        prefix = name.split("/", 1)[0]
        self._load_kind("task", only=prefix)
        if name not in self.tasks and name not in self.groups:
            self._load_kind("task")

    def task(self, name: str) -> TaskEntry:
        self._load_tasks_for(name)
        if name not in self.tasks:
            self._raise_load_error(name)
        if name not in self.tasks:
            raise UserError(_unknown("task", name, {**self.tasks, **self.groups}, self.load_errors))
        return self.tasks[name]

    def _raise_load_error(self, name: str) -> None:
        """The provider of ``name`` failed to load (import error, broken contract): say so, in one line."""
        prefix = name.split("/", 1)[0]
        if f"task:{prefix}" in self.load_errors:
            raise UserError(f"tasks {prefix!r} could not be loaded: {self.load_errors['task:' + prefix]}")

    def expand_tasks(self, names: Iterable[str]) -> list[str]:
        """Resolve task and group names to concrete task names, keeping order and dropping repeats."""
        out: list[str] = []
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            self._load_tasks_for(name)
            if name in self.groups:
                members = self.expand_tasks(self.groups[name])
            elif name in self.tasks:
                members = [name]
            else:
                self._raise_load_error(name)
                raise UserError(_unknown("task", name, {**self.tasks, **self.groups}, self.load_errors))
            out.extend(m for m in members if m not in out)
        return out


def family_class(prefix: str, base: type, suffix: str, attrs: Mapping[str, Any]) -> type:
    """The task class of one configuration: a subclass of ``base`` (or of ``attrs["base"]``) named after it,
    whose ``name`` is ``<prefix>/<suffix>``, with ``attrs`` as class attributes and the base's module."""
    attrs = dict(attrs)
    parent = attrs.pop("base", base)
    body = {"name": f"{prefix}/{suffix}", "__module__": parent.__module__, **attrs}
    return type(f"{parent.__name__}_{re.sub(r'[^0-9A-Za-z]', '_', suffix)}", (parent,), body)


def _unknown(kind: str, name: str, known: Iterable[str], errors: dict[str, str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:  # "niah_single_1" should suggest "ruler/niah_single_1"
        close = [k for k in known if k.endswith("/" + name) or k.split("/")[-1].startswith(name)][:3]
    msg = f"unknown {kind} {name!r}"
    if close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        msg += f" (see `evalsuite list {kind}s`)"
    broken = [t for t in errors if t.startswith(kind + ":")]
    if broken:
        msg += f" [plugins that failed to load: {', '.join(b.split(':', 1)[1] for b in broken)}]"
    return msg


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry()
    return _default
