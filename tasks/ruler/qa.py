"""RULER question answering (``qa_1``: SQuAD v2 dev, ``qa_2``: HotpotQA dev distractor): answer a question
from one or two gold documents hidden among many others.

Data, as RULER's ``scripts/data/synthetic/qa.py`` reads it:

* SQuAD (official ``dev-v2.0.json``): documents are the distinct paragraph contexts, sorted; every
  answerable question (``is_impossible`` false) in file order, with its paragraph as the gold document
  and the other paragraphs of its article as the first distractors;
* HotpotQA (official ``hotpot_dev_distractor_v1.json``): documents are ``title + "\\n" + "".join(sentences)``
  for every context entry, distinct and sorted; each question's ten context entries are its documents.

``-T qa_file=`` takes that file, ``-T data_dir=`` a folder holding ``squad.json`` / ``hotpotqa.json``
(RULER's ``json/`` folder, which also serves the essay tasks) or the official file names; otherwise the hub: ``rajpurkar/squad_v2``
(validation split, regrouped into the official article/paragraph structure) and the HotpotQA file
RULER's download script falls back to (``namlh2004/hotpotqa`` at a pinned revision).

Per sample ``i`` (probes of the size search use question 0): the gold documents, then distractors from
the same article, then ``random.sample`` of the remaining documents (ascending ids), up to
``num_docs``; the list is shuffled by a fresh ``random.Random(seed)`` and numbered ``Document k:``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from evalsuite.contracts import DataNeeds
from evalsuite.data import DataSource, local_data, resolve
from evalsuite.datafiles import check_fields, read_json, read_records
from evalsuite.errors import UserError
from evalsuite.sources import HF, Need, RemoteFile, Source, resolve_need
from evalsuite.metrics import Metric
from evalsuite.metrics.match import StringMatchPart
from evalsuite.task import Option

from ._base import Draft, RulerTask
from ._resources import BASE_TEMPLATE, full_template, resources

DOCUMENT_PROMPT = "Document {i}:\n{document}"

SOURCES = {
    "squad": Source(
        id="ruler-squad", host=HF, repo="rajpurkar/squad_v2", revision="3ffb306f725f7d2ce8394bc1873b24868140c412",
        files=(RemoteFile("squad_v2/validation-00000-of-00001.parquet"),),
        license="CC BY-SA 4.0", page="https://huggingface.co/datasets/rajpurkar/squad_v2",
        note="SQuAD v2 dev as parquet (one row per question, in file order), regrouped into the official JSON "
             "structure; revision as pinned by a third-party manifest; sha256 unknown (trust on first use)"),
    "hotpotqa": Source(
        id="ruler-hotpotqa", host=HF, repo="namlh2004/hotpotqa", revision="7e54db4656209750ff487f6fdf8e39a66dba136b",
        files=(RemoteFile("hotpot_dev_distractor_v1.json"),),
        license="CC BY-SA 4.0", page="https://huggingface.co/datasets/namlh2004/hotpotqa",
        note="the HotpotQA dev-distractor file at the revision lm-evaluation-harness pins (its original host is "
             "gone); sha256 unknown (trust on first use)"),
}
NEEDS = {"squad": Need(SOURCES["squad"], "squad_v2/validation-00000-of-00001.parquet", role="qa"),
         "hotpotqa": Need(SOURCES["hotpotqa"], "hotpot_dev_distractor_v1.json", role="qa")}
HUB = {k: v.repo for k, v in SOURCES.items()}
DIR_NAMES = {"squad": ("squad.json", "dev-v2.0.json"),
             "hotpotqa": ("hotpotqa.json", "hotpot_dev_distractor_v1.json")}


@dataclass(frozen=True)
class QaData:
    questions: tuple[dict[str, Any], ...]
    """{"query", "outputs", "context" (gold doc ids), "more_context" (same-article doc ids; SQuAD)}."""
    docs: tuple[str, ...]
    source: DataSource
    record: dict[str, Any] | None = None
    """Manifest record of the default source (None for local files)."""

    def describe(self) -> dict[str, Any]:
        d = self.source.describe()
        if self.record is not None:
            d.update(self.record)
        return d


def read_squad(obj: Any) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        articles = obj["data"]
        docs = sorted({p["context"] for a in articles for p in a["paragraphs"]})
        ids = {c: i for i, c in enumerate(docs)}
        qas = []
        for a in articles:
            article_docs = [ids[p["context"]] for p in a["paragraphs"]]
            for p in a["paragraphs"]:
                me = ids[p["context"]]
                for q in p["qas"]:
                    if q["is_impossible"]:
                        continue
                    qas.append({"query": q["question"], "outputs": [x["text"] for x in q["answers"]],
                                "context": [me], "more_context": [d for d in article_docs if d != me]})
    except (KeyError, TypeError) as exc:
        raise UserError(f"not SQuAD v2's official format ({{'data': [{{'paragraphs': [...]}}]}}): missing {exc}") from None
    return qas, docs


def read_hotpotqa(obj: Any) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        docs = sorted({f"{t}\n{''.join(p)}" for d in obj for t, p in d["context"]})
        ids = {c: i for i, c in enumerate(docs)}
        qas = [{"query": d["question"], "outputs": [d["answer"]],
                "context": [ids[f"{t}\n{''.join(p)}"] for t, p in d["context"]]} for d in obj]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"not HotpotQA's official format (a list of {{question, answer, context: [[title, "
                        f"sentences]]}}): {exc}") from None
    return qas, docs


def squad_from_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The HF ``squad_v2`` rows (one per question, in file order) regrouped as the official JSON."""
    articles: list[dict[str, Any]] = []
    for r in rows:
        if not articles or articles[-1]["title"] != r["title"]:
            articles.append({"title": r["title"], "paragraphs": []})
        paras = articles[-1]["paragraphs"]
        if not paras or paras[-1]["context"] != r["context"]:
            paras.append({"context": r["context"], "qas": []})
        texts = list(r["answers"]["text"])
        paras[-1]["qas"].append({"question": r["question"], "id": r["id"], "is_impossible": not texts,
                                 "answers": [{"text": t} for t in texts]})
    return {"version": "v2.0", "data": articles}


