"""Declared contracts: what a task, a backend and a metric are, and the optional capabilities each may have.

Three core protocols (:class:`Task`, :class:`Backend`, :class:`Metric`) say what every plugin has. What
only some have is a small capability protocol of its own, which a class declares by naming it among its
bases::

    class CotTask(BaseTask, MultiPass):          # a task with a second pass per sample
        def next_request(self, sample, history): ...

    class MyServer(BaseBackend, Streaming, Timed):
        def generate_iter(self, requests): ...
        def timings(self): ...

A declared capability is checked once, when the plugin is registered or built (:func:`check_class`): a
class that declares one and lacks its method fails there with one line naming both, instead of misbehaving
mid-run. The runner then works with the capability as a type (``isinstance(task, MultiPass)``); it never
asks an object for an attribute it has not declared. A capability can also be met without declaring it
(``isinstance`` on these protocols looks at what the object has), which keeps objects built by hand, e.g.
in tests, working; declaring it is what makes the registry check it.

Task capabilities: :class:`Truncating`, :class:`MultiPass`, :class:`ChecksData`, :class:`ChecksAvailable`,
:class:`OfficialFormat`, :class:`OfficialSummary`, :class:`DataNeeds`, :class:`FixtureData`. Backend capabilities: :class:`Streaming`,
:class:`Batched`, :class:`Tokenized`, :class:`ModelInfo`, :class:`PlanBound`, :class:`Timed`, :class:`ChecksModel`,
:class:`Configurable`, :class:`ValidatesOptions`, :class:`Scripted`, :class:`NLIPairs`. Metric capabilities: :class:`NeedsJudge`,
:class:`CorpusStats`, :class:`ChecksAvailable`. ``BaseTask`` and ``BaseBackend`` give the defaults of the
data capabilities (every ``BaseBackend`` is ``Batched``, ``Tokenized``, ``ModelInfo`` and ``Streaming``).
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator, Mapping, Protocol, Sequence,
                    TypeVar, runtime_checkable)

from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from .judge import Judge
    from .options import Option
    from .task import TaskContext
    from .tokenizer import Tokenizer
    from .types import Generation, MetricResult, Record, Request, Sample


T = TypeVar("T")


class ContractError(UserError):
    """A plugin that declares a capability without what it needs (one line, exit 2)."""


# -- scoring context -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreContext:
    """What a metric may know besides the records: the task, the run's judge (bound to the task's folder, or
    None) and the task's parsed options."""

    task: str = ""
    judge: Judge | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def need_judge(self, metric: str, judge: Judge | None = None) -> Judge:
        """The judge (``judge`` given by an old-style caller wins); a one-line error when there is none."""
        j = judge if judge is not None else self.judge
        if j is None:
            raise ValueError(f"{metric} needs a judge (pass --judge-backend)")
        return j


NO_CONTEXT = ScoreContext()
"""The context of a metric scored on its own (``metric.score(records)``)."""


# -- the core protocols --------------------------------------------------------------------------------------

class Task(Protocol):
    """A benchmark task: samples in, one request per sample, the prediction extracted from the answer, scored
    by its metrics. ``evalsuite.task.BaseTask`` implements everything but ``samples``, ``request``,
    ``metrics`` and ``gold``."""

    name: str
    version: str
    options: ClassVar[Mapping[str, Option]]
    opts: Mapping[str, Any]
    """The parsed options (``options`` applied to ``-T``); read-only once built."""

    def prepare(self, ctx: TaskContext) -> None: ...

    def samples(self) -> Iterable[Sample]: ...

    def request(self, sample: Sample) -> Request:
        """The sample's request, built with ``Request.new`` (the runner stamps task, sample id and index)."""
        ...

    def extract(self, sample: Sample, generation: Generation) -> str: ...

    def metrics(self) -> Sequence[Metric]: ...

    def gold(self, sample: Sample) -> str: ...

    def describe(self) -> dict[str, Any]: ...


class Backend(Protocol):
    """A batch of requests in, a list of generations of the same length and order out; per-request failures
    are values (``Generation.failed``). ``evalsuite.backends.BaseBackend`` gives the defaults."""

    id: str
    """Identity that enters every resume key, e.g. ``hf:/models/smollm2@sha256:ab12..:bfloat16``."""

    def generate(self, requests: Sequence[Request]) -> list[Generation]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Metric(Protocol):
    """Scores the whole set of records at once (corpus level) with a signature naming all that moves the
    number. ``ctx`` carries the judge and the task's options; a metric scored on its own gets
    :data:`NO_CONTEXT`."""

    name: str
    higher_is_better: bool

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult: ...

    def signature(self) -> str: ...


# -- task capabilities ---------------------------------------------------------------------------------------

class TruncationPolicy(Protocol):
    """How a task's prompts are cut to a token budget (``evalsuite.truncation.Truncation``, RAGtrans's
    document budget)."""

    def apply(self, req: Request, tok: Tokenizer) -> Request: ...

    def describe(self) -> dict[str, Any]: ...


