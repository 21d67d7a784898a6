"""Nothing local on a published page: absolute paths in run manifests and error texts are rewritten.

A path under a known root is shown relative to it (``<evalsuite cache>/models/...``,
``<hf cache>/hub/...``); any other absolute path is shown by its file name only
(``<local>/PaulGrahamEssays.json``): the manifest records content hashes beside the paths it keeps (data
``sha256``, tokenizer and weights fingerprints), so the file stays identifiable without its location.
URLs are left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

# An absolute path of at least two segments, not part of a URL ("http://host/x": the first slash follows
# ':' and is followed by '/', the rest follow word characters), a date or a fraction.
_ABS = re.compile(r"(?<![\w./~])(/(?!/)(?:[^\s/'\"<>|,;]+/)+[^\s/'\"<>|,;]*)")
_HOME = re.compile(r"(?<![\w./])~/[^\s'\"<>|,;]*")
_FILE_URL = re.compile(r"file://(/[^\s'\"<>|,;]+)")
_API_ROUTES = ("/chat/completions", "/v1/")


def default_roots() -> list[tuple[str, str]]:
    """(absolute folder, label) pairs, longest first: evalsuite's cache and the Hugging Face cache."""
    home = Path.home()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    roots = [
        (os.environ.get("EVALSUITE_CACHE") or str(cache / "evalsuite"), "<evalsuite cache>"),
        (os.environ.get("HF_HOME") or str(cache / "huggingface"), "<hf cache>"),
    ]
    out = []
    for path, label in roots:
        try:
            out.append((str(Path(path).expanduser().resolve()).rstrip("/"), label))
        except (OSError, RuntimeError):
            continue
        out.append((str(Path(path).expanduser()).rstrip("/"), label))
    return sorted(set(out), key=lambda r: -len(r[0]))


def _rewrite(path: str, roots: Sequence[tuple[str, str]]) -> str:
    if path.startswith(_API_ROUTES) or path in _API_ROUTES:
        return path
    for root, label in roots:
        if root and (path == root or path.startswith(root + "/")):
            return label + path[len(root):]
    return "<local>/" + (path.rstrip("/").rsplit("/", 1)[-1] or "")


def publishable_text(text: str, roots: Sequence[tuple[str, str]] | None = None) -> str:
    """``text`` with every absolute local path rewritten (module docstring)."""
    if "/" not in text:
        return text
    roots = default_roots() if roots is None else roots
    text = _FILE_URL.sub(lambda m: "file://" + _rewrite(m.group(1), roots), text)
    text = _ABS.sub(lambda m: _rewrite(m.group(1), roots), text)
    return _HOME.sub(lambda m: "<local>/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def publishable(obj: Any, roots: Sequence[tuple[str, str]] | None = None) -> Any:
    """A copy of a JSON-like value with every string made publishable."""
    roots = default_roots() if roots is None else roots
    if isinstance(obj, str):
        return publishable_text(obj, roots)
    if isinstance(obj, dict):
        return {k: publishable(v, roots) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [publishable(v, roots) for v in obj]
    return obj
