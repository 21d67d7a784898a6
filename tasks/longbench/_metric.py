"""LongBench v1 and LongBench-E metrics, scored the way THUDM/LongBench's ``LongBench/eval.py`` and
``LongBench/metrics.py`` (commit 2e00731f) score them, quirks included, so that our numbers equal the
official ones to the last printed digit.

Each dataset has one metric function (``DATASET_METRIC``). An item's score is the best score over its
reference answers, starting from 0.0; for trec, triviaqa, samsum and lsht the prediction is first cut
to its first line (``pred.lstrip("\\n").split("\\n")[0]``). The dataset score is
``round(100 * sum / n, 2)``; LongBench-E also reports the mean per length bucket (0-4k, 4-8k, 8k+).

Behaviour kept from upstream on purpose (each is load-bearing for parity):

* ``classification_score`` removes items from the list it is iterating over, so the element after a
  removed one is never examined.
* ``code_sim_score`` takes the first line with none of "`", "#", "//" -- an empty line qualifies -- and
  compares it with fuzzywuzzy 0.18's ``fuzz.ratio`` on the pure-Python ``difflib`` matcher (what the
  official numbers were made with; python-Levenshtein moves the code scores by about 2 points).
* ``rouge_score`` is ROUGE-L as the PyPI ``rouge`` package (pltrdy, 1.0.1) computes it, and that
  package's back-trace is recursive: any exception (empty text, or RecursionError on a long sentence
  pair) scores 0.0 upstream. We compute the same numbers without recursion (``_rouge_l``) and fail
  exactly the pairs the official run fails, by an explicit rule on the back-trace's length
  (``_rouge_l.official_max_steps``); the zeros are counted in ``details``.
* LongBench-E buckets are averaged as numpy averages them (pairwise summation, ``np.round``).

Speed: the official scorer spends nearly all its time filling rouge's pure-Python LCS tables (one per
pair of reference and predicted sentences) and recursing through them. ``_rouge_l`` fills the tables
bit-parallel for all predicted sentences at once and walks them back by jumps; only ROUGE-L is computed
(the official call also computes ROUGE-1/2 and drops them); jieba is loaded once per process and each
text segmented once. Scores are unchanged (benchmarks/longbench_scorer.py compares with eval.py).
"""

from __future__ import annotations

import re
import string
import sys
import threading
from collections import Counter
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.errors import UserError
from evalsuite.types import Generation, MetricResult, Record, Sample

from . import _rouge_l as _rl

DATASET_METRIC: Mapping[str, str] = {
    "narrativeqa": "qa_f1_score",
    "qasper": "qa_f1_score",
    "multifieldqa_en": "qa_f1_score",
    "multifieldqa_zh": "qa_f1_zh_score",
    "hotpotqa": "qa_f1_score",
    "2wikimqa": "qa_f1_score",
    "musique": "qa_f1_score",
    "dureader": "rouge_zh_score",
    "gov_report": "rouge_score",
    "qmsum": "rouge_score",
    "multi_news": "rouge_score",
    "vcsum": "rouge_zh_score",
    "trec": "classification_score",
    "triviaqa": "qa_f1_score",
    "samsum": "rouge_score",
    "lsht": "classification_score",
    "passage_retrieval_en": "retrieval_score",
    "passage_count": "count_score",
    "passage_retrieval_zh": "retrieval_zh_score",
    "lcc": "code_sim_score",
    "repobench-p": "code_sim_score",
}
"""eval.py's ``dataset2metric``: the metric function of each of the 21 v1 datasets."""

FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})
"""Few-shot sets whose prediction is cut to its first line: the model tends to continue with more
demonstration-style lines."""

BUCKETS = ("0-4k", "4-8k", "8k+")
"""LongBench-E length buckets over the row's ``length`` (words, or characters for Chinese)."""

_CN_PUNCTUATION = ("！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙"
                   "〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.")
_DROP_EN = str.maketrans("", "", string.punctuation)
_DROP_ZH = str.maketrans("", "", string.punctuation + _CN_PUNCTUATION)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"\d+")  # Unicode digits too, as upstream's pattern
_PARAGRAPH_EN = re.compile(r"Paragraph (\d+)")
_PARAGRAPH_ZH = re.compile(r"段落(\d+)")


