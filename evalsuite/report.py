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


def partial_reason(s: Mapping[str, Any]) -> str:
    """Why a task's scores.json is partial ("" when it is complete)."""
    why = []
    if s.get("n_missing"):
        why.append(f"{s['n_missing']} of {s.get('n_planned')} planned samples missing")
    if s.get("n_errors"):
        why.append(f"{s['n_errors']} failed generation{'s' if s['n_errors'] != 1 else ''} (scored as 0)")
    if not why and s.get("complete") is False:
        why.append("incomplete")
    return ", ".join(why)


def print_scores(scores: Mapping[str, Mapping[str, Any]], title: str = "",
                 summaries: list[dict[str, Any]] | None = None,
                 partial: Mapping[str, str] | None = None) -> None:
    """The score table, with a status column and a PARTIAL line per partial task. ``partial`` (task ->
    reason, "" for complete) overrides what the scores say: ``show`` passes what
    ``evalsuite.completeness`` found, which also knows scores made stale by a later plan or log."""
    from rich import box
    from rich.table import Table

    reasons = {name: (partial[name] if partial is not None and name in partial else partial_reason(s))
               for name, s in scores.items()}
    console = _console()
    longest = max((len(str(name)) for name in scores), default=4)
    # A narrow terminal (80 columns) gets no CI and ±se columns (they are in --json) rather than a task
    # name cut to "longbench/…", which would make two tasks look the same.
    compact = console.size.width < 110
    cols = ["task", "metric", "value"] + ([] if compact else ["95% CI", "±se"]) + ["n", "status", "errors",
                                                                                 "cut in/out"]
    t = (Table(title=title or None, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
               collapse_padding=True) if compact else Table(title=title or None))
    short = {"errors": "err", "cut in/out": "cut i/o"} if compact else {}
    for col in cols:
        t.add_column(short.get(col, col), justify="left" if col in {"task", "metric", "status"} else "right",
                     overflow="fold", no_wrap=col not in {"task", "metric"},
                     min_width=min(longest, 40) if col == "task" else 8 if col == "metric" else None)
    for name, s in scores.items():
        n = str(s.get("n", 0))
        if reasons[name] and s.get("n_planned") is not None:
            n = f"{s.get('n', 0)}/{s.get('n_planned')}"
        metrics = s.get("metrics") or [{}]
        for i, m in enumerate(metrics):
            ci = m.get("ci95")
            first = i == 0
            cells = {"task": name if first else "", "metric": m.get("name", "-"), "value": _fmt(m.get("value")),
                     "95% CI": f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "-", "±se": _fmt(m.get("stderr")),
                     "n": n if first else "",
                     "status": ("PARTIAL" if reasons[name] else "complete") if first else "",
                     "errors": str(s.get("n_errors", 0)) if first else "",
                     "cut in/out": f"{s.get('n_truncated', 0)}/{s.get('n_output_truncated', 0)}" if first else ""}
            t.add_row(*(cells[c] for c in cols))
            for b, v in ((m.get("details") or {}).get("buckets") or {}).items():
                t.add_row(*("" if c != "metric" and c != "value" else f"  length {b}" if c == "metric" else _fmt(v)
                            for c in cols))
    console.print(t)
    for name, why in reasons.items():
        if why:
            print(f"PARTIAL {name}: {why}; these numbers are not final")
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
    """What ``show --json`` prints: the run's identity, each task's scores with its completeness, and
    ``complete`` / ``counts`` for the whole run (``evalsuite.completeness``)."""
    from .completeness import run_completeness

    manifest = store.read_manifest()
    comp = run_completeness(store)
    tasks = {}
    for tc in comp.tasks:
        s = store.read_scores(tc.task)
        entry = dict(s) if s is not None else {"status": "not scored"}
        entry["complete"] = tc.complete
        entry["completeness"] = tc.to_dict()
        tasks[tc.task] = entry
    scored = {k: v for k, v in tasks.items() if "metrics" in v}
    invocations = manifest.get("invocations") or []
    last = invocations[-1] if invocations and isinstance(invocations[-1], Mapping) else {}
    counts = {k: v for k, v in comp.to_dict().items() if k in {"planned", "scored", "missing", "failed"}}
    return {"run_id": store.run_id, "run_dir": str(store.dir), "complete": comp.complete, "counts": counts,
            "status": comp.summary(), "last_invocation": last.get("status"),
            "summaries": summaries_for(scored),
            "backend": manifest.get("backend", {}).get("id"),
            "model": manifest.get("backend", {}).get("model"),
            "evalsuite_version": manifest.get("evalsuite_version"), "git_commit": manifest.get("git_commit"),
            "created": manifest.get("created"), "updated": manifest.get("updated"), "tasks": tasks}


def _reasons(d: Mapping[str, Any]) -> list[str]:
    from .completeness import TaskCompleteness

    fields = {k: d[k] for k in ("task", "planned", "scored", "missing", "failed", "scores_current", "has_scores")}
    return TaskCompleteness(**fields).reasons()


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
            scored = {k: v for k, v in s["tasks"].items() if "metrics" in v}
            reasons = {k: ", ".join(_reasons(v["completeness"])) for k, v in scored.items()}
            print_scores(scored, title=f"run {store.run_id}  backend {s['backend']}", summaries=s["summaries"],
                         partial=reasons)
            for k, v in s["tasks"].items():
                if "metrics" not in v:
                    print(f"PARTIAL {k}: {', '.join(_reasons(v['completeness']))}")
            print(f"run {store.run_id}: {s['status']}"
                  + ("" if s["complete"] else " (re-run the same command to finish it; `evalsuite score "
                     f"{store.dir}` scores what is there)"))
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
