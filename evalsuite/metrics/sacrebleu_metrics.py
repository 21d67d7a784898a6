"""Corpus-level BLEU and chrF through sacrebleu, with the signature stored beside every score.

* **Tokenizer per target language** (BLEU): ``zh`` for Chinese targets, ``13a`` otherwise, as sacrebleu's
  own default does for an explicit ``trg_lang``; ``tokenize=`` overrides it. The target language comes from
  the metric option ``target_lang`` or from each record's metadata (``target_lang`` / ``tgt_lang``); one
  corpus must have one target language. chrF has no tokenizer (it scores characters with whitespace
  removed), so only the language check applies to it.
* **References.** Each record's ``target`` is one reference string or a list of them. sacrebleu wants the
  transposed shape, one *stream* per reference position (``[[ref1 of seg 1, ref1 of seg 2, ...], ...]``);
  passing the per-segment lists untransposed scores silently wrong numbers (sacrebleu #220, lighteval
  #1112). The transposition happens here, with shape checks: every segment must have the same number of
  references (sacrebleu's variable-reference mode is opted into with ``variable_refs=True``, padding
  with ``None``), no reference may be empty of text, and every stream has one entry per hypothesis.
* **Corpus score** = sacrebleu's score of the summed per-segment sufficient statistics, which is exactly
  what ``corpus_score`` computes (same statistics, same aggregation).
* **Confidence interval**: bootstrap resampling of the per-segment statistics, as sacrebleu's
  ``--confidence`` (1,000 resamples, numpy ``default_rng(12345)``, float32 sums, the 2.5 % / 97.5 %
  order statistics); ``details`` carries the bounds, the bootstrap mean and the half-width sacrebleu
  prints (``mean ± half``), and the signature then names ``bs`` and ``rs`` as sacrebleu's does.
* :func:`paired_bootstrap` compares two systems on the same resamples (Koehn 2004 as sacrebleu's
  ``--paired-bs`` runs it) from the same statistics.
* ``by=<metadata key>[,<key>...]``: also a corpus score per value of each key (e.g. RAGtrans ``tag``).

sacrebleu is imported only when a score is computed.
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from ..contracts import NO_CONTEXT, ScoreContext
from ..signature import Signature
from ..errors import UserError
from ..options import parse_bool
from ..types import MetricResult, Record

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 12345
"""sacrebleu's default ``SACREBLEU_SEED``: with both defaults our CI equals ``sacrebleu --confidence``."""

LANG_TOKENIZER = {"zh": "zh"}
"""Target languages whose BLEU needs a tokenizer other than 13a (13a does not split CJK text; ja/ko need
sacrebleu's mecab extras and are left to an explicit ``tokenize=``)."""

LANG_KEYS = ("target_lang", "tgt_lang")


def _norm_lang(lang: Any) -> str | None:
    if lang in (None, ""):
        return None
    return str(lang).strip().lower().replace("_", "-").split("-")[0]


def tokenizer_for(lang: str | None) -> str:
    """sacrebleu tokenizer for a target language: ``zh`` for Chinese, ``13a`` otherwise."""
    return LANG_TOKENIZER.get(_norm_lang(lang) or "", "13a")


def reference_streams(records: Sequence[Record], variable_refs: bool = False) -> list[list[str | None]]:
    """Per-segment references (``target``: str or list of str) transposed to sacrebleu's streams.

    Raises ``UserError`` on a shape problem rather than letting sacrebleu score a mis-shaped corpus.
    """
    per_seg: list[list[str]] = []
    for i, rec in enumerate(records):
        t = rec.sample.target
        refs = [t] if isinstance(t, str) else list(t) if isinstance(t, (list, tuple)) else None
        if refs is None or not all(isinstance(r, str) for r in refs):
            raise UserError(f"segment {i} (sample {rec.sample.id!r}): references must be a string or a list "
                            f"of strings, got {type(t).__name__}")
        if not refs:
            raise UserError(f"segment {i} (sample {rec.sample.id!r}) has no reference")
        per_seg.append(refs)
    counts = {len(r) for r in per_seg}
    if len(counts) > 1 and not variable_refs:
        raise UserError(f"segments have different numbers of references ({sorted(counts)}); pass "
                        "variable_refs=true to score with sacrebleu's variable-reference mode")
    n_streams = max(counts) if counts else 0
    streams: list[list[str | None]] = [[(refs[k] if k < len(refs) else None) for refs in per_seg]
                                       for k in range(n_streams)]
    for s in streams:  # the invariant sacrebleu relies on
        assert len(s) == len(records)
    return streams


