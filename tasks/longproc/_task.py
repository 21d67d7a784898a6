"""One LongProc dataset (``<task>_<level>``) as an evalsuite task, following the official loader
(``longproc/longproc_data.py``, main 78e873a) and its example runner.

Prompt: the official ``USER_PROMPT`` (``prompts/<task>.yaml``, byte-exact) filled with ``str.format``;
countdown and travel planning first fill ``{demonstration}`` with their regenerated worked examples,
then the item (two passes, as upstream). Sent as one user message through the model's chat template,
greedy, ``max_tokens`` 1024 / 3072 / 9216 at 0.5K / 2K / 8K (the official example runner).

Target (what the samples log keeps for scoring): the reference output plus what the evaluator needs
(the TSV, the first 10 test cases, the numbers and target, the gold cities and durations).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from evalsuite.contracts import DataNeeds, NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.errors import UserError
from evalsuite.metrics import Metric
from evalsuite.options import parse_bool
from evalsuite.task import BaseTask, Option
from evalsuite.options import choice, positive_float, positive_int
from evalsuite.types import GenParams, MetricResult, Record, Request, Sample

from . import _evaluators
from ._tsv import RULES_NAME as TSV_RULES
from evalsuite.datafiles import inside, read_text

from ._data import load_rows, needs

log = logging.getLogger(__name__)

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
UPSTREAM = {"repo": "princeton-pli/LongProc", "commit": "78e873ae395e42625fba7942bbb92713de08b2a6",
            "data_commit": "5f8268f09ab4cca4560d44d47d668fdf19edca07"}
MAX_NEW_TOKENS = {"0.5k": 1024, "2k": 3072, "8k": 9216}
"""The official example runner's budget per level (HELMET's add-on uses 10240 at 8K: -T max_tokens=)."""

LEVELS: dict[str, tuple[str, ...]] = {
    "html_to_tsv": ("0.5k", "2k", "8k"),
    "pseudo_to_code": ("0.5k", "2k"),
    "path_traversal": ("0.5k", "2k", "8k"),
    "tom_tracking": ("0.5k", "2k", "8k"),
    "countdown": ("0.5k", "2k", "8k"),
    "travel_planning": ("2k", "8k"),
}
PRECOMPILE_FROM = 6
"""pseudo_to_code: precompile the fixed includes when scoring at least this many programs at once (the
header costs about three compiles; each program then compiles three to four times faster)."""
MEASURES = {"html_to_tsv": ("f1", "precision", "recall", "extraction_rate")}
DEFAULT_MEASURES = ("accuracy", "partial_accuracy", "extraction_rate")


@lru_cache(maxsize=None)
def prompt_file(task: str) -> tuple[str, str]:
    """(USER_PROMPT, sha256 of the yaml file's bytes)."""
    raw = (PROMPT_DIR / f"{task}.yaml").read_bytes()
    return yaml.safe_load(raw.decode("utf-8"))["USER_PROMPT"], hashlib.sha256(raw).hexdigest()


@lru_cache(maxsize=None)
def travel_icl_examples() -> tuple[list[dict[str, Any]], str]:
    raw = (PROMPT_DIR / "travel_planning_icl_examples.json").read_bytes()
    return json.loads(raw), hashlib.sha256(raw).hexdigest()


@lru_cache(maxsize=None)
def template(task: str) -> str:
    """The prompt template after the task-level pass (the demonstration filled in where there is one)."""
    text, _ = prompt_file(task)
    if task == "countdown":
        from ._countdown import icl_demonstration

        return text.format(demonstration=icl_demonstration(), nums="{nums}", target="{target}")
    if task == "travel_planning":
        from ._travel import icl_demonstration

        return text.format(demonstration=icl_demonstration(travel_icl_examples()[0]), problem="{problem}")
    return text


_evaluator = choice(*_evaluators.EVALUATORS)


BASE_OPTIONS: Mapping[str, Option] = {
    "data_dir": Option(str, None, "the official LongProc data/ folder (<task>/<task>_<level>.json, html_to_tsv/webpage/)"),
    "data_file": Option(str, None, "one official JSON file of this task-level"),
    "evaluator": Option(_evaluator, "main", "evaluator semantics: main (78e873a) or rmodels (a9185e9: ToM parsing "
                        "for reasoning models)"),
    "max_tokens": Option(positive_int, None, "generation budget (default 1024/3072/9216 by level)"),
}
CODE_OPTIONS: Mapping[str, Option] = {
    "cxx": Option(str, "g++", "C++ compiler (name on PATH or path); missing: `run` stops before any model loads, "
                  "`score` on such a machine skips accuracy with a reason"),
    "timeout": Option(positive_float, 3.0, "wall-clock seconds per test case (upstream: 3)"),
    "memory_mb": Option(positive_int, 2048, "address-space limit of a program, MiB"),
    "workers": Option(positive_int, None, "programs compiled and tested in parallel (default: CPU count, at most 8)"),
    "unsafe_code": Option(parse_bool, False, "trusted environments only: when no sandbox (bubblewrap) works here, "
                          "run model-written programs WITHOUT isolation instead of not running them (recorded; "
                          "see docs/security.md)"),
}


class LongProcTask(BaseTask, DataNeeds):
    """Base for ``longproc/<task>_<level>``; subclasses set ``task`` and ``level``."""

    task: str = ""
    level: str = ""
    version = "1"
    options: Mapping[str, Option] = BASE_OPTIONS

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Any]:
        return needs(cls.task, cls.level)

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._source: dict[str, Any] | None = None
        self._base: Path | None = None
        self._evals: dict[tuple[str, str], tuple[dict[str, float], dict[str, Any]]] = {}
        self._sandbox: Any = None

    @property
    def dataset(self) -> str:
        return f"{self.task}_{self.level}"

    @property
    def max_new_tokens(self) -> int:
        return int(self.opts["max_tokens"] or MAX_NEW_TOKENS[self.level])

    # -- samples -----------------------------------------------------------------------------------------
    def samples(self) -> Iterator[Sample]:
        loaded = load_rows(self.name, self.task, self.level, self.opts["data_dir"], self.opts["data_file"])
        self._source, self._base = loaded.source, loaded.base
        for i, row in enumerate(loaded.rows):
            try:
                yield self._sample(i, row)
            except KeyError as exc:
                raise UserError(f"{self.name}: {loaded.path} item {i} lacks the official field {exc}") from None

    def _sample(self, i: int, row: Mapping[str, Any]) -> Sample:
        t = self.task
        sid = f"{self.dataset}_{i}"
        meta: dict[str, Any] = {"level": self.level}
        if t == "html_to_tsv":
            sid = str(row.get("task_id") or sid)
            fields = {k: row[k] for k in ("task_topic", "task_description", "filtering_instruction", "tsv_header")}
            fields["html_path"] = row.get("html_path")
            fields["html_str"] = row.get("html_str")
            target: dict[str, Any] = {"tsv": row["gt"]}
            meta.update(website_id=row.get("website_id"), filtering=bool(row["filtering_instruction"]))
        elif t == "pseudo_to_code":
            fields = {"pseudocode": "\n".join(row["pseudocode_lines"])}
            target = {"reference": "\n".join(row["code_lines"]),
                      "testcases": [list(c) for c in row["testcases"][:_evaluators.MAX_TESTS]]}
            meta.update(problem_id=row.get("problem_id"), n_testcases=len(row["testcases"]))
        elif t == "path_traversal":
            fields = {"city_context": row["context_nl"], "src_city": row["question_repr"][0],
                      "dst_city": row["question_repr"][1]}
            target = {"reference": row["answer_nl"]}
        elif t == "tom_tracking":
            fields = {"story_components": row["story_components"], "story": row["story"], "question": row["question"]}
            target = {"reference": row["solution"]}
        elif t == "countdown":
            from ._countdown import build_trace

            nums = [int(x) for x in row["nums"]]
            _, reference = build_trace(nums, int(row["target"]))
            fields = {"nums": nums, "target": int(row["target"])}
            target = {"nums": nums, "target": int(row["target"]), "reference": reference}
        elif t == "travel_planning":
            from ._travel import build_reference

            sid = str(row.get("id") or sid)
            fields = {"problem": row["disambig_question_text"]}
            target = {"cities": row["ground_truth_cities"], "durations": row["ground_truth_durations"],
                      "reference": build_reference(row)}
            meta.update(num_cities=row.get("num_cities"), total_days=row.get("total_days"))
        else:  # pragma: no cover - register() only makes the six tasks
            raise KeyError(t)
        return Sample(id=sid, index=i, input=fields, target=target, metadata=meta)

    # -- requests ----------------------------------------------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        fields = dict(sample.input)
        if self.task == "html_to_tsv" and fields.get("html_str") is None:
            if not fields.get("html_path") or self._base is None:
                raise UserError(f"{self.name}: item {sample.id} has neither html_str nor html_path")
            page = inside(self._base, fields["html_path"], f"{self.name}: item {sample.id}", "html_path")
            fields["html_str"] = read_text(page, self.name)
        return template(self.task).format(**fields)

    def request(self, sample: Sample) -> Request:
        params = GenParams(max_tokens=self.max_new_tokens, temperature=0.0, top_p=1.0)
        return Request.new(prompt=self.prompt(sample),
                       params=params, use_chat_template=True)

    def gold(self, sample: Sample) -> str:
        """The reference output in the format the prompt asks for (so it passes extraction)."""
        t = sample.target
        if self.task == "html_to_tsv":
            return f"```tsv\n{t['tsv']}\n```"
        if self.task == "pseudo_to_code":
            return f"```cpp\n{t['reference']}\n```"
        if self.task == "path_traversal":
            return f"<Route>\n{t['reference']}\n</Route>"
        return t["reference"]

    # -- scoring -----------------------------------------------------------------------------------------
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from evalsuite.sandbox import Limits, Sandbox

            self._sandbox = Sandbox(compiler=self.opts["cxx"],
                                    limits=Limits(timeout_s=self.opts["timeout"], memory_mb=self.opts["memory_mb"]),
                                    unsafe=self.opts["unsafe_code"])
        return self._sandbox

    def check_available(self) -> None:
        """Before a run loads a model (``evalsuite.validate``): a code task needs its compiler and a sandbox
        (or the explicit ``-T unsafe_code=true``) here, or hours of generation would end in no accuracy.
        Scoring a finished run on a machine without them (``evalsuite score``) skips accuracy instead."""
        if self.task != "pseudo_to_code":
            return
        sb = self.sandbox()
        if sb.compiler is None:
            raise UserError(f"{self.name}: no C++ compiler: {self.opts['cxx']!r} is not on PATH; install g++ or "
                            f"pass -T cxx=<compiler> (accuracy compiles and runs the model's programs)")
        if not sb.available:
            raise UserError(f"{self.name}: model-written programs cannot be run here: {sb.mechanism.reason}")

    def evaluate(self, records: Sequence[Record]) -> list[tuple[dict[str, float], dict[str, Any]]]:
        """Official metrics and why, per record (memoised: every sub-metric reads the same results)."""
        keys = [(r.sample.id, hashlib.sha256(r.prediction.encode("utf-8")).hexdigest()) for r in records]
        todo = [(k, r) for k, r in zip(keys, records) if k not in self._evals]
        if todo:
            sandbox = self.sandbox() if self.task == "pseudo_to_code" else None
            ev = self.opts["evaluator"]
            precompile = len(todo) >= PRECOMPILE_FROM

            def one(rec: Record) -> tuple[dict[str, float], dict[str, Any]]:
                return _evaluators.evaluate(self.task, rec.prediction, rec.sample.target, ev, sandbox, precompile)

            if sandbox is not None and sandbox.available and len(todo) > 1:
                workers = self.opts.get("workers") or min(8, os.cpu_count() or 1)
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    results = list(pool.map(one, [r for _, r in todo]))
            else:
                results = [one(r) for _, r in todo]
            for (k, _), res in zip(todo, results):
                self._evals[k] = res
            if sandbox is not None:
                sandbox.close()  # every scratch directory and the precompiled header go with its root
        return [self._evals[k] for k in keys]

    def metrics(self) -> Sequence[Metric]:
        names = MEASURES.get(self.task, DEFAULT_MEASURES)
        return [LongProcMeasure(self, m, first=(i == 0)) for i, m in enumerate(names)]

    def evaluator_info(self) -> dict[str, Any]:
        ev = self.opts["evaluator"]
        return {"name": ev, "upstream": _evaluators.EVALUATORS[ev],
                "our_version": self.version, "tsv_rules": TSV_RULES if self.task == "html_to_tsv" else None}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        text, sha = prompt_file(self.task)
        d.update({
            "benchmark": f"LongProc ({UPSTREAM['repo']}@{UPSTREAM['commit'][:7]})",
            "task": self.task, "level": self.level,
            "prompt_sha256": sha,
            "template_sha256": hashlib.sha256(template(self.task).encode("utf-8")).hexdigest(),
            "max_new_tokens": self.max_new_tokens, "chat_template": True, "temperature": 0.0,
            "evaluator": self.evaluator_info(),
            "data": self._source,
        })
        if self.task == "travel_planning":
            d["icl_examples_sha256"] = travel_icl_examples()[1]
        if self.task == "pseudo_to_code":
            d["sandbox"] = self.sandbox().describe()
            d["max_tests"] = _evaluators.MAX_TESTS
        return d


