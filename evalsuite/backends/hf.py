"""The ``hf`` backend: a Hugging Face transformers causal LM, batched, on CPU or GPU.

``--backend hf --model <local folder | hub id>`` with ``-B`` options:

* ``dtype``: ``auto`` (default: bfloat16 on a GPU, or float16 where it lacks bf16; float32 on CPU),
  ``float32``, ``bfloat16`` or ``float16``. Unlike transformers' own ``dtype="auto"`` it never takes
  the dtype from the checkpoint: the dtype enters the backend id, so it must not depend on the file.
* ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
* ``batch_size`` (default 8; ``auto``: the largest batch that fits, found by halving on out-of-memory from
  64 on a GPU, 8 on CPU, and recorded per invocation), ``max_model_len`` (default: the smaller of the config's
  ``max_position_embeddings`` and the tokenizer's ``model_max_length``), ``threads``
  (``torch.set_num_threads``), ``attn_implementation`` (``sdpa``, ``eager``, ...), ``revision``
  (hub ids only) and ``trust_remote_code`` (default false).

Decoding is driven by ``GenParams`` alone. The checkpoint's ``generation_config.json`` is recorded in
``describe()`` and then ignored: transformers fills every unset generation field from it (sampling
temperature, top_k, repetition penalty...), which is how a harness silently stops comparing like
with like (the vLLM ``generation_config`` trap, vLLM #15241). Only the end-of-sequence ids are kept
from it, because they are a property of the model (Llama 3 ends turns with ``<|eot_id|>``, which
only the generation config lists).

``GenParams.stop_token_ids`` join those EOS ids for the request (generation ends there; the token's text is
not returned), and ``GenParams.min_tokens`` becomes ``min_new_tokens``, which holds every one of them back
for the first ``min_tokens`` new tokens: LongBench's ``pred.py`` does exactly this for samsum with
``eos_token_id=[eos, newline]`` and ``min_length = prompt length + 1``.

torch and transformers are imported inside methods, so importing this module stays cheap.
"""

from __future__ import annotations

import gc
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import UserError
from ..options import Option, parse_bool
from ..tokenizer import request_ids
from ..types import GenParams, Generation, Request, canonical_json, sha256_text
from ..contracts import ChecksModel, Timed, ValidatesOptions
from . import BaseBackend, parse_options
from .models import HFTokenizer, folder_fingerprint, resolve_model  # noqa: F401  (HFTokenizer: public here too)

if TYPE_CHECKING:  # pragma: no cover
    import torch

DTYPES = ("auto", "float32", "bfloat16", "float16")

AUTO_BATCH_START = {"cuda": 64, "cpu": 8}
"""Where ``-B batch_size=auto`` starts; it halves on every out-of-memory error until a batch fits."""


def batch_size_option(text: str | int) -> int | str:
    """``-B batch_size=``: a positive integer or ``auto``."""
    if isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    v = int(text)
    if v < 1:
        raise ValueError("batch_size must be >= 1 or auto")
    return v


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory error from torch (CUDA or the CPU allocator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


HF_OPTIONS: dict[str, Option] = {
    "dtype": Option(str, "auto", "torch dtype (auto, float32, bfloat16, float16)"),
    "device": Option(str, "auto", "auto, cpu, cuda, cuda:N"),
    "batch_size": Option(batch_size_option, 8, "requests per forward pass, or auto"),
    "max_model_len": Option(int, None, "the context window (default: the model's config)"),
    "threads": Option(int, None, "torch CPU threads"),
    "attn_implementation": Option(str, None, "transformers' attn_implementation"),
    "revision": Option(str, None, "hub revision of the model"),
    "trust_remote_code": Option(parse_bool, False, "run the model repository's own code"),
}


def dtype_kwarg(dtype: str) -> dict[str, Any]:
    """``from_pretrained``'s dtype argument (transformers renamed ``torch_dtype`` to ``dtype`` in 4.56)."""
    import torch
    import transformers

    major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if major_minor >= (4, 56) else "torch_dtype": getattr(torch, dtype)}


def _is_vision_language(source: str, common: dict[str, Any]) -> bool:
    """A model with a vision tower (``vision_config`` in its config) and a saved processor."""
    try:
        from transformers import AutoConfig
        cfg = AutoConfig.from_pretrained(source, **common)
    except Exception:
        return False
    if getattr(cfg, "vision_config", None) is None:
        return False
    folder = Path(source)
    if folder.is_dir():
        return any((folder / n).is_file() for n in ("processor_config.json", "preprocessor_config.json"))
    return True