def _target_lang(records: Sequence[Record], option: str | None) -> str | None:
    if option:
        return _norm_lang(option)
    langs = set()
    for rec in records:
        meta = rec.sample.metadata or {}
        langs.add(_norm_lang(next((meta[k] for k in LANG_KEYS if meta.get(k)), None)))
    if len(langs) > 1:
        raise UserError(f"records have several target languages {sorted(str(x) for x in langs)}; score each "
                        "language separately or pass target_lang= and tokenize= explicitly")
    return langs.pop() if langs else None


def bootstrap_scores(metric: Any, stats: Any, n: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED,
                     idxs: Any = None) -> list[Any]:
    """Scores of ``n`` bootstrap resamples of per-segment ``stats`` (indices from ``default_rng(seed)``)."""
    import numpy as np

    arr = np.asarray(stats, dtype="float32")
    if idxs is None:
        idxs = np.random.default_rng(seed).choice(len(arr), size=(n, len(arr)), replace=True)
    # raw values: chrF computes in float32 from float32 statistics, and sacrebleu averages those
    return [metric._compute_score_from_stats(arr[row].sum(0)).score for row in idxs]


def ci_from_scores(scores: Sequence[float]) -> dict[str, float]:
    """The 95 % interval of bootstrap scores the way sacrebleu reads it: the ``n // 40``-th smallest and
    largest values, their half distance and the mean."""
    s = sorted(scores)
    k = len(s) // 40
    lo, hi = s[k], s[len(s) - k - 1]
    try:
        mean = statistics.mean(s)
    except TypeError:  # float32 mixed with Python floats (a resample whose score short-circuits to 0.0)
        mean = statistics.mean(float(x) for x in s)
    return {"low": float(lo), "high": float(hi), "half_width": float(0.5 * (hi - lo)), "mean": float(mean)}