@lru_cache(maxsize=4)
def _load(dataset: str, path: str, sha256: str, task: str) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    if path.endswith(".parquet"):  # the hub's squad_v2 rows
        rows = read_records(path, task, "parquet")
        check_fields(rows, {"title": str, "context": str, "question": str, "id": str, "answers": dict},
                     f"{task}: {path}")
        obj: Any = squad_from_rows(rows)
    else:
        obj = read_json(path, task)
    try:
        qas, docs = (read_squad if dataset == "squad" else read_hotpotqa)(obj)
    except UserError as exc:
        raise UserError(f"{task}: {path}: {exc}") from None
    return tuple(qas), tuple(docs)


def load_qa(task: str, dataset: str, data_dir: str | None, data_file: str | None) -> QaData:
    """``data_file`` (the official file) wins over ``data_dir`` (a folder with it); without either, or with a
    folder written by ``evalsuite data fetch --to``, the pinned hub file."""
    if data_file:
        data_dir = None
    if local_data(data_dir, data_file):
        if data_dir:
            folder = Path(data_dir).expanduser()
            found = [folder / n for n in DIR_NAMES[dataset] if (folder / n).is_file()]
            if not found:
                raise UserError(f"{task}: {data_dir} has none of {', '.join(DIR_NAMES[dataset])}; pass the "
                                f"official file with -T {task}.qa_file=<path>")
            data_dir, data_file = None, str(found[0])
        src = resolve(task, data_dir, data_file, HUB[dataset])
        record = None
    else:
        got = resolve_need(task, NEEDS[dataset], data_dir)
        src = DataSource("source", got.path, SOURCES[dataset].repo, got.record.get("sha256") or "")
        record = got.record
    assert src.path is not None
    qas, docs = _load(dataset, str(src.path), src.sha256, task)
    if not qas:
        raise UserError(f"{task}: no samples in {src.path}: no answerable question")
    return QaData(qas, docs, src, record)