# -- text normalization and token F1 ----------------------------------------------------------------
def normalize_answer(s: str) -> str:
    """SQuAD-style English normalization: lowercase, drop ASCII punctuation, articles -> space,
    collapse whitespace (in this order)."""
    s = s.lower().translate(_DROP_EN)
    return " ".join(_ARTICLES.sub(" ", s).split())


def normalize_zh_answer(s: str) -> str:
    """Chinese normalization: lowercase, drop ASCII and CJK punctuation, remove all whitespace."""
    return "".join(s.lower().translate(_DROP_ZH).split())


def _token_f1(pred: Sequence[str], ref: Sequence[str]) -> float:
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:  # also covers an empty side
        return 0.0
    precision = 1.0 * same / len(pred)
    recall = 1.0 * same / len(ref)
    # Same operation order as upstream so the floats (and the rounded total) are bit-identical.
    return (2 * precision * recall) / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Bag-of-words F1 of the normalized English texts."""
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def _zh_tokens(text: str) -> list[str]:
    # Segment the raw text first, normalize each word after: punctuation only disappears word by word.
    tokens = (normalize_zh_answer(t) for t in _jieba_cut(text))
    return [t for t in tokens if t]


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Bag-of-words F1 over jieba words, each normalized, empty words dropped."""
    return _token_f1(_zh_tokens(prediction), _zh_tokens(ground_truth))


# -- classification, counting, retrieval ------------------------------------------------------------
def classification_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None,
                         **_: Any) -> float:
    """1/k when the true class is among the k class names found in the prediction, else 0.

    Class names that are substrings of the true class (but not it) are removed first -- by upstream's
    loop, which removes from the list it iterates, so the element that slides into the freed slot is
    skipped and stays. Written out with an explicit index to make that visible.
    """
    if all_classes is None:
        raise UserError("classification_score needs the dataset's all_classes")
    matches = [c for c in all_classes if c in prediction]
    i = 0
    while i < len(matches):
        term = matches[i]
        if term in ground_truth and term != ground_truth:
            matches.remove(term)  # removes the first equal element, as list.remove does upstream
        i += 1
    return 1.0 / len(matches) if ground_truth in matches else 0.0


def _fraction_equal(prediction: str, target: str) -> float:
    numbers = _NUMBER.findall(prediction)
    if not numbers:
        return 0.0
    return float(sum(n == target for n in numbers) / len(numbers))


def count_score(prediction: str, ground_truth: Any, **_: Any) -> float:
    """Fraction of the numbers in the prediction that equal the true count."""
    return _fraction_equal(prediction, str(ground_truth))


def _paragraph_id(pattern: re.Pattern[str], ground_truth: str) -> str:
    found = pattern.findall(ground_truth)
    if not found:  # upstream fails with IndexError here
        raise UserError(f"retrieval answer {ground_truth!r} does not name a paragraph ({pattern.pattern})")
    return found[0]


def retrieval_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Fraction of the numbers in the prediction equal to N of the answer's first "Paragraph N"."""
    return _fraction_equal(prediction, _paragraph_id(_PARAGRAPH_EN, ground_truth))


def retrieval_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """As ``retrieval_score`` with "段落N"."""
    return _fraction_equal(prediction, _paragraph_id(_PARAGRAPH_ZH, ground_truth))


# -- code ---------------------------------------------------------------------------------------------
def fuzz_ratio(a: str, b: str) -> int:
    """fuzzywuzzy 0.18 ``fuzz.ratio`` without python-Levenshtein, i.e. on ``difflib``.

    100 when equal (two empty strings included), 0 when one is empty, else
    ``int(round(100 * SequenceMatcher(None, a, b).ratio()))`` with difflib's default autojunk.
    """
    from difflib import SequenceMatcher

    if a == b:
        return 100
    if not a or not b:
        return 0
    return int(round(100 * SequenceMatcher(None, a, b).ratio()))


def code_line(prediction: str) -> str:
    """The predicted line that ``code_sim_score`` compares: after dropping leading newlines, the first
    line with no "`", "#" or "//" (markdown fences and comments); it may be empty. "" if none."""
    for line in prediction.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            return line
    return ""


