"""Citation evaluation: sentence splitting, citation parsing, NLI-based citation recall / precision /
per-sample F1 (ALCE, HELMET, L-CiteEval) and the rule-based variant with gold supporting-document ids.

Definitions follow the spec (tasks-longbench-ruler-longproc-cite.md §4.4); docs/citation.md explains them.

Entailment is asked of the run's judge (``--judge-backend``, see docs/judge.md), so verdicts are batched,
de-duplicated, cached in ``<run>/<task>/judge.jsonl`` and resumable. Two kinds of judge backend are understood:

* an **NLI backend** (``nli_seq2seq``: a T5-style "premise: ... hypothesis: ..." model answering ``1``,
  ALCE/HELMET parity; ``nli_classifier``: a sequence-pair classifier, L-CiteEval parity). Such a backend sets
  ``nli_pairs = True``; it receives each question as two user messages ``(premise, hypothesis)`` and answers
  ``"1"`` (entailed) or ``"0"``.
* any other backend is an **LLM judge**: it gets a yes/no question (:data:`LLM_JUDGE_PROMPT`).

All questions of a scoring pass (joint passages, single passages and leave-one-out subsets for precision) are
built first and sent in ONE ``judge.generate`` call; identical (passage, claim) pairs are asked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..types import Generation, Message, MetricResult, Record, Request

K_MAX = 3
"""At most this many citations per sentence are evaluated (ALCE ``at_most_citations=3``, L-CiteEval)."""
MIN_SENT_CHARS = 5
"""HELMET drops sentences shorter than 5 characters (after stripping), e.g. a lone "1."."""

_ALCE_CITE = re.compile(r"\[\d+")
_STRICT_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LEADING_GROUP = re.compile(r"^\s*((?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+)")

LLM_JUDGE_PROMPT = (
    "You are given a passage and a claim. Answer \"yes\" if the passage fully supports the claim (the claim "
    "can be inferred from the passage alone), otherwise answer \"no\". Answer with one word.\n\n"
    "Passage:\n{premise}\n\nClaim: {claim}\n\nAnswer (yes or no):")
"""The LLM-judge entailment question (our own wording; the NLI models need none)."""


# --------------------------------------------------------------------------------------------- parsing
def remove_citations_alce(sent: str) -> str:
    """ALCE's claim text: drop " [n" and "[n", then " |", then every "]"."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", sent)).replace(" |", "").replace("]", "")


def remove_citations_strict(sent: str) -> str:
    """Our claim text: remove whole bracket groups ``[1]``, ``[1, 2]`` (and the space before them)."""
    return re.sub(r"\s*" + _STRICT_CITE.pattern, "", sent)


@dataclass(frozen=True)
class CitedSentence:
    """One output sentence with its parsed citations."""

    text: str
    claim: str
    """The sentence with citations removed (what the judge checks)."""
    ids: tuple[int, ...]
    """0-based document ids that are evaluated (after de-duplication in strict mode and the first-k cut)."""
    valid: bool
    """All cited ids are in range (sentences with an invalid id count 0 and add no citations)."""
    n_parsed: int
    """How many citation ids were found before the cut."""


