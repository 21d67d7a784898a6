"""Rule-based scoring of TSV tables, with LongProc's HTML-to-TSV semantics (princeton-pli/LongProc,
``longproc/html_to_tsv_evaluator.py`` and ``eval_html_to_tsv`` at main 78e873a), reusable by any task
whose model writes a table.

How a text is scored against a reference table (both parsed the same way):

1. Extraction (``extract_tsv_block``, optional): from the first ```` ```tsv ```` to the *last* ```` ``` ````
   after it, stripped; with no closing fence, everything after the first ```` ```tsv ```` (up to a second
   one, if any); with no fence at all, the whole text.
2. Parsing (``parse_tsv``): ``text.strip()`` split at "\\n", read by :mod:`csv` with a tab delimiter and
   the default dialect (so ``"`` quotes, and a quoted cell may span lines). The first row is the header:
   only its length is used. A last data row of the wrong length is dropped (a trailing remark); any
   other row of the wrong length becomes a row of "N/A" cells. Every cell is normalised: lowercase,
   ASCII punctuation removed, the words a/an/the removed, all whitespace removed.
3. Matching: precision = share of predicted rows equal (all columns, in order) to *some* reference
   row; recall = share of reference rows equal to some predicted row. Unordered, and with duplicates
   counted on each side separately (no one-to-one matching). F1 = harmonic mean, 0 when both are 0.
4. Failures score 0 on every measure with ``extraction_rate`` 0: a header-only or empty table, a table
   whose column count differs from the reference's, duplicate header names (upstream's pandas
   normalisation raises on them), a :mod:`csv` error (e.g. a bare carriage return in a cell).

Upstream compares each row against every row of the other table through pandas (quadratic in rows);
here each side becomes a set of row tuples, so scoring is linear in the number of rows
(``benchmarks/longproc_tsv.py`` measures both). The numbers are the same, float for float.

The metric plugin ``tsv`` (:class:`Tsv`) scores ``record.prediction`` against the sample's target: the
target itself when it is a string, else ``target[target_key]``.
"""

from __future__ import annotations

import csv
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

from evalsuite.contracts import NO_CONTEXT, ScoreContext
from evalsuite.signature import Signature
from evalsuite.types import MetricResult, Record

VERSION = "1"
"""Bump when a rule above changes (it is part of every signature)."""
RULES_NAME = f"evalsuite.metrics.tsv v{VERSION}"
"""How LongProc's task description names these rules (recorded in manifests since the module lived in
``evalsuite/metrics/``; kept so that recorded descriptions stay comparable)."""

MEASURES = ("f1", "precision", "recall", "extraction_rate")

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_FENCE_OPEN = "```tsv"
_FENCE = "```"
_BAD_ROW = "N/A"


class TsvError(ValueError):
    """A table that cannot be scored (upstream: an exception inside the evaluator, every measure 0)."""