@runtime_checkable
class Truncating(Protocol):
    """The runner cuts this task's first-pass prompts with the backend's tokenizer and counts the cut ones."""

    @abstractmethod
    def truncation(self) -> TruncationPolicy | None:
        """The policy (None: no cut), asked once the task is prepared."""


@runtime_checkable
class MultiPass(Protocol):
    """A follow-up pass built from the sample's earlier ``(Request, Generation)`` pairs (chain of thought, then
    the answer). The runner persists every pass, never re-asks a finished one on resume, and scores the last
    pass of each complete chain."""

    @abstractmethod
    def next_request(self, sample: Sample, history: Sequence[tuple[Request, Generation]]) -> Request | None:
        """The next pass, or None when the chain is complete."""


@runtime_checkable
class ChecksData(Protocol):
    """Checks before any model loads that the task's data is present or fetchable (otherwise the runner checks
    ``-T data_dir`` / ``data_file`` exist)."""

    @abstractmethod
    def check_data(self) -> None:
        """Raise ``UserError`` (one line) when the data cannot be had."""


@runtime_checkable
class ChecksAvailable(Protocol):
    """A task or metric whose dependencies (a package, the COMET environment) are checked before any model
    loads."""

    @abstractmethod
    def check_available(self) -> None:
        """Raise ``UserError`` (one line) naming what to install."""


@runtime_checkable
class OfficialFormat(Protocol):
    """Reads the benchmark's official prediction format (``evalsuite score-file --task``)."""

    @abstractmethod
    def official_records(self, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Records from the parsed lines of an official prediction file."""


@runtime_checkable
class OfficialSummary(Protocol):
    """The file's entry in the official scorer's result file (``score-file --result-json``), when it is not
    the first metric's value rounded to 2 decimals (LongBench-E: the length buckets)."""

    @abstractmethod
    def official_summary(self, result: MetricResult) -> Any: ...


@runtime_checkable
class DataNeeds(Protocol):
    """A task class that says which files it reads by default (``evalsuite.sources``: ``data status``,
    ``data fetch``, ``list tasks``). A classmethod: asked without building the task."""

    @classmethod
    @abstractmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Any]:
        """The ``sources.Need`` list for these (raw) options."""


@runtime_checkable
class FixtureData(Protocol):
    """A task class that can point itself at small data for the conformance test (``tests/test_conformance``):
    the ``-T`` options that make it read fixture data (shipped with the task, or written into ``tmp``), or
    None when it cannot run offline here. A task that needs no data does not declare it."""

    @classmethod
    @abstractmethod
    def fixture_options(cls, tmp: Any) -> dict[str, str] | None:
        """``-T`` options (strings) for a small offline run; ``tmp`` is a scratch folder (a ``Path``)."""


# -- backend capabilities ------------------------------------------------------------------------------------

@runtime_checkable
class Streaming(Protocol):
    """Yields ``(position, generation)`` as generations finish (any order), so each is persisted at once."""

    @abstractmethod
    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]: ...


@runtime_checkable
class Batched(Protocol):
    """How many requests the runner hands over per call (persistence happens between calls), and whether
    batches gain from being grouped by prompt length."""

    batch_size: int = 64
    sort_by_length: bool = False


@runtime_checkable
class Tokenized(Protocol):
    """What planning may know from the backend: its tokenizer (None: none, e.g. a remote API without
    ``-B tokenizer``) and the model's context window (None: unknown)."""

    tokenizer: Tokenizer | None = None
    max_model_len: int | None = None


@runtime_checkable
class ModelInfo(Protocol):
    """The model's name as the backend knows it (hub id, folder or served name; tables keyed by model such as
    LongBench's ``model2maxlen``) and how a user gives this backend a tokenizer (for messages)."""

    model_name: str | None = None
    tokenizer_hint: str = "--model <local model or tokenizer folder>"


@dataclass(frozen=True)
class PlanView:
    """What a plan-bound backend sees of the run before anything is written: the tasks, every planned sample
    by ``(task, sample id)``, and the tasks that may run a subset of their samples (``--limit``,
    ``--samples``, task options), where a replay file's lines for other samples are expected."""

    tasks: Mapping[str, Task]
    samples: Mapping[tuple[str, str], Sample]
    partial: frozenset[str] = frozenset()


@runtime_checkable
class PlanBound(Protocol):
    """A backend that answers from the plan itself (``gold``: each task's reference) or checks its inputs
    against it (``replay``: every line names a planned sample); bound before anything is written."""

    @abstractmethod
    def bind(self, plan: PlanView) -> None: ...


@runtime_checkable
class Timed(Protocol):
    """Per-phase figures the backend measures itself (engine load, prefill/decode throughput, prefix-cache
    hit rate), recorded with each invocation."""

    @abstractmethod
    def timings(self) -> dict[str, Any]: ...


@runtime_checkable
class ChecksModel(Protocol):
    """A backend class that checks ``--model`` cheaply before anything loads (a folder that does not exist, a
    hub id while offline)."""

    @classmethod
    @abstractmethod
    def validate_model(cls, model: str | None) -> None: ...


