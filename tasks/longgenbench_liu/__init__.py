"""LongGenBench by Liu et al. (EMNLP Findings 2024; repo Dominic789654/LongGenBench@9845864): K questions
answered in one long output.

``register(registry)`` adds ``longgenbench_liu/gsm8k``, ``longgenbench_liu/mmlu`` and ``longgenbench_liu/csqa``
(one sample per batch of K questions; the sample's index is its batch index) and the single-question baselines
``longgenbench_liu/<kind>_baseline`` over the same questions. Running a task with its baseline adds the drop
(LongGenBench - baseline) to the run's summary.

Prompts (byte-exact data files, see SOURCE.md): system prompt ``gsm8k_system.txt`` / ``mmlu_system.txt``
(``{}`` = the subject with each word preceded by a space, so the text reads "about  abstract algebra"); user
message ``Examples: \\n`` + the exemplar block + ``Following Question: \\n`` + the real questions numbered on
after the exemplars, laid out as each script does. Greedy, max_tokens 4096 (MMLU seed 42).
CommonsenseQA has no upstream code or prompt: its request is ours, built in the MMLU layout from the 7 CoT
exemplars of Wei et al. (2022) as shipped by shizhediao/active-prompt (``csqa_cot_prompts.json``, byte-exact)
and the GSM8K system prompt (the one without a subject); see the README.
"""

from __future__ import annotations

from functools import lru_cache
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.data import hash_paths, local_data, resolve
from evalsuite.datafiles import read_csv_rows, read_records
from evalsuite.registry import family_class
from evalsuite.sources import GITHUB, HF, Need, RemoteFile, Source, resolve_need
from evalsuite.errors import UserError
from evalsuite.task import BaseTask, Option
from evalsuite.options import choice, positive_int
from evalsuite.types import GenParams, Message, MetricResult, Record, Request, Sample, sha256_text

from ._extract import (LETTERS, gsm8k_gold_official, official_answers, official_log, official_tally,
                       robust_answers, robust_correct, robust_score)

HERE = Path(__file__).resolve().parent
GSM8K_EXEMPLARS = HERE / "gsm8k_LongGenBench_prompt.txt"
MMLU_EXEMPLARS = HERE / "mmlu_LongGenBench_prompt.json"
GSM8K_SYSTEM = HERE / "gsm8k_system.txt"
MMLU_SYSTEM = HERE / "mmlu_system.txt"
CSQA_EXEMPLARS = HERE / "csqa_cot_prompts.json"
CHOICES = "ABCD"

MMLU_SUBJECTS = (
    "abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology college_chemistry "
    "college_computer_science college_mathematics college_medicine college_physics computer_security "
    "conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic global_facts "
    "high_school_biology high_school_chemistry high_school_computer_science high_school_european_history "
    "high_school_geography high_school_government_and_politics high_school_macroeconomics "
    "high_school_mathematics high_school_microeconomics high_school_physics high_school_psychology "
    "high_school_statistics high_school_us_history high_school_world_history human_aging human_sexuality "
    "international_law jurisprudence logical_fallacies machine_learning management marketing medical_genetics "
    "miscellaneous moral_disputes moral_scenarios nutrition philosophy prehistory professional_accounting "
    "professional_law professional_medicine professional_psychology public_relations security_studies "
    "sociology us_foreign_policy virology world_religions").split()
"""The repo's subject order (alphabetical), which is also the batch order."""

DEFAULTS = {"gsm8k": (30, 20), "mmlu": (30, 57), "csqa": (40, 20)}
"""(K, T): the paper's open-model settings (Table 2); MMLU T = every subject (the paper's 52-subject list is
not published), one batch (the first K questions) per subject as the repo does. CSQA: the first K x T = 800
of the 1,221 dev questions in file order."""

