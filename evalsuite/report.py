"""Tables and summaries of runs (``evalsuite run`` / ``score`` / ``show``)."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from .store import ResultsStore


_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: Any) -> str:
    """Text safe to print on a terminal: newlines become ``⏎``, and every other control character (C0,
    DEL, C1 such as the 8-bit CSI, bidirectional overrides) is written as its escape (``\\x1b``,
    ``\\x00``, ``\\r``, ``\\u202e``), so model output can neither move the cursor, clear the screen, set
    colours, open OSC 8 hyperlinks, ring bells nor reorder what is shown."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if ch == "\n":
            out.append("⏎")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or 0x7f <= o < 0xa0:
            out.append(f"\\x{o:02x}")
        elif ch in _BIDI:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _console():
    import sys

    from rich.console import Console

    # piped output (logs, CI) gets a wide table instead of rich's 80-column default
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, soft_wrap=True, width=width)


def print_scores(scores: Mapping[str, Mapping[str, Any]], title: str = "",
                 summaries: list[dict[str, Any]] | None = None) -> None:
    from rich.table import Table

    t = Table(title=title or None)
    for col in ("task", "metric", "value", "95% CI", "±se", "n", "errors", "truncated"):
        t.add_column(col, justify="left" if col in {"task", "metric"} else "right")
    for name, s in scores.items():
        metrics = s.get("metrics") or [{}]
        for i, m in enumerate(metrics):
            ci = m.get("ci95")
            t.add_row(name if i == 0 else "", m.get("name", "-"), _fmt(m.get("value")),
                      f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "-", _fmt(m.get("stderr")),
                      str(s.get("n", 0)) if i == 0 else "",
                      str(s.get("n_errors", 0)) if i == 0 else "",
                      str(s.get("n_truncated", 0)) if i == 0 else "")
            for b, v in ((m.get("details") or {}).get("buckets") or {}).items():
                t.add_row("", f"  length {b}", _fmt(v), "", "", "", "", "")
    _console().print(t)
    if summaries:
        st = Table(title="summaries")
        st.add_column("aggregate")
        st.add_column("value", justify="right")
        st.add_column("tasks", justify="right")
        for row in summaries:
            st.add_row(row["name"], _fmt(row["value"]), str(row.get("n_tasks", "")))
        _console().print(st)


def summaries_for(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    from .registry import default_registry

    return default_registry().summarize(dict(scores))


def summary(store: ResultsStore) -> dict[str, Any]:
    manifest = store.read_manifest()
    tasks = {}
    for name in store.tasks():
        s = store.read_scores(name)
        tasks[name] = s if s is not None else {"status": "not scored"}
    scored = {k: v for k, v in tasks.items() if "metrics" in v}
    return {"run_id": store.run_id, "run_dir": str(store.dir), "summaries": summaries_for(scored),
            "backend": manifest.get("backend", {}).get("id"),
            "model": manifest.get("backend", {}).get("model"),
            "evalsuite_version": manifest.get("evalsuite_version"), "git_commit": manifest.get("git_commit"),
            "created": manifest.get("created"), "updated": manifest.get("updated"), "tasks": tasks}


def _failed(row: Mapping[str, Any]) -> bool:
    if row.get("error") or "error" in row.get("flags", []) or "unterminated_think" in row.get("flags", []):
        return True
    vals = [v for v in row.get("metrics", {}).values() if v is not None]
    return bool(vals) and min(vals) < 1.0


def show(run: str, as_json: bool = False, samples: bool = False, failed: bool = False,
         task: str | None = None) -> int:
    store = ResultsStore.open_existing(run)
    if not samples:
        s = summary(store)
        if as_json:
            print(json.dumps(s, indent=2, ensure_ascii=False))
        else:
            print_scores({k: v for k, v in s["tasks"].items() if "metrics" in v},
                         title=f"run {store.run_id}  backend {s['backend']}", summaries=s["summaries"])
            unscored = [k for k, v in s["tasks"].items() if "metrics" not in v]
            if unscored:
                print(f"not scored yet: {', '.join(unscored)} (run `evalsuite score {store.dir}`)")
        return 0
    names = [task] if task else store.tasks()
    rows = []
    for name in names:
        for r in store.read_per_sample(name):
            if failed and not _failed(r):
                continue
            rows.append({"task": name, **r})
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(visible(f"run {store.run_id}: {'failed ' if failed else ''}samples")))
    for col in ("task", "index", "sample_id", "metrics", "flags", "prediction"):
        t.add_column(col)
    for r in rows:
        pred = r.get("prediction") or (f"[error] {r['error']}" if r.get("error") else "")
        pred = visible(pred)
        # Text cells: what a model wrote is never read as rich markup ("[/bold]", "[link=...]")
        t.add_row(*(Text(visible(c)) for c in (
            r["task"], str(r["index"]), str(r["sample_id"]),
            " ".join(f"{k}={_fmt(v, 3)}" for k, v in r.get("metrics", {}).items()),
            ",".join(str(f) for f in r.get("flags", [])))), Text(pred[:80] + ("…" if len(pred) > 80 else "")))
    _console().print(t)
    if failed and rows:
        sel = ",".join(f"{r['task']}:{r['index']}" for r in rows)
        print(f"re-run these with: --samples {sel}")
    return 0