class LongProcMeasure:
    """One official measure of a LongProc task (mean over samples, x100). The first measure of a task
    also carries ``details["samples"]``: for each sample that lost points, why (capped)."""

    higher_is_better = True
    scale = 100.0
    max_listed = 200

    def __init__(self, task: LongProcTask, measure: str, first: bool = False):
        self.task = task
        self.measure = measure
        self.name = measure
        self.first = first

    def signature(self) -> str:
        ev = self.task.opts["evaluator"]
        return str(Signature(f"longproc/{self.task.task}", self.measure, evaluator=ev, scale=self.scale,
                             v=self.task.version))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        results = self.task.evaluate(records)
        details: dict[str, Any] = {"scale": self.scale, "evaluator": self.task.evaluator_info()}
        skipped = [r.sample.id for r, (m, _) in zip(records, results) if self.measure not in m]
        if skipped:
            reason = next(info.get("skipped") for m, info in results if self.measure not in m)
            details.update(n_skipped=len(skipped), skip_reason=reason)
            log.warning("%s: %s skipped for %d samples: %s", self.task.name, self.measure, len(skipped), reason)
        kept = [m[self.measure] for m, _ in results if self.measure in m]
        value = self.scale * sum(kept) / len(kept) if kept else float("nan")
        per: tuple[float, ...] | None = tuple(m[self.measure] for m, _ in results) if not skipped else None
        if self.first:
            why = {r.sample.id: info for r, (_, info) in zip(records, results) if info}
            details["n_with_details"] = len(why)
            details["samples"] = dict(list(why.items())[: self.max_listed])
        return MetricResult(name=self.name, value=value, signature=self.signature(), per_sample=per,
                            higher_is_better=True, details=details)