CSQA_HUB = "tau/commonsense_qa"
SOURCES = {
    "gsm8k": Source(
        id="longgenbench_liu-gsm8k", host=HF, repo="openai/gsm8k", revision="cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
        files=(RemoteFile("main/test-00000-of-00001.parquet"),), license="MIT",
        page="https://huggingface.co/datasets/openai/gsm8k",
        note="the repo's script loads HF gsm8k/main test; revision as pinned by several third-party manifests; "
             "sha256 unknown (trust on first use)"),
    "csqa": Source(
        id="longgenbench_liu-csqa", host=HF, repo=CSQA_HUB, revision="94630fe30dad47192a8546eb75f094926d47e155",
        files=(RemoteFile("data/validation-00000-of-00001.parquet",
                          sha256="bdbd9bf9cc4d2349b24901038b2ab2f58e10e4e507ad2fd425dca55cd3cb6660"),),
        license="MIT", page="https://huggingface.co/datasets/tau/commonsense_qa",
        note="validation split (the official dev set); revision and sha256 as pinned by a third-party manifest"),
}


@lru_cache(maxsize=1)
def mmlu_source() -> Source:
    doc = json.loads((HERE / "mmlu_files.json").read_text(encoding="utf-8"))
    return Source(id="longgenbench_liu-mmlu", host=GITHUB, repo=doc["repo"], revision=doc["revision"],
                  files=tuple(RemoteFile(f["path"], f.get("sha256"), f.get("git_blob"), f.get("size"))
                              for f in doc["files"]),
                  license="MIT (MMLU, Hendrycks et al.); the LongGenBench repository has no license file",
                  page="https://github.com/Dominic789654/LongGenBench",
                  note="the MMLU test CSVs the LongGenBench repository ships (data/MMLU/data/test), sha256 and git blob "
                       "ids from the repository at the pinned commit (tasks/longgenbench_liu/mmlu_files.json)")


def data_needs_for(kind: str, batches: int | None = None) -> list[Need]:
    if kind in SOURCES:
        src = SOURCES[kind]
        return [Need(src, src.files[0].path)]
    subjects = MMLU_SUBJECTS[:batches] if batches else MMLU_SUBJECTS
    return [Need(mmlu_source(), f"data/MMLU/data/test/{s}_test.csv") for s in subjects]


_order = choice("length", "dataset", message="must be 'length' or 'dataset'")


def format_subject(subject: str) -> str:
    return "".join(" " + w for w in subject.split("_"))


@dataclass(frozen=True)
class Question:
    source_index: int
    text: str
    gold_official: str
    gold_robust: str
    subject: str | None = None
    solution: str | None = None
    """GSM8K: the full solution text, which upstream writes to its log as the gold."""

    @property
    def gold_text(self) -> str:
        """The gold as upstream's log holds it: the GSM8K solution, else the answer letter."""
        return self.solution if self.solution is not None else self.gold_official


# -- data --------------------------------------------------------------------------------------------

def _mmlu_questions(root: Path, subject: str) -> list[Question]:
    path = root / "test" / f"{subject}_test.csv"
    if not path.is_file():
        found = sorted(root.rglob(f"{subject}_test.csv"))
        if len(found) != 1:
            raise UserError(f"longgenbench_liu/mmlu: no test/{subject}_test.csv under {root}")
        path = found[0]
    rows = read_csv_rows(path, "longgenbench_liu/mmlu")
    out = []
    for i, row in enumerate(rows):
        if len(row) < 4 or row[-1].strip() not in tuple(CHOICES[: len(row) - 2]):
            raise UserError(f"longgenbench_liu/mmlu: {path} row {i + 1}: expected question, options and the answer "
                            f"letter (MMLU's CSV layout), got {len(row)} field(s)")
        q = row[0] + "\n" + "".join(f"({CHOICES[j]}) {row[j + 1]}" for j in range(len(row) - 2))
        out.append(Question(i, q, row[-1].strip(), row[-1].strip(), subject))
    return out


def _default_rows(task: str, kind: str, data_dir: str | None) -> tuple[list[dict[str, Any]], dict]:
    got = resolve_need(task, data_needs_for(kind)[0], data_dir)
    return read_records(got.path, task, "parquet"), {"kind": "source", **got.record}