def parse_citations(sentence: str, n_docs: int, mode: str = "strict", k: int | None = K_MAX
                    ) -> CitedSentence:
    """Parse one sentence.

    ``alce``: ids from ``\\[\\d+`` (``[1][2]`` -> [0, 1]; ``[1, 2]`` -> [0]); duplicates kept; the range check
    sees every id before the first-k cut; an id ``0`` becomes ``-1``, which Python (and so ALCE) reads as
    the last document. ``strict``: ids from whole groups ``[1]``, ``[1, 2]``, ``[1; 2]``; de-duplicated in
    order; first k kept; ``0`` and ids past the last document are invalid.
    """
    if mode == "alce":
        ids = [int(m[1:]) - 1 for m in _ALCE_CITE.findall(sentence)]
        valid = all(i < n_docs for i in ids)
        kept = ids[:k] if (k is not None and valid) else ids
        return CitedSentence(sentence, remove_citations_alce(sentence).strip(), tuple(kept), valid, len(ids))
    if mode != "strict":
        raise ValueError(f"unknown citation parse mode {mode!r} (alce or strict)")
    raw: list[int] = []
    for group in _STRICT_CITE.findall(sentence):
        raw.extend(int(x) for x in re.split(r"\s*[,;]\s*", group.strip()))
    seen: list[int] = []
    for x in raw:
        if x not in seen:
            seen.append(x)
    kept = seen[:k] if k is not None else seen
    valid = all(1 <= x <= n_docs for x in kept)
    return CitedSentence(sentence, remove_citations_strict(sentence).strip(), tuple(x - 1 for x in kept), valid,
                         len(raw))


def attach_trailing_citations(sents: Sequence[str]) -> list[str]:
    """Move a citation group that opens a sentence ("... claim. [1] Next ...") to the end of the previous
    sentence. Off in ALCE-compatible mode (ALCE#26 attributes such citations to the next sentence)."""
    out: list[str] = []
    for s in sents:
        m = _LEADING_GROUP.match(s)
        if out and m:
            out[-1] = out[-1].rstrip() + " " + m.group(1).strip()
            s = s[m.end():]
            if not s.strip():
                continue
        out.append(s)
    return out


def sentence_splitter(name: str) -> Callable[[str], list[str]]:
    """``punkt``: ``nltk.sent_tokenize`` (English Punkt, offline); ``line``: non-empty lines."""
    if name == "punkt":
        from evalsuite.tasks.ruler._punkt import english_sentence_splitter

        return english_sentence_splitter()
    if name == "line":
        return lambda text: [ln for ln in text.split("\n") if ln.strip()]
    raise ValueError(f"unknown sentence splitter {name!r}")


@dataclass(frozen=True)
class CitationConfig:
    """How a task's outputs are cut into claims and parsed."""

    mode: str = "alce"
    """``alce`` (parity) or ``strict``."""
    splitter: str = "punkt"
    """``punkt``, ``line`` or ``qampari`` (comma-separated items, each claim = question + " " + item)."""
    min_chars: int = MIN_SENT_CHARS
    """Drop sentences shorter than this (stripped); 0 keeps all (ALCE original, L-CiteEval)."""
    k: int | None = K_MAX
    attach_trailing: bool = False
    skip_empty: bool = True
    """ALCE/HELMET leave samples with no sentence out of the mean; False scores them 0."""

    def __post_init__(self) -> None:
        if self.mode == "alce" and self.attach_trailing:
            raise ValueError("attach_trailing must be off in ALCE-compatible mode")

    def describe(self) -> str:
        return (f"parse:{self.mode}|split:{self.splitter}|min:{self.min_chars}|k:{self.k}"
                f"|attach:{int(self.attach_trailing)}|empty:{'skip' if self.skip_empty else 'zero'}")


def split_output(output: str, cfg: CitationConfig, question: str = "") -> list[str]:
    if cfg.splitter == "qampari":
        items = output.rstrip().rstrip(".").rstrip(",").split(",")
        sents = [question + " " + x.strip() for x in items]
    else:
        sents = sentence_splitter(cfg.splitter)(output)
    if cfg.min_chars:
        sents = [s for s in sents if len(s.strip()) >= cfg.min_chars]
    if cfg.attach_trailing:
        sents = attach_trailing_citations(sents)
    return sents


def analyse_output(output: str, n_docs: int, cfg: CitationConfig, question: str = "") -> list[CitedSentence]:
    return [parse_citations(s, n_docs, cfg.mode, cfg.k) for s in split_output(output, cfg, question)]