def code_sim_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """``fuzz_ratio(code_line(prediction), ground_truth) / 100``."""
    return fuzz_ratio(code_line(prediction), str(ground_truth)) / 100


# -- ROUGE-L (rouge 1.0.1) ------------------------------------------------------------------------------
# The longest back-trace rouge completes inside the official eval.py before RecursionError (the pair then
# scores 0 there): see _rouge_l.official_max_steps, measured on CPython 3.10-3.13.
ROUGE_VERSION = "1.0.1"
"""The rouge release whose ROUGE-L (values and failing pairs) ``_rouge_l`` reproduces; in the signature."""
_MAX_STEPS = {fn: _rl.official_max_steps(fn) for fn in ("rouge_score", "rouge_zh_score")}
# The same budget as frames above rouge_l_summary_level's caller, for running rouge itself (audit path):
# rouge_l_summary_level, _union_lcs, _recon_lcs, then steps + 1 nested _recon.
_ROUGE_FRAMES = {fn: steps + 4 for fn, steps in _MAX_STEPS.items()}

_rouge_lock = threading.Lock()
"""Held while the recursion limit is moved (process-wide) for the audit path."""


def _dive(depth: int) -> int:
    try:
        return _dive(depth + 1)
    except RecursionError:
        return depth


def _recursion_budget(frames: int) -> int:
    """Set the recursion limit so that exactly ``frames`` Python frames fit above the caller's frame;
    return the old limit.

    Only for running rouge 1.0.1 itself (``LongBench(fast_lcs=False)``, the audit path the tests compare
    with): its recursive back-trace fails by the stack room left, so the room is measured (``_dive``) and
    the limit moved by the difference, to give rouge the official eval.py's room wherever we run. The
    limit is process-wide: callers hold ``_rouge_lock`` and restore it.
    """
    old = sys.getrecursionlimit()
    room = 1 + _dive(1)  # this function's frame, then the _dive frames above it
    sys.setrecursionlimit(old + frames - room)
    return old


def _sentences(text: str) -> list[str]:
    return _rl.sentences(text)


def _rouge_l_batch(pairs: Sequence[tuple[str, str]], fn: str, fast: bool = True
                   ) -> list[tuple[float, str | None]]:
    """ROUGE-L F of each ``(hypothesis, reference)`` pair as the official ``rouge_score`` (``fn``) gets it
    from rouge 1.0.1: ``(f, None)``, or ``(0.0, error type)`` where the official call raises.

    ``fast``: our iterative ROUGE-L (``_rouge_l``), RecursionError decided by the official walk budget;
    else rouge 1.0.1 itself, run with the official stack room (slow; for audits and tests).
    """
    if fast:
        max_steps = _MAX_STEPS[fn]
        out: list[tuple[float, str | None]] = []
        hyps: dict[str, Any] = {}
        for hyp, ref in pairs:
            if hyp not in hyps:  # one prediction against several answers: lay it out once
                hyps[hyp] = _rl.prepare(hyp)
            h = hyps[hyp]
            out.append(_rl.rouge_l(h, ref, max_steps) if h is not None else (0.0, "ValueError"))
        return out
    _check_rouge()
    import rouge.rouge_score as rouge_impl

    out = []
    with _rouge_lock:
        old = _recursion_budget(_ROUGE_FRAMES[fn])
        try:
            for hyp, ref in pairs:
                try:
                    out.append((rouge_impl.rouge_l_summary_level(_sentences(hyp), _sentences(ref))["f"], None))
                except Exception as exc:  # upstream's bare except: any failure scores 0
                    out.append((0.0, type(exc).__name__))
        finally:
            sys.setrecursionlimit(old)
    return out


def _jieba() -> Any:
    """jieba with its dictionary loaded once per process (``_jieba.jieba``: from our fast cache)."""
    from ._jieba import jieba

    return jieba()


def _jieba_cut(text: str) -> list[str]:
    """``list(jieba.cut(text, cut_all=False))``, each distinct block segmented once (``_jieba.cut``)."""
    from ._jieba import cut

    return cut(text)


def _jieba_join(text: str) -> str:
    return " ".join(_jieba_cut(text))


