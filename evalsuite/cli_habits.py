"""Spellings users bring from lm-evaluation-harness and inspect_ai, understood or answered with a hint.

* ``--tasks a b`` and ``--tasks a,b`` (and both mixed).
* ``--model hf`` (a backend name given as a model): one line naming ``--backend hf --model ...``.
* ``--model openai/gpt-4o-mini`` (inspect's ``provider/model``): without ``--backend``, a first part that
  names a backend (``openai``, ``hf``, ``vllm``, ``lmeval``, a plugin's) selects it and the rest is the
  model; a local folder of that name wins, and ``--backend`` given explicitly turns this off.
* ``--temperature``, ``--top-p``, ``--seed`` and ``--gen-kwargs k=v,...`` (lm-eval's flag): generation
  parameters for every request, typed from ``GenParams``' fields (lm-eval's ``max_gen_toks`` /
  ``max_new_tokens`` / ``until`` / ``do_sample`` are accepted as aliases).

Nothing here imports more than the standard library and evalsuite's records.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import UserError

GEN_ALIASES = {"max_gen_toks": "max_tokens", "max_new_tokens": "max_tokens", "until": "stop"}
PREFIX_BACKENDS = ("openai", "hf", "vllm", "lmeval")
"""Built-in backends that serve arbitrary models and so may prefix a model name (plugins too, by name)."""
_NEEDS = {"openai": "<name the server serves>", "hf": "<local folder or hub id>", "vllm": "<local folder or hub id>",
          "lmeval": "<model> -B model=<lm-eval model name>"}


def split_tasks(values: str | Sequence[str] | None) -> list[str]:
    """``["a,b", "c"]`` or ``"a,b c"`` -> ``["a", "b", "c"]``."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [t for v in items for t in re.split(r"[,\s]+", v) if t]


def backend_names() -> list[str]:
    """Registered backend names from entry points (nothing imported)."""
    try:
        return sorted({ep.name for ep in metadata.entry_points(group="evalsuite.backends")})
    except Exception:  # pragma: no cover - broken metadata must not break the CLI
        return list(PREFIX_BACKENDS)


def resolve_model_spelling(model: str | None, backend: str | None,
                           names: Iterable[str] | None = None) -> tuple[str | None, str | None, str | None]:
    """``(model, backend, note)`` after reading lm-eval / inspect spellings; ``note`` is a line to print."""
    if model is None or backend:
        return model, backend, None
    if Path(model).expanduser().exists():
        return model, backend, None
    known = set(names if names is not None else backend_names())
    if model in known:
        need = _NEEDS.get(model, "<model>")
        raise UserError(f"--model {model!r} names a backend; did you mean --backend {model} --model {need}?")
    prefix, sep, rest = model.partition("/")
    if sep and rest and prefix in known and prefix not in _SCRIPTED:
        hint = " (for the hub model of that name, add --backend hf)" if prefix == "openai" else ""
        return rest, prefix, f"evalsuite: reading --model {model} as --backend {prefix} --model {rest}{hint}"
    return model, backend, None


_SCRIPTED = {"echo", "replay", "gold", "embedded", "nli_classifier", "nli_seq2seq"}


def _field_parser(f: dataclasses.Field) -> Any:
    t = str(f.type)
    if t.startswith("tuple") or t.startswith("Sequence") or t.startswith("list"):
        inner_int = "int" in t

        def parse_list(v: str) -> tuple:
            v = v.strip()
            if v.startswith("["):
                try:
                    items = json.loads(v)
                except ValueError as exc:
                    raise ValueError(f"not a JSON list ({exc})") from None
                if not isinstance(items, list):
                    raise ValueError("expected a JSON list")
            else:
                items = [v]
            return tuple(int(x) for x in items) if inner_int else tuple(str(x) for x in items)

        return parse_list
    if t.startswith("bool"):
        from .options import parse_bool

        return parse_bool
    if t.startswith("int"):
        return int
    if t.startswith("float"):
        return float
    return str


def gen_fields() -> dict[str, dataclasses.Field]:
    from .types import GenParams

    return {f.name: f for f in dataclasses.fields(GenParams)}


def parse_gen_kwargs(text: str | None) -> dict[str, Any]:
    """``"temperature=0.7,top_p=0.9,stop=[\\"\\\\n\\"]"`` -> typed GenParams fields (lm-eval's form).

    Pairs are separated by commas that start a new ``key=``; a list value is JSON (``stop=["a","b"]``)."""
    if not text or not text.strip():
        return {}
    fields = gen_fields()
    out: dict[str, Any] = {}
    do_sample: bool | None = None
    for part in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)", text.strip()):
        if "=" not in part:
            raise UserError(f"--gen-kwargs: expected key=value pairs separated by commas, got {part!r}")
        raw_key, value = part.split("=", 1)
        key = GEN_ALIASES.get(raw_key.strip(), raw_key.strip())
        if key == "do_sample":
            from .options import parse_bool

            try:
                do_sample = parse_bool(value)
            except ValueError as exc:
                raise UserError(f"--gen-kwargs do_sample: {exc}") from None
            continue
        if key not in fields:
            choices = sorted(set(fields) | set(GEN_ALIASES) | {"do_sample"})
            close = difflib.get_close_matches(key, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; accepted: {', '.join(sorted(fields))}"
            raise UserError(f"--gen-kwargs: unknown generation parameter {raw_key.strip()!r}{hint}")
        if key in out:
            raise UserError(f"--gen-kwargs: {key} given twice")
        try:
            out[key] = _field_parser(fields[key])(value.strip())
        except (TypeError, ValueError) as exc:
            raise UserError(f"--gen-kwargs: bad value for {key}={value!r} ({exc})") from None
    if do_sample is False:
        if out.get("temperature", 0) not in (0, 0.0):
            raise UserError("--gen-kwargs: do_sample=false contradicts temperature > 0")
        out["temperature"] = 0.0
    elif do_sample is True and not out.get("temperature"):
        raise UserError("--gen-kwargs: do_sample=true needs a temperature > 0 (e.g. temperature=0.7)")
    return out


def generation_overrides(temperature: float | None, top_p: float | None, seed: int | None,
                         gen_kwargs: str | None) -> dict[str, Any]:
    """The run's generation overrides from the dedicated flags and ``--gen-kwargs`` (a key in both is an
    error, not a silent precedence). ``max_tokens`` may come back from ``--gen-kwargs``; the caller folds
    it into ``--max-tokens``."""
    out = parse_gen_kwargs(gen_kwargs)
    for key, value in (("temperature", temperature), ("top_p", top_p), ("seed", seed)):
        if value is None:
            continue
        if key in out:
            raise UserError(f"{key} given both as --{key.replace('_', '-')} and in --gen-kwargs")
        out[key] = value
    return out
