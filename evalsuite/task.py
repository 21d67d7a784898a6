"""Tasks: the context a task is prepared with, ``Option`` and the ``BaseTask`` adapters derive from.

A task yields samples, turns a sample into a request (``Request.new``: the runner stamps the task, sample id
and index), extracts the prediction from a generation and owns its metrics. The contract is
``evalsuite.contracts.Task``; what only some tasks do is a capability they declare among their bases
(``contracts``: ``Truncating``, ``MultiPass``, ``OfficialFormat``, ``OfficialSummary``, ``DataNeeds``,
``ChecksData``, ``ChecksAvailable``, ``FixtureData``), checked when the task is registered.

Display metadata, read (without instantiating the task) by the leaderboard and reports through
:func:`task_metadata`; it lives once, with the task class:

* ``display_name``: a human name for the task ("RULER NIAH single 1"); default: the task name.
* ``description``: one or two sentences; default: the registry description or the class docstring.
* ``primary_metric``: the metric the leaderboard ranks by; default: the first metric the task scores.
* ``higher_is_better``: direction of the primary metric; default: what the metric reports.
* ``group``: the task group the overview aggregates it into; default: the part of the name before ``/``.

Scoring reads the samples log, where each row keeps the sample's ``target`` and ``metadata`` but not its
``input``: anything extraction or metrics need must be in those two. Everything that can move a score (prompt
text, extraction, data) is covered by ``version``: bump it and log the bump in the benchmark's
``tasks/<bench>/README.md`` (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .contracts import Task  # noqa: F401  (the contract, importable from here too)
from .options import Option, parse_bool, parse_options  # noqa: F401  (Option, parse_bool: re-exported for tasks)
from .tokenizer import Tokenizer
from .types import Generation, Sample


@dataclass(frozen=True)
class TaskContext:
    """What a task may know about the run before it builds samples."""

    tokenizer: Tokenizer | None = None
    """The backend's tokenizer (None for backends that have none, e.g. a remote API without -B tokenizer)."""
    max_model_len: int | None = None
    """The model's context window in tokens, when known."""
    seed: int = 0
    tokenizer_hint: str = "--model <local model or tokenizer folder>"
    """How to give this run's backend a tokenizer, for messages (the openai backend: ``-B tokenizer=``)."""
    model: str | None = None
    """The model's name as the backend knows it (hub id, folder or served name), when it has one: for
    tables keyed by model, such as LongBench's ``model2maxlen``."""


class BaseTask:
    """Convenience base: option parsing, default extraction and description.

    Subclasses set ``name``, ``version``, ``options`` and implement ``samples``, ``request``,
    ``metrics`` and ``gold``.
    """

    name: str = ""
    version: str = "0"
    description: str = ""
    options: Mapping[str, Option] = {}
    # optional site/report metadata (see the module docstring); None/"" means "derive it"
    display_name: str = ""
    primary_metric: str | None = None
    higher_is_better: bool | None = None
    group: str | None = None

    def __init__(self, **opts: Any):
        from .taskopts import unknown_option_message

        self.opts: dict[str, Any] = parse_options(
            self.options, opts, self.name, unknown=lambda keys: unknown_option_message(self.name, keys, self.options))
        self.ctx = TaskContext()

    def prepare(self, ctx: TaskContext) -> None:
        self.ctx = ctx

    def extract(self, sample: Sample, generation: Generation) -> str:
        return generation.text

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "options": dict(self.opts)}


def task_metadata(name: str, factory: Any = None, registry_description: str = "") -> dict[str, Any]:
    """Display metadata of a task from the attributes of its class (``BaseTask``'s ``display_name``,
    ``description``, ``primary_metric``, ``higher_is_better``, ``group``), with defaults.

    Never instantiates the task; a factory that is not a ``BaseTask`` class gets the defaults. Keys: ``name``,
    ``display_name``, ``description``, ``primary_metric`` (None: the task's first metric),
    ``higher_is_better`` (None: as the metric reports), ``group``.
    """
    cls = factory if isinstance(factory, type) and issubclass(factory, BaseTask) else None

    def text(v: Any) -> str | None:
        return v if isinstance(v, str) and v else None

    doc = (factory.__doc__ or "").strip() if isinstance(factory, type) else ""
    description = (text(cls.description) if cls else None) or registry_description or (doc.split("\n\n")[0] if doc else "")
    hib = cls.higher_is_better if cls else None
    return {"name": name, "display_name": (text(cls.display_name) if cls else None) or name,
            "description": " ".join(str(description).split()),
            "primary_metric": text(cls.primary_metric) if cls else None,
            "higher_is_better": hib if isinstance(hib, bool) else None,
            "group": (text(cls.group) if cls else None) or name.split("/", 1)[0]}


def accepted_options(factory: Any) -> Mapping[str, Option] | None:
    """The options a task factory declares (None when it does not say: a factory function)."""
    from .contracts import Configurable

    return factory.options if isinstance(factory, Configurable) else None


@dataclass
class TaskSpec:
    """A resolved task with its options, for the runner and the manifest."""

    name: str
    task: Any
    options: dict[str, Any] = field(default_factory=dict)