def by_bucket(records: Sequence[Record], values: Sequence[float | None], key: str = "length_bucket"
              ) -> dict[str, float] | None:
    """Mean x100 of per-sample values per ``sample.metadata[key]`` (L-CiteEval length buckets); None when no
    record carries the key. ``None`` values (samples left out) are skipped."""
    groups: dict[str, list[float]] = {}
    for r, v in zip(records, values):
        b = r.sample.metadata.get(key)
        if b is None or v is None:
            continue
        groups.setdefault(str(b), []).append(v)
    return {b: 100 * sum(v) / len(v) for b, v in groups.items()} or None


# ------------------------------------------------------------------------------------------ NLI metric
def format_doc(doc: Mapping[str, Any], style: str = "alce") -> str:
    """Premise text of one document: ALCE/HELMET ``Title: {title}\\n{text}``; L-CiteEval ``Passage: {text}``."""
    if style == "lciteeval":
        return f"Passage: {doc['text']}" if not doc.get("title") else f"Title: {doc['title']}\nPassage: {doc['text']}"
    return "Title: %s\n%s" % (doc.get("title", ""), doc.get("sent", doc.get("text", "")))


@dataclass
class SampleCitations:
    recall: float
    precision: float
    f1: float
    n_sentences: int
    n_citations: int
    skipped: bool = False


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _plan(sents: Sequence[CitedSentence], docs: Sequence[Mapping[str, Any]], style: str
          ) -> list[tuple[CitedSentence, str | None, list[tuple[str, str]]]]:
    """Per sentence: the joint premise (None when rejected without asking) and the (single, leave-one-out)
    premises precision needs if the joint premise entails."""
    out = []
    for s in sents:
        if not s.ids or not s.valid:
            out.append((s, None, []))
            continue
        joint = "\n".join(format_doc(docs[i], style) for i in s.ids)
        extra = []
        if len(s.ids) > 1:
            for pos, i in enumerate(s.ids):
                rest = list(s.ids)
                rest.remove(i)  # first occurrence, as ALCE (duplicates kept in alce mode)
                extra.append((format_doc(docs[i], style), "\n".join(format_doc(docs[j], style) for j in rest)))
        out.append((s, joint, extra))
    return out


def score_sample(plan: Sequence[tuple[CitedSentence, str | None, list[tuple[str, str]]]],
                 entail: Callable[[str, str], bool], skip_empty: bool) -> SampleCitations:
    """Recall, precision and F1 of one sample from its plan and an entailment oracle (§4.4)."""
    n = len(plan)
    if n == 0:
        return SampleCitations(0.0, 0.0, 0.0, 0, 0, skipped=skip_empty)
    supported = useful = total = 0
    for s, joint, extra in plan:
        if joint is None:
            continue
        total += len(s.ids)
        ok = entail(joint, s.claim)
        supported += ok
        if ok and len(s.ids) > 1:
            for single, rest in extra:
                if entail(single, s.claim) or not entail(rest, s.claim):
                    useful += 1
        else:
            useful += ok
    r = supported / n
    p = useful / total if total else 0.0
    return SampleCitations(r, p, _f1(p, r), n, total)


def _pairs(plans: Sequence[Sequence[tuple[CitedSentence, str | None, list[tuple[str, str]]]]]
           ) -> Iterator[tuple[str, str]]:
    for plan in plans:
        for s, joint, extra in plan:
            if joint is None:
                continue
            yield joint, s.claim
            for single, rest in extra:
                yield single, s.claim
                yield rest, s.claim


def judge_kind(judge: Any) -> str:
    return "nli" if getattr(getattr(judge, "backend", None), "nli_pairs", False) else "llm"