def _has_images(req: Request) -> bool:
    return any(not isinstance(m.content, str) and any(p.type == "image" for p in m.content)
               for m in req.messages()) if req.is_chat else False


def finish_row(tokens: Sequence[int], *, eos_ids: frozenset[int], pad_id: int | None, cap: int,
               stop: Sequence[str], decode: Callable[[Sequence[int]], str]) -> tuple[str, str, int]:
    """Turn one row of generated token ids into ``(text, finish_reason, completion_tokens)``.

    Args:
        tokens: The ids generated for the row (prompt excluded), padding included.
        eos_ids: Ids that end a sequence.
        pad_id: The padding id written after a row finished early (often an EOS id).
        cap: The most tokens this row may have (``max_tokens``, or less near ``max_model_len``).
        stop: Stop strings.
        decode: ids -> text (special tokens skipped).

    Returns:
        The text cut before the first stop string, ``"stop"`` (EOS or stop string) or ``"length"``,
        and the number of tokens generated: through the token that completed a stop string, or
        including the end-of-sequence token when the model ended the row. That is how vLLM and OpenAI
        servers count ``completion_tokens``, so the count is the same on every backend.
    """
    ends = eos_ids | ({pad_id} if pad_id is not None else set())
    n = len(tokens)
    for i, t in enumerate(tokens):
        if t in ends:
            n = i
            break
    hit_eos = n < len(tokens) and n < cap
    n = min(n, cap)
    text = decode(tokens[:n])
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if cuts:
        return text[:min(cuts)], "stop", n
    return text, "stop" if hit_eos else "length", n + 1 if hit_eos else n


_STOP_CRITERIA_CLS: Any = None


def _stop_criteria(tok: Any, stops: Sequence[str], prompt_len: int) -> Any:
    """A transformers ``StoppingCriteria`` that ends a row once its text contains a stop string.

    Only the tail of each row is decoded each step (enough tokens to spell the longest stop string
    even one byte per token), so the check stays O(1) per step on long generations.
    """
    global _STOP_CRITERIA_CLS
    if _STOP_CRITERIA_CLS is None:
        import torch
        from transformers import StoppingCriteria

        class StopOnStrings(StoppingCriteria):
            def __init__(self, tok: Any, stops: Sequence[str], prompt_len: int):
                self.tok, self.stops, self.prompt_len = tok, [s for s in stops if s], prompt_len
                self.window = 4 * max(len(s) for s in self.stops) + 4

            def __call__(self, input_ids: "torch.Tensor", scores: Any, **kwargs: Any) -> "torch.Tensor":
                tails = input_ids[:, self.prompt_len:][:, -self.window:].tolist()
                done = [any(s in self.tok.decode(row, skip_special_tokens=True) for s in self.stops)
                        for row in tails]
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        _STOP_CRITERIA_CLS = StopOnStrings
    return _STOP_CRITERIA_CLS(tok, stops, prompt_len)