def _check_rouge() -> None:
    try:
        import rouge.rouge_score  # noqa: F401
    except ImportError:
        raise UserError("LongBench(fast_lcs=False) runs rouge itself: pip install 'rouge==1.0.1'") from None


def rouge_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F (rouge 1.0.1, sentences split on ".", case-sensitive, no stemming); 0.0 where the
    official call fails (an empty side, or a back-trace too long for its stack)."""
    return _rouge_l_batch([(prediction, ground_truth)], "rouge_score")[0][0]


def rouge_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """``rouge_score`` on jieba-segmented texts (words joined by spaces)."""
    pair = (_jieba_join(prediction), _jieba_join(ground_truth))
    return _rouge_l_batch([pair], "rouge_zh_score")[0][0]


METRIC_FUNCTIONS: Mapping[str, Callable[..., float]] = {
    "qa_f1_score": qa_f1_score,
    "qa_f1_zh_score": qa_f1_zh_score,
    "rouge_score": rouge_score,
    "rouge_zh_score": rouge_zh_score,
    "classification_score": classification_score,
    "count_score": count_score,
    "retrieval_score": retrieval_score,
    "retrieval_zh_score": retrieval_zh_score,
    "code_sim_score": code_sim_score,
}


# -- aggregation --------------------------------------------------------------------------------------
def _numpy_sum(xs: Sequence[float]) -> float:
    """The float64 sum numpy's ``add.reduce`` returns: pairwise, 8-way unrolled blocks of <= 128."""

    def block(lo: int, n: int) -> float:
        if n < 8:
            total = 0.0
            for i in range(lo, lo + n):
                total += xs[i]
            return total
        if n <= 128:
            acc = [xs[lo + j] for j in range(8)]
            i = 8
            while i < n - n % 8:
                for j in range(8):
                    acc[j] += xs[lo + i + j]
                i += 8
            total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
            for i in range(i, n):
                total += xs[lo + i]
            return total
        half = n // 2
        half -= half % 8
        return block(lo, half) + block(lo + half, n - half)

    return 0.0 + block(0, len(xs))


def _bucket_score(xs: Sequence[float]) -> float | None:
    """``round(100 * np.mean(xs), 2)`` as eval.py's ``scorer_e`` computes it; None where numpy gives NaN
    (an empty bucket), so the value stays valid JSON."""
    if not xs:
        return None
    # np.round on a float64 rounds half-to-even on x * 100, unlike Python's correctly rounded round(x, 2).
    return round(100 * (_numpy_sum(xs) / len(xs)) * 100) / 100


def length_bucket(length: float) -> str:
    """LongBench-E's bucket of a row ``length``."""
    if length < 4000:
        return "0-4k"
    if length < 8000:
        return "4-8k"
    return "8k+"


@lru_cache(maxsize=None)
def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def _answers(record: Record) -> list[str]:
    target = record.sample.target
    if isinstance(target, str):
        return [target]
    return [a if isinstance(a, str) else str(a) for a in (target or ())]


