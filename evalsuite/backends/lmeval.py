"""The ``lmeval`` backend: any lm-evaluation-harness model that implements ``generate_until``.

``--backend lmeval -B model=<lm-eval model name> -B model_args=<lm-eval argument string>`` builds the
model through lm-eval's own registry (``get_model(name).create_from_arg_string(model_args, {...})``),
so evalsuite's tasks, truncation, metrics and results store reach lm-eval's long tail of engines and
APIs (``hf``, ``vllm``, ``sglang``, ``local-completions``, ``local-chat-completions``, ...). Only
``generate_until`` is used; lm-eval's loglikelihood requests and its task system are not.

Options (``-B``):

* ``model``: the lm-eval model name (required), e.g. ``hf``, ``vllm``, ``local-completions``.
* ``model_args``: lm-eval's ``key=value,key=value`` string, passed on as lm-eval would.
  ``--model`` fills ``pretrained=`` (API models: ``model=``) when ``model_args`` names neither.
* ``batch_size`` (default 16): requests per ``generate_until`` call; the runner saves the answers
  after each call. Also passed to the model as lm-eval's ``batch_size`` unless ``model_args`` sets it.
* ``device``: passed to the model as lm-eval's ``device`` (omitted when not given).
* ``seed_mode``: how a sampling request's seed reaches the model: ``kwarg`` (``seed`` in the
  generation kwargs: vLLM's ``SamplingParams``, the API models' payload), ``global`` (python, numpy
  and torch global generators seeded before each call, one call per seed: transformers' ``generate``
  rejects a ``seed`` kwarg) or ``auto`` (default: ``global`` for lm-eval's ``HFLM`` family, else ``kwarg``).
* ``plugins``: comma-separated modules to import first, so that custom models registered with
  ``@register_model`` are found.
* ``max_model_len``: overrides the context length read from the model (``lm.max_length``).
* ``threads``: ``torch.set_num_threads`` after loading (CPU runs).

Secrets: the command line and ``-B`` options are written to the run's manifest, so a model argument
whose name looks secret (``api_key``, ``auth_token``, ``password``, ...) must be written as
``name=env:VARIABLE`` and is read from the environment; a literal value is refused. ``id`` and
``describe()`` carry the arguments with every secret-looking value replaced by ``***``.

Each evalsuite ``Request`` becomes one ``generate_until`` ``Instance``:

* context: a raw prompt as is; a chat prompt (or a text prompt with ``use_chat_template``) rendered with
  the model's own ``apply_chat_template(chat, add_generation_prompt=...)``. A final assistant message is
  a prefill: it is rendered with ``add_generation_prompt=False``, which lm-eval's HF-tokenizer models
  turn into transformers' ``continue_final_message=True`` (the text the ``hf`` backend renders). Runner
  truncated prompts (``prompt_ids``) are decoded with the model's tokenizer: every generating lm-eval
  model (0.4.13: ``HFLM``, ``VLLM``, the ``TemplateAPI`` models) takes its context as text and encodes it
  itself, so the ids cannot be handed over. The text is re-encoded here the way the model will encode it
  (``tok_batch_encode`` for ``HFLM``, else ``tok_encode``); when that gives other ids than the runner
  planned (a merge across the cut, a BOS rule), the answer carries the flag ``prompt_reencoded``, which
  the task's scores count (``backend_flags``).
* gen_kwargs: ``until`` = our stop strings (an empty list stays empty: lm-eval's models then stop on
  EOS only; the ``"\\n\\n"`` some lm-eval tasks stop on comes from their task configs, not the models),
  ``max_gen_toks`` = ``max_tokens`` (always explicit, capped at the context length as the ``hf``
  backend does), ``do_sample`` = ``temperature > 0``, ``temperature``, and ``top_p`` when sampling.
  ``stop_token_ids`` / ``min_tokens`` (when set): for ``HFLM`` the model's EOS ids plus the stop ids as
  ``eos_token_id`` and ``min_new_tokens`` (transformers' ``generate`` kwargs; the stop token's text, which
  lm-eval returns, is cut off); for ``VLLM`` and the API models ``stop_token_ids`` / ``min_tokens``
  (``SamplingParams`` fields; request-body fields that vLLM servers accept). Any other model fails such a
  request with a clear error rather than generating differently.

lm-eval returns text only: ``prompt_tokens`` / ``completion_tokens`` are counted with the model's
tokenizer when it exposes a Hugging Face one (else ``None``), and ``finish_reason`` is inferred
(``length`` when the answer has ``max_gen_toks`` tokens, else ``stop``).

lm_eval is imported inside methods, so importing this module stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..data import offline
from .. import redact
from ..errors import BackendUnavailable, UserError
from ..options import Option
from ..types import GenParams, Generation, Message, Request, canonical_json, sha256_text
from . import BaseBackend, parse_options
from .models import HFTokenizer, folder_fingerprint, looks_like_path

INSTALL_HINT = "pip install 'evalsuite[lmeval]'"

LMEVAL_OPTIONS: dict[str, Option] = {
    "model": Option(str, None, "lm-eval's model name (hf, vllm, local-completions, ...)"),
    "model_args": Option(str, "", "lm-eval's model_args, a=1,b=x"),
    "batch_size": Option(int, 16, "requests per generate_until call"),
    "device": Option(str, None, "lm-eval's device"),
    "seed_mode": Option(str, "auto", "auto, kwarg or global"),
    "plugins": Option(str, None, "modules to import first (registering lm-eval models)"),
    "max_model_len": Option(int, None, "the context window"),
    "threads": Option(int, None, "torch CPU threads"),
}

SEED_MODES = ("auto", "kwarg", "global")

_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
REDACTED = redact.REDACTED
# model arguments that change how requests are scheduled, not what is answered: left out of the id
_NOT_IDENTITY = frozenset({"batch_size", "max_batch_size", "num_concurrent", "max_retries", "timeout"})


def is_secret_key(key: str) -> bool:
    """Whether a model argument's name marks its value as a credential (``evalsuite.redact``'s rule)."""
    return redact.is_secret_name(key.strip())


def split_model_args(model_args: str) -> list[tuple[str, str]]:
    """``"a=1,b=x"`` -> ``[("a", "1"), ("b", "x")]``, split the way lm-eval splits it (on every comma,
    then on the first ``=``); a piece without ``=`` is an error here (lm-eval would drop its value)."""
    pairs = []
    for piece in (model_args or "").strip().split(","):
        if not piece:
            continue
        if "=" not in piece:
            raise UserError(f"backend lmeval: model_args piece {piece!r} is not key=value "
                            "(lm-eval splits model_args on every comma)")
        k, v = piece.split("=", 1)
        if not k.strip():
            raise UserError(f"backend lmeval: model_args piece {piece!r} has no key")
        pairs.append((k, v))
    return pairs


def join_model_args(pairs: Sequence[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs)


def redact_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Model arguments with every secret-looking value (by key or by value) replaced by ``***``;
    an ``env:NAME`` reference is kept (it names the variable, not the secret)."""
    out = []
    for k, v in pairs:
        if _ENV_REF.match(v.strip()):
            out.append((k, v))
        elif is_secret_key(k) or redact.looks_like_key(v):
            out.append((k, REDACTED))
        else:
            out.append((k, v))
    return out