def judge_pairs(judge: Any, pairs: Sequence[tuple[str, str]], id_prefix: str = "cite") -> dict[tuple[str, str], bool | None]:
    """Entailment verdicts for distinct (premise, claim) pairs in ONE judge call."""
    from ..judge import JudgeQuery
    from ..types import sha256_text, canonical_json

    uniq = list(dict.fromkeys(pairs))
    kind = judge_kind(judge)
    queries = []
    for p, c in uniq:
        qid = f"{id_prefix}/{sha256_text(canonical_json([p, c]))[:16]}"
        if kind == "nli":
            queries.append(JudgeQuery(qid, (Message("user", p), Message("user", c)), max_tokens=10))
        else:
            queries.append(JudgeQuery(qid, LLM_JUDGE_PROMPT.format(premise=p, claim=c)))
    if not queries:
        return {}
    if kind == "nli":
        gens = judge.generate(queries)
        verdicts: list[bool | None] = [(g.text.strip() == "1") if g.ok else None for g in gens]
    else:
        verdicts = judge.yes_no(queries)
    return dict(zip(uniq, verdicts))


@dataclass
class CitationAnalysis:
    per: list[SampleCitations]
    n_pairs: int
    n_invalid: int


def analyse_records(records: Sequence[Record], judge: Any, cfg: CitationConfig, style: str = "alce"
                    ) -> CitationAnalysis:
    """Parse every record, ask all needed entailment questions at once, then score each sample.

    A record's ``sample.target`` must hold ``docs`` (list of ``{title, text}``) and may hold ``question``
    (QAMPARI claims)."""
    plans = []
    for r in records:
        t = r.sample.target
        docs = t["docs"]
        sents = analyse_output(r.prediction, len(docs), cfg, t.get("question", ""))
        plans.append(_plan(sents, docs, style))
    verdicts = judge_pairs(judge, list(_pairs(plans)))
    n_invalid = sum(v is None for v in verdicts.values())
    per = [score_sample(plan, lambda p, c: bool(verdicts.get((p, c))), cfg.skip_empty) for plan in plans]
    return CitationAnalysis(per, len(verdicts), n_invalid)


NLI_NAMES = ("citation_rec", "citation_prec", "citation_f1_mean", "citation_f1_of_means")
"""``citation_f1_mean`` = mean over samples of per-sample F1 (L-CiteEval, LongBench-Cite);
``citation_f1_of_means`` = 2PR/(P+R) of the corpus means (reported by nobody upstream; for comparison)."""


class CitationNLI:
    """One of the NLI citation numbers (see :data:`NLI_NAMES`). Metrics of one task share their analysis
    (``shared``), so the judge is asked once per scoring pass."""

    needs_judge = True
    higher_is_better = True
    version = "1"

    def __init__(self, name: str = "citation_rec", config: CitationConfig | None = None, style: str = "alce",
                 shared: dict[str, Any] | None = None):
        if name not in NLI_NAMES:
            raise ValueError(f"unknown citation metric {name!r}; one of {NLI_NAMES}")
        self.name = name
        self.config = config or CitationConfig()
        self.style = style
        self._shared = shared if shared is not None else {}
        self._judge_id = "none"
        self._judge_kind = "none"

    def signature(self) -> str:
        return (f"citation|{self.name}|{self.config.describe()}|doc:{self.style}|judge_kind:{self._judge_kind}"
                f"|judge:{self._judge_id}|scale:100|v:{self.version}")

    def score(self, records: Sequence[Record], judge: Any = None) -> MetricResult:
        if judge is None:
            raise ValueError(f"{self.name} needs a judge (pass --judge-backend)")
        self._judge_id, self._judge_kind = judge.id, judge_kind(judge)
        memo = self._shared.get("analysis")
        if memo is not None and memo[0] is records and memo[1] == judge.id:
            an = memo[2]
        else:
            an = analyse_records(records, judge, self.config, self.style)
            self._shared["analysis"] = (records, judge.id, an)
        kept = [s for s in an.per if not s.skipped]
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        r, p = mean([s.recall for s in kept]), mean([s.precision for s in kept])
        if self.name == "citation_f1_of_means":
            value, per_sample = 100 * _f1(p, r), None
        else:
            attr = {"citation_rec": "recall", "citation_prec": "precision", "citation_f1_mean": "f1"}[self.name]
            value = 100 * mean([getattr(s, attr) for s in kept])
            per_sample = None if len(kept) != len(an.per) else tuple(getattr(s, attr) for s in an.per)
        details = {"n_samples_scored": len(kept), "n_skipped_no_sentence": len(an.per) - len(kept),
                   "n_pairs_judged": an.n_pairs, "n_invalid_verdicts": an.n_invalid,
                   "n_sentences": sum(s.n_sentences for s in an.per),
                   "n_citations": sum(s.n_citations for s in an.per)}
        if self.name != "citation_f1_of_means":
            buckets = by_bucket(records, [None if s.skipped else getattr(s, attr) for s in an.per])
            if buckets:
                details["by_length_bucket"] = buckets
        if per_sample is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), per_sample, True, details)