# -- the metric -----------------------------------------------------------------------------------------
class LongBench:
    """LongBench v1 / LongBench-E score of one dataset: the mean best-over-answers item score, x100.

    Reads ``record.prediction``, the answers in ``record.sample.target`` and, from
    ``record.sample.metadata``, ``all_classes`` (trec, lsht) and ``length`` (buckets).

    ``details``: ``official`` (the number eval.py prints: value rounded to 2), ``buckets`` (LongBench-E
    means per length bucket, rounded to 2 as upstream, null for an empty bucket; present when every
    record has a ``length``), ``bucket_counts``, and for ROUGE datasets ``rouge_errors`` (pairs that
    raised and scored 0, as upstream does silently), ``rouge_error_types`` and ``rouge_error_samples``.

    Args:
        dataset: the v1 dataset id (``gov_report``); None takes it from the records' ``dataset``
            metadata (all must agree), for ``score-file --metric longbench``.
        fast_lcs: ROUGE-L by ``_rouge_l`` (same values, same failing pairs, tens of times faster);
            False runs the installed rouge 1.0.1 itself with the official stack room, for auditing.
    """

    name = "longbench"
    higher_is_better = True
    scale = 100.0
    version = "1"

    def __init__(self, dataset: str | None = None, fast_lcs: bool = True):
        if dataset is not None and dataset not in DATASET_METRIC:
            raise UserError(f"unknown LongBench dataset {dataset!r}; known: {', '.join(DATASET_METRIC)}")
        self.dataset = dataset
        self.fast_lcs = bool(fast_lcs)

    def signature(self, dataset: str | None = None) -> str:
        ds = dataset or self.dataset
        if ds is None:
            return str(Signature(self.name, dataset="auto", v=self.version))
        fn = DATASET_METRIC[ds]
        sig = Signature(self.name, dataset=ds, fn=fn, first_line="yes" if ds in FIRST_LINE_DATASETS else "no")
        # Only the backends that move this dataset's number.
        if fn.startswith("rouge"):
            sig.add("rouge", ROUGE_VERSION)
        if fn.endswith("zh_score") and fn != "retrieval_zh_score":
            sig.add("jieba", _version("jieba"))
        if fn == "code_sim_score":
            sig.add("fuzz", "difflib")
        return str(sig.extend(scale=self.scale, v=self.version))

    def _resolve_dataset(self, records: Sequence[Record]) -> str:
        if self.dataset is not None:
            return self.dataset
        found = {str(r.sample.metadata.get("dataset")) for r in records if r.sample.metadata.get("dataset")}
        if len(found) != 1 or any(not r.sample.metadata.get("dataset") for r in records):
            raise UserError("longbench: name the dataset (LongBench(dataset=...), or a `dataset` field on every "
                            f"line, all the same); found {sorted(found) or 'none'}")
        ds = found.pop()
        if ds not in DATASET_METRIC:
            raise UserError(f"unknown LongBench dataset {ds!r}; known: {', '.join(DATASET_METRIC)}")
        return ds

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        dataset = self._resolve_dataset(records)
        fn = DATASET_METRIC[dataset]
        preds = [r.prediction if isinstance(r.prediction, str) else str(r.prediction) for r in records]
        if dataset in FIRST_LINE_DATASETS:
            preds = [p.lstrip("\n").split("\n")[0] for p in preds]
        answers = [_answers(r) for r in records]
        details: dict[str, Any] = {"scale": self.scale, "dataset": dataset, "metric_fn": fn}

        if fn in ("rouge_score", "rouge_zh_score"):
            per = self._rouge_items(records, fn, preds, answers, details)
        else:
            per = self._plain_items(records, fn, preds, answers)

        total = 0.0
        for s in per:  # eval.py's running sum, in order (sum() may compensate rounding on new Pythons)
            total += s
        value = 100 * total / len(per) if per else float("nan")
        details["official"] = round(value, 2) if per else None
        self._buckets(records, per, details)
        return MetricResult(name=self.name, value=value, signature=self.signature(dataset),
                            per_sample=tuple(per), higher_is_better=True, details=details)

    def _plain_items(self, records: Sequence[Record], fn: str, preds: list[str],
                     answers: list[list[str]]) -> list[float]:
        metric = METRIC_FUNCTIONS[fn]
        per = []
        for rec, pred, refs in zip(records, preds, answers):
            kwargs: dict[str, Any] = {}
            if fn == "classification_score":
                kwargs["all_classes"] = rec.sample.metadata.get("all_classes")
                if kwargs["all_classes"] is None:
                    raise UserError(f"longbench: sample {rec.sample.id!r} has no all_classes (needed by "
                                    "classification_score)")
            elif fn == "qa_f1_zh_score":
                # jieba is deterministic: segment the prediction once, not once per answer.
                pred_tokens = _zh_tokens(pred)
            score = 0.0
            for ref in refs:
                if fn == "qa_f1_zh_score":
                    s = _token_f1(pred_tokens, _zh_tokens(ref))
                else:
                    s = metric(pred, ref, **kwargs)
                score = max(score, s)
            per.append(score)
        return per

    def _rouge_items(self, records: Sequence[Record], fn: str, preds: list[str], answers: list[list[str]],
                     details: dict[str, Any]) -> list[float]:
        if fn == "rouge_zh_score":
            seg = _jieba_join
            preds = [seg(p) for p in preds]
            answers = [[seg(a) for a in refs] for refs in answers]
        owners: list[int] = []
        pairs: list[tuple[str, str]] = []
        for i, (pred, refs) in enumerate(zip(preds, answers)):
            for ref in refs:
                owners.append(i)
                pairs.append((pred, ref))
        results = _rouge_l_batch(pairs, fn, fast=self.fast_lcs)
        per = [0.0] * len(preds)
        kinds: Counter[str] = Counter()
        failed: list[str] = []
        for i, (f, err) in zip(owners, results):
            per[i] = max(per[i], f)
            if err is not None:
                kinds[err] += 1
                if len(failed) < 20 and records[i].sample.id not in failed:
                    failed.append(records[i].sample.id)
        details["rouge_errors"] = sum(kinds.values())
        details["rouge_error_types"] = dict(sorted(kinds.items()))
        details["rouge_error_samples"] = failed
        return per

    @staticmethod
    def _buckets(records: Sequence[Record], per: Sequence[float], details: dict[str, Any]) -> None:
        lengths = [r.sample.metadata.get("length") for r in records]
        if not records or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in lengths):
            return
        groups: dict[str, list[float]] = {b: [] for b in BUCKETS}
        for length, s in zip(lengths, per):
            groups[length_bucket(length)].append(s)
        details["buckets"] = {b: _bucket_score(xs) for b, xs in groups.items()}
        details["bucket_counts"] = {b: len(xs) for b, xs in groups.items()}


