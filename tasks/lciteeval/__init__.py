"""L-CiteEval (ZetangForward/L-CITEEVAL, now LCM-Lab/L-CITEEVAL; HF ``Jonaszky123/L-CiteEval``).

``register(registry)`` adds ``lciteeval/<task>`` for the 11 tasks. A sample's context is its fixed-length
chunks ``docs``; the 1-shot prompt is built as upstream ``inference_1shot_vllm.py`` does from the task's
prompt file (``{INST}``, ``{Q}``, ``{D}``, ``{A}`` placeholders; each chunk through ``doc_prompt`` with ``{P}``
and ``{ID}``; demo + ``demo_sep`` + test item), sent as one user message. Generation stops at the newline
*token*: upstream passes vLLM ``stop_token_ids`` = the ids of ``tokenizer.encode("\n")`` (non-GLM models),
here ``GenParams.stop_token_ids`` (``-T stop_newline=string`` stops at "\n" in the text instead,
``false`` not at all), with upstream's budgets: 200
new tokens for the QA and dialogue tasks, 128 for niah / counting_stars, 800 otherwise (narrativeqa gets 800
too: upstream's task list misspells it "narrtiveqa").

Scoring: citation quality for niah and counting_stars by rule (``tasks/lciteeval/_rule.py``),
for the others by NLI (``CitationNLI``: ALCE recall/precision + mean per-sample F1, no short-sentence filter,
at most 3 citations, premise ``Passage: {chunk}``; L-CiteEval parity needs ``--judge-backend nli_classifier
--judge-model <tasksource/deberta-base-long-nli>``); beside them the answers' correctness as upstream
``eval_correct.py`` scores it (``_correct.py``: token F1/precision/recall for QA, ROUGE-L for summaries,
ROUGE-1 recall for niah, accuracy for counting_stars), which needs no judge. Every metric also reports
``by_length_bucket``.

The prompt files are NOT shipped (the upstream repository declares no license): pass
``-T prompt_file=<L-CiteEval/prompt/<task>_default.json>``. Data: ``-T data_file=`` one released JSON file
(a list of ``{id, question, answer, docs, length, role?}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds
from evalsuite.data import data_path
from evalsuite.datafiles import check_fields, read_json, read_records
from evalsuite.sources import HF, Need, RemoteFile, Source
from evalsuite.errors import UserError
from evalsuite.citation import CitationConfig
from evalsuite.metrics.citation import CitationNLI
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Request, Sample, sha256_text

from ._correct import LCiteEvalCorrect
from ._rule import LCiteEvalRule, lciteeval_premise
from ._correct import metric_names as correct_metric_names

TASKS = ("narrativeqa", "natural_questions", "hotpotqa", "2wikimultihopqa", "gov_report", "multi_news",
         "qmsum", "locomo", "dialsim", "niah", "counting_stars")
SHORT_GEN = ("natural_questions", "hotpotqa", "2wikimultihopqa", "locomo", "dialsim")
"""200 new tokens (upstream's list also names "narrtiveqa", a typo, so narrativeqa gets 800)."""
RULE_TASKS = ("niah", "counting_stars")
BUCKETS = {"l-citeeval": (8000, 16000, 24000, 32000, 40000, 48000), "length": (8000, 16000, 32000)}
LENGTH_TASKS = ("narrativeqa", "hotpotqa", "gov_report", "locomo", "counting_stars")
"""Tasks of the hub's L-CiteEval-Length split (the length-controlled setting)."""
SOURCE = Source(
    id="lciteeval", host=HF, repo="Jonaszky123/L-CiteEval", revision="c79c928529593f478e6573c969cf73d22f0cf0f9",
    files=tuple([RemoteFile(f"L-CiteEval-Data/{t}.json") for t in TASKS]
                + [RemoteFile(f"L-CiteEval-Length/{t}.json") for t in LENGTH_TASKS]),
    license="none stated (the upstream repositories carry no license file)",
    page="https://huggingface.co/datasets/Jonaszky123/L-CiteEval",
    note="revision and the L-CiteEval-Length/hotpotqa.json path as pinned by third-party code; the other file "
         "names follow the hub's config names (L-CiteEval-Data_<task>, L-CiteEval-Length_<task>); sha256 "
         "unknown (trust on first use)")
MAX_DOCS = 1500
"""Upstream passes ``ndoc=1500`` (all chunks in practice)."""


def _stop_mode(v: str) -> str:
    v = v.strip().lower()
    if v in ("true", "string"):  # true: the stop string, what this option meant in version 1
        return "string"
    if v in ("token", "false"):
        return v
    raise ValueError("must be token, string or false")


def gen_budget(task: str) -> int:
    return 200 if task in SHORT_GEN else 128 if task in RULE_TASKS else 800


def length_bucket(task: str, length: int | None, setting: str) -> int | None:
    """The bucket upstream files a sample under: the upper bound of ``[lower, upper)``; multi_news samples
    longer than 40000 go to 40000 in the main setting. None when the length is outside every bucket."""
    if length is None or setting not in BUCKETS:
        return None
    if setting == "l-citeeval" and task == "multi_news" and length > 40000:
        return 40000
    lower = 0
    for upper in BUCKETS[setting]:
        if lower <= length < upper:
            return upper
        lower = upper
    return None


def doc_text(doc: Any, doc_id: int, doc_prompt: str) -> str:
    """One chunk through ``doc_prompt`` (a dict doc loses a leading "title\\n" from its text, as upstream)."""
    if isinstance(doc, str):
        text = doc
    else:
        text = doc["text"].strip("\n")
        title = doc.get("title")
        if title is not None and text[: len(title) + 1] == title + "\n":
            text = text[len(title) + 1:]
    return doc_prompt.replace("{P}", text).replace("{ID}", str(doc_id + 1))


def make_item(item: Mapping[str, Any], prompt: str, doc_prompt: str, instruction: str, test: bool) -> str:
    out = prompt.replace("{INST}", instruction)
    if "{Q}" in out:
        out = out.replace("{Q}", item.get("question") or "")
    if "{D}" in out:
        out = out.replace("{D}", "".join(doc_text(d, i, doc_prompt) for i, d in enumerate(item["docs"][:MAX_DOCS])))
    out = out.replace("{A}", "").rstrip()
    if not test:
        ans = item["answer"]
        out += "\n" + "\n".join(ans) if isinstance(ans, list) else ans
    return out


class LCiteEvalTask(BaseTask, DataNeeds):
    task = "hotpotqa"
    version = "2"
    primary_metric = "citation_f1_mean"
    options: Mapping[str, Option] = {
        "data_file": Option(str, None, "one released L-CiteEval JSON file for this task"),
        "data_dir": Option(str, None, "a folder holding <task>.json (e.g. the hub's L-CiteEval-Data/)"),
        "prompt_file": Option(str, None, "the task's upstream prompt file (L-CiteEval/prompt/<task>_default.json)"),
        "setting": Option(str, "l-citeeval", "length buckets: l-citeeval (8K..48K), length (8K/16K/32K), none"),
        "stop_newline": Option(_stop_mode, "token", "token: stop at the newline token ids, as upstream's vLLM "
                               "stop_token_ids (needs the model's tokenizer); string: at \"\\n\" in the text; "
                               "false: never"),
        "max_tokens": Option(int, None, "generation budget (default: upstream's per task)"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        if self.opts["max_tokens"] is None:
            self.opts["max_tokens"] = gen_budget(self.task)
        self._source: dict[str, Any] | None = None
        self._prompt: dict[str, Any] | None = None
        self._prompt_sha: str | None = None

    def _load_prompt(self) -> dict[str, Any]:
        if self._prompt is None:
            if not self.opts["prompt_file"]:
                raise UserError(f"{self.name}: pass -T prompt_file=<L-CiteEval/prompt/{self.task}_default.json> "
                                "(the prompt files are not shipped: the upstream repository has no license)")
            p = Path(self.opts["prompt_file"]).expanduser()
            if not p.is_file():
                raise UserError(f"{self.name}: prompt file {p} does not exist")
            prompt = read_json(p, self.name)
            if not isinstance(prompt, dict):
                raise UserError(f"{self.name}: {p} is not an L-CiteEval prompt file (a JSON object)")
            self._prompt, self._prompt_sha = prompt, sha256_text(p.read_text(encoding="utf-8"))
        return self._prompt

    def render(self, row: Mapping[str, Any]) -> str:
        p = self._load_prompt()
        inst = p["instruction"]
        demo = p["demos"][0]
        demo_inst = inst.replace("<<<chatbox>>>", p.get("demo_role", "")) if self.task == "dialsim" else inst
        test_inst = inst.replace("<<<chatbox>>>", row.get("role", "")) if self.task == "dialsim" else inst
        return (make_item(demo, p["demo_prompt"], p["doc_prompt"], demo_inst, False) + p["demo_sep"]
                + make_item(row, p["demo_prompt"], p["doc_prompt"], test_inst, True))

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        folder = "L-CiteEval-Length" if options.get("setting") == "length" and cls.task in LENGTH_TASKS \
            else "L-CiteEval-Data"
        return [Need(SOURCE, f"{folder}/{cls.task}.json")]

    def _path(self) -> Any:
        path, self._source = data_path(self.name, self.data_needs(self.opts)[0], self.opts["data_dir"],
                                       self.opts["data_file"], f"{self.task}.json")
        return path

    def samples(self) -> Iterator[Sample]:
        self._load_prompt()
        path = self._path()
        with open(path, "rb") as fh:
            head = fh.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()  # a UTF-8 BOM, as the loader allows
        rows = read_records(path, self.name, "json" if head[:1] == b"[" else "jsonl")
        check_fields(rows, {"docs": list}, f"{self.name}: {path}", unit="record")
        for i, row in enumerate(rows):
            docs = [{"text": d} if isinstance(d, str) else {"title": d.get("title", ""), "text": d["text"]}
                    for d in row["docs"][:MAX_DOCS]]
            length = row.get("length")
            meta: dict[str, Any] = {"length": length}
            bucket = length_bucket(self.task, length, self.opts["setting"])
            if bucket is not None:
                meta["length_bucket"] = bucket
            yield Sample(id=str(row.get("id", i)), index=i, input={"prompt": self.render(row)},
                         target={"question": row.get("question") or "", "answer": row.get("answer"), "docs": docs},
                         metadata=meta)

    def request(self, sample: Sample) -> Request:
        mode = self.opts["stop_newline"]
        ids = self._newline_ids() if mode == "token" else ()
        stop = ("\n",) if mode == "string" or (mode == "token" and not ids) else ()
        return Request.new(prompt=sample.input["prompt"],
                       params=GenParams(max_tokens=self.opts["max_tokens"], stop=stop, stop_token_ids=ids),
                       use_chat_template=True)

    def _newline_ids(self) -> tuple[int, ...]:
        """Upstream's stop ids: every id of ``tokenizer.encode("\\n", add_special_tokens=False)`` (EOS stops in
        every backend anyway). Without a tokenizer the "\\n" stop string stands in (recorded in describe)."""
        tok = self.ctx.tokenizer
        return tuple(sorted(set(tok.encode("\n", add_special_tokens=False)))) if tok is not None else ()

    def metrics(self) -> Sequence[Any]:
        correct = [LCiteEvalCorrect(n, self.task) for n in correct_metric_names(self.task)]
        if self.task in RULE_TASKS:
            return [LCiteEvalRule(n, self.task) for n in ("citation_f1_mean", "citation_rec", "citation_prec")] \
                + correct
        cfg = CitationConfig(mode="alce", splitter="punkt", min_chars=0)
        shared: dict[str, Any] = {}
        return [CitationNLI(n, cfg, "lciteeval", shared, premise=lciteeval_premise)
                for n in ("citation_f1_mean", "citation_rec", "citation_prec", "citation_f1_of_means")] + correct

    def gold(self, sample: Sample) -> str:
        """niah: the answer citing the first chunk that holds it; counting_stars: the JSON answer citing every
        chunk with a penguin count; others: the reference answer (no gold citations exist)."""
        t = sample.target
        ans = t.get("answer")
        if self.task == "niah":
            a = ans if isinstance(ans, str) else (ans[0] if ans else "")
            gold = next((j for j, d in enumerate(t["docs"]) if a and a in d["text"]), None)
            return a + (f" [{gold + 1}]" if gold is not None else "")
        if self.task == "counting_stars":
            ids = [j + 1 for j, d in enumerate(t["docs"]) if "The little penguin counted" in d["text"]]
            return json.dumps({"little_penguin": ans, "passage_id": ids})
        return " ".join(ans) if isinstance(ans, list) else str(ans or "")

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        mode = self.opts["stop_newline"]
        d.update({"benchmark": "L-CiteEval (ZetangForward/L-CITEEVAL@6e49326)", "task": self.task,
                  "data": self._source, "prompt_sha256": self._prompt_sha, "max_tokens": self.opts["max_tokens"],
                  "stop_token_ids": list(self._newline_ids()) if mode == "token" else [],
                  "stop": ["\n"] if mode == "string" or (mode == "token" and not self._newline_ids()) else []})
        return d


def configs() -> dict[str, dict[str, Any]]:
    return {t: {"task": t, "description": f"L-CiteEval {t}: "
                f"{'rule-based citation P/R/F1' if t in RULE_TASKS else 'NLI citation P/R/F1 (judge)'}, by length bucket"}
            for t in TASKS}


def register(registry: Any) -> None:
    registry.add_family("lciteeval", LCiteEvalTask, configs())