class _SacreMetric:
    """Shared machinery of :class:`BLEU` and :class:`CHRF`."""

    name = ""
    higher_is_better = True
    version = "1"

    def __init__(self, tokenize: str | None = None, target_lang: str | None = None,
                 n_bootstrap: int | str = DEFAULT_BOOTSTRAP, seed: int | str = DEFAULT_SEED,
                 by: str | None = None, variable_refs: bool | str = False, **options: Any):
        self.tokenize = tokenize or None
        self.target_lang = target_lang or None
        self.n_bootstrap = int(n_bootstrap)
        self.seed = int(seed)
        self.by = by or None
        self.variable_refs = parse_bool(variable_refs) if isinstance(variable_refs, str) else bool(variable_refs)
        self.options = options
        self._last_signature: str | None = None

    # -- to override --------------------------------------------------------------------------------
    def _build(self, lang: str | None) -> Any:
        raise NotImplementedError

    # -- protocol -----------------------------------------------------------------------------------
    def signature(self) -> str:
        """The last score's signature (sacrebleu's own, prefixed by the metric name); before any score,
        what is known without data."""
        if self._last_signature:
            return self._last_signature
        tok = self.tokenize or (tokenizer_for(self.target_lang) if self.target_lang else "per-target-lang")
        return str(Signature(self.name, tok=tok, v=self.version))

    def check_available(self) -> None:
        """Fail before the run loads a model when sacrebleu is not installed (``evalsuite.validate``)."""
        import importlib.util

        if importlib.util.find_spec("sacrebleu") is None:
            raise UserError(f"{self.name} needs sacrebleu: pip install 'evalsuite[mt]'")

    def sacrebleu_metric(self, records: Sequence[Record]) -> Any:
        """The configured sacrebleu metric object for these records (target language resolved)."""
        try:
            import sacrebleu  # noqa: F401
        except ImportError:
            raise UserError(f"{self.name} needs sacrebleu: pip install 'evalsuite[mt]'") from None
        return self._build(_target_lang(records, self.target_lang))

    def statistics(self, records: Sequence[Record]) -> tuple[Any, list[list[float]]]:
        """``(sacrebleu metric, per-segment sufficient statistics)`` for the records' predictions."""
        metric = self.sacrebleu_metric(records)
        hyps = [r.prediction if isinstance(r.prediction, str) else str(r.prediction) for r in records]
        refs = reference_streams(records, self.variable_refs)
        if any(len(s) != len(hyps) for s in refs):  # pragma: no cover - reference_streams guarantees it
            raise UserError("reference streams and hypotheses differ in length")
        metric._check_corpus_score_args(hyps, refs)
        return metric, metric._extract_corpus_statistics(hyps, refs)

    def score(self, records: Sequence[Record], ctx: ScoreContext = NO_CONTEXT) -> MetricResult:
        if not records:
            raise UserError(f"{self.name}: no records to score")
        metric, stats = self.statistics(records)
        value = float(metric._aggregate_and_compute(stats).score)
        details: dict[str, Any] = {"n_segments": len(records), "scale": 1.0}
        if self.n_bootstrap > 1 and len(records) > 1:
            ci = ci_from_scores(bootstrap_scores(metric, stats, self.n_bootstrap, self.seed))
            details.update({"ci95": [ci["low"], ci["high"]], "bootstrap_mean": ci["mean"],
                            "bootstrap_half_width": ci["half_width"], "n_bootstrap": self.n_bootstrap,
                            "bootstrap_seed": self.seed})
            metric.n_bootstrap, metric.seed = self.n_bootstrap, str(self.seed)
        sig = metric.get_signature().format()
        details["sacrebleu_signature"] = sig
        details["tokenize"] = getattr(metric, "tokenizer_signature", None)
        details.update(self._extra_details(metric, stats))
        for key in (self.by or "").split(","):
            if key.strip():
                details[f"by_{key.strip()}"] = self._breakdown(records, key.strip())
        self._last_signature = str(Signature(self.name, sig, **self._signature_extra(), evalsuite=self.version))
        return MetricResult(name=self.name, value=value, signature=self._last_signature, per_sample=None,
                            higher_is_better=True, details=details,
                            per_sample_stats=tuple([float(x) if isinstance(x, float) else int(x) for x in row]
                                                   for row in stats))

    @classmethod
    def corpus_from_stats(cls, stats: Sequence[Sequence[float]], signature: str | None = None) -> float:
        """The corpus score from per-sample statistics (``compare``'s corpus bootstrap), with the options the
        run recorded in its metric ``signature`` (the metric's defaults without one). The tokenizer does not
        enter: the statistics are already counted."""
        opts = cls.options_from_signature(signature) if signature else {}
        opts.update(cls._options_from_stats(stats))
        metric = cls(**opts)._build("en")
        return float(metric._aggregate_and_compute([list(s) for s in stats]).score)

    @classmethod
    def options_from_signature(cls, signature: str) -> dict[str, Any]:
        """The options that change how statistics aggregate, read back from a recorded signature."""
        return {}

    @classmethod
    def _options_from_stats(cls, stats: Sequence[Sequence[float]]) -> dict[str, Any]:
        return {}

    def _signature_extra(self) -> dict[str, Any]:
        """Options sacrebleu's signature leaves out but the score depends on (``key: value``, non-default only)."""
        return {}

    def _extra_details(self, metric: Any, stats: Any) -> dict[str, Any]:
        return {}

    def _breakdown(self, records: Sequence[Record], key: str) -> dict[str, float]:
        groups: dict[str, list[Record]] = {}
        for rec in records:
            groups.setdefault(str((rec.sample.metadata or {}).get(key)), []).append(rec)
        out = {}
        for key, recs in sorted(groups.items()):
            metric, stats = self.statistics(recs)
            out[key] = float(metric._aggregate_and_compute(stats).score)
        return out