def _gsm8k_rows(task: str, data_dir: str | None, data_file: str | None) -> tuple[list[dict[str, Any]], dict]:
    if not local_data(data_dir, data_file):
        return _default_rows(task, "gsm8k", data_dir)
    src = resolve(task, data_dir, data_file, "gsm8k", ("*.jsonl",))
    if src.kind == "file":
        path = src.path
    elif src.kind == "dir":
        cands = sorted(src.path.rglob("test.jsonl")) or sorted(src.path.rglob("*.jsonl"))
        if len(cands) != 1:
            raise UserError(f"{task}: {src.path} holds {len(cands)} JSONL files; pass -T data_file=<test.jsonl>")
        path = cands[0]
    return read_records(path, task, "jsonl"), {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}


def _gsm8k_question(i: int, row: Mapping[str, Any]) -> Question:
    sol = str(row["answer"])
    robust = sol.split("####")[-1].strip().replace(",", "") if "####" in sol else gsm8k_gold_official(sol)
    return Question(i, str(row["question"]), gsm8k_gold_official(sol), robust, solution=sol)


def _csqa_rows(task: str, data_dir: str | None, data_file: str | None) -> tuple[list[dict[str, Any]], dict]:
    if not local_data(data_dir, data_file):
        return _default_rows(task, "csqa", data_dir)
    src = resolve(task, data_dir, data_file, CSQA_HUB, ("*.jsonl",))
    if src.kind == "file":
        path = src.path
    elif src.kind == "dir":
        cands = sorted(src.path.rglob("dev_rand_split.jsonl")) or sorted(src.path.rglob("*.jsonl"))
        if len(cands) != 1:
            raise UserError(f"{task}: {src.path} holds {len(cands)} JSONL files; pass "
                            "-T data_file=<dev_rand_split.jsonl>")
        path = cands[0]
    return read_records(path, task, "jsonl"), {"kind": src.kind, "path": str(path), "sha256": hash_paths([path])}


def csqa_question_text(stem: str, choices: Sequence[tuple[str, str]]) -> str:
    """``<stem> Answer Choices: (A) x (B) y ...``, the layout of the CoT exemplars."""
    return stem + " Answer Choices: " + " ".join(f"({label}) {text}" for label, text in choices)


def _csqa_question(i: int, row: Mapping[str, Any], task: str) -> Question:
    """A row in the official jsonl schema (``question: {stem, choices: [{label, text}]}``) or the hub's
    (``question`` a string, ``choices: {label: [...], text: [...]}``)."""
    try:
        q = row["question"]
        if isinstance(q, Mapping):
            stem, choices = q["stem"], [(c["label"], c["text"]) for c in q["choices"]]
        else:
            stem, choices = q, list(zip(row["choices"]["label"], row["choices"]["text"]))
        gold = str(row["answerKey"]).strip()
    except (KeyError, TypeError) as exc:
        raise UserError(f"{task}: row {i} is not a CommonsenseQA record (missing {exc})") from None
    if gold not in tuple(LETTERS["csqa"]):
        raise UserError(f"{task}: row {i} has answerKey {gold!r}; the dev/validation split with answers A-E "
                        "is needed (test labels are private)")
    return Question(i, csqa_question_text(str(stem), [(str(a), str(b)) for a, b in choices]), gold, gold)


# -- exemplars -----------------------------------------------------------------------------------------

_EXEMPLAR_HEAD = re.compile(r"(Question|Answer)_(\d+): ?\n")


def gsm8k_exemplar_pairs(text: str) -> list[tuple[str, str]]:
    parts = _EXEMPLAR_HEAD.split(text)
    qs: dict[int, str] = {}
    ans: dict[int, str] = {}
    for j in range(1, len(parts), 3):
        (qs if parts[j] == "Question" else ans)[int(parts[j + 1])] = parts[j + 2].strip()
    return [(qs[n], ans[n]) for n in sorted(qs)]