# ------------------------------------------------------------------------------------------ rule-based
RULE_NAMES = ("cite_doc_prec", "cite_doc_rec", "cite_doc_f1", "cite_sent_rec")


def rule_scores(sents: Sequence[CitedSentence], gold: set[int]) -> dict[str, float]:
    """Document-level P/R/F1 of the union of cited ids against gold ids (out-of-range ids count in the
    denominator), and sentence-level recall (a sentence is supported iff it cites a gold doc)."""
    cited: set[int] = set()
    for s in sents:
        cited.update(s.ids)
    hit = len(cited & gold)
    p = hit / len(cited) if cited else 0.0
    r = hit / len(gold) if gold else 0.0
    sr = sum(bool(set(s.ids) & gold) for s in sents) / len(sents) if sents else 0.0
    return {"cite_doc_prec": p, "cite_doc_rec": r, "cite_doc_f1": _f1(p, r), "cite_sent_rec": sr}


class CitationRule:
    """Rule-based citation scores against gold supporting-document ids (``sample.target["gold_doc_ids"]``,
    0-based); samples without gold ids are left out and counted. Citations are parsed in strict mode."""

    needs_judge = False
    higher_is_better = True
    version = "1"

    def __init__(self, name: str = "cite_doc_f1", config: CitationConfig | None = None):
        if name not in RULE_NAMES:
            raise ValueError(f"unknown rule-based citation metric {name!r}; one of {RULE_NAMES}")
        self.name = name
        self.config = config or CitationConfig(mode="strict")

    def signature(self) -> str:
        return f"citation_rule|{self.name}|{self.config.describe()}|scale:100|v:{self.version}"

    def score(self, records: Sequence[Record]) -> MetricResult:
        vals: list[float | None] = []
        for r in records:
            t = r.sample.target
            gold = t.get("gold_doc_ids")
            if gold is None:
                vals.append(None)
                continue
            sents = analyse_output(r.prediction, len(t["docs"]), self.config, t.get("question", ""))
            # out-of-range ids stay in the cited set (they hurt precision); strict mode marks them invalid
            vals.append(rule_scores(sents, set(gold))[self.name])
        kept = [v for v in vals if v is not None]
        value = 100 * sum(kept) / len(kept) if kept else float("nan")
        per = tuple(kept) if len(kept) == len(vals) else None
        details: dict[str, Any] = {"n_with_gold": len(kept), "n_without_gold": len(vals) - len(kept)}
        buckets = by_bucket(records, vals)
        if buckets:
            details["by_length_bucket"] = buckets
        if per is not None:
            details["scale"] = 100.0
        return MetricResult(self.name, value, self.signature(), per, True, details)