class QaGenerator:
    def __init__(self, data: QaData, seed: int, model_template: str = BASE_TEMPLATE):
        fam = resources().templates["families"]["qa"]
        self.template: str = full_template("qa", model_template)
        self.prefix_marker: str = fam["answer_prefix"][:10]
        self.data = data
        self.seed = seed
        self.rng = random.Random(seed)

    def generate(self, index: int, num_docs: int) -> Draft:
        qas, docs = self.data.questions, self.data.docs
        if index >= len(qas):
            raise UserError(f"ruler qa: sample {index} needs question {index}, but {self.data.source.path} has "
                            f"{len(qas)} answerable questions; lower -T num_samples")
        q = qas[index]
        gold, more = list(q["context"]), list(q.get("more_context", []))
        if num_docs < len(gold):
            # Upstream's sampling fails here and its retry loop never ends.
            raise UserError(f"ruler qa: {num_docs} documents cannot hold the {len(gold)} gold documents of question "
                            f"{index}; raise -T length")
        if num_docs < len(docs):
            if num_docs - len(gold) > len(more):
                taken = set(gold + more)
                rest = [i for i in range(len(docs)) if i not in taken]
                ids = gold + more + self.rng.sample(rest, max(0, num_docs - len(gold) - len(more)))
            else:
                ids = gold + self.rng.sample(more, num_docs - len(gold))
        else:
            ids = (list(range(len(docs))) * (-(-num_docs // len(docs))))[:num_docs]
        # Shuffling the ids permutes exactly as upstream's shuffle of the documents (same length, same seed).
        random.Random(self.seed).shuffle(ids)
        context = "\n\n".join(DOCUMENT_PROMPT.format(i=i + 1, document=docs[d]) for i, d in enumerate(ids))
        text = self.template.format(context=context, query=q["query"])
        cut = text.rfind(self.prefix_marker)
        gold_set = set(gold)
        positions = [i for i, d in enumerate(ids) if d in gold_set]
        info = {"query": q["query"], "num_docs": num_docs, "gold_docs": [p + 1 for p in positions],
                "depths": [round(100 * p / num_docs, 2) for p in positions]}
        return Draft(input=text[:cut], answer_prefix=text[cut:], answers=list(q["outputs"]), info=info)


class QaTask(RulerTask, DataNeeds):
    """RULER ``qa_1`` / ``qa_2``."""

    family = "qa"

    @classmethod
    def data_needs(cls, options: dict[str, Any]) -> list[Any]:
        return [NEEDS[resources().tasks[cls.config_name]["args"]["dataset"]]]

    options = {**RulerTask.options,
               "data_dir": Option(str, None, "RULER's json/ folder (squad.json / hotpotqa.json) or a folder with "
                                  "the official dev-v2.0.json / hotpot_dev_distractor_v1.json"),
               "qa_file": Option(str, None, "the official SQuAD v2 dev (qa_1) or HotpotQA dev-distractor (qa_2) JSON "
                                 "file")}

    def _setup(self) -> None:
        dataset = self.config["dataset"]
        if dataset not in HUB:
            raise UserError(f"{self.name}: unknown qa dataset {dataset!r}")
        if getattr(self, "_data", None) is None:
            self._data = load_qa(self.name, dataset, self.opts["data_dir"], self.opts["qa_file"])
        self.generator = QaGenerator(self._data, self.opts["seed"], model_template=self.model_template)

    def _incremental(self) -> int:
        return 10

    def _slack(self, length: int) -> int:
        # Documents differ in length (a SQuAD paragraph from 100 to 700 tokens): two draws of as many
        # documents differ far more than needles do, most at short lengths. Only clear cases are decided.
        return 64 + length // 4

    def _probe(self, size: int) -> Draft:
        return self.generator.generate(0, size)

    def _generate(self, size: int, index: int) -> Draft:
        return self.generator.generate(index, size)

    def metrics(self) -> Sequence[Metric]:
        return [StringMatchPart()]

    def gold(self, sample) -> str:
        text = " " + str(sample.target[0])
        return text.lstrip() if self.opts["reasoning"] else text

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        return {"dataset": self.config["dataset"]}

    def _describe_family(self) -> dict[str, Any]:
        data = getattr(self, "_data", None)
        return {"dataset": self.config["dataset"], "qa_data": data.describe() if data else None,
                "questions": len(data.questions) if data else None, "documents": len(data.docs) if data else None}
