"""Per-sample data of the sample browser: compressed JSON in small script files, loaded on demand.

For each run x task the site holds one page, ``samples/<run>/<task>.html`` (a shell: title, counts, an
empty table), and the samples in chunks of ``CHUNK`` beside it, ``samples/<run>/<task>.<n>.js`` (n = 1,
2, ...). A chunk file is one line of JavaScript::

    evalsuiteSamples(1, "<base64 of the zlib-compressed JSON>");

The page's script (``static/site.js``) adds a ``<script>`` element for the chunk it shows, and the chunk
hands its payload to ``evalsuiteSamples``, which inflates it with the browser's ``DecompressionStream``
and builds the rows with ``textContent`` only. A ``<script src>`` of the page's own folder is what
works from ``file://`` (``fetch`` and XHR of local files do not, in Chromium) and what the pages'
Content-Security-Policy (``script-src 'self'``) allows; no ``eval``, no inline script, no HTML parsing.

The JSON is ``{"v": 1, "items": [...]}`` with one compact object per sample (keys in ``FIELDS``; empty
fields left out). :func:`read_chunk` decodes a chunk file (tests, tools).
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalsuite.reasoning import split_reasoning
from evalsuite.redact import redact_text
from evalsuite.store import ResultsStore

from .local_paths import publishable_text

CHUNK = 250
"""Samples per chunk file, and per page of the browser."""
FORMAT = 1
CALLBACK = "evalsuiteSamples"
FIELDS = {
    "i": "index", "id": "sample id", "m": "metrics as [name, value with 3 decimals]", "f": "flags",
    "fr": "finish reason", "e": "error (redacted, no local paths)", "t": "think text", "o": "output",
    "r": "references", "h": "prompt sha256", "pt": "prompt tokens", "pc": "prompt characters",
    "pv": "prompt preview", "md": "metadata", "x": "1 when below the maximum or with an error",
}
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK_LINE = re.compile(r'^evalsuiteSamples\((\d+), "([A-Za-z0-9+/=]*)"\);\n\Z')


def chunk_name(slug: str, n: int) -> str:
    return f"{slug}.{n}.js"


def _num3(v: Any) -> str:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return f"{v:.3f}" if ok else "–"


def _text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _references(target: Any) -> list[str]:
    if target is None:
        return []
    if isinstance(target, (list, tuple)):
        return [_text(t) for t in target]
    return [_text(target)]


def sample_items(store: ResultsStore, task: str, prompt_preview: int = 0) -> list[dict[str, Any]]:
    """The compact per-sample objects of one run x task, in ``per_sample.jsonl`` order (read through the
    store's typed rows: ``evalsuite.rows``)."""
    per_sample = store.read_per_sample(task)
    log = store.latest_rows(task)
    prompts: dict[str, str] = {}
    if prompt_preview > 0:
        for p in store.prompts(task):
            text = p.prompt if isinstance(p.prompt, str) else json.dumps(p.prompt, ensure_ascii=False)
            if p.prompt_sha256:
                prompts[p.prompt_sha256] = text[:prompt_preview]
    items = []
    for ps in per_sample:
        row = log.get(ps.key or "")
        gen = row.generation if row is not None else None
        raw = gen.text if gen is not None else ""
        _, think, _ = split_reasoning(raw or "")
        # the first pass's prompt identifies the sample's input
        first = row
        seen = set()
        while first is not None and first.parent and first.parent in log and first.parent not in seen:
            seen.add(first.parent)
            first = log[first.parent]
        metrics = ps.metrics
        error = ps.error
        failed = bool(error) or any(isinstance(v, (int, float)) and v < 1.0 for v in metrics.values())
        it: dict[str, Any] = {"i": ps.index, "id": _text(ps.sample_id)}
        if metrics:
            it["m"] = [[str(k), _num3(v)] for k, v in sorted(metrics.items(), key=lambda kv: str(kv[0]).lower())]
        if ps.flags:
            it["f"] = [_text(f) for f in ps.flags]
        if gen is not None and gen.finish_reason:
            it["fr"] = _text(gen.finish_reason)
        if error:
            it["e"] = publishable_text(redact_text(error)) if isinstance(error, str) else _text(error)
        if think:
            it["t"] = think
        it["o"] = _text(ps.prediction)
        refs = _references(row.target if row is not None else None)
        if refs:
            it["r"] = refs
        ph = first.prompt_sha256 if first is not None else None
        if ph:
            it["h"] = _text(ph)
            if ph in prompts:
                it["pv"] = prompts[ph]
        if first is not None and first.prompt_tokens:
            it["pt"] = first.prompt_tokens
        if first is not None and first.prompt_chars:
            it["pc"] = first.prompt_chars
        if ps.metadata:
            it["md"] = dict(ps.metadata)
        if failed:
            it["x"] = 1
        items.append(it)
    return items


def encode_chunk(n: int, items: Iterable[Mapping[str, Any]]) -> bytes:
    """One chunk file (deterministic: sorted keys, fixed compression level, no timestamps)."""
    doc = json.dumps({"v": FORMAT, "items": list(items)}, ensure_ascii=False, sort_keys=True,
                     separators=(",", ":"), default=str)
    doc = _SURROGATE.sub("\ufffd", doc)  # a lone surrogate from an old log: shown as U+FFFD, never a crash
    payload = base64.b64encode(zlib.compress(doc.encode("utf-8"), 9)).decode("ascii")
    return f'{CALLBACK}({int(n)}, "{payload}");\n'.encode("ascii")


def read_chunk(path: str | Path) -> tuple[int, list[dict[str, Any]]]:
    """Decode a chunk file written by :func:`encode_chunk`: ``(chunk number, items)``."""
    m = _CHUNK_LINE.match(Path(path).read_text(encoding="ascii"))
    if not m:
        raise ValueError(f"{path}: not a sample chunk file")
    doc = json.loads(zlib.decompress(base64.b64decode(m.group(2))).decode("utf-8"))
    if not isinstance(doc, dict) or doc.get("v") != FORMAT or not isinstance(doc.get("items"), list):
        raise ValueError(f"{path}: unknown sample chunk format")
    return int(m.group(1)), doc["items"]


def chunks(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