def mmlu_exemplar_pairs(prompt: str) -> list[tuple[str, str]]:
    """The repo's ``batched_prompt`` split: blank-line ``Q: `` chunks, question / answer at ``\\nA: ``."""
    out = []
    for chunk in prompt.split("\n\nQ: ")[1:]:
        out.append((chunk.split("\nA: ")[0], chunk.split("\nA: ")[1]))
    return out


def csqa_exemplar_pairs(text: str) -> list[tuple[str, str]]:
    """The 7 exemplars of ``csqa_cot_prompts.json``: question = the ``question`` field without its ``Q: `` and
    ``\nA:``; answer = ``<rationale> So the answer is (<pred_ans>).`` (Wei et al.'s wording)."""
    out = []
    for e in json.loads(text)["prompt"]:
        q = e["question"].removeprefix("Q: ").removesuffix("\nA:")
        out.append((q, f"{e['rationale']} So the answer is ({e['pred_ans']})."))
    return out


def exemplar_block(pairs: Sequence[tuple[str, str]]) -> str:
    """All exemplar questions (``Question_<n>:``), then all answers (``Answer_<n>:``), blank-line separated."""
    return "".join(f"Question_{i + 1}:\n{q}\n\n" for i, (q, _) in enumerate(pairs)) + \
        "".join(f"Answer_{i + 1}:\n{a}\n\n" for i, (_, a) in enumerate(pairs))


def mmlu_exemplar_block(prompt: str) -> str:
    return exemplar_block(mmlu_exemplar_pairs(prompt))


# -- tasks -----------------------------------------------------------------------------------------

class _LiuBase(BaseTask, DataNeeds):
    kind = "gsm8k"

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return data_needs_for(cls.kind)
    version = "2"

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        k, t = DEFAULTS[self.kind]
        if self.opts.get("k") is None:
            self.opts["k"] = k
        if self.opts.get("batches") is None:
            self.opts["batches"] = t
        self._source: dict[str, Any] | None = None

    @property
    def first(self) -> int:
        """The number of the first real question (after the exemplars): 9 for GSM8K, 6 for MMLU, 8 for CSQA."""
        return {"gsm8k": 9, "mmlu": 6, "csqa": 8}[self.kind]

    def batches(self) -> list[tuple[str | None, list[Question]]]:
        """``[(subject, questions in prompt order)]``, one entry per batch."""
        k, t = self.opts["k"], self.opts["batches"]
        out: list[tuple[str | None, list[Question]]] = []
        if self.kind == "gsm8k":
            rows, self._source = _gsm8k_rows(self.name, self.opts["data_dir"], self.opts["data_file"])
            qs = [_gsm8k_question(i, r) for i, r in enumerate(rows[:k * t])]
            out = [(None, qs[s:s + k]) for s in range(0, len(qs), k)]
        elif self.kind == "csqa":
            rows, self._source = _csqa_rows(self.name, self.opts["data_dir"], self.opts["data_file"])
            qs = [_csqa_question(i, r, self.name) for i, r in enumerate(rows[:k * t])]
            out = [(None, qs[s:s + k]) for s in range(0, len(qs), k)]
        else:
            subjects = MMLU_SUBJECTS[:t]
            if local_data(self.opts["data_dir"], None):
                root = Path(self.opts["data_dir"]).expanduser()
                if not root.is_dir():
                    raise UserError(f"{self.name}: data folder {str(root)!r} does not exist")
                files = [p for s in subjects for p in root.rglob(f"{s}_test.csv")]
                self._source = {"kind": "dir", "path": str(root), "sha256": hash_paths(files, root)}
            else:
                got = [resolve_need(self.name, n, self.opts["data_dir"]) for n in data_needs_for("mmlu", t)]
                root = got[0].path.parent.parent  # .../data/MMLU/data (test/<subject>_test.csv below it)
                self._source = {"kind": "source", **{k: v for k, v in got[0].record.items()
                                                      if k not in ("file", "sha256", "git_blob")},
                                "files": len(got), "sha256": hash_paths([g.path for g in got], root)}
            out = [(s, _mmlu_questions(root, s)[:k]) for s in subjects]
        if self.opts["order"] == "length":
            out = [(s, sorted(qs, key=lambda q: len(q.text))) for s, qs in out]
        return out

    def system_prompt(self, subject: str | None) -> str:
        if self.kind in ("gsm8k", "csqa"):
            return GSM8K_SYSTEM.read_text(encoding="utf-8")
        return MMLU_SYSTEM.read_text(encoding="utf-8").replace("{}", format_subject(subject or ""))

    def exemplars(self, subject: str | None) -> list[tuple[str, str]]:
        if self.kind == "gsm8k":
            return gsm8k_exemplar_pairs(GSM8K_EXEMPLARS.read_text(encoding="utf-8"))
        if self.kind == "csqa":
            return csqa_exemplar_pairs(CSQA_EXEMPLARS.read_text(encoding="utf-8"))
        return mmlu_exemplar_pairs(json.loads(MMLU_EXEMPLARS.read_text(encoding="utf-8"))[subject])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "LongGenBench (Liu et al., Dominic789654/LongGenBench@9845864)",
                  "data": self._source, "max_tokens": self.opts["max_tokens"],
                  "prompt_files_sha256": {p.name: sha256_text(p.read_text(encoding="utf-8")) for p in
                                          (GSM8K_EXEMPLARS, MMLU_EXEMPLARS, GSM8K_SYSTEM, MMLU_SYSTEM,
                                           CSQA_EXEMPLARS)}})
        return d

    def _params(self) -> GenParams:
        return GenParams(max_tokens=self.opts["max_tokens"], temperature=0.0,
                         seed=42 if self.kind == "mmlu" else 0)


