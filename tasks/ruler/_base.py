"""What every RULER task shares: options, length counting, request layout, lazy sample generation.

A family (niah now; vt, cwe, fwe, qa later) subclasses ``RulerTask`` and supplies ``_setup`` (build its
generator once the tokenizer is known), ``_incremental`` (haystack unit step) and ``_generate(size,
index)`` returning a ``Draft``: RULER's ``input`` and ``answer_prefix`` strings, the reference answers
and per-sample facts. Sizing (``_fit``), requests, gold answers, metadata and metrics live here.

Length, as RULER counts it (``scripts/data/tokenizer.py``: ``len(tokenizer.tokenize(text))`` on the
prompt with the model template and answer prefix): the prompt is rendered exactly as the backend
sends it (chat template with the answer prefix continued as an assistant prefill, or the raw text) and
encoded with ``add_special_tokens=False``. Special tokens the chat template spells (``<|im_start|>``,
a BOS written by the template) count; a BOS that the tokenizer itself prepends to a raw prompt does
not, as in RULER. That extra token is recorded per sample as ``input_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import OfficialFormat
from evalsuite.errors import UserError
from evalsuite.metrics import Metric
from evalsuite.metrics.match import StringMatchAll
from evalsuite.task import BaseTask, Option, TaskContext, parse_bool
from evalsuite.options import non_negative_int, positive_int
from evalsuite.tokenizer import Tokenizer, render_request
from evalsuite.types import GenParams, Generation, Message, Record, Request, Sample, sha256_text

from ._fit import Fitted, SizeSearch, TokenModel, default_slack, describe_fit, fit_sample, search_size
from ._resources import BASE_TEMPLATE, model_templates, resources


@dataclass
class Draft:
    """One generated RULER sample before it is fitted and wrapped."""

    input: str
    """RULER's ``input``: the task template with the context, up to the answer prefix."""
    answer_prefix: str
    """RULER's ``answer_prefix`` (starts with a space), continued by the model."""
    answers: list[str]
    """RULER's ``outputs``: every reference the prediction must contain."""
    info: dict[str, Any] = field(default_factory=dict)
    """Per-sample facts for the metadata (needle depths, positions, query, ...)."""


