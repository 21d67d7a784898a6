"""LongBench-Cite (THUDM/LongCite@d7d772e, ``LongBench-Cite/``): long-context QA with sentence-chunk citations.

``register(registry)`` adds ``longbench_cite/<dataset>`` for longbench-chat, multifieldqa_en,
multifieldqa_zh, hotpotqa, dureader and gov_report. The context is split into sentence chunks as upstream
``text_split_by_punctuation`` does (an untrained ``nltk`` ``PunktSentenceTokenizer``, then a split after
Chinese 。；！？; one piece only -> split on blank lines), each chunk running to the next one's start and
rendered ``<C{i}>chunk``, and put into the copied one-shot prompt (``<<context>>``, ``<<question>>``); one
user message, 1024 new tokens. The answer is ``<statement>{S}<cite>[s-e]...</cite></statement>`` parts.

Scoring (``LongBenchCiteMetric``, needs ``--judge-backend``: upstream uses GPT-4o-2024-05-13) with the copied
judge prompts: statement recall (cited statement: "Fully" 1 / "Partially" 0.5 / "No support" 0 for its
joined citations; citation-less statement: 1 - "needs a citation"), citation precision ("Relevant" 1 /
"Unrelevant" 0 per citation), per-sample F1 = 2RP/(R+P); at most 40 statements; dataset score = mean of
sample values x100.

Data: by default ``LongBench-Cite/LongBench-Cite.json`` of the GitHub repository THUDM/LongCite at a pinned
commit (:data:`SOURCE`, git blob pin); or ``-T data_file=`` the released file (list of ``{idx, dataset, query,
context, answer, ...}``) / ``-T data_dir=`` a folder holding it. Rows of other datasets are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, NO_CONTEXT, NeedsJudge, ScoreContext, judged_once
from evalsuite.signature import Signature
from evalsuite.data import data_path
from evalsuite.datafiles import check_fields, read_records
from evalsuite.errors import UserError
from evalsuite.sources import GITHUB, Need, RemoteFile, Source

SOURCE = Source(
    id="longbench_cite", host=GITHUB, repo="THUDM/LongCite", revision="d7d772e39fb15357749f54a2fe1e2dce77df5255",
    files=(RemoteFile("LongBench-Cite/LongBench-Cite.json", git_blob="2d89480acf84af20df2bea1db745b760afe59d46"),),
    license="Apache-2.0 (repository); the texts keep their original sources' terms",
    page="https://github.com/THUDM/LongCite",
    note="the benchmark file is in the GitHub repository (not on the Hub); pinned by its git blob id at the "
         "pinned commit (the blob was not available here: sha256 recorded on first use)")
NEED = Need(SOURCE, "LongBench-Cite/LongBench-Cite.json")
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Generation, MetricResult, Record, Request, Sample, sha256_text

from ._correct import LongBenchCiteCorrectness

PROMPTS = Path(__file__).parent / "prompts"
DATASETS = ("longbench-chat", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "dureader", "gov_report")
MAX_STATEMENTS = 40
MAX_CITATIONS = 3
_ZH_PUNCT = r"([。；！？])"
_VERDICT = re.compile(r"\[\[([ /a-zA-Z]+)\]\]")


def _template(name: str) -> str:
    return (PROMPTS / name).read_text(encoding="utf-8")


def split_chunks(context: str) -> list[str]:
    """Chunk texts as upstream: sentence pieces found in order; each chunk runs to the next piece's start."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    pieces = PunktSentenceTokenizer().tokenize(context)
    pieces = sum([re.split(_ZH_PUNCT, s) for s in pieces], [])
    for i in range(1, len(pieces)):
        if re.match(_ZH_PUNCT, pieces[i]):
            pieces[i - 1] += pieces[i]
            pieces[i] = ""
    pieces = [s for s in pieces if s != ""]
    if len(pieces) == 1:
        pieces = context.split("\n\n")
    pieces = [s.strip() for s in pieces if s.strip() != ""]
    starts, pos = [], 0
    for s in pieces:
        st = context.find(s, pos)
        if st == -1:
            raise ValueError("chunk not found in context")
        starts.append(st)
        pos = st + len(s)
    ends = starts[1:] + [len(context)]
    return [context[a:b] for a, b in zip(starts, ends)]