def redact_model_args(model_args: str) -> str:
    """``model_args`` as it may be written to results files (see ``redact_pairs``)."""
    return join_model_args(redact_pairs(split_model_args(model_args)))


def resolve_secrets(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Replace ``key=env:NAME`` by the variable's value; refuse a literal value for a secret-looking key.

    Raises:
        UserError: A literal secret (it would reach the manifest through the command line), an unset
            variable, or a value lm-eval's argument string cannot carry (a comma).
    """
    out = []
    for k, v in pairs:
        m = _ENV_REF.match(v.strip())
        if m:
            name = m.group(1)
            value = os.environ.get(name)
            redact.register_secret(value, name)
            if value is None:
                raise UserError(f"backend lmeval: model_args {k.strip()}=env:{name} but ${name} is not set")
            if "," in value:
                raise UserError(f"backend lmeval: ${name} contains a comma, which lm-eval's argument "
                                "string cannot carry")
            out.append((k, value))
        elif (is_secret_key(k) or redact.looks_like_key(v)) and v.strip() not in ("", "None", "none"):
            raise UserError(
                f"backend lmeval: model_args {k.strip()}=... looks like a credential; the command line and "
                f"-B options are written to the run's manifest, so pass it from the environment: "
                f"{k.strip()}=env:VARIABLE")
        else:
            out.append((k, v))
    return out


class LMEvalTokenizer(HFTokenizer):
    """The lm-eval model's Hugging Face tokenizer, rendering chats through the model's own
    ``apply_chat_template`` so that what the runner counts and truncates is what the model is fed
    (lm-eval's ``chat_template_args``, e.g. ``enable_thinking``, and its system-role fallback included)."""

    def __init__(self, lm: Any, tok: Any, source: str, folder: Path | None):
        super().__init__(tok, source, folder)
        self._lm = lm

    def render_messages(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                        continue_final_message: bool = False) -> str:
        if add_generation_prompt == continue_final_message:
            # a combination lm-eval's signature cannot express (neither or both): transformers directly
            return super().render_messages(messages, add_generation_prompt, continue_final_message)
        if self.chat_template is None:
            raise UserError(f"tokenizer of {self.source} has no chat template; run the task without "
                            "one (-T chat_template=false)")
        out = self._lm.apply_chat_template([m.to_dict() for m in messages],
                                           add_generation_prompt=add_generation_prompt)
        if not isinstance(out, str):
            raise UserError("the lm-eval model does not render chats to text")
        return out


def _lm_eval_version() -> str:
    try:
        from importlib.metadata import version

        return version("lm_eval")
    except Exception:
        import lm_eval

        return str(getattr(lm_eval, "__version__", "unknown"))


def _implements_generate_until(cls: type) -> bool:
    """False when ``generate_until`` is lm-eval's abstract stub, or a body that only raises
    ``NotImplementedError`` (or does nothing)."""
    import ast
    import textwrap

    fn = getattr(cls, "generate_until", None)
    if fn is None or getattr(fn, "__isabstractmethod__", False):
        return False
    if fn.__module__ == "lm_eval.api.model" and fn.__qualname__.split(".")[0] in ("LM", "TemplateLM"):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return True
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) else []
    stmts = [b for b in body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
    if not stmts or all(isinstance(b, ast.Pass) for b in stmts):
        return False
    first = stmts[0]
    if len(stmts) == 1 and isinstance(first, ast.Raise) and first.exc is not None:
        target = first.exc.func if isinstance(first.exc, ast.Call) else first.exc
        return not (isinstance(target, ast.Name) and target.id == "NotImplementedError")
    return True


def _is_hflm(lm: Any) -> bool:
    mod = sys.modules.get("lm_eval.models.huggingface")
    return mod is not None and isinstance(lm, getattr(mod, "HFLM", ()))


def _is_lmeval_vllm(lm: Any) -> bool:
    return any(c.__name__ == "VLLM" and c.__module__.startswith("lm_eval.models.") for c in type(lm).__mro__)


def _is_template_api(cls: type) -> bool:
    return any(c.__name__ == "TemplateAPI" and c.__module__.startswith("lm_eval.") for c in cls.__mro__)


class LMEvalBackend(BaseBackend):
    """An lm-evaluation-harness model driven through ``generate_until``, one call per chunk."""

    kind = "lmeval"
    lm: Any = None
    """The lm-eval model (None until built, or after close)."""
    options = LMEVAL_OPTIONS
    """Checked by ``evalsuite.validate`` before lm-eval is imported."""
    # lm-eval sorts within each call; sorting the whole run as well keeps each call's prompts of
    # similar length (less padding for hf, steadier batches for vllm)
    sort_by_length = True

    def __init__(self, model: str | None = None, /, **options: Any):
        """Build the lm-eval model.

        Args:
            model: evalsuite's ``--model``: the default for ``pretrained=`` (``model=`` for API models)
                when ``model_args`` names neither. Positional-only, because ``-B model=`` is lm-eval's
                model name.
            **options: ``-B`` options (see the module docstring).

        Raises:
            UserError: lm-eval missing, an unknown model name, a model without ``generate_until``, a
                literal secret, an offline hub id, bad options or a load failure.
        """
        t0 = time.perf_counter()
        self.opts = parse_options(self.kind, LMEVAL_OPTIONS, options)
        name = self.opts["model"]
        if not name:
            raise UserError("backend lmeval needs -B model=<lm-eval model name> (e.g. hf, vllm, "
                            "local-completions) and usually -B model_args=<lm-eval arguments>")
        if self.opts["batch_size"] < 1:
            raise UserError("backend lmeval: batch_size must be >= 1")
        if self.opts["seed_mode"] not in SEED_MODES:
            raise UserError(f"backend lmeval: seed_mode must be one of {', '.join(SEED_MODES)}, "
                            f"got {self.opts['seed_mode']!r}")
        self.lm_name = name
        try:
            # lm-eval fills its registry lazily, only while it is empty: a plugin registering a model
            # first would hide every built-in one. Its model table registers lazily (no torch import).
            import lm_eval.models  # noqa: F401
            from lm_eval.api.registry import get_model
        except ImportError:
            raise UserError(f"backend lmeval needs lm-evaluation-harness: {INSTALL_HINT}") from None
        for mod in filter(None, (m.strip() for m in (self.opts["plugins"] or "").split(","))):
            try:
                importlib.import_module(mod)
            except Exception as exc:
                raise UserError(f"backend lmeval: cannot import plugin module {mod!r}: "
                                f"{type(exc).__name__}: {exc}") from None
        cls = self._model_class(get_model, name)
        if not _implements_generate_until(cls):
            raise UserError(f"backend lmeval: lm-eval model {name!r} ({cls.__name__}) does not implement "
                            "generate_until (it scores loglikelihoods only); pick a generating model")
        self.is_api = _is_template_api(cls)
        # chat-completions style models: the context is the message list, rendered by the server
        self.chat_api = self.is_api and any("chat" in c.__name__.lower() for c in cls.__mro__
                                            if c.__module__.startswith("lm_eval.models."))

        pairs = split_model_args(self.opts["model_args"])
        keys = {k.strip() for k, _ in pairs}
        if model:
            target = "model" if self.is_api else "pretrained"
            given = [v for k, v in pairs if k.strip() in ("pretrained", "model")]
            if not given:
                pairs.append((target, model))
            elif given[0].strip() != model:
                raise UserError(f"backend lmeval: --model {model!r} and model_args "
                                f"{'/'.join(sorted(keys & {'pretrained', 'model'}))}={given[0]!r} disagree; "
                                "give the model once")
        self.pairs = pairs
        self.model_args_redacted = join_model_args(redact_pairs(pairs))
        resolved = resolve_secrets(pairs)
        self.pretrained = next((v.strip() for k, v in pairs if k.strip() == "pretrained"), None) or \
            next((v.strip() for k, v in pairs if k.strip() == "model"), None)
        self.model_name = self.pretrained  # the model's name for planning (LongBench's model2maxlen)
        self.folder = self._local_folder(self.pretrained)
        if not self.is_api and cls.__module__.startswith("lm_eval.models.") and self.pretrained \
                and self.folder is None:
            # lm-eval's own local engines load ``pretrained`` from the hub (custom models: their business)
            self._check_hub_id(self.pretrained)

        extra: dict[str, Any] = {}
        if "batch_size" not in keys:
            extra["batch_size"] = self.opts["batch_size"]
        if self.opts["device"] and "device" not in keys:
            extra["device"] = self.opts["device"]
        self.lm = self._create(cls, join_model_args(resolved), extra)
        if self.opts["threads"] and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(self.opts["threads"])

        self.batch_size = self.opts["batch_size"]
        mode = self.opts["seed_mode"]
        self.seed_mode = ("global" if _is_hflm(self.lm) else "kwarg") if mode == "auto" else mode
        self.tokenizer = self._find_tokenizer()
        self.max_model_len = self.opts["max_model_len"] or self._model_max_len()
        self.revision = self._revision(pairs)
        ident = [[k.strip(), v.strip()] for k, v in redact_pairs(pairs) if k.strip() not in _NOT_IDENTITY]
        args_hash = sha256_text(canonical_json(ident))[:12]
        self.id = f"lmeval:{name}:{args_hash}@{self.revision}"
        self._accepts_disable_tqdm = "disable_tqdm" in inspect.signature(self.lm.generate_until).parameters
        self.load_s = time.perf_counter() - t0

    # -- construction ---------------------------------------------------------------------------------
    @staticmethod
    def _model_class(get_model: Callable[[str], Any], name: str) -> type:
        try:
            return get_model(name)
        except ValueError:
            from lm_eval.api.registry import model_registry

            known = sorted(model_registry.keys())
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"backend lmeval: unknown lm-eval model {name!r}{hint} (known: {', '.join(known)})") \
                from None
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            raise UserError(f"backend lmeval: lm-eval model {name!r} needs {missing}, which is not installed "
                            f"(e.g. pip install 'lm-eval[hf]' or 'lm-eval[vllm]')") from None

    @staticmethod
    def _local_folder(value: str | None) -> Path | None:
        if not value:
            return None
        p = Path(value).expanduser()
        return p.resolve() if p.is_dir() else None

    @staticmethod
    def _check_hub_id(value: str) -> None:
        if looks_like_path(value):
            raise UserError(f"backend lmeval: model folder {value!r} does not exist")
        if offline():
            raise UserError(f"backend lmeval: pretrained={value!r} is a hub id but the hub is offline "
                            "(HF_HUB_OFFLINE is set); download it elsewhere and pass the local folder, "
                            "e.g. -B model_args=pretrained=/path/to/model-folder")

    def _create(self, cls: type, arg_string: str, extra: dict[str, Any]) -> Any:
        try:
            return cls.create_from_arg_string(arg_string, extra)
        except UserError:
            raise
        except ImportError as exc:
            raise UserError(f"backend lmeval: lm-eval model {self.lm_name!r} needs "
                            f"{getattr(exc, 'name', None) or exc}, which is not installed") from None
        except Exception as exc:
            msg = self._redact_text(f"{type(exc).__name__}: {exc}")
            raise UserError(f"backend lmeval: cannot build lm-eval model {self.lm_name!r} with model_args "
                            f"{self.model_args_redacted!r}: {msg}") from None

    def _find_tokenizer(self) -> LMEvalTokenizer | None:
        """The model's HF tokenizer, when it has one and renders chats to text with it."""
        if "transformers" not in sys.modules:
            return None
        from transformers import PreTrainedTokenizerBase

        try:
            tok = getattr(self.lm, "tokenizer", None)
        except Exception:  # a lazy property that failed to load (e.g. an offline hub id)
            return None
        if not isinstance(tok, PreTrainedTokenizerBase):
            return None
        if getattr(tok, "chat_template", None):
            try:
                probe = self.lm.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True)
            except Exception:
                probe = ""
            if not isinstance(probe, str):  # chat sent as messages (chat-completions APIs)
                return None
        source = str(self.folder) if self.folder is not None else str(getattr(tok, "name_or_path", "") or
                                                                       self.pretrained or self.lm_name)
        return LMEvalTokenizer(self.lm, tok, source, self.folder)

    def _model_max_len(self) -> int | None:
        if self.is_api and not getattr(self.lm, "tokenized_requests", False):
            return None  # lm-eval checks no length for text sent to an API
        try:
            n = getattr(self.lm, "max_length", None)
        except Exception:
            return None
        return int(n) if isinstance(n, int) and 0 < n < 10**9 else None

    def _revision(self, pairs: Sequence[tuple[str, str]]) -> str:
        self.weights_fingerprint = None
        if self.folder is not None:
            self.weights_fingerprint = folder_fingerprint(self.folder)
            return f"fp-{self.weights_fingerprint[:12]}"
        cfg = getattr(getattr(self.lm, "_model", None), "config", None)
        commit = getattr(cfg, "_commit_hash", None)
        if isinstance(commit, str) and commit:
            return commit
        rev = next((v.strip() for k, v in pairs if k.strip() == "revision"), None)
        return rev or "unpinned"

    # -- generation -----------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [g for _, g in sorted(self.generate_iter(requests), key=lambda t: t[0])]

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        for start in range(0, len(requests), self.batch_size):
            for i, g in self._generate(requests[start:start + self.batch_size]):
                yield start + i, g

    def _context(self, req: Request) -> tuple[Any, int | None, tuple[str, ...]]:
        """The context lm-eval is given, its length in tokens (``None`` when it cannot be counted) and the
        answer's flags (``prompt_reencoded``)."""
        tok = self.tokenizer
        if any(not isinstance(m.content, str) and any(p.type == "image" for p in m.content)
               for m in req.messages()) and req.is_chat:
            raise UserError("image inputs are not supported by the lmeval backend")
        if req.prompt_ids is not None:
            if tok is None:
                raise UserError("the request carries token ids but the lm-eval model exposes no tokenizer")
            text = tok.decode(req.prompt_ids)
            fed = self._lm_encode(text)
            if fed is None:
                return text, len(req.prompt_ids), ()
            return text, len(fed), ("prompt_reencoded",) if fed != list(req.prompt_ids) else ()
        if isinstance(req.prompt, str) and not req.use_chat_template:
            if self.chat_api:
                raise UserError(f"lm-eval model {self.lm_name!r} takes chat messages only, and this request is "
                                "raw text (the task runs without a chat template)")
            return req.prompt, len(tok.encode(req.prompt, add_special_tokens=True)) if tok else None, ()
        msgs = req.messages()
        prefill = msgs[-1].role == "assistant"
        try:
            ctx = self.lm.apply_chat_template([m.to_dict() for m in msgs], add_generation_prompt=not prefill)
        except NotImplementedError:
            raise UserError(f"lm-eval model {self.lm_name!r} has no chat template support; run the task "
                            "without one (-T chat_template=false)") from None
        if not isinstance(ctx, str) and not self.chat_api:
            # lm-eval hands back the messages (JsonChatStr) when it has no local tokenizer to render them
            raise UserError(f"lm-eval model {self.lm_name!r} has no local chat template to render this chat "
                            "prompt (give it a Hugging Face tokenizer, e.g. model_args tokenizer=<folder>, use a "
                            "*-chat-completions model, or run the task with -T chat_template=false)")
        n = len(tok.encode(ctx, add_special_tokens=False)) if tok is not None and isinstance(ctx, str) else None
        return ctx, n, ()

    def _lm_encode(self, text: str) -> list[int] | None:
        """The ids the lm-eval model will feed for ``text`` (its own encoding rule), or None if unknown."""
        lm = self.lm
        try:
            if _is_hflm(lm):
                ids, _ = lm.tok_batch_encode([text])  # what HFLM.generate_until calls
                return [int(t) for t in ids[0].tolist()]
            if callable(getattr(lm, "tok_encode", None)):
                out = lm.tok_encode(text)
                if isinstance(out, (list, tuple)) and all(isinstance(t, int) for t in out):
                    return list(out)
        except Exception:
            return None
        return None

    def _model_eos_ids(self) -> set[int]:
        """An HFLM model's own end-of-sequence ids (tokenizer, config and generation config together)."""
        eos: set[int] = set()
        model = getattr(self.lm, "model", None)
        for v in (getattr(getattr(self.lm, "tokenizer", None), "eos_token_id", None),
                  getattr(getattr(model, "config", None), "eos_token_id", None),
                  getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
            if isinstance(v, int):
                eos.add(v)
            elif isinstance(v, (list, tuple)):
                eos.update(int(x) for x in v)
        return eos

    def _token_kwargs(self, p: GenParams) -> dict[str, Any]:
        """``stop_token_ids`` / ``min_tokens`` in the form the lm-eval model passes on to its engine."""
        if not p.stop_token_ids and not p.min_tokens:
            return {}
        if _is_hflm(self.lm):
            kw: dict[str, Any] = {"eos_token_id": sorted(self._model_eos_ids() | set(p.stop_token_ids))}
            if p.min_tokens:
                kw["min_new_tokens"] = int(p.min_tokens)
            return kw
        if self.is_api or _is_lmeval_vllm(self.lm):
            kw = {}
            if p.stop_token_ids:
                kw["stop_token_ids"] = list(p.stop_token_ids)
            if p.min_tokens:
                kw["min_tokens"] = int(p.min_tokens)
            return kw
        raise UserError(f"lm-eval model {self.lm_name!r} has no known way to take stop_token_ids/min_tokens "
                        "(supported: hf, vllm and the API models); use the hf, vllm or openai backend")

    def _gen_kwargs(self, req: Request, cap: int) -> dict[str, Any]:
        p = req.params
        kw: dict[str, Any] = {"until": [s for s in p.stop if s], "max_gen_toks": cap,
                              "do_sample": p.temperature > 0, "temperature": float(p.temperature)}
        if p.temperature > 0:
            kw["top_p"] = float(p.top_p)
            if self.seed_mode == "kwarg":
                kw["seed"] = int(p.seed)
        kw.update(self._token_kwargs(p))
        return kw

    def _generate(self, requests: Sequence[Request]) -> list[tuple[int, Generation]]:
        from lm_eval.api.instance import Instance

        out: list[tuple[int, Generation]] = []
        # (position, instance, prompt tokens, cap); grouped by the global seed they need (None: any)
        groups: dict[int | None, list[tuple[int, Any, int | None, int]]] = {}
        for i, req in enumerate(requests):
            try:
                ctx, n, flags = self._context(req)
                kwargs = self._gen_kwargs(req, req.params.max_tokens)
            except Exception as exc:
                out.append((i, Generation.failed(f"building the prompt failed: {type(exc).__name__}: {exc}")))
                continue
            cap = req.params.max_tokens
            if self.max_model_len is not None and n is not None:
                if n >= self.max_model_len:
                    out.append((i, Generation.failed(f"prompt has {n} tokens; max_model_len is {self.max_model_len}")))
                    continue
                # like the hf backend (and vLLM): stop at the context limit rather than letting lm-eval
                # silently cut the prompt's start to make room for max_gen_toks
                cap = min(cap, self.max_model_len - n)
            kwargs["max_gen_toks"] = cap
            inst = Instance(request_type="generate_until", doc={}, arguments=(ctx, kwargs),
                            idx=i, metadata=(req.task, req.index, 1))
            seed = req.params.seed if self.seed_mode == "global" and req.params.temperature > 0 else None
            groups.setdefault(seed, []).append((i, inst, n, cap, (req, flags)))
        for seed, items in groups.items():
            out.extend(self._call(items, seed))
        return out

    def _call(self, items: list[tuple[int, Any, int | None, int, tuple[Request, tuple[str, ...]]]],
              seed: int | None) -> list[tuple[int, Generation]]:
        t0 = time.perf_counter()
        if seed is not None:
            self._seed_globals(seed)
        try:
            kw = {"disable_tqdm": True} if self._accepts_disable_tqdm else {}
            texts = self.lm.generate_until([inst for _, inst, _, _, _ in items], **kw)
            if len(texts) != len(items):
                raise RuntimeError(f"generate_until returned {len(texts)} answers for {len(items)} requests")
        except NotImplementedError as exc:
            raise BackendUnavailable(f"backend lmeval: lm-eval model {self.lm_name!r} does not implement "
                                     f"generate_until ({exc})") from None
        except Exception as exc:
            err = self._redact_text(f"generate_until failed: {type(exc).__name__}: {exc}")
            dt = time.perf_counter() - t0
            return [(i, Generation.failed(err, dt)) for i, _, _, _, _ in items]
        dt = time.perf_counter() - t0
        res = []
        for (i, _, n, cap, (req, flags)), text in zip(items, texts, strict=True):
            if not isinstance(text, str):
                res.append((i, Generation.failed(f"the model returned {type(text).__name__}, not text", dt)))
                continue
            text = self._cut_stop_token(text, req.params)
            m = len(self.tokenizer.encode(text)) if self.tokenizer is not None else None
            reason = "length" if m is not None and m >= cap else "stop"
            # latency_s is the call's wall time: the time this request waited for its answer
            res.append((i, Generation(text=text, finish_reason=reason, prompt_tokens=n, completion_tokens=m,
                                      latency_s=dt, flags=flags)))
        return res

    def _cut_stop_token(self, text: str, p: GenParams) -> str:
        """HFLM returns the stop token's text with the answer (it decodes up to and including it); our answers
        leave it out, as the hf and vllm backends do."""
        if not p.stop_token_ids or not _is_hflm(self.lm) or self.tokenizer is None:
            return text
        for t in p.stop_token_ids:
            piece = self.tokenizer.tok.decode([t], skip_special_tokens=True)
            if piece and text.endswith(piece):
                return text[:-len(piece)]
        return text

    @staticmethod
    def _seed_globals(seed: int) -> None:
        import random

        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)

    def _redact_text(self, text: str) -> str:
        for name, v in resolve_secrets_values(self.pairs):
            redact.register_secret(v, name)
        return redact.redact_text(text)

    # -- reporting ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        cls = type(self.lm)
        d: dict[str, Any] = {
            "id": self.id, "backend": self.kind, "lm_eval": _lm_eval_version(),
            "lm_eval_model": self.lm_name, "lm_eval_class": f"{cls.__module__}.{cls.__qualname__}",
            "model_args": self.model_args_redacted, "revision": self.revision,
            "model_path": str(self.folder) if self.folder is not None else None,
            "weights_fingerprint": self.weights_fingerprint,
            "batch_size": self.batch_size, "seed_mode": self.seed_mode, "max_model_len": self.max_model_len,
            "chat_template": ("the lm-eval model's apply_chat_template, for chat requests and text requests "
                              "with use_chat_template; raw text otherwise"),
            "gen_kwargs_policy": ("until = the task's stop strings (empty stays empty; lm-eval adds EOS), "
                                  "max_gen_toks = max_tokens capped at max_model_len - prompt tokens, "
                                  "do_sample = temperature > 0, temperature, top_p when sampling, seed via "
                                  f"{self.seed_mode}; stop_token_ids/min_tokens as eos_token_id/min_new_tokens "
                                  "(hf) or stop_token_ids/min_tokens (vllm, API models)"),
            "prompt_ids": ("decoded to text (lm-eval models take text) and re-encoded by the model; "
                           "answers whose re-encoded ids differ are flagged prompt_reencoded"),
            "counts": "tokens counted with the model's tokenizer; finish_reason inferred from the count"
                      if self.tokenizer is not None else "no tokenizer: token counts unknown, finish_reason 'stop'",
            "load_s": round(self.load_s, 3),
        }
        for mod in ("torch", "transformers", "vllm"):
            if mod in sys.modules:
                d[mod] = getattr(sys.modules[mod], "__version__", None)
        if self.tokenizer is not None:
            d.update(self.tokenizer.describe())
        return d

    def close(self) -> None:
        if self.lm is not None:
            self.lm = None
            import gc

            gc.collect()
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()


def resolve_secrets_values(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(key, value)`` of every secret read from the environment (to scrub error messages)."""
    out = []
    for k, v in pairs:
        m = _ENV_REF.match(v.strip())
        if m and os.environ.get(m.group(1)):
            out.append((k, os.environ[m.group(1)]))
    return out
