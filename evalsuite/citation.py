"""Citation evaluation, the library: sentence splitting, citation parsing, the NLI questions a sample needs and
its recall / precision / F1 from the verdicts (ALCE, HELMET, L-CiteEval), and the rule-based scores against
gold supporting documents. The metrics built on it are ``evalsuite.metrics.citation``; the NLI judge
backends are ``evalsuite.backends.nli``; benchmark-specific rules live with their tasks (L-CiteEval's niah
and counting_stars: ``tasks/lciteeval/_rule.py``).

Definitions follow the spec (tasks-longbench-ruler-longproc-cite.md §4.4); docs/citation.md explains them.

Entailment is asked of the run's judge (``--judge-backend``, see docs/judge.md), so verdicts are batched,
de-duplicated, cached in ``<run>/<task>/judge.jsonl`` and resumable. Two kinds of judge backend are understood:

* an **NLI backend** (``nli_seq2seq``: a T5-style "premise: ... hypothesis: ..." model answering ``1``,
  ALCE/HELMET parity; ``nli_classifier``: a sequence-pair classifier, L-CiteEval parity). Such a backend
  declares ``evalsuite.contracts.NLIPairs``; it receives each question as two user messages
  ``(premise, hypothesis)`` and answers ``"1"`` (entailed) or ``"0"``.
* any other backend is an **LLM judge**: it gets a yes/no question (:data:`LLM_JUDGE_PROMPT`).

All questions of a scoring pass (joint passages, single passages and leave-one-out subsets for precision) are
built first and sent in ONE ``judge.generate`` call; identical (passage, claim) pairs are asked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from .contracts import NLIPairs
from .signature import Signature
from .judge import Judge, JudgeQuery
from .types import Message, Record, canonical_json, sha256_text

K_MAX = 3
"""At most this many citations per sentence are evaluated (ALCE ``at_most_citations=3``, L-CiteEval)."""
MIN_SENT_CHARS = 5
"""HELMET drops sentences shorter than 5 characters (after stripping), e.g. a lone "1."."""

ALCE_CITE = re.compile(r"\[\d+")
"""ALCE's citation pattern: ``[`` and digits (``[1][2]`` gives 1 and 2; ``[1, 2]`` only 1)."""
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
        ids = [int(m[1:]) - 1 for m in ALCE_CITE.findall(sentence)]
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
        from .text import english_sentence_splitter

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

    def signature(self) -> Signature:
        """The settings that move a citation score, as signature parts."""
        return Signature(parse=self.mode, split=self.splitter, min=self.min_chars, k=self.k,
                         attach=int(self.attach_trailing), empty="skip" if self.skip_empty else "zero")

    def describe(self) -> str:
        return str(self.signature())


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
def format_doc(doc: Mapping[str, Any]) -> str:
    """Premise text of one document as ALCE/HELMET write it: ``Title: {title}\n{text}`` (a benchmark with
    another layout passes its own ``premise`` function, e.g. L-CiteEval's ``Passage: {text}``)."""
    return "Title: %s\n%s" % (doc.get("title", ""), doc.get("sent", doc.get("text", "")))


Premise = Callable[[Mapping[str, Any]], str]
"""How a benchmark writes one document as NLI premise text."""


@dataclass
class SampleCitations:
    recall: float
    precision: float
    f1: float
    n_sentences: int
    n_citations: int
    skipped: bool = False


def harmonic_f1(p: float, r: float) -> float:
    """2PR/(P+R), 0 when both are 0."""
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _plan(sents: Sequence[CitedSentence], docs: Sequence[Mapping[str, Any]], premise: Premise
          ) -> list[tuple[CitedSentence, str | None, list[tuple[str, str]]]]:
    """Per sentence: the joint premise (None when rejected without asking) and the (single, leave-one-out)
    premises precision needs if the joint premise entails."""
    out = []
    for s in sents:
        if not s.ids or not s.valid:
            out.append((s, None, []))
            continue
        joint = "\n".join(premise(docs[i]) for i in s.ids)
        extra = []
        if len(s.ids) > 1:
            for pos, i in enumerate(s.ids):
                rest = list(s.ids)
                rest.remove(i)  # first occurrence, as ALCE (duplicates kept in alce mode)
                extra.append((premise(docs[i]), "\n".join(premise(docs[j]) for j in rest)))
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
    return SampleCitations(r, p, harmonic_f1(p, r), n, total)


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


def judge_kind(judge: Judge) -> str:
    """``nli`` for a judge whose backend answers (premise, hypothesis) pairs (``contracts.NLIPairs``), else
    ``llm`` (a yes/no question)."""
    return "nli" if isinstance(judge.backend, NLIPairs) and judge.backend.nli_pairs else "llm"


def judge_pairs(judge: Judge, pairs: Sequence[tuple[str, str]], id_prefix: str = "cite") -> dict[tuple[str, str], bool | None]:
    """Entailment verdicts for distinct (premise, claim) pairs in ONE judge call."""

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


def analyse_records(records: Sequence[Record], judge: Judge, cfg: CitationConfig,
                    premise: Premise = format_doc) -> CitationAnalysis:
    """Parse every record, ask all needed entailment questions at once, then score each sample.

    A record's ``sample.target`` must hold ``docs`` (list of ``{title, text}``) and may hold ``question``
    (QAMPARI claims)."""
    plans = []
    for r in records:
        t = r.sample.target
        docs = t["docs"]
        sents = analyse_output(r.prediction, len(docs), cfg, t.get("question", ""))
        plans.append(_plan(sents, docs, premise))
    verdicts = judge_pairs(judge, list(_pairs(plans)))
    n_invalid = sum(v is None for v in verdicts.values())
    per = [score_sample(plan, lambda p, c: bool(verdicts.get((p, c))), cfg.skip_empty) for plan in plans]
    return CitationAnalysis(per, len(verdicts), n_invalid)


# ------------------------------------------------------------------------------------------ rule-based
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
    return {"cite_doc_prec": p, "cite_doc_rec": r, "cite_doc_f1": harmonic_f1(p, r), "cite_sent_rec": sr}


__all__ = ["ALCE_CITE", "CitationAnalysis", "CitationConfig", "CitedSentence", "K_MAX", "LLM_JUDGE_PROMPT", "MIN_SENT_CHARS",
           "Premise", "SampleCitations", "analyse_output", "analyse_records", "attach_trailing_citations", "by_bucket",
           "format_doc", "harmonic_f1", "judge_kind", "judge_pairs", "parse_citations", "remove_citations_alce",
           "remove_citations_strict", "rule_scores", "score_sample", "sentence_splitter", "split_output"]