COMMON = {
    "data_file": Option(str, None, "GSM8K: test.jsonl with question/answer fields (HF gsm8k main test); CSQA: "
                        "dev_rand_split.jsonl (official CommonsenseQA format, or the hub's fields)"),
    "data_dir": Option(str, None, "GSM8K: folder with test.jsonl; MMLU: the MMLU data folder (test/*.csv); "
                       "CSQA: folder with dev_rand_split.jsonl"),
    "k": Option(positive_int, None, "questions per batch (paper, open models: GSM8K 30, MMLU 30, CSQA 40)"),
    "batches": Option(positive_int, None, "number of batches T (GSM8K 20; MMLU = number of subjects, 57; CSQA 20)"),
    "order": Option(_order, "length", "question order inside a batch: length (ascending, as the paper) or "
                    "dataset (as the repo)"),
    "max_tokens": Option(positive_int, 4096, "generation budget (4096 in the paper and repo)"),
}


class LongGenBenchLiuTask(_LiuBase):
    options: Mapping[str, Option] = COMMON

    def samples(self) -> Iterator[Sample]:
        for b, (subject, qs) in enumerate(self.batches()):
            if not qs:
                continue
            yield Sample(id=f"{self.kind}-batch{b}", index=b,
                         input={"subject": subject, "questions": [q.text for q in qs]},
                         target={"official": [q.gold_official for q in qs], "robust": [q.gold_robust for q in qs],
                                 "first": self.first, "kind": self.kind,
                                 "log": {"questions": [q.text for q in qs], "golds": [q.gold_text for q in qs]}},
                         metadata={"subject": subject, "k": len(qs), "order": self.opts["order"],
                                   "source_indices": [q.source_index for q in qs]})

    def user_prompt(self, sample: Sample) -> str:
        qs = sample.input["questions"]
        if self.kind == "gsm8k":
            text = "Examples: \n" + GSM8K_EXEMPLARS.read_text(encoding="utf-8") + "\n\nFollowing Question: \n"
            text += "".join(f"Question_{self.first + i}:\n{q}\n" for i, q in enumerate(qs)) + "\n"
            return text
        if self.kind == "csqa":
            block = exemplar_block(self.exemplars(None))
        else:
            block = mmlu_exemplar_block(json.loads(MMLU_EXEMPLARS.read_text(encoding="utf-8"))[sample.input["subject"]])
        return "Examples: \n" + block + "Following Question: \n" + "".join(
            f"Question_{self.first + i}:\n{q}\n\n" for i, q in enumerate(qs))

    def request(self, sample: Sample) -> Request:
        msgs = (Message("system", self.system_prompt(sample.input["subject"])),
                Message("user", self.user_prompt(sample)))
        return Request.new(prompt=msgs, params=self._params())

    def metrics(self) -> Sequence[Any]:
        return [LiuAccuracy("robust"), LiuAccuracy("official")]

    def gold(self, sample: Sample) -> str:
        t = sample.target
        if self.kind == "gsm8k":
            return "".join(f"Answer_{t['first'] + i}:\nThe answer is {g}.\n\n" for i, g in enumerate(t["robust"]))
        return "".join(f"Answer_{t['first'] + i}:\nThe answer is ({g}).\n\n" for i, g in enumerate(t["robust"]))


