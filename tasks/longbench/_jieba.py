"""jieba, with its dictionary loaded once per process and shared by every metric that segments Chinese.

``jieba.initialize()`` builds its prefix dictionary (every word of ``dict.txt`` with its frequency, and
every prefix of a word with frequency 0: about half a million entries) from a ``marshal`` cache in the
system temp folder, which takes most of a second to load and which any local user can replace. We keep
the same dictionary in our own cache instead (``<evalsuite cache>/jieba/``, keyed by the jieba version
and the sha256 of its ``dict.txt``): the words as one UTF-8 block and the frequencies as one int64
array, which load several times faster, and which we build from jieba's own ``dict.txt`` with jieba's
own ``gen_pfdict`` when missing or unreadable. The tokenizer then holds exactly what
``jieba.initialize()`` gives it (the tests compare), so segmentation is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import warnings
from array import array
from pathlib import Path
from typing import Any

from evalsuite.errors import UserError

MAGIC = b"evalsuite-jieba-freq 1\n"
_lock = threading.Lock()
_module: Any = None


def _import() -> Any:
    try:
        with warnings.catch_warnings():  # jieba imports pkg_resources, deprecated in new setuptools
            warnings.simplefilter("ignore")
            import jieba
    except ImportError:
        raise UserError("LongBench's Chinese metrics need jieba: pip install 'jieba>=0.42.1'") from None
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict..." lines would go to stderr
    return jieba


def cache_path(jieba: Any) -> Path | None:
    """Our cache file for jieba's default dictionary, or None when it cannot be found."""
    from evalsuite.cache import cache_root

    dict_file = Path(jieba.__file__).resolve().parent / "dict.txt"
    try:
        digest = hashlib.sha256(dict_file.read_bytes()).hexdigest()[:24]
    except OSError:
        return None
    return cache_root() / "jieba" / f"freq-{getattr(jieba, '__version__', '0')}-{digest}.bin"


def _dump(freq: dict[str, int], total: int) -> bytes:
    counts = array("q", freq.values())
    if sys.byteorder != "little":
        counts.byteswap()
    words = "\n".join(freq).encode("utf-8")
    head = json.dumps({"total": total, "n": len(freq), "words_bytes": len(words)}).encode() + b"\n"
    return MAGIC + head + counts.tobytes() + words


def _load(data: bytes) -> tuple[dict[str, int], int]:
    if not data.startswith(MAGIC):
        raise ValueError("not an evalsuite jieba cache")
    end = data.index(b"\n", len(MAGIC))
    head = json.loads(data[len(MAGIC):end])
    n, total, n_words = int(head["n"]), int(head["total"]), int(head["words_bytes"])
    start = end + 1
    counts = array("q")
    counts.frombytes(data[start:start + 8 * n])
    if sys.byteorder != "little":
        counts.byteswap()
    words = data[start + 8 * n:].decode("utf-8").split("\n")
    if len(counts) != n or len(words) != n or len(data) - start - 8 * n != n_words:
        raise ValueError("truncated evalsuite jieba cache")
    freq = dict(zip(words, counts.tolist()))
    if len(freq) != n:
        raise ValueError("repeated words in evalsuite jieba cache")
    return freq, total


def _initialize(jieba: Any) -> None:
    """Give jieba's default tokenizer its prefix dictionary from our cache (built when missing)."""
    tok = jieba.dt
    if tok.initialized:
        return
    if tok.dictionary is not getattr(jieba, "DEFAULT_DICT", None):  # a custom dictionary: jieba's own way
        tok.initialize()
        return
    path = cache_path(jieba)
    if path is not None:
        try:
            tok.FREQ, tok.total = _load(path.read_bytes())
            tok.initialized = True
            return
        except (OSError, ValueError, KeyError):
            pass
    freq, total = tok.gen_pfdict(tok.get_dict_file())
    tok.FREQ, tok.total = freq, total
    tok.initialized = True
    if path is not None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(_dump(freq, total))
            os.replace(tmp, path)
        except OSError:  # a read-only cache costs time, not correctness
            try:
                tmp.unlink()
            except OSError:
                pass


def jieba() -> Any:
    """The jieba module, its default dictionary loaded (once per process)."""
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                mod = _import()
                with mod.dt.lock:
                    _initialize(mod)
                _module = mod
    return _module


_blocks: dict[str, tuple[str, ...]] = {}
MAX_BLOCKS = 500_000
"""Segmented blocks kept for reuse (cleared when full)."""


def cut(text: str) -> list[str]:
    """``list(jieba.cut(text, cut_all=False))``, each distinct block segmented once per process.

    jieba cuts a text block by block -- runs of Han characters, letters and digits (its
    ``re_han_default``) and the pieces between them -- and each block's words depend on that block
    alone, so a block seen before (model outputs repeat themselves, answers share phrases) gives the
    words it gave then. The tests compare with ``jieba.cut`` on every golden text.
    """
    mod = jieba()
    split = getattr(mod, "re_han_default", None)
    if split is None:  # not the jieba we know: no reuse
        return list(mod.cut(text, cut_all=False))
    words: list[str] = []
    blocks = _blocks
    for blk in split.split(text):
        if not blk:
            continue
        got = blocks.get(blk)
        if got is None:
            if len(blocks) >= MAX_BLOCKS:
                blocks.clear()
            got = blocks[blk] = tuple(mod.dt.cut(blk, cut_all=False))
        words.extend(got)
    return words