def niah_citation(output: str, docs: Sequence[Mapping[str, Any]], answer: Any, k: int = K_MAX
                  ) -> tuple[float, float, float]:
    """L-CiteEval niah: gold = the first document containing the answer; only the first line of the stripped
    output counts; ids as ALCE (``[\\d+``, duplicates kept, first k, no range check). Recall 1 if the gold
    document is cited, precision 1/#citations then, else both 0. When no document holds the answer upstream
    reuses the previous sample's gold index (a bug); here the sample scores 0."""
    ans = answer if isinstance(answer, str) else (answer[0] if answer else "")
    gold = next((j for j, d in enumerate(docs) if ans and ans in d["text"]), None)
    first = output.strip().split("\n", 1)[0]
    ref = [int(m[1:]) - 1 for m in _ALCE_CITE.findall(first)][:k]
    if gold is None or gold not in ref:
        return 0.0, 0.0, 0.0
    p = 1 / len(ref)
    return 1.0, p, _f1(p, 1.0)


COUNTING_STARS_MARK = "The little penguin counted"


def counting_stars_citation(output: str, docs: Sequence[Mapping[str, Any]]) -> tuple[float, float, float]:
    """L-CiteEval counting_stars: gold = 1-based ids of documents containing "The little penguin counted";
    the answer is the JSON object from the first "{" to the first "}" of the output; predicted ids =
    set(passage_id) compared as JSON values (a string "3" does not match 3, as upstream). Unparseable output
    or no ``passage_id`` scores 0 (recall, precision, F1)."""
    import json

    gold = {j + 1 for j, d in enumerate(docs) if COUNTING_STARS_MARK in d["text"]}
    text = output.strip()
    try:
        obj = json.loads(text[text.index("{"): text.index("}") + 1])
        pred = set(obj["passage_id"])
    except (ValueError, KeyError, TypeError):
        return 0.0, 0.0, 0.0
    hit = sum(1 for x in pred if x in gold)
    p = hit / len(pred) if pred else 0.0
    r = hit / len(gold) if gold else 0.0
    return r, p, _f1(p, r)


LCITE_RULE_NAMES = ("citation_rec", "citation_prec", "citation_f1_mean")


class LCiteEvalRule:
    """L-CiteEval's rule-based citation scores for ``niah`` and ``counting_stars`` (no judge)."""

    needs_judge = False
    higher_is_better = True
    version = "1"

    def __init__(self, name: str, task: str):
        if name not in LCITE_RULE_NAMES or task not in ("niah", "counting_stars"):
            raise ValueError(f"LCiteEvalRule: bad name/task {name!r}/{task!r}")
        self.name, self.task = name, task

    def signature(self) -> str:
        return f"citation_lciteeval_rule|{self.task}|{self.name}|k:{K_MAX}|scale:100|v:{self.version}"

    def score(self, records: Sequence[Record]) -> MetricResult:
        pos = LCITE_RULE_NAMES.index(self.name)
        per = []
        for r in records:
            t = r.sample.target
            trip = niah_citation(r.prediction, t["docs"], t.get("answer")) if self.task == "niah" \
                else counting_stars_citation(r.prediction, t["docs"])
            per.append(trip[pos])
        value = 100 * sum(per) / len(per) if per else float("nan")
        details: dict[str, Any] = {"scale": 100.0}
        buckets = by_bucket(records, per)
        if buckets:
            details["by_length_bucket"] = buckets
        return MetricResult(self.name, value, self.signature(), tuple(per), True, details)