class BaselineTask(_LiuBase):
    """One question per request: the exemplars interleaved (question, answer), then the question."""

    options: Mapping[str, Option] = COMMON

    def samples(self) -> Iterator[Sample]:
        n = 0
        for b, (subject, qs) in enumerate(self.batches()):
            for q in qs:
                yield Sample(id=f"{self.kind}-{subject + '-' if subject else ''}{q.source_index}", index=n,
                             input={"subject": subject, "question": q.text},
                             target={"official": [q.gold_official], "robust": [q.gold_robust], "kind": self.kind},
                             metadata={"subject": subject, "batch": b, "source_index": q.source_index})
                n += 1

    def request(self, sample: Sample) -> Request:
        subject = sample.input["subject"]
        pairs = self.exemplars(subject)
        user = "Examples: \n" + "".join(f"Question_{i + 1}:\n{q}\n\nAnswer_{i + 1}:\n{a}\n\n"
                                        for i, (q, a) in enumerate(pairs))
        user += f"Following Question: \nQuestion_{len(pairs) + 1}:\n{sample.input['question']}\n\n"
        msgs = (Message("system", self.system_prompt(subject)), Message("user", user))
        return Request.new(prompt=msgs, params=self._params())

    def metrics(self) -> Sequence[Any]:
        return [BaselineAccuracy()]

    def gold(self, sample: Sample) -> str:
        g = sample.target["robust"][0]
        return f"The answer is {g}." if self.kind == "gsm8k" else f"The answer is ({g})."


# -- metrics -------------------------------------------------------------------------------------------

def official_batch_tallies(records: Sequence[Record]) -> list[tuple[int, int, int]]:
    """``(correct, records formed, answered)`` per record by the scripts' log rule (``_extract.official_tally``).

    GSM8K (and CSQA, ours) write every batch to one log, read once in batch order (upstream appends batches as
    they complete; we take index order), so a ``Question:`` line in an answer can pair its text with the gold
    of the question before it, across a batch boundary too. MMLU writes one log per subject (= per batch)."""
    logs, answered = [], []
    for r in records:
        t = r.sample.target
        log = t.get("log") or {}
        golds = log.get("golds") or t["official"]
        questions = log.get("questions") or [""] * len(golds)
        logs.append(official_log(questions, golds, r.prediction))
        answered.append(min(len(official_answers(r.prediction)), len(golds)))
    kind = records[0].sample.target["kind"] if records else "gsm8k"
    if kind == "mmlu":
        tallies = [official_tally(kind, [log])[0] for log in logs]
    else:
        order = sorted(range(len(records)), key=lambda j: records[j].sample.index)
        in_order = official_tally(kind, [logs[j] for j in order])
        tallies = [(0, 0)] * len(records)
        for j, t in zip(order, in_order):
            tallies[j] = t
    return [(c, n, a) for (c, n), a in zip(tallies, answered)]