def parse_lengths(v: str) -> tuple[int, ...]:
    """``4096,8192`` (also ``4k,8K``) -> (4096, 8192); order kept, duplicates dropped."""
    out: list[int] = []
    for part in str(v).replace(";", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        n = int(part[:-1]) * 1024 if part.endswith("k") else int(part)
        if n <= 0:
            raise ValueError("lengths must be > 0")
        if n not in out:
            out.append(n)
    if not out:
        raise ValueError("no length given")
    return tuple(out)


class CountingTokenizer:
    """Forwards to the model tokenizer and counts the tokens its ``encode`` calls return (the
    tokenizer work spent on sizing prompts; see benchmarks/ruler_fitting.py)."""

    def __init__(self, tok: Tokenizer):
        self._inner = tok
        self.encoded_tokens = 0
        self.encode_calls = 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = self._inner.encode(text, add_special_tokens=add_special_tokens)
        self.encoded_tokens += len(ids)
        self.encode_calls += 1
        return ids

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character spans (``NotImplementedError`` when the tokenizer cannot give spans)."""
        fn = getattr(self._inner, "encode_offsets", None)
        if fn is None:
            raise NotImplementedError("tokenizer gives no offsets")
        ids, offsets = fn(text)
        self.encoded_tokens += len(ids)
        self.encode_calls += 1
        return ids, offsets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def join_answers(items: Sequence[str]) -> str:
    """A list the way RULER writes its multi-key queries: ``a``, ``a, and b``, ``a, b, and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


CHUNK_MAX_NEW = 0.3
"""Piece sums stop when more than this share of a prompt's tokens come from pieces never seen before."""
REUSE_MIN_CHARS = 4096
"""Shared prefix (characters) from which ``_count`` reuses the previous prompt's tokens."""


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings (binary search on slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


TPA_WINDOW = 256
"""Characters re-encoded before an answer to find its token position (see ``_tokens_before``)."""


def _boundary_before(text: str, spans: Sequence[tuple[int, int]], limit: int) -> tuple[int, int] | None:
    """(number of tokens before it, character index) of the last token start at or before ``limit``
    that begins with a space or newline and follows a token ending exactly there."""
    import bisect

    starts = [s for s, _ in spans]
    i = bisect.bisect_right(starts, limit) - 1
    while i > 0:
        s = spans[i][0]
        if spans[i - 1][1] == s and text[s:s + 1] in (" ", "\n") and s <= limit:
            return i, s
        i -= 1
    return None


class RulerTask(BaseTask, OfficialFormat):
    family: str = ""
    """Key in templates.json ``families`` (RULER's ``TASKS`` in constants.py)."""
    config_name: str = ""
    """Key in synthetic.yaml."""
    version = "1"

    options: Mapping[str, Option] = {
        "length": Option(positive_int, 4096, "max_seq_length: prompt tokens + tokens_to_generate stay within it"),
        "lengths": Option(parse_lengths, None, "several max_seq_lengths, e.g. 4096,8192,16384: num_samples per "
                          "length, each length generated as its own RULER run (overrides length)"),
        "num_samples": Option(non_negative_int, 500, "samples to generate (RULER default 500)"),
        "seed": Option(int, 42, "random_seed (RULER default 42)"),
        "data_dir": Option(str, None, "folder of Paul Graham essay .txt files (essay haystacks)"),
        "data_file": Option(str, None, "RULER's PaulGrahamEssays.json ({\"text\": ...}) or one .txt file"),
        "essay_dataset": Option(str, None, "essay haystack from an HF dataset id (a text column, train split) "
                                "instead of local files"),
        "chat_template": Option(parse_bool, True, "render with the model's chat template, answer prefix as "
                                "assistant prefill; false: raw text = template + answer prefix"),
        "template": Option(str, None, "one of RULER's own model templates (scripts/data/template.py: base, "
                           "meta-chat, meta-llama3, vicuna-chat, ...), applied as prepare.py does and sent as "
                           "raw text (implies chat_template=false); reproduces a published row's prompts"),
        "tokens_to_generate": Option(positive_int, None, "max new tokens, also reserved in the length budget "
                                     "(default: RULER's per-family value)"),
        "reasoning": Option(parse_bool, False, "reasoning model: no answer-prefix prefill (the model answers after "
                            "thinking; think blocks are stripped before scoring) and max_tokens = "
                            "tokens_to_generate + reasoning_tokens; the haystack is sized as without it"),
        "reasoning_tokens": Option(non_negative_int, 4096, "extra generation budget for thinking with reasoning=true"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        fam = resources().templates["families"][self.family]
        if self.opts["tokens_to_generate"] is None:
            self.opts["tokens_to_generate"] = int(fam["tokens_to_generate"])
        if self.opts["lengths"]:
            self.opts["lengths"] = list(self.opts["lengths"])
            self.opts["length"] = self.opts["lengths"][0]
        self.lengths: list[int] = list(self.opts["lengths"] or [self.opts["length"]])
        self.length: int = self.lengths[0]
        """The max_seq_length whose samples are being generated (the options stay as given)."""
        for L in self.lengths:
            if L <= self.opts["tokens_to_generate"]:
                raise UserError(f"{self.name}: length={L} must exceed "
                                f"tokens_to_generate={self.opts['tokens_to_generate']}")
        self.config: dict[str, Any] = dict(resources().tasks[self.config_name]["args"])
        self.model_template: str = BASE_TEMPLATE
        """``prepare.py``'s model template (``-T template=``), ``{task_template}`` by default."""
        if self.opts["template"] is not None:
            names, _ = model_templates()
            if self.opts["template"] not in names:
                raise UserError(f"{self.name}: -T template={self.opts['template']!r} is not one of RULER's model "
                                f"templates ({', '.join(names)})")
            self.model_template = names[self.opts["template"]]
            # prepare.py writes the model template into the text itself: no chat template on top of it
            self.opts["chat_template"] = False
        self._tok: Tokenizer | None = None
        self._offsets_ok = True
        self._chunks: dict[str, int] = {}
        self._chunk_state = "calibrating"
        self._chunk_checks = self._chunk_calls = 0
        self._chunk_new_frac = 0.0
        self._reuse_ok = True
        self._reuses = 0
        self._last_spans: tuple[str, list[tuple[int, int]]] | None = None
        self._samples: list[Sample] = []
        self._search: SizeSearch | None = None
        self._searches: dict[int, SizeSearch] = {}
        self._models: dict[int, TokenModel] = {}
        self._current_length: int | None = None
        self._n_added_raw = 0
        self._essays: Any = None
        """The essay haystack's source text (``_essays.Essays``), read once for every length."""
        self.fit_stats: dict[str, int] = {"prompt_tokens": 0, "samples": 0, "tokenized_attempts": 0}
        """Sizing work: ``prompt_tokens`` summed over the final prompts; the tokens encoded are
        ``self._tok.encoded_tokens`` after ``prepare``."""

    def _essay_source(self) -> Any:
        """The Paul Graham essays for an essay haystack (``tasks/ruler/_essays.py``), loaded at the first
        length and kept for the others."""
        if self._essays is None:
            from ._essays import load_essays

            self._essays = load_essays(self.name, self.opts["data_dir"], self.opts["data_file"],
                                       self.opts["essay_dataset"])
        return self._essays

    # -- subclass hooks -----------------------------------------------------------------------------
    def _setup(self) -> None:
        raise NotImplementedError

    def _incremental(self) -> int:
        raise NotImplementedError

    def _generate(self, size: int, index: int) -> Draft:
        raise NotImplementedError

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        return {}

    def _probe(self, size: int) -> Draft:
        """A draft for the haystack-size search (upstream's probes); default: a sample draw."""
        return self._generate(size, 0)

    def _probe_tokens(self, draft: Draft) -> int:
        """Tokens a probe counts for the search; default: its rendered prompt."""
        return self._prompt_tokens(draft)

    def _gold_text(self, answers: Sequence[str]) -> str:
        """What a perfect model writes after the answer prefix."""
        return " " + join_answers(answers) + "."

    def _describe_family(self) -> dict[str, Any]:
        return {}

    # -- protocol -----------------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        if ctx.tokenizer is None:
            raise UserError(f"{self.name}: RULER sizes every prompt with the model's tokenizer, and this backend "
                            f"has none: pass {ctx.tokenizer_hint}")
        self._tok = CountingTokenizer(ctx.tokenizer)
        probe = "a"
        self._n_added_raw = (len(self._tok.encode(probe, add_special_tokens=True))
                             - len(self._tok.encode(probe, add_special_tokens=False)))
        self._samples = []
        self._search = None
        self._searches, self._models = {}, {}
        if self.opts["chat_template"]:
            # Fail now, not at the first sample, when the template is missing or cannot prefill.
            render_request(self._tok, self._request("Hi", " there"))
        self._enter_length(self.lengths[0])
        self._tok.encoded_tokens = self._tok.encode_calls = 0
        self.fit_stats = {"prompt_tokens": 0, "samples": 0, "tokenized_attempts": 0}

    @property
    def encoded_tokens(self) -> int:
        """Tokens encoded by this task's tokenizer calls since ``prepare`` (sizing work)."""
        return self._tok.encoded_tokens if isinstance(self._tok, CountingTokenizer) else 0

    def _enter_length(self, length: int) -> None:
        """Start generating the samples of one max_seq_length: a fresh generator (``_setup``), seeded
        as a separate RULER run at that length would be. ``self.length`` is that length meanwhile, for the
        family hooks (``_incremental``, ``_setup``)."""
        if self._current_length == length:
            return
        self.length = length
        self._current_length = length
        self._setup()

    def samples(self) -> Iterator[Sample]:
        """Samples in RULER's order, generated lazily (``--limit N`` makes only N) and cached."""
        if self._tok is None:
            raise UserError(f"{self.name}: prepare() was not called (the task needs the backend tokenizer)")
        i = 0
        while i < self.opts["num_samples"] * len(self.lengths):
            if i == len(self._samples):
                self._samples.append(self._make_sample(i))
            yield self._samples[i]
            i += 1

    def request(self, sample: Sample) -> Request:
        req = self._request(sample.input["input"], sample.input["answer_prefix"])
        # The fit counted this exact prompt with the backend's tokenizer: backends need not count it again.
        n = sample.metadata.get("input_tokens")
        return replace(req, token_count=n) if isinstance(n, int) else req

    def metrics(self) -> Sequence[Metric]:
        return [StringMatchAll()]

    def gold(self, sample: Sample) -> str:
        """What a perfect model writes after the answer prefix (niah: `` 1234567.``)."""
        text = self._gold_text(sample.target)
        return text.lstrip() if self.opts["reasoning"] else text

    def official_records(self, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Records from RULER's prediction files (``pred/call_api.py`` output: one JSON object per line
        with ``pred`` and ``outputs``, plus ``index``/``input``/``length`` we keep as metadata), scored
        as ``scripts/eval/evaluate.py`` scores them."""
        records = []
        for i, row in enumerate(rows):
            if "pred" not in row or "outputs" not in row:
                raise UserError(f"line {i + 1}: a RULER prediction needs 'pred' and 'outputs'")
            pred = str(row["pred"])
            meta = {k: row[k] for k in ("index", "length") if k in row}
            records.append(Record(Sample(id=str(row.get("index", i)), index=i, input=None,
                                         target=list(row["outputs"]), metadata=meta),
                                  pred, Generation(pred, "stop")))
        return records

    def describe(self) -> dict[str, Any]:
        res = resources()
        d = super().describe()
        d.update({
            "benchmark": "RULER (NVIDIA/RULER@c3f5e3b4)", "family": self.family, "config": dict(self.config),
            "templates_sha256": res.templates_sha256, "synthetic_yaml_sha256": res.config_sha256,
            "model_template": None if self.opts["template"] is None else {
                "name": self.opts["template"], "sha256": sha256_text(self.model_template),
                "file_sha256": model_templates()[1]},
            "length_counting": "rendered prompt (template + answer prefix) encoded without tokenizer-added "
                               "special tokens, + tokens_to_generate <= length",
        })
        d.update(self._describe_family())
        return d

    # -- internals ----------------------------------------------------------------------------------
    def _request(self, text: str, answer_prefix: str) -> Request:
        max_tokens = self.opts["tokens_to_generate"]
        if self.opts["reasoning"]:
            # A reasoning model thinks first: no prefilled answer start, and room to think.
            answer_prefix = ""
            max_tokens += self.opts["reasoning_tokens"]
        params = GenParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0)
        if self.opts["chat_template"] and not answer_prefix:
            return Request.new(prompt=(Message("user", text),),
                           params=params)
        if self.opts["chat_template"]:
            # The answer prefix is a prefilled assistant turn, after the assistant header (NVIDIA/RULER#70).
            prompt: Any = (Message("user", text), Message("assistant", answer_prefix))
            return Request.new(prompt=prompt, params=params)
        return Request.new(prompt=text + answer_prefix,
                       params=params, use_chat_template=False)

    def _render(self, draft: Draft) -> str:
        assert self._tok is not None
        return render_request(self._tok, self._request(draft.input, draft.answer_prefix))

    def _count(self, rendered: str) -> int:
        """Tokens of a rendered prompt; the spans of the latest count are kept for ``_tokens_before``.

        Consecutive prompts of a task share long prefixes (template and haystack up to the first needle):
        the tokens of the shared part are taken from the previous encoding up to a token boundary at a
        space or newline, and only the rest is encoded. Pre-tokenizers split text at such boundaries, so
        the count is exact; the first reuses and every 16th are checked against a full encoding, and a
        mismatch switches reuse off for the task."""
        assert self._tok is not None
        if self._offsets_ok:
            try:
                if self._reuse_ok and self._last_spans is not None:
                    n = self._count_reusing(rendered)
                    if n is not None:
                        return n
                ids, offsets = self._tok.encode_offsets(rendered)
                self._last_spans = (rendered, offsets)
                return len(ids)
            except NotImplementedError:
                self._offsets_ok = False
        return len(self._tok.encode(rendered, add_special_tokens=False))

    def _count_reusing(self, rendered: str) -> int | None:
        assert self._last_spans is not None and self._tok is not None
        prev, spans = self._last_spans
        common = _common_prefix(prev, rendered)
        if common < REUSE_MIN_CHARS:
            return None
        b = _boundary_before(prev, spans, common - 64)
        if b is None:
            return None
        i, start = b
        ids, offsets = self._tok.encode_offsets(rendered[start:])
        n = i + len(ids)
        self._reuses += 1
        if self._reuses <= 3 or self._reuses % 16 == 0:
            full_ids, full_offsets = self._tok.encode_offsets(rendered)
            if len(full_ids) != n:
                self._reuse_ok = False
                self._last_spans = (rendered, full_offsets)
                return len(full_ids)
        self._last_spans = (rendered, list(spans[:i]) + [(a + start, e + start) for a, e in offsets])
        return n

    # -- cheap exact counts for attempts that do not fit ------------------------------------------------
    def _chunk_sum(self, rendered: str) -> int:
        """Tokens of ``rendered`` as the sum of its space-started pieces' tokens (each distinct piece
        encoded once). Pre-tokenizers split before a space, so for the usual tokenizers this is the
        exact count; ``_over_budget`` only trusts it once it has matched full encodings."""
        cache = self._chunks
        total = new = 0
        first = True
        for part in rendered.split(" "):
            piece = part if first else " " + part
            first = False
            n = cache.get(piece)
            if n is None:
                n = cache[piece] = len(self._tok.encode(piece, add_special_tokens=False))
                new += n
            total += n
        self._chunk_new_frac = new / total if total else 0.0
        return total

    def _over_budget(self, draft: Draft, budget: int) -> bool:
        """True when the draft's prompt is certainly over ``budget`` tokens, without encoding it whole.
        Used for step-down attempts only: a draft that may fit is always encoded in full."""
        if self._chunk_state != "on":
            return False
        over = self._chunk_sum(self._render(draft)) > budget
        if self._chunk_new_frac > CHUNK_MAX_NEW:
            self._chunk_state = "off"  # a haystack of fresh random strings: no saving to be had
        return over

    def _calibrate_chunks(self, rendered: str, exact: int) -> None:
        """Compare the piece sum with a full count: three matches switch it on, a mismatch off for good."""
        if self._chunk_state == "off":
            return
        if self._chunk_sum(rendered) != exact or (self._chunk_checks and self._chunk_new_frac > CHUNK_MAX_NEW):
            self._chunk_state = "off"
            return
        self._chunk_checks += 1
        if self._chunk_checks >= 3:
            self._chunk_state = "on"

    def _tokens_before(self, rendered: str, pos: int) -> int:
        """``len(encode(rendered[:pos]))`` (RULER's token_position_answer) without re-encoding the prefix:
        the tokens of the full encoding that end before a token boundary at a space or newline some way
        before ``pos``, plus the encoding of the rest up to ``pos``. Two such boundaries must agree;
        otherwise (or without spans) the prefix is encoded in full."""
        spans = self._last_spans[1] if self._last_spans and self._last_spans[0] == rendered else None
        if spans is not None and pos > 4 * TPA_WINDOW:
            counts = set()
            for back in (TPA_WINDOW, 3 * TPA_WINDOW):
                b = _boundary_before(rendered, spans, pos - back)
                if b is None:
                    break
                n_before, start = b
                counts.add(n_before + self._count(rendered[start:pos]))
            else:
                if len(counts) == 1:
                    self._last_spans = (rendered, spans)
                    return counts.pop()
        return self._count(rendered[:pos])

    def _prompt_tokens(self, draft: Draft) -> int:
        rendered = self._render(draft)
        n = self._count(rendered)
        if self._chunk_state == "calibrating" or (self._chunk_state == "on" and self._checks_due()):
            self._calibrate_chunks(rendered, n)
        return n

    def _checks_due(self) -> bool:
        self._chunk_calls += 1
        return self._chunk_calls % 32 == 0

    def _make_sample(self, index: int) -> Sample:
        per = self.opts["num_samples"]
        L = self.lengths[index // per]
        local = index - (index // per) * per
        self._enter_length(L)
        ttg = self.opts["tokens_to_generate"]
        fitted = self._fit(L, local)
        d = fitted.draft
        rendered = self._render(d)
        n = fitted.prompt_tokens
        self.fit_stats["prompt_tokens"] += n
        self.fit_stats["samples"] += 1
        self.fit_stats["tokenized_attempts"] += fitted.tokenized
        meta: dict[str, Any] = {
            "length": n + ttg,
            "prompt_tokens": n,
            "input_tokens": n + (0 if self.opts["chat_template"] else self._n_added_raw),
            "max_seq_length": L,
            "tokens_to_generate": ttg,
            "num_haystack": fitted.num_haystack,
            **d.info,
            **self._sample_metadata(d, rendered),
        }
        sample_id = f"{L}-{local}" if self.opts["lengths"] else str(index)
        return Sample(id=sample_id, index=index,
                      input={"input": d.input, "answer_prefix": d.answer_prefix},
                      target=list(d.answers), metadata=meta)

    def _slack(self, length: int) -> int:
        """Tokens two samples of one haystack size may differ by (see ``_fit.TokenModel``)."""
        return default_slack(length)

    def _search_size(self, length: int, model: TokenModel) -> SizeSearch:
        """Upstream's haystack-size search for one length (families with another estimate override)."""
        return search_size(self._probe, self._probe_tokens, length, self.opts["tokens_to_generate"],
                           self._incremental(), model=model)

    def _fit(self, length: int, local: int) -> Fitted:
        """Sample ``local`` of ``length``: upstream's size search (once per length), then its step-down."""
        ttg, inc = self.opts["tokens_to_generate"], self._incremental()
        model = self._models.setdefault(length, TokenModel(length - ttg, self._slack(length)))
        if length not in self._searches:
            self._searches[length] = self._search_size(length, model)
        self._search = self._searches[length]
        return fit_sample(lambda n: self._generate(n, local), self._prompt_tokens, length, ttg,
                          self._search.num_haystack, inc, what=self.name, model=model,
                          over_budget=lambda d: self._over_budget(d, length - ttg))

    def fit_info(self, length: int | None = None) -> dict[str, Any] | None:
        """The haystack size search of ``length`` (default: the length of the latest sample made), for
        debugging and tests."""
        return describe_fit(self._search if length is None else self._searches.get(length))