class BLEU(_SacreMetric):
    """Corpus BLEU (sacrebleu): tokenizer zh for Chinese targets, 13a otherwise; bootstrap 95% CI."""

    name = "bleu"

    def _build(self, lang: str | None) -> Any:
        from sacrebleu.metrics import BLEU as _B

        tok = self.tokenize or tokenizer_for(lang)
        opts = {k: v for k, v in self.options.items()}
        if "lowercase" in opts:
            opts["lowercase"] = parse_bool(str(opts["lowercase"]))
        if "smooth_value" in opts:
            opts["smooth_value"] = float(opts["smooth_value"])
        if "max_ngram_order" in opts:
            opts["max_ngram_order"] = int(opts["max_ngram_order"])
        if "effective_order" in opts:
            opts["effective_order"] = parse_bool(str(opts["effective_order"]))
        try:
            return _B(tokenize=tok, **opts)
        except TypeError as exc:
            raise UserError(f"bleu: unknown option ({exc})") from None

    @classmethod
    def options_from_signature(cls, signature: str) -> dict[str, Any]:
        # sacrebleu's BLEU signature: eff:yes|no (effective order), smooth:<method>[<value>]
        fields = _signature_fields(signature)
        out: dict[str, Any] = {}
        if "eff" in fields:
            out["effective_order"] = fields["eff"] == "yes"
        if "smooth" in fields:
            method, _, value = fields["smooth"].partition("[")
            out["smooth_method"] = method
            if value:
                out["smooth_value"] = float(value.rstrip("]"))
        return out

    @classmethod
    def _options_from_stats(cls, stats: Sequence[Sequence[float]]) -> dict[str, Any]:
        # lengths + (correct, total) per n-gram order: the order is in the statistics themselves
        order = (len(stats[0]) - 2) // 2 if stats else 4
        return {"max_ngram_order": order} if order != 4 else {}

    def _extra_details(self, metric: Any, stats: Any) -> dict[str, Any]:
        score = metric._aggregate_and_compute(stats)
        return {"precisions": [float(p) for p in score.precisions], "bp": float(score.bp),
                "sys_len": int(score.sys_len), "ref_len": int(score.ref_len)}


class CHRF(_SacreMetric):
    """Corpus chrF (sacrebleu; word_order=2 gives chrF++); bootstrap 95% CI."""

    name = "chrf"

    def _build(self, lang: str | None) -> Any:
        from sacrebleu.metrics import CHRF as _C

        if self.tokenize:
            raise UserError("chrf has no tokenizer option (it scores characters); drop tokenize=")
        opts: dict[str, Any] = {}
        for k, v in self.options.items():
            if k in ("char_order", "word_order", "beta"):
                opts[k] = int(v)
            elif k in ("lowercase", "whitespace", "eps_smoothing"):
                opts[k] = parse_bool(str(v)) if isinstance(v, str) else bool(v)
            else:
                raise UserError(f"chrf: unknown option {k!r}")
        return _C(**opts)

    def _signature_extra(self) -> dict[str, Any]:
        beta = int(self.options.get("beta", 2))
        return {"beta": beta} if beta != 2 else {}  # not in sacrebleu's chrF signature

    @classmethod
    def options_from_signature(cls, signature: str) -> dict[str, Any]:
        # sacrebleu's chrF signature: nc (char order), nw (word order), eff:yes = no eps smoothing,
        # space, case; ours adds beta when it is not 2
        fields = _signature_fields(signature)
        out: dict[str, Any] = {}
        for key, opt in (("nc", "char_order"), ("nw", "word_order"), ("beta", "beta")):
            if key in fields:
                out[opt] = int(fields[key])
        if "eff" in fields:
            out["eps_smoothing"] = fields["eff"] == "no"
        if "space" in fields:
            out["whitespace"] = fields["space"] == "yes"
        if "case" in fields:
            out["lowercase"] = fields["case"] == "lc"
        return out