# -- official prediction files ---------------------------------------------------------------------------
def records_from_official(dataset: str, rows: Iterable[Mapping[str, Any]]) -> list[Record]:
    """Records from the lines pred.py writes (``{"pred", "answers", "all_classes", "length"}``).

    ``all_classes`` of the *last* line is given to every record: eval.py keeps overwriting one variable
    while reading and scores with what the last line left (harmless upstream, where it is constant per
    dataset; replicated so a file with differing lines scores as officially).

    Args:
        dataset: the v1 dataset id (``trec``); LongBench-E files use the same id.
        rows: the parsed JSON lines, blank lines already skipped (line numbers in errors count rows).

    Raises:
        UserError: unknown dataset, or a row without a string ``pred`` or a list-of-strings ``answers``.
    """
    if dataset not in DATASET_METRIC:
        raise UserError(f"unknown LongBench dataset {dataset!r}; known: {', '.join(DATASET_METRIC)}")
    rows = list(rows)
    checked: list[tuple[str, list[str], Any]] = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            raise UserError(f"longbench/{dataset}: line {n}: expected a JSON object")
        for key in ("pred", "answers"):
            if key not in row:
                raise UserError(f"longbench/{dataset}: line {n}: missing {key!r} (LongBench prediction lines "
                                "carry pred, answers, all_classes, length)")
        pred, answers = row["pred"], row["answers"]
        if not isinstance(pred, str):
            raise UserError(f"longbench/{dataset}: line {n}: 'pred' must be a string, got {type(pred).__name__}")
        # A bare string would be iterated character by character upstream; refuse it instead.
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"longbench/{dataset}: line {n}: 'answers' must be a list of strings")
        length = row.get("length")
        if length is not None and (isinstance(length, bool) or not isinstance(length, (int, float))):
            raise UserError(f"longbench/{dataset}: line {n}: 'length' must be a number, got {length!r}")
        checked.append((pred, answers, length))
    all_classes = rows[-1].get("all_classes") if rows else None
    records = []
    for i, (pred, answers, length) in enumerate(checked):
        meta = {"dataset": dataset, "all_classes": all_classes, "length": length}
        records.append(Record(Sample(id=f"{dataset}-{i}", index=i, input=None, target=list(answers),
                                     metadata=meta), pred, Generation(pred, "stop")))
    return records


__all__ = [
    "BUCKETS", "DATASET_METRIC", "FIRST_LINE_DATASETS", "METRIC_FUNCTIONS", "LongBench", "classification_score",
    "code_line", "code_sim_score", "count_score", "fuzz_ratio", "length_bucket", "normalize_answer",
    "normalize_zh_answer", "qa_f1_score", "qa_f1_zh_score", "records_from_official", "retrieval_score",
    "retrieval_zh_score", "rouge_score", "rouge_zh_score",
]