class HFBackend(BaseBackend, ValidatesOptions, ChecksModel, Timed):
    """Batched generation with a transformers ``AutoModelForCausalLM``.

    Requests are grouped by ``GenParams``, sorted by prompt length (longest first, so memory
    trouble shows on the first batch), left-padded into batches of ``batch_size`` and answered in
    the caller's order. A batch that raises is retried one request at a time, so one bad request
    fails alone.
    """

    kind = "hf"
    # set by _load; defaults for a backend whose loading failed part-way (close() still runs)
    model: Any = None
    processor: Any = None
    auto_batch = False
    sort_by_length = True
    options: dict[str, Option] = HF_OPTIONS

    def __init__(self, model: str | None = None, **options: Any):
        """Load the tokenizer and model.

        Args:
            model: A local model folder or a hub id.
            **options: ``-B`` options (see the module docstring).

        Raises:
            UserError: Bad options, a missing folder, an offline hub id, or a load failure.
        """
        self.opts = self.validate_options(options)
        self.model_name, self.folder = resolve_model(model, self.kind)
        if self.folder is not None and self.opts["revision"]:
            raise UserError(f"backend {self.kind}: -B revision= applies to hub ids, not to the local "
                            f"folder {model!r}")
        self._load()

    @classmethod
    def validate_options(cls, options: Any) -> dict[str, Any]:
        """Parse and check ``-B`` options without loading anything (``evalsuite.validate`` calls this first)."""
        opts = parse_options(cls.kind, cls.options, options)
        if opts["dtype"] not in DTYPES:
            raise UserError(f"backend {cls.kind}: dtype must be one of {', '.join(DTYPES)}, got {opts['dtype']!r}")
        dev = opts.get("device", "auto")
        if dev not in {"auto", "cpu", "cuda"} and not str(dev).startswith("cuda:"):
            raise UserError(f"backend {cls.kind}: device must be auto, cpu, cuda or cuda:N, got {dev!r}")
        return opts

    @classmethod
    def validate_model(cls, model: str | None) -> None:
        """The cheap part of loading: the folder exists, or the hub id can be reached (not offline)."""
        resolve_model(model, cls.kind)

    # -- loading ------------------------------------------------------------------------------------
    def _resolve_device(self, torch: Any) -> str:
        dev = self.opts["device"]
        if dev == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if dev == "cpu":
            return dev
        if dev == "cuda" or dev.startswith("cuda:"):
            if not torch.cuda.is_available():
                raise UserError(f"backend {self.kind}: -B device={dev} but torch sees no CUDA device "
                                "(use -B device=cpu)")
            return dev
        raise UserError(f"backend {self.kind}: device must be auto, cpu, cuda or cuda:N, got {dev!r}")

    def _resolve_dtype(self, torch: Any, device: str) -> str:
        dt = self.opts["dtype"]
        if dt != "auto":
            return dt
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "float32"

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        except ImportError as exc:
            raise UserError(f"backend {self.kind} needs torch and transformers ({exc.name} is missing): "
                            "pip install 'evalsuite[hf]' (on a CPU-only machine install "
                            "torch==2.13.0 first so pip does not fetch a CUDA build)") from None
        if self.opts["threads"]:
            torch.set_num_threads(self.opts["threads"])
        self.device = self._resolve_device(torch)
        self.dtype = self._resolve_dtype(torch, self.device)
        source = str(self.folder) if self.folder is not None else self.model_name
        common: dict[str, Any] = {"trust_remote_code": self.opts["trust_remote_code"]}
        if self.folder is not None:
            # A local folder must never reach out to the hub (transformers may look up
            # auxiliary files such as custom code or processor configs).
            common["local_files_only"] = True
        if self.opts["revision"]:
            common["revision"] = self.opts["revision"]
        try:
            hf_tok = AutoTokenizer.from_pretrained(source, **common)
        except Exception as exc:
            raise UserError(f"backend {self.kind}: cannot load the tokenizer of {self.model_name!r}: "
                            f"{type(exc).__name__}: {exc}") from None
        model_kw: dict[str, Any] = {**common, **dtype_kwarg(self.dtype)}
        if self.opts["attn_implementation"]:
            model_kw["attn_implementation"] = self.opts["attn_implementation"]
        if self.device != "cpu":
            model_kw["device_map"] = self.device  # load straight onto the GPU, no CPU copy
        from transformers.utils import logging as hf_logging

        # transformers draws a per-tensor progress bar on every load; it would cut through the
        # CLI's own progress display for a step that takes seconds.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        self.processor = None
        vision = _is_vision_language(source, common)
        try:
            if vision:
                # a vision-language model: its processor turns images + text into model inputs
                from transformers import AutoModelForImageTextToText, AutoProcessor
                model = AutoModelForImageTextToText.from_pretrained(source, **model_kw)
                self.processor = AutoProcessor.from_pretrained(source, **common)
            else:
                model = AutoModelForCausalLM.from_pretrained(source, **model_kw)
        except Exception as exc:
            raise UserError(f"backend {self.kind}: cannot load model {self.model_name!r}: "
                            f"{type(exc).__name__}: {exc}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if self.device == "cpu":
            model = model.to("cpu")
        model.eval()
        self._torch = torch
        self.model = model
        self.tokenizer = HFTokenizer(hf_tok, source, self.folder)

        # End-of-sequence ids: the tokenizer's, the config's and the generation config's together.
        eos: set[int] = set()
        for v in (hf_tok.eos_token_id, getattr(model.config, "eos_token_id", None),
                  getattr(model.generation_config, "eos_token_id", None)):
            if isinstance(v, int):
                eos.add(v)
            elif isinstance(v, (list, tuple)):
                eos.update(int(x) for x in v)
        self.eos_ids = frozenset(eos)
        pad = hf_tok.pad_token_id
        if pad is None:
            pad = getattr(model.generation_config, "pad_token_id", None)
        if pad is None and eos:
            pad = min(eos)
        self.pad_id = pad if pad is not None else 0
        # Record the checkpoint's generation config, then replace it with a neutral one so that
        # generate() has nothing of the checkpoint's to fill unset fields from.
        self.ignored_generation_config = {
            k: v for k, v in model.generation_config.to_diff_dict().items()
            if k not in {"transformers_version", "_from_model_config"}}
        model.generation_config = GenerationConfig(
            bos_token_id=hf_tok.bos_token_id, eos_token_id=sorted(self.eos_ids) or None,
            pad_token_id=self.pad_id)

        self.vocab_size = int(model.get_input_embeddings().num_embeddings)
        self.max_model_len = self.opts["max_model_len"] or self._default_max_len(model, hf_tok)
        self.auto_batch = self.opts["batch_size"] == "auto"
        self.batch_size = (AUTO_BATCH_START["cpu" if self.device == "cpu" else "cuda"] if self.auto_batch
                           else self.opts["batch_size"])
        self.batch_history: list[dict[str, Any]] = []
        """With ``batch_size=auto``: each halving (from, to, the error) in this invocation."""
        self.revision = self._revision(model)
        self.load_s = time.perf_counter() - t0
        self.id = f"{self.kind}:{self.model_name if self.folder is None else self.folder}@{self.revision}:{self.dtype}"

    @staticmethod
    def _default_max_len(model: Any, hf_tok: Any) -> int | None:
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        cands = [getattr(cfg, "max_position_embeddings", None), getattr(hf_tok, "model_max_length", None)]
        # transformers reports "no limit" as a huge sentinel (int(1e30)).
        sane = [int(c) for c in cands if isinstance(c, (int, float)) and 0 < c < 10**9]
        return min(sane) if sane else None

    def _revision(self, model: Any) -> str:
        if self.folder is not None:
            self.weights_fingerprint = folder_fingerprint(self.folder)
            return f"fp-{self.weights_fingerprint[:12]}"
        self.weights_fingerprint = None
        commit = getattr(model.config, "_commit_hash", None)
        return commit or self.opts["revision"] or "main"

    # -- generation -----------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        groups: dict[GenParams, list[tuple[int, list[int]]]] = defaultdict(list)
        for i, req in enumerate(requests):
            try:
                if _has_images(req):
                    if self.processor is None:
                        raise UserError("image inputs are not supported by this text-only backend (the model "
                                        "has no image processor; a task's caption-only/text mode avoids images)")
                    out[i] = self._generate_with_images(req)
                    continue
                ids = request_ids(self.tokenizer, req)
            except Exception as exc:
                out[i] = Generation.failed(f"building the prompt failed: {type(exc).__name__}: {exc}")
                continue
            bad = [t for t in ids if not 0 <= t < self.vocab_size]
            bad_stop = [t for t in req.params.stop_token_ids if not t < self.vocab_size]
            if not ids:
                out[i] = Generation.failed("empty prompt (no tokens)")
            elif bad:
                # Checked here because on a GPU an out-of-range id is a device-side assert that
                # poisons the CUDA context for every later request, not just an exception.
                out[i] = Generation.failed(f"prompt token id {bad[0]} is outside the vocabulary "
                                           f"(size {self.vocab_size})")
            elif bad_stop:
                out[i] = Generation.failed(f"stop token id {bad_stop[0]} is outside the vocabulary "
                                           f"(size {self.vocab_size})")
            elif self.max_model_len is not None and len(ids) >= self.max_model_len:
                out[i] = Generation.failed(f"prompt has {len(ids)} tokens; max_model_len is "
                                           f"{self.max_model_len}")
            else:
                groups[req.params].append((i, ids))
        for params, items in groups.items():
            items.sort(key=lambda it: len(it[1]), reverse=True)
            start = 0
            while start < len(items):  # batch_size may shrink on the way (batch_size=auto)
                chunk = items[start:start + self.batch_size]
                for i, g in self._run_isolated(chunk, params):
                    out[i] = g
                start += len(chunk)
        assert all(g is not None for g in out)
        return out  # type: ignore[return-value]

    def _run_isolated(self, chunk: list[tuple[int, list[int]]], params: GenParams) -> list[tuple[int, Generation]]:
        try:
            return self._run_batch(chunk, params)
        except Exception as exc:
            self._free_memory()
            if self.auto_batch and len(chunk) > 1 and is_oom(exc):
                # batch_size=auto: halve (unless an earlier halving already made batches smaller than this
                # one) and go on with the smaller size for the rest of the run
                if len(chunk) <= self.batch_size:
                    new = max(1, len(chunk) // 2)
                    self.batch_history.append({"from": len(chunk), "to": new, "error": type(exc).__name__})
                    self.batch_size = new
                out: list[tuple[int, Generation]] = []
                k = 0
                while k < len(chunk):
                    sub = chunk[k:k + self.batch_size]
                    out += self._run_isolated(sub, params)
                    k += len(sub)
                return out
            if len(chunk) == 1:
                return [(chunk[0][0], Generation.failed(f"{type(exc).__name__}: {exc}"))]
        # Retry one by one so a single bad request (or one too big for memory) fails alone.
        return [r for item in chunk for r in self._run_isolated([item], params)]

    def _free_memory(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def _caps(self, chunk: list[tuple[int, list[int]]], params: GenParams) -> list[int]:
        if self.max_model_len is None:
            return [params.max_tokens] * len(chunk)
        # Like vLLM, a request near the context limit stops there with finish_reason "length".
        return [min(params.max_tokens, self.max_model_len - len(ids)) for _, ids in chunk]

    def _generation_config(self, params: GenParams, max_new: int) -> Any:
        from transformers import GenerationConfig

        # Every field that changes which token is picked is set here. Fields left unset are filled
        # by generate() from model.generation_config (replaced by a neutral one at load) and then
        # from transformers' global defaults, which only matter when sampling: hence the explicit
        # top_k=0 there (the global default top_k=50 would silently truncate the distribution).
        kw: dict[str, Any] = dict(
            max_new_tokens=max_new, min_new_tokens=params.min_tokens, do_sample=params.temperature > 0, num_beams=1,
            num_return_sequences=1, repetition_penalty=1.0, encoder_repetition_penalty=1.0,
            no_repeat_ngram_size=0, bad_words_ids=None, suppress_tokens=None, begin_suppress_tokens=None,
            forced_bos_token_id=None, forced_eos_token_id=None, renormalize_logits=False,
            use_cache=True, return_dict_in_generate=True, output_scores=False,
            bos_token_id=self.tokenizer.tok.bos_token_id, eos_token_id=sorted(self._ends(params)) or None,
            pad_token_id=self.pad_id)
        if params.temperature > 0:
            kw.update(temperature=params.temperature, top_p=params.top_p, top_k=0, typical_p=1.0,
                      epsilon_cutoff=0.0, eta_cutoff=0.0)
        return GenerationConfig(**kw)

    def _ends(self, params: GenParams) -> frozenset[int]:
        """The ids that end a row: the model's EOS ids and the request's ``stop_token_ids``. generate() gets
        them as ``eos_token_id``, so ``min_new_tokens`` holds every one of them back (LongBench's pred.py
        passes ``eos_token_id=[eos, newline]`` with ``min_length`` for samsum)."""
        return self.eos_ids | frozenset(params.stop_token_ids)

    def _run_batch(self, chunk: list[tuple[int, list[int]]], params: GenParams) -> list[tuple[int, Generation]]:
        torch = self._torch
        t0 = time.perf_counter()
        caps = self._caps(chunk, params)
        width = max(len(ids) for _, ids in chunk)
        # Left padding: every row's last prompt token sits at the same position, so new tokens are
        # appended in lockstep; the attention mask hides the padding (and sets position ids).
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for _, ids in chunk])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in chunk])
        input_ids, mask = input_ids.to(self.model.device), mask.to(self.model.device)
        stopping = None
        if any(params.stop):
            from transformers import StoppingCriteriaList
            stopping = StoppingCriteriaList([_stop_criteria(self.tokenizer.tok, params.stop, width)])
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            res = self.model.generate(input_ids=input_ids, attention_mask=mask,
                                      generation_config=self._generation_config(params, max(caps)),
                                      stopping_criteria=stopping)
        new = res.sequences[:, width:].tolist()
        elapsed = time.perf_counter() - t0

        def decode(ids: Sequence[int]) -> str:
            return self.tokenizer.tok.decode(list(ids), skip_special_tokens=True)

        out = []
        for (i, ids), row, cap in zip(chunk, new, caps, strict=True):
            text, reason, n = finish_row(row, eos_ids=self._ends(params), pad_id=self.pad_id, cap=cap,
                                         stop=params.stop, decode=decode)
            # latency_s is the batch's wall time: the time this request waited for its answer.
            out.append((i, Generation(text=text, finish_reason=reason, prompt_tokens=len(ids),
                                      completion_tokens=n, latency_s=elapsed)))
        return out

    def _generate_with_images(self, req: Request) -> Generation:
        """One request with image parts through the model's processor (unbatched; greedy or seeded)."""
        from ..multimodal import load_image, processor_messages

        torch = self._torch
        t0 = time.perf_counter()
        try:
            msgs, refs = processor_messages(req.messages())
            images = [load_image(r) for r in refs]
            prefill = req.messages()[-1].role == "assistant"
            text = self.processor.apply_chat_template(msgs, add_generation_prompt=not prefill,
                                                      continue_final_message=prefill, tokenize=False)
            inputs = self.processor(text=[text], images=images, return_tensors="pt").to(self.model.device)
        except Exception as exc:
            return Generation.failed(f"building the prompt failed: {type(exc).__name__}: {exc}")
        width = int(inputs["input_ids"].shape[1])
        cap = req.params.max_tokens
        stopping = None
        if any(req.params.stop):
            from transformers import StoppingCriteriaList
            stopping = StoppingCriteriaList([_stop_criteria(self.tokenizer.tok, req.params.stop, width)])
        if req.params.temperature > 0:
            torch.manual_seed(req.params.seed)
        with torch.inference_mode():
            res = self.model.generate(**inputs, generation_config=self._generation_config(req.params, cap),
                                      stopping_criteria=stopping)
        row = res.sequences[0, width:].tolist()
        text_out, reason, n = finish_row(row, eos_ids=self._ends(req.params), pad_id=self.pad_id, cap=cap,
                                         stop=req.params.stop,
                                         decode=lambda ids: self.tokenizer.tok.decode(list(ids), skip_special_tokens=True))
        return Generation(text=text_out, finish_reason=reason, prompt_tokens=width, completion_tokens=n,
                          latency_s=time.perf_counter() - t0)

    # -- reporting ------------------------------------------------------------------------------------
    def timings(self) -> dict[str, Any]:
        """Per-invocation facts the runner records (``invocations[-1].backend_timings``): with
        ``batch_size=auto``, the batch size found and the halvings that found it."""
        if not self.auto_batch:
            return {}
        return {"batch_size_auto": {"start": AUTO_BATCH_START["cpu" if self.device == "cpu" else "cuda"],
                                    "found": self.batch_size, "halvings": list(self.batch_history)}}

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        d: dict[str, Any] = {
            "id": self.id, "backend": self.kind, "model": self.model_name,
            "model_path": str(self.folder) if self.folder is not None else None,
            "revision": self.revision, "weights_fingerprint": self.weights_fingerprint,
            "config_sha256": sha256_text(canonical_json(self.model.config.to_dict())),
            "dtype": self.dtype, "device": self.device, "max_model_len": self.max_model_len,
            "batch_size": "auto" if self.auto_batch else self.batch_size, "threads": torch.get_num_threads(),
            "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "eos_token_ids": sorted(self.eos_ids), "pad_token_id": self.pad_id,
            "generation_config_policy": (
                "checkpoint generation_config ignored: decoding comes from GenParams only (greedy when "
                "temperature == 0, else temperature/top_p sampling seeded per batch; top_k, min_p and "
                "repetition penalties disabled); only its EOS ids are kept; a request's stop_token_ids join the "
                "EOS ids and its min_tokens is min_new_tokens"),
            "ignored_generation_config": json.loads(json.dumps(self.ignored_generation_config, default=str)),
            "trust_remote_code": self.opts["trust_remote_code"],
            "load_s": round(self.load_s, 3),
        }
        d.update(self.tokenizer.describe())
        if self.processor is not None:
            d["processor"] = type(self.processor).__name__
        return d

    def close(self) -> None:
        if self.model is not None:
            self.model = None
            self._free_memory()
