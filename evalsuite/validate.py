"""The validate phase: every mistake a user can make in a command is caught before anything heavy loads.

``validate(cfg, registry)`` runs before a backend is built (no model file is read, torch is not
imported) and checks, in this order:

1. task names (``--tasks``), with "did you mean";
2. every ``-T`` key and value (keys routed to the tasks that declare them; values parsed by the task);
3. the backend name, every ``-B`` key and value (a backend class declares its ``options``
   (``contracts.Configurable``) or checks them in a ``validate_options(options)`` classmethod
   (``contracts.ValidatesOptions``)) and the model where a cheap check says it cannot work
   (``validate_model(model)``, ``contracts.ChecksModel``: no such folder, a hub id while offline);
4. the judge (``--judge-backend``, ``-J``) and the generation overrides (``--temperature``, ...);
5. that each task's data is present or fetchable (``check_data()``, ``contracts.ChecksData``; otherwise
   that ``-T data_dir`` / ``data_file`` exist);
6. that each selected metric's dependencies are importable or its environment exists
   (``check_available()``, ``contracts.ChecksAvailable``, on a metric or a task: sacrebleu, COMET, ...);
7. that the output folder can be written.

Each failure is a ``UserError`` (one line, exit 2).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from .contracts import ChecksAvailable, ChecksData, ChecksModel, Configurable, Task, ValidatesOptions
from .errors import UserError
from .identity import backend_name


@dataclass
class Validated:
    """What the validate phase established, reused by planning."""

    names: list[str]
    """Concrete task names, groups expanded."""
    task_options: dict[str, dict[str, str]]
    """``-T`` options routed per task."""
    tasks: dict[str, Any] = field(default_factory=dict)
    """One task instance per name, built with its options (not prepared)."""
    backend: str = ""
    backend_factory: Any = None


def check_backend_options(name: str, factory: Any, options: Mapping[str, Any], model: str | None = None,
                          check_model: bool = False) -> None:
    """Check ``-B`` keys and values against what the backend class declares, without building it; with
    ``check_model``, also the model through the class's optional ``validate_model(model)`` (a folder that
    does not exist, a hub id while offline, a missing embedded-model package: cheap checks only)."""
    if isinstance(factory, ValidatesOptions):
        factory.validate_options(dict(options))
    elif isinstance(factory, Configurable):
        from .backends import parse_options

        parse_options(name, factory.options, options)
    if check_model and isinstance(factory, ChecksModel):
        factory.validate_model(model)


def check_samples(names: Sequence[str], samples: Sequence[str] | None) -> None:
    """``--samples <task>:<index>`` entries name selected tasks."""
    from .runner.planning import parse_sample_filter

    _, positions = parse_sample_filter(samples or [])
    for t in sorted({t for t, _ in positions} - set(names)):
        close = difflib.get_close_matches(t, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"--samples names task {t!r}, which is not among the selected tasks{hint}")


def check_generation_overrides(overrides: Mapping[str, Any]) -> None:
    """Overrides must make valid ``GenParams`` (temperature >= 0, 0 < top_p <= 1, ...)."""
    if not overrides:
        return
    from .types import GenParams

    try:
        replace(GenParams(max_tokens=1), **dict(overrides))
    except (TypeError, ValueError) as exc:
        raise UserError(f"generation parameters {dict(overrides)}: {exc}") from None


def _check_data(name: str, task: Task) -> None:
    if isinstance(task, ChecksData):
        task.check_data()
        return
    # the common convention (evalsuite.data): a local copy named with -T data_dir= / data_file=
    opts = task.opts
    for key, want_dir in (("data_dir", True), ("data_file", False)):
        value = opts.get(key)
        if not isinstance(value, str) or not value:
            continue
        p = Path(value).expanduser()
        ok = p.is_dir() if want_dir else p.is_file()
        if not ok:
            what = "folder" if want_dir else "file"
            raise UserError(f"{name}: data {what} {value!r} does not exist or is not a {what} (-T {key}=)")


def _check_available(name: str, task: Task) -> None:
    try:
        metrics = list(task.metrics())
    except UserError:
        raise
    except Exception:  # a task that can only list its metrics once prepared: checked when scoring
        metrics = []
    for item in [task, *metrics]:
        if isinstance(item, ChecksAvailable):
            item.check_available()


def check_output(root: str | os.PathLike[str]) -> None:
    """The results root must be a folder a file can be written in (``store.check_output_root``: not a
    file, not a kernel filesystem, creatable, writable — tried with a real file)."""
    from .store import check_output_root

    check_output_root(root)


def validate(cfg: Any, registry: Any, check_backend: bool = True) -> Validated:
    """Check everything about a run that can be checked without building the backend (module doc).

    ``check_backend=False`` when the caller brings a built backend (its options were its own business)."""
    from .runner.planning import split_task_options

    # 1. task names
    names = registry.expand_tasks(cfg.tasks)
    if not names:
        raise UserError("no tasks selected (--tasks)")
    # 2. -T keys, then values (the task parses its own options)
    opts = split_task_options(registry, names, cfg.task_options)
    tasks = {name: registry.task(name).factory(**opts[name]) for name in names}
    check_samples(names, cfg.samples)
    # 3. backend name and -B
    bname = backend_name(cfg.backend, cfg.model)
    factory = None
    if check_backend:
        factory = registry.backend(bname)
        check_backend_options(bname, factory, cfg.backend_options, cfg.model, check_model=True)
    # 4. judge and -J, generation overrides
    judge = cfg.judge_config()
    if judge is not None:
        jf = registry.backend(judge.backend)
        judge.gen_options()
        check_backend_options(judge.backend, jf, judge.backend_options(), judge.model, check_model=True)
    check_generation_overrides(cfg.gen_overrides)
    # 5. data, 6. metric dependencies
    for name, task in tasks.items():
        _check_data(name, task)
    for name, task in tasks.items():
        _check_available(name, task)
    # 7. output location
    check_output(cfg.output)
    return Validated(names=names, task_options=opts, tasks=tasks, backend=bname, backend_factory=factory)