def _citations(statement: str, chunks: Sequence[str]) -> tuple[str, list[str]]:
    spans = sum([re.findall(r"\[([0-9]+\-[0-9]+)\]", c, re.DOTALL)
                 for c in re.findall(r"<cite>(.*?)</cite>", statement, re.DOTALL)], [])
    text = re.sub(r"<cite>(.*?)</cite>", "", statement, flags=re.DOTALL)
    merged: list[list[int]] = []
    last = len(chunks) - 1
    for sp in spans:
        st, ed = (int(x) for x in sp.split("-"))
        if st > last or ed < st:
            continue
        st, ed = max(0, st), min(ed, last)
        if merged and st == merged[-1][1] + 1:
            merged[-1][1] = ed
        else:
            merged.append([st, ed])
    return text, ["".join(chunks[a:b + 1]) for a, b in merged[:MAX_CITATIONS]]


def parse_statements(answer: str, chunks: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(statement, citation texts) pairs: text outside statement tags longer than 5 characters becomes a
    citation-less statement; spans past the last chunk or reversed are dropped, others clipped; contiguous
    spans merge; the first 3 merged citations are kept."""
    res: list[tuple[str, list[str]]] = []
    pos = 0
    while True:
        st = answer.find("<statement>", pos)
        if st == -1:
            st = len(answer)
        ed = answer.find("</statement>", st)
        outside = answer[pos:st]
        if len(outside.strip()) > 5:
            res.append((outside.strip(), []))
        if ed == -1:
            break
        inner = answer[st + len("<statement>"):ed]
        if inner.strip():
            text, cites = _citations(inner, chunks)
            res.append((text.strip(), cites))
        pos = ed + len("</statement>")
    return res


def _level(text: str, kind: str) -> float | None:
    m = _VERDICT.findall(text)
    if not m:
        return None
    v = m[0].lower()
    if kind == "support":
        return 1.0 if "fully" in v else 0.5 if "partially" in v else 0.0
    if kind == "need":
        return 1.0 if "yes" in v else 0.0
    return 0.0 if "unrelevant" in v else 1.0


class LongBenchCiteMetric(NeedsJudge):
    """LongBench-Cite citation recall / precision / mean per-sample F1 through the run's judge. Samples
    with an unparseable verdict are left out (upstream drops them after 5 tries) and counted."""

    higher_is_better = True
    version = "1"

    def __init__(self, name: str, shared: dict[str, Any] | None = None):
        if name not in ("citation_rec", "citation_prec", "citation_f1_mean"):
            raise ValueError(name)
        self.name = name
        self._shared = shared if shared is not None else {}
        self._judge_id = "none"

    def signature(self) -> str:
        return str(Signature("longbench_cite", self.name, max_statements=MAX_STATEMENTS, k=MAX_CITATIONS,
                             judge=self._judge_id, scale=100, v=self.version))

    def _analyse(self, records: Sequence[Record], judge: Any) -> list[tuple[float, float, float] | None]:
        from evalsuite.judge import JudgeQuery

        need_t, sup_t, rel_t = (_template(f"{n}_prompt_template.txt") for n in ("need_citation", "support", "relevant"))
        queries: list[JudgeQuery] = []
        plan = []
        for r in records:
            q = r.sample.target["question"]
            answer = r.prediction
            clean = re.sub(r"<cite>.*?</cite>", "", answer, flags=re.DOTALL)
            clean = clean.replace("<statement>", "").replace("</statement>", "")
            stmts = parse_statements(answer, r.sample.target["chunks"])[:MAX_STATEMENTS]
            rec_q, prec_q = [], []
            for k, (s, cites) in enumerate(stmts):
                if cites:
                    ctx = "\n\n".join(cites).strip()
                    if ctx == "":
                        rec_q.append(("const", 0.0))
                    else:
                        body = f"<question>\n{q.strip()}\n</question>\n\n<statement>\n{s.strip()}\n</statement>\n\n<snippet>\n{ctx}\n</snippet>\n\n"
                        rec_q.append(("support", len(queries)))
                        queries.append(JudgeQuery(f"{r.sample.id}/support/{k}", sup_t.format(body), max_tokens=10))
                else:
                    body = f"<question>\n{q.strip()}\n</question>\n\n<response>\n{clean.strip()}\n</response>\n\n<sentence>\n{s.strip()}\n</sentence>"
                    rec_q.append(("need", len(queries)))
                    queries.append(JudgeQuery(f"{r.sample.id}/need/{k}", need_t.format(body), max_tokens=10))
                for j, c in enumerate(cites):
                    body = f"<question>\n{q.strip()}\n</question>\n\n<statement>\n{s.strip()}\n</statement>\n\n<snippet>\n{c.strip()}\n</snippet>\n\n"
                    prec_q.append(len(queries))
                    queries.append(JudgeQuery(f"{r.sample.id}/relevant/{k}/{j}", rel_t.format(body), max_tokens=10))
            plan.append((rec_q, prec_q))
        gens = judge.generate(queries) if queries else []
        texts = [g.text if g.ok else "" for g in gens]
        out: list[tuple[float, float, float] | None] = []
        for rec_q, prec_q in plan:
            rs: list[float | None] = []
            for kind, v in rec_q:
                if kind == "const":
                    rs.append(v)
                else:
                    lv = _level(texts[v], kind)
                    rs.append(None if lv is None else (1.0 - lv if kind == "need" else lv))
            ps = [_level(texts[i], "relevant") for i in prec_q]
            if any(x is None for x in rs + ps):
                out.append(None)
                continue
            rec = sum(rs) / len(rs) if rs else 0.0
            prec = sum(ps) / len(ps) if ps else 0.0
            out.append((rec, prec, 0.0 if rec + prec == 0 else 2 * rec * prec / (rec + prec)))
        return out

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT, *,
              judge: Any = None) -> MetricResult:
        judge = ctx.need_judge(self.name, judge)
        self._judge_id = judge.id
        per = judged_once(self._shared, records, judge, lambda: self._analyse(records, judge))
        pos = ("citation_rec", "citation_prec", "citation_f1_mean").index(self.name)
        kept = [p[pos] for p in per if p is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        ps = tuple(kept) if len(kept) == len(per) else None
        details: dict[str, Any] = {"n_scored": len(kept), "n_unparseable_verdict": len(per) - len(kept)}
        if ps is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), ps, True, details)


class LongBenchCiteTask(BaseTask, DataNeeds):
    dataset = "hotpotqa"
    version = "1"
    primary_metric = "citation_f1_mean"
    options: Mapping[str, Option] = {
        "data_file": Option(str, None, "LongBench-Cite.json as released"),
        "data_dir": Option(str, None, "a folder holding LongBench-Cite.json (e.g. a LongCite checkout)"),
        "max_tokens": Option(int, 1024, "generation budget (upstream 1024)"),
        "temperature": Option(float, 0.0, "0 = greedy (upstream samples at 1.0)"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self._source: dict[str, Any] | None = None
        self._prompt = _template("one_shot_prompt.txt")

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [NEED]

    def _path(self) -> Path:
        path, self._source = data_path(self.name, NEED, self.opts["data_dir"], self.opts["data_file"],
                                       "LongBench-Cite.json")
        return path

    def samples(self) -> Iterator[Sample]:
        path = self._path()
        rows = read_records(path, self.name, "json")
        check_fields(rows, {"dataset": str}, f"{self.name}: {path}", unit="record")
        rows = [r for r in rows if r["dataset"] == self.dataset]
        if not rows:
            raise UserError(f"{self.name}: no samples in {path} for dataset {self.dataset!r}")
        check_fields(rows, {"idx": (int, str), "query": str, "context": str}, f"{self.name}: {path} "
                     f"({self.dataset})", unit="record")
        for i, row in enumerate(rows):
            chunks = split_chunks(row["context"])
            yield Sample(id=str(row["idx"]), index=i, input={"chunks": chunks},
                         target={"question": row["query"], "chunks": chunks, "answer": row.get("answer"),
                                 **({"few_shot_scores": row["few_shot_scores"]} if row.get("few_shot_scores")
                                    else {})},
                         metadata={"dataset": row["dataset"]})

    def request(self, sample: Sample) -> Request:
        passage = "".join(f"<C{i}>{c}" for i, c in enumerate(sample.input["chunks"]))
        prompt = self._prompt.replace("<<context>>", passage).replace("<<question>>", sample.target["question"])
        return Request.new(prompt=prompt,
                       params=GenParams(max_tokens=self.opts["max_tokens"], temperature=self.opts["temperature"]),
                       use_chat_template=True)

    def extract(self, sample: Sample, generation: Generation) -> str:
        text = generation.text
        return "<" + text if text.startswith("statement>") else text

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        return [LongBenchCiteMetric(n, shared) for n in ("citation_f1_mean", "citation_rec", "citation_prec")] \
            + [LongBenchCiteCorrectness(self.dataset)]

    def gold(self, sample: Sample) -> str:
        ans = sample.target.get("answer")
        return " ".join(ans) if isinstance(ans, list) else str(ans or "")

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "LongBench-Cite (THUDM/LongCite@d7d772e)", "dataset": self.dataset,
                  "data": self._source,
                  "prompt_sha256": {p.name: sha256_text(p.read_text(encoding="utf-8"))
                                    for p in sorted(PROMPTS.glob("*.txt"))}})
        return d


def configs() -> dict[str, dict[str, Any]]:
    return {ds: {"dataset": ds, "description": f"LongBench-Cite {ds}: statement/cite answers, judged citation "
                 "recall/precision/F1"} for ds in DATASETS}


AVERAGED = ("longbench-chat", "multifieldqa", "hotpotqa", "dureader", "gov_report")
"""The README's averages: these five, multifieldqa being en and zh pooled (upstream matches dataset names by
substring, so "multifieldqa" takes both)."""


def summarize(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``longbench_cite avg <metric>``: the mean over AVERAGED of each dataset's value (multifieldqa: the mean
    over the en and zh samples together), as eval_cite.py / eval_correct.py report; only when all six tasks
    have the metric."""
    out = []
    for metric in ("citation_rec", "citation_prec", "citation_f1_mean", "correctness"):
        vals: dict[str, tuple[float, int]] = {}
        for ds in DATASETS:
            m = next((x for x in (scores.get(f"longbench_cite/{ds}") or {}).get("metrics", [])
                      if x.get("name") == metric), None)
            n = (m or {}).get("details", {}).get("n_scored")
            if m is None or not isinstance(m.get("value"), (int, float)) or not n:
                break
            vals[ds] = (float(m["value"]), int(n))
        else:
            en, zh = vals["multifieldqa_en"], vals["multifieldqa_zh"]
            pooled = {"multifieldqa": ((en[0] * en[1] + zh[0] * zh[1]) / (en[1] + zh[1]), en[1] + zh[1])}
            per = {ds: (pooled.get(ds) or vals[ds])[0] for ds in AVERAGED}
            out.append({"name": f"longbench_cite avg {metric}", "value": round(sum(per.values()) / len(per), 2),
                        "datasets": {k: round(v, 2) for k, v in per.items()}})
    return out


def register(registry: Any) -> None:
    registry.add_family("longbench_cite", LongBenchCiteTask, configs())
    registry.add_summary("longbench_cite", summarize)