# ------------------------------------------------------------------------------------------ NLI backends
class _NLIBackend:
    """Base of the local NLI judge backends: one ``generate`` call gets every question of a scoring pass
    (the judge plugin hands all uncached questions over at once) and runs them in forward batches."""

    nli_pairs = True
    tokenizer = None
    max_model_len = None
    sort_by_length = False
    kind = "nli"

    def __init__(self, model: str | None = None, batch_size: str | int = 16, device: str = "cpu",
                 max_length: str | int = 512, **options: Any):
        from ..errors import UserError

        if options:
            raise UserError(f"backend {self.kind}: unknown option(s) {sorted(options)}; accepted: "
                            "['batch_size', 'device', 'max_length']")
        if not model:
            raise UserError(f"backend {self.kind}: pass --judge-model <local folder or hub id>")
        self.model_path = model
        self.forward_batch = int(batch_size)
        self.batch_size = 1 << 30  # the judge plugin must not split a scoring pass
        self.device = device
        self.max_length = int(max_length)
        self.n_generate_calls = 0
        self.n_forward_calls = 0
        self._load()
        self.id = f"{self.kind}:{self._identity()}|maxlen:{self.max_length}"

    def _identity(self) -> str:
        from pathlib import Path

        p = Path(self.model_path)
        if p.is_dir():
            import hashlib

            h = hashlib.sha256()
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"}:
                    h.update(f.name.encode())
                    h.update(f.read_bytes())
            return f"{p.name}@sha256:{h.hexdigest()[:16]}"
        return self.model_path

    @staticmethod
    def _pair(req: Request) -> tuple[str, str]:
        msgs = req.messages()
        if len(msgs) != 2:
            raise ValueError("NLI backends answer (premise, hypothesis) message pairs only")
        return msgs[0].text, msgs[1].text

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        yield from enumerate(self.generate(requests))

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.n_generate_calls += 1
        pairs = [self._pair(r) for r in requests]
        out: list[Generation] = []
        for start in range(0, len(pairs), self.forward_batch):
            self.n_forward_calls += 1
            out.extend(Generation(t, "stop") for t in self._verdicts(pairs[start:start + self.forward_batch]))
        return out

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "generate_calls": self.n_generate_calls,
                "forward_calls": self.n_forward_calls}

    def close(self) -> None:
        self._model = None


class NLIClassifierBackend(_NLIBackend):
    """A sequence-pair classifier (L-CiteEval: ``tasksource/deberta-base-long-nli``): entailed iff the
    arg-max label is ``entailment`` (case-insensitive)."""

    kind = "nli_classifier"

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.model_path).to(self.device).eval()
        labels = {i: str(l).lower() for i, l in self._model.config.id2label.items()}
        ent = [i for i, l in labels.items() if l == "entailment"]
        if len(ent) != 1:
            from ..errors import UserError
            raise UserError(f"nli_classifier: model labels {labels} have no single 'entailment' label")
        self._entail_id = ent[0]
        # never feed more positions than the model has (an over-long pair is truncated, as the HF pipeline does)
        limits = [self.max_length, getattr(self._model.config, "max_position_embeddings", None),
                  getattr(self._tok, "model_max_length", None)]
        self.max_length = min(int(x) for x in limits if isinstance(x, int) and x > 0)

    def _verdicts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        import torch

        enc = self._tok([p for p, _ in pairs], [c for _, c in pairs], truncation=True,
                        max_length=self.max_length, padding=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self._model(**enc).logits
        return ["1" if int(i) == self._entail_id else "0" for i in logits.argmax(-1).tolist()]


class NLISeq2SeqBackend(_NLIBackend):
    """A T5-style NLI model (ALCE/HELMET: ``google/t5_xxl_true_nli_mixture``): input
    ``premise: {p} hypothesis: {c}``, greedy up to 10 new tokens, entailed iff the decoded text is ``1``."""

    kind = "nli_seq2seq"

    def _load(self) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_path).to(self.device).eval()

    def _verdicts(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        import torch

        texts = [f"premise: {p} hypothesis: {c}" for p, c in pairs]
        enc = self._tok(texts, return_tensors="pt", padding=True, truncation=True,
                        max_length=self.max_length).to(self.device)
        with torch.inference_mode():
            outs = self._model.generate(**enc, max_new_tokens=10, do_sample=False)
        return ["1" if self._tok.decode(o, skip_special_tokens=True) == "1" else "0" for o in outs]


__all__ = ["CitationConfig", "CitationNLI", "CitationRule", "CitedSentence", "LCiteEvalRule", "NLIClassifierBackend",
           "NLISeq2SeqBackend", "analyse_output", "counting_stars_citation", "niah_citation", "analyse_records", "attach_trailing_citations",
           "parse_citations", "remove_citations_alce", "rule_scores", "score_sample", "split_output"]