@runtime_checkable
class Configurable(Protocol):
    """A backend or metric class that declares its options (``-B`` / metric options): ``{key: Option}``
    (``evalsuite.options``), checked before anything is built. Tasks always declare theirs (``Task.options``)."""

    options: ClassVar[Mapping[str, Any]]


@runtime_checkable
class ValidatesOptions(Protocol):
    """A backend class whose ``-B`` options need more than their declared ``options`` (an address that must
    listen, values that depend on each other); checked before anything loads."""

    @classmethod
    @abstractmethod
    def validate_options(cls, options: Mapping[str, Any]) -> Any: ...


@runtime_checkable
class Scripted(Protocol):
    """Answers come from a script, not a model (echo, replay, gold): such runs are labelled so and kept out
    of rankings."""

    scripted: bool = True


@runtime_checkable
class NLIPairs(Protocol):
    """A judge backend that answers (premise, hypothesis) message pairs with ``"1"`` / ``"0"``
    (``evalsuite.backends.nli``) instead of yes/no questions."""

    nli_pairs: bool = True


# -- metric capabilities -------------------------------------------------------------------------------------

@runtime_checkable
class NeedsJudge(Protocol):
    """A metric scored with the run's judge (``ctx.judge``); without one the runner skips it and says so."""

    needs_judge: bool = True


def judged_once(shared: dict[str, Any], records: Sequence[Record], judge: Judge, analyse: Callable[[], T]) -> T:
    """The analysis the judged metrics of one task share (the same records parsed and judged once):
    ``analyse()`` the first time these records are scored with this judge, the kept result after. ``shared``
    is the dict the task hands to all of its metrics."""
    memo = shared.get("analysis")
    if memo is not None and memo[0] is records and memo[1] == judge.id:
        return memo[2]
    value = analyse()
    shared["analysis"] = (records, judge.id, value)
    return value


@runtime_checkable
class CorpusStats(Protocol):
    """A corpus metric (BLEU, chrF) whose score can be rebuilt from per-sample sufficient statistics, so
    ``compare`` can bootstrap it over paired samples; ``signature`` (the run's recorded one) restores the
    options it was scored with."""

    @classmethod
    @abstractmethod
    def corpus_from_stats(cls, stats: Sequence[Any], signature: str | None = None) -> float: ...


TASK_CAPABILITIES = (Truncating, MultiPass, ChecksData, ChecksAvailable, OfficialFormat, OfficialSummary, DataNeeds,
                     FixtureData)
BACKEND_CAPABILITIES = (Streaming, Batched, Tokenized, ModelInfo, PlanBound, Timed, ChecksModel, Configurable,
                        ValidatesOptions, Scripted, NLIPairs)
METRIC_CAPABILITIES = (NeedsJudge, CorpusStats, ChecksAvailable)


def declared(cls: type) -> list[type]:
    """The capability protocols ``cls`` names among its bases (directly or through a base class)."""
    caps = TASK_CAPABILITIES + BACKEND_CAPABILITIES + METRIC_CAPABILITIES
    return [c for c in dict.fromkeys(caps) if c in cls.__mro__]


def check_class(cls: Any, kind: str, name: str) -> None:
    """Check a plugin class once, when it is registered: every capability it declares has its method (a
    factory that is not a class, e.g. a function building the task, has nothing declared to check).

    Raises:
        ContractError: one line naming the plugin, the capability and the missing member.
    """
    if not isinstance(cls, type) or not inspect.isabstract(cls):
        return
    where = f"{kind} {name!r} ({cls.__module__}.{cls.__qualname__})"
    abstract = set(cls.__abstractmethods__)
    for cap in declared(cls):
        lacking = sorted(m for m in abstract if m in vars(cap))
        if lacking:
            raise ContractError(f"{where} declares {cap.__name__} but does not define "
                                f"{', '.join(m + '()' for m in lacking)}")
    raise ContractError(f"{where} leaves {', '.join(sorted(m + '()' for m in abstract))} abstract")


def check_instance(obj: Any, kind: str, name: str) -> None:
    """Check an object that did not come through a registered class (a backend a caller passes in)."""
    check_class(type(obj), kind, name)


__all__ = [
    "BACKEND_CAPABILITIES", "Backend", "Batched", "ChecksAvailable", "ChecksData", "ChecksModel", "Configurable",
    "ContractError",
    "CorpusStats", "DataNeeds", "FixtureData", "METRIC_CAPABILITIES", "Metric", "ModelInfo", "MultiPass", "NLIPairs",
    "NO_CONTEXT", "NeedsJudge", "OfficialFormat", "OfficialSummary", "PlanBound", "PlanView", "ScoreContext", "Scripted",
    "Streaming", "TASK_CAPABILITIES", "Task", "Timed", "Tokenized", "Truncating", "TruncationPolicy",
    "ValidatesOptions", "check_class", "check_instance", "declared", "judged_once",
]