class LiuAccuracy:
    """Accuracy (x100). ``robust``: by answer number over all questions of all batches, missing = wrong.
    ``official``: the scripts' records (positional answers, re-read line by line from their log), over the
    records formed for GSM8K / CSQA (the GSM8K script's ``num_q``) and over the answered questions for MMLU
    (the MMLU script divides by K after re-asking the unanswered ones, which a single pass cannot do)."""

    higher_is_better = True

    def __init__(self, variant: str):
        self.variant = variant
        self.name = "accuracy" if variant == "robust" else "accuracy_official"

    def signature(self) -> str:
        return str(Signature("longgenbench_liu", self.variant, v="1" if self.variant == "robust" else "2"))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        correct = answered = total = formed = 0
        per = []
        official = official_batch_tallies(records) if self.variant == "official" else None
        for j, r in enumerate(records):
            t = r.sample.target
            n = len(t["robust"])
            if official is None:
                c, a = robust_score(t["kind"], r.prediction, t["robust"], t["first"])
                per.append(c / n)
            else:
                c, f, a = official[j]
                d = a if t["kind"] == "mmlu" else f
                formed += f
                per.append(c / d if d else 0.0)
            correct, answered, total = correct + c, answered + a, total + n
        kind = records[0].sample.target["kind"] if records else "gsm8k"
        denom = total if official is None else (answered if kind == "mmlu" else formed)
        value = 100 * correct / denom if denom else 0.0
        details = {"scale": 100.0, "correct": correct, "answered": answered, "questions": total,
                   "accuracy_over_all_questions": 100 * correct / total if total else 0.0}
        if official is not None:
            details["records"] = formed
        return MetricResult(self.name, value, self.signature(), per_sample=tuple(per), details=details)


class BaselineAccuracy:
    """Single-question accuracy (x100): the tagged answer if any, else the whole output; robust rules."""

    name = "accuracy"
    higher_is_better = True

    def signature(self) -> str:
        return str(Signature("longgenbench_liu", "baseline", "robust", v=1))

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        per = []
        for r in records:
            t = r.sample.target
            tagged = robust_answers(r.prediction)
            answer = next(iter(tagged.values())) if tagged else r.prediction
            per.append(float(robust_correct(t["kind"], answer, t["robust"][0])))
        return MetricResult(self.name, 100 * sum(per) / len(per), self.signature(), per_sample=tuple(per),
                            details={"scale": 100.0})


KINDS = ("gsm8k", "mmlu", "csqa")


def _main_value(scores: Mapping[str, Any], task: str, metric: str) -> float | None:
    s = scores.get(task)
    for m in (s or {}).get("metrics", []):
        if m["name"] == metric:
            return float(m["value"])
    return None


def summarize(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Drop against the baseline when a task and its baseline are both scored."""
    out = []
    for kind in KINDS:
        base = _main_value(scores, f"longgenbench_liu/{kind}_baseline", "accuracy")
        if base is None:
            continue
        for metric in ("accuracy", "accuracy_official"):
            v = _main_value(scores, f"longgenbench_liu/{kind}", metric)
            if v is not None:
                out.append({"name": f"longgenbench_liu {kind} delta ({metric})", "value": round(v - base, 2),
                            "longgenbench": v, "baseline": base})
    return out


def _config(kind: str, baseline: bool) -> dict[str, Any]:
    desc = (f"LongGenBench (Liu) {kind.upper()} " + ("single-question baseline" if baseline else
            "K questions in one output (accuracy; official and robust extraction)"))
    return {"base": BaselineTask if baseline else LongGenBenchLiuTask, "kind": kind, "description": desc}


def _make(kind: str, baseline: bool) -> type:
    """The task class of one kind (``baseline``: its single-question baseline), as registered."""
    return family_class("longgenbench_liu", LongGenBenchLiuTask, kind + ("_baseline" if baseline else ""),
                        _config(kind, baseline))


def register(registry: Any) -> None:
    registry.add_family("longgenbench_liu", LongGenBenchLiuTask,
                        {kind + ("_baseline" if b else ""): _config(kind, b) for kind in KINDS for b in (False, True)})
    registry.add_summary("longgenbench_liu", summarize)