def _signature_fields(signature: str) -> dict[str, str]:
    """``"chrf|nrefs:1|nc:6|nw:2|..."`` -> ``{"nrefs": "1", "nc": "6", "nw": "2", ...}``."""
    out = {}
    for part in (signature or "").split("|"):
        key, sep, value = part.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def paired_bootstrap(metric: _SacreMetric, baseline: Sequence[Record], system: Sequence[Record],
                     n: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Paired bootstrap resampling test of ``system`` against ``baseline`` (same segments, same order).

    Both systems are scored on the same ``n`` resamples of segment indices. The p-value follows the
    Moses script as sacrebleu's ``--paired-bs`` runs it: the resampled absolute differences are centred
    on their mean and compared with the observed difference, ``p = (c + 1) / (n + 1)``.
    """
    import numpy as np

    if len(baseline) != len(system):
        raise UserError(f"paired bootstrap needs the same segments: {len(baseline)} vs {len(system)}")
    for a, b in zip(baseline, system):
        if a.sample.target != b.sample.target:
            raise UserError(f"paired bootstrap: references differ at sample {a.sample.id!r}")
    m_a, st_a = metric.statistics(baseline)
    m_b, st_b = metric.statistics(system)
    score_a = float(m_a._aggregate_and_compute(st_a).score)
    score_b = float(m_b._aggregate_and_compute(st_b).score)
    idxs = np.random.default_rng(seed).choice(len(st_a), size=(n, len(st_a)), replace=True)
    bs_a = np.array(bootstrap_scores(m_a, st_a, idxs=idxs))
    bs_b = np.array(bootstrap_scores(m_b, st_b, idxs=idxs))
    diffs = np.abs(bs_b - bs_a)
    centred = diffs - diffs.mean()
    c = int(np.sum(centred > abs(score_b - score_a)))
    ci = ci_from_scores(list(bs_b))
    return {"baseline": score_a, "system": score_b, "p_value": (c + 1) / (n + 1), "n_bootstrap": n,
            "seed": seed, "system_mean": ci["mean"], "system_half_width": ci["half_width"]}


def records_for(hyps: Sequence[str], refs: Sequence[Any], metadata: Mapping[str, Any] | None = None) -> list[Record]:
    """Records from plain hypothesis and per-segment reference lists (scripts, benchmarks, tests)."""
    from ..types import Generation, Sample

    if len(hyps) != len(refs):
        raise UserError(f"{len(hyps)} hypotheses but {len(refs)} references")
    return [Record(Sample(id=str(i), index=i, input=None, target=r, metadata=dict(metadata or {})), h,
                   Generation(h, "stop")) for i, (h, r) in enumerate(zip(hyps, refs))]


MT_OPTION_HELP = {
    "tokenize": "BLEU tokenizer (default: zh for a Chinese target, 13a otherwise)",
    "comet": "also score COMET with this model: a hub id, a local checkpoint (.ckpt or model folder) or "
             "'default' (Unbabel/wmt22-comet-da); needs unbabel-comet (see docs/comet.md)",
    "cometkiwi": "also score reference-free CometKiwi with this model ('default': Unbabel/wmt22-cometkiwi-da, "
                 "gated) or a local checkpoint",
    "comet_python": "interpreter of the COMET environment (default: EVALSUITE_COMET_PYTHON, in-process when "
                    "comet is importable, else ~/.cache/evalsuite/comet-env)",
    "comet_batch_size": "COMET batch size (default 64 on CPU, 256 on a GPU)",
}


def translation_metrics(opts: Mapping[str, Any], target_lang: str, by: str | None = None) -> list[Any]:
    """BLEU and chrF, plus COMET / CometKiwi when the task options ask for them (tasks ragtrans, drt)."""
    out: list[Any] = [BLEU(tokenize=opts.get("tokenize"), target_lang=target_lang, by=by),
                      CHRF(target_lang=target_lang, by=by)]
    common = {"python": opts.get("comet_python"), "batch_size": opts.get("comet_batch_size")}
    if opts.get("comet"):
        from .comet import DEFAULT_MODEL, Comet

        model = DEFAULT_MODEL if opts["comet"] == "default" else opts["comet"]
        out.append(Comet(model=model, **common))
    if opts.get("cometkiwi"):
        from .comet import KIWI_MODEL, CometKiwi

        model = KIWI_MODEL if opts["cometkiwi"] == "default" else opts["cometkiwi"]
        out.append(CometKiwi(model=model, **common))
    return out


__all__ = ["BLEU", "CHRF", "bootstrap_scores", "ci_from_scores", "paired_bootstrap", "records_for",
           "reference_streams", "tokenizer_for", "translation_metrics"]
