"""Where a model comes from, shared by the backends that load Hugging Face checkpoints (hf, embedded,
vllm, lmeval): is ``--model`` a local folder or a hub id (``resolve_model``), a cheap content fingerprint of a
folder (``folder_fingerprint``), and evalsuite's ``Tokenizer`` over a transformers tokenizer
(``HFTokenizer``). Nothing heavy is imported here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from ..data import offline
from ..errors import UserError
from ..tokenizer import file_sha256
from ..types import Message, canonical_json, sha256_text

# Below this size a weight file is hashed whole; above it only its size, head and tail are (see
# ``folder_fingerprint``): hashing 15 GB of safetensors on every start would cost minutes.
_FULL_HASH_LIMIT = 16 << 20
_EDGE_BYTES = 1 << 20


def folder_fingerprint(path: Path) -> str:
    """A content fingerprint of a local model folder, cheap enough to take on every start.

    Covers every top-level file's name and size; small files (configs, tokenizer, chat template)
    are hashed whole and large weight files by their first and last MiB. That tells apart any two
    checkpoints met in practice (safetensors start with a header listing every tensor's dtype,
    shape and offsets) without reading gigabytes.

    Args:
        path: The model folder.

    Returns:
        A sha256 hex digest.
    """
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= _FULL_HASH_LIMIT:
                h.update(fh.read())
            else:
                h.update(fh.read(_EDGE_BYTES))
                fh.seek(size - _EDGE_BYTES)
                h.update(fh.read(_EDGE_BYTES))
        h.update(b"\0")
    return h.hexdigest()


def looks_like_path(model: str) -> bool:
    """Whether ``--model`` is meant as a path: a hub id is "name" or "org/name"; anything else the user typed
    (``./m``, ``/models/m``, ``a/b/c``, a backslash) is a path."""
    # A hub id is "name" or "org/name"; anything else the user typed is meant as a path.
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


def resolve_model(model: str | None, backend: str = "hf") -> tuple[str, Path | None]:
    """Decide whether ``model`` is a local folder or a hub id, before anything heavy is imported.

    Args:
        model: What the user passed as ``--model``.
        backend: Backend name for messages.

    Returns:
        ``(model, folder)``: ``folder`` is the resolved local folder, or ``None`` for a hub id.

    Raises:
        UserError: No model, a path that is not a folder, or a hub id while the hub is offline
            (raised at once: transformers would otherwise retry for tens of seconds).
    """
    if not model:
        raise UserError(f"backend {backend} needs --model <local model folder or hub id>")
    p = Path(model).expanduser()
    if p.is_dir():
        return model, p.resolve()
    if p.exists():
        raise UserError(f"backend {backend}: --model {model!r} is a file; pass the folder holding "
                        "config.json, the weights and the tokenizer")
    if looks_like_path(model):
        raise UserError(f"backend {backend}: model folder {model!r} does not exist")
    if offline():
        raise UserError(f"backend {backend}: --model {model!r} is a hub id but the hub is offline "
                        "(HF_HUB_OFFLINE is set); download it elsewhere and pass the local folder, "
                        "e.g. --model /path/to/model-folder")
    return model, None


class HFTokenizer:
    """evalsuite's ``Tokenizer`` protocol over a transformers tokenizer.

    Renders chats with the tokenizer's own ``apply_chat_template`` so that what the runner counts
    and truncates is exactly what the model is fed.
    """

    def __init__(self, tok: Any, source: str, folder: Path | None = None):
        """Wrap ``tok``.

        Args:
            tok: A transformers (fast) tokenizer.
            source: The model folder or hub id it came from (for ``describe``).
            folder: The local folder, when there is one, so the hash covers ``tokenizer.json``
                byte for byte (the same hash ``LocalTokenizer`` reports).
        """
        self.tok = tok
        self.source = source
        self.name = Path(source).name if folder is not None else source
        template = getattr(tok, "chat_template", None)
        # Some tokenizers carry several named templates; transformers then uses "default".
        if isinstance(template, dict):
            template = template.get("default")
        self.chat_template: str | None = template if isinstance(template, str) else None
        tj = folder / "tokenizer.json" if folder is not None else None
        if tj is not None and tj.is_file():
            self.tokenizer_hash = file_sha256(tj)
        elif getattr(tok, "backend_tokenizer", None) is not None:
            self.tokenizer_hash = sha256_text(tok.backend_tokenizer.to_str())
        else:
            self.tokenizer_hash = sha256_text(canonical_json(sorted(tok.get_vocab().items())))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=add_special_tokens))

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (no special tokens added) and character spans; fast tokenizers only
        (``NotImplementedError`` otherwise, and callers fall back to plain ``encode``)."""
        if not getattr(self.tok, "is_fast", False):
            raise NotImplementedError("offsets need a fast tokenizer")
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def decode(self, ids: Sequence[int]) -> str:
        # Special tokens kept and no space clean-up: decode is used to cut prompts, where the
        # text must stay byte-faithful (same as LocalTokenizer.decode).
        return self.tok.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def render_messages(self, messages: Sequence[Message], add_generation_prompt: bool = True,
                        continue_final_message: bool = False) -> str:
        if self.chat_template is None:
            raise UserError(f"tokenizer of {self.source} has no chat template; run the task without "
                            "one (-T chat_template=false)")
        msgs = [m.to_dict() for m in messages]
        return self.tok.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=add_generation_prompt and not continue_final_message,
            continue_final_message=continue_final_message)

    def describe(self) -> dict[str, Any]:
        return {
            "tokenizer": self.source, "tokenizer_sha256": self.tokenizer_hash,
            "chat_template_sha256": sha256_text(self.chat_template) if self.chat_template else None,
            "tokenizer_class": type(self.tok).__name__,
        }


__all__ = ["HFTokenizer", "folder_fingerprint", "looks_like_path", "resolve_model"]