@lru_cache(maxsize=1 << 16)
def normalize_cell(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, drop all whitespace."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return "".join(text.split())


def extract_tsv_block(text: str) -> tuple[str, bool]:
    """The table part of a model answer and whether a ```` ```tsv ```` fence was found."""
    start = text.find(_FENCE_OPEN)
    if start < 0:
        return text.strip(), False
    body = start + len(_FENCE_OPEN)
    end = text.rfind(_FENCE)
    if end >= body:  # greedy: up to the last fence after the opening one
        return text[body:end].strip(), True
    return text.split(_FENCE_OPEN)[1].strip(), True


@dataclass(frozen=True)
class Table:
    """A parsed table: header width and normalised data rows (bad rows as "N/A" cells, normalised)."""

    width: int
    rows: tuple[tuple[str, ...], ...]
    bad_rows: tuple[int, ...] = ()
    """0-based data-row positions whose length was wrong (replaced by N/A cells)."""
    dropped_last: bool = False
    """Whether a last row of the wrong length was dropped."""


def parse_tsv(text: str) -> Table:
    """Parse one table as upstream does; raise :class:`TsvError` where upstream's evaluator fails."""
    lines = text.strip().split("\n")
    try:
        data = list(csv.reader(lines, delimiter="\t"))
    except csv.Error as exc:
        raise TsvError(f"csv error: {exc}") from None
    header = data[0]
    data = data[1:]
    if not data:
        raise TsvError("no data rows (header only or empty)")
    width = len(header)
    dropped = False
    if len(data[-1]) != width:
        data = data[:-1]
        dropped = True
    if len(set(header)) != len(header):
        # pandas makes a column selection by a repeated name a DataFrame and the normalisation fails
        raise TsvError("duplicate header names: " + ", ".join(sorted({h for h in header if header.count(h) > 1})))
    bad = tuple(i for i, row in enumerate(data) if len(row) != width)
    if bad:
        filler = [_BAD_ROW] * width
        data = [filler if len(row) != width else row for row in data]
    rows = tuple(tuple(normalize_cell(c) for c in row) for row in data)
    return Table(width=width, rows=rows, bad_rows=bad, dropped_last=dropped)


@dataclass(frozen=True)
class TsvScore:
    precision: float
    recall: float
    f1: float
    extraction_rate: float
    error: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    """Why: row counts, matched counts, bad rows, the first unmatched predicted and reference rows."""

    def as_dict(self) -> dict[str, float]:
        return {"f1": self.f1, "precision": self.precision, "recall": self.recall,
                "extraction_rate": self.extraction_rate}


def _failed(error: str, **info: Any) -> TsvScore:
    return TsvScore(0.0, 0.0, 0.0, 0.0, error=error, info={"error": error, **info})


def score_tables(prediction: str, reference: str) -> TsvScore:
    """Precision, recall and F1 of a predicted table text against a reference table text."""
    try:
        gt = parse_tsv(reference)
    except TsvError as exc:
        return _failed(f"reference: {exc}")
    try:
        pred = parse_tsv(prediction)
    except TsvError as exc:
        return _failed(f"prediction: {exc}")
    if not pred.rows:  # upstream divides by the number of predicted rows
        return _failed("prediction: no complete data row")
    if pred.width != gt.width:
        return _failed(f"prediction has {pred.width} columns, the reference {gt.width}",
                       pred_columns=pred.width, ref_columns=gt.width)
    gt_set = set(gt.rows)
    pred_set = set(pred.rows)
    hit_pred = [r in gt_set for r in pred.rows]
    hit_gt = [r in pred_set for r in gt.rows]
    precision = sum(hit_pred) / len(pred.rows)
    recall = sum(hit_gt) / len(gt.rows)
    f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    info: dict[str, Any] = {"pred_rows": len(pred.rows), "ref_rows": len(gt.rows),
                            "pred_matched": sum(hit_pred), "ref_matched": sum(hit_gt)}
    if pred.bad_rows:
        info["pred_bad_rows"] = list(pred.bad_rows[:20])
    if pred.dropped_last:
        info["pred_dropped_last_row"] = True
    miss = next((i for i, h in enumerate(hit_pred) if not h), None)
    if miss is not None:
        info["first_unmatched_pred_row"] = {"row": miss, "cells": list(pred.rows[miss])}
    miss = next((i for i, h in enumerate(hit_gt) if not h), None)
    if miss is not None:
        info["first_missing_ref_row"] = {"row": miss, "cells": list(gt.rows[miss])}
    return TsvScore(precision, recall, f1, 1.0, None, info)


def score_answer(answer: str, reference: str, extract: bool = True) -> TsvScore:
    """Score a model answer: extract the ```` ```tsv ```` block (when ``extract``), then compare tables."""
    text, fenced = extract_tsv_block(answer) if extract else (answer.strip(), False)
    res = score_tables(text, reference)
    return TsvScore(res.precision, res.recall, res.f1, res.extraction_rate, res.error,
                    {**res.info, "fenced": fenced})


class Tsv:
    """Metric plugin ``tsv``: one measure (``f1``, ``precision``, ``recall``, ``extraction_rate``) of the
    rule-based table comparison, the mean over samples reported x100.

    Options: ``measure`` (default f1), ``target_key`` (the reference is ``target[target_key]`` when the
    target is a mapping; default ``tsv``), ``extract`` (take the ```` ```tsv ```` block from the prediction
    first; default true), ``name`` (the reported name; default ``tsv_<measure>``).
    """

    higher_is_better = True
    scale = 100.0

    def __init__(self, measure: str = "f1", target_key: str = "tsv", extract: Any = True,
                 name: str | None = None):
        if measure not in MEASURES:
            raise ValueError(f"tsv: measure must be one of {', '.join(MEASURES)}, not {measure!r}")
        self.measure = measure
        self.target_key = target_key
        self.extract = extract if isinstance(extract, bool) else str(extract).lower() in {"1", "true", "yes"}
        self.name = name or f"tsv_{measure}"
        self._cache: dict[tuple[str, str], TsvScore] = {}

    def signature(self) -> str:
        return str(Signature(self.name, tsv=self.measure, extract="fence" if self.extract else "none",
                             rules="longproc-html_to_tsv@78e873a", scale=self.scale, v=VERSION))

    def reference(self, record: Record) -> str:
        t = record.sample.target
        if isinstance(t, str):
            return t
        if isinstance(t, Mapping) and isinstance(t.get(self.target_key), str):
            return t[self.target_key]
        raise ValueError(f"tsv: sample {record.sample.id}: target is neither a TSV string nor a mapping "
                         f"with {self.target_key!r}")

    def score_record(self, record: Record) -> TsvScore:
        key = (record.prediction, self.reference(record))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = score_answer(record.prediction, key[1], self.extract)
        return hit

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        results = [self.score_record(r) for r in records]
        per = tuple(getattr(s, self.measure) for s in results)
        value = self.scale * sum(per) / len(per) if per else float("nan")
        failures = {r.sample.id: s.error for r, s in zip(records, results) if s.error}
        details: dict[str, Any] = {"scale": self.scale, "measure": self.measure,
                                   "n_extraction_failures": len(failures)}
        if failures:
            details["extraction_failures"] = dict(list(failures.items())[:50])
        return MetricResult(name=self.name, value=value, signature=self.signature(), per_sample=per,
                            higher_is_better=True, details=details)


__all__ = ["MEASURES", "Table", "Tsv", "TsvError", "TsvScore", "extract_tsv_block", "normalize_cell",
           "parse_tsv", "score_answer", "score_tables"]
