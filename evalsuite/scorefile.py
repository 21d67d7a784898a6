"""``evalsuite score-file``: score predictions produced elsewhere with our metrics or a task's scorer.

Several files and folders are scored in one process (a folder means its ``*.jsonl`` files, as LongBench's
``eval.py`` reads ``pred/<model>/``). Which task reads a file:

* ``--metric NAME``: lines with ``prediction`` and ``references``, scored by that metric;
* ``--task TASK``: every file in that task's official prediction format;
* ``--task GROUP`` (``longbench``, ``longbench_e``, ``ruler``, ...): each file's task is the member named
  after the file, ``<group>/<dataset>`` with ``dataset = filename.split(".")[0]`` as eval.py takes it;
* neither: the group ``longbench`` (eval.py's own behaviour).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .contracts import OfficialFormat, OfficialSummary, ScoreContext, Task
from .errors import UserError
from .metrics import score_metric
from .registry import Registry, default_registry
from .types import Generation, MetricResult, Record, Sample

DEFAULT_GROUP = "longbench"
"""The group whose member a file names when neither --task nor --metric is given."""


def _read_lines(path: str) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except RecursionError:
            raise UserError(f"{path}:{n}: JSON nested too deeply") from None
        except ValueError as exc:
            raise UserError(f"{path}:{n}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no lines to score")
    return rows


def _result(metric_results: list[MetricResult], n: int) -> dict[str, Any]:
    per_line: list[dict[str, Any]] = [{"line": i + 1} for i in range(n)]
    out_metrics = []
    for res in metric_results:
        entry: dict[str, Any] = {"name": res.name, "value": res.value, "signature": res.signature}
        if res.details:
            entry["details"] = dict(res.details)
        out_metrics.append(entry)
        for i, v in enumerate(res.scaled_per_sample() or ()):
            per_line[i][res.name] = v
    return {"n": n, "metrics": out_metrics, "score": out_metrics[0]["value"] if out_metrics else None,
            "per_line": per_line}


def _score_metric(path: str, rows: list[dict[str, Any]], metric: Any, name: str) -> dict[str, Any]:
    records = []
    for i, row in enumerate(rows):
        if "prediction" not in row or "references" not in row:
            raise UserError(f"{path}:{i + 1}: needs 'prediction' and 'references'")
        extra = {k: v for k, v in row.items() if k not in {"prediction", "references"}}
        pred = str(row["prediction"])
        records.append(Record(Sample(id=str(row.get("id", i)), index=i, input=None,
                                     target=row["references"], metadata=extra),
                              pred, Generation(pred, "stop")))
    return {"metric": name, **_result([score_metric(metric, records)], len(records))}


def _score_task(path: str, rows: list[dict[str, Any]], task: Task, name: str) -> dict[str, Any]:
    if not isinstance(task, OfficialFormat):
        raise UserError(f"task {name!r} does not read an official prediction format; use --metric")
    try:
        records = task.official_records(rows)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    ctx = ScoreContext(task=name, options=dict(task.opts))
    results = [score_metric(m, records, ctx) for m in task.metrics()]
    out = {"task": name, "version": task.version, **_result(results, len(records))}
    out["official"] = (task.official_summary(results[0]) if isinstance(task, OfficialSummary) and results
                       else _rounded(out["score"]))
    return out


def _rounded(v: Any) -> Any:
    return round(v, 2) if isinstance(v, float) and math.isfinite(v) else v


def score_file(path: str, metric: str | None = None, task: str | None = None) -> dict[str, Any]:
    """Score one file with a metric or a task's official format (the one-file form of ``score_files``)."""
    reg = default_registry()
    rows = _read_lines(path)
    if metric:
        return _score_metric(path, rows, reg.metric(metric)(), metric)
    return _score_task(path, rows, reg.task(task).factory(), task)


def dataset_name(path: str | Path) -> str:
    """The dataset a prediction file names, as LongBench's eval.py takes it: ``filename.split(".")[0]``."""
    return Path(path).name.split(".")[0]


def expand_paths(paths: Iterable[str]) -> list[str]:
    """The files to score: each given file, and each folder's ``*.jsonl`` files (not recursive) in sorted
    order; repeats dropped. Missing paths, non-regular files and folders without ``*.jsonl`` are errors."""
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            try:
                names = sorted(e.name for e in os.scandir(path) if e.name.endswith("jsonl") and e.is_file())
            except OSError as exc:
                raise UserError(f"cannot list {p}: {exc.strerror or exc}") from None
            if not names:
                raise UserError(f"{p}: no *.jsonl prediction files in this folder")
            files = [str(path / n) for n in names]
        elif path.is_file():
            files = [str(path)]
        elif path.exists():
            raise UserError(f"{p}: not a regular file or a folder")
        else:
            raise UserError(f"cannot read {p}: No such file or directory")
        for f in files:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


class _TaskResolver:
    """The task that reads a file: ``task`` itself when it names a task; when it names a group (default
    ``longbench``), the member named after the file (``<group>/.../<dataset>``)."""

    def __init__(self, reg: Registry, task: str | None):
        self.group = task or DEFAULT_GROUP
        self.explicit = task is not None
        members = reg.expand_tasks([self.group])  # unknown names: one line with a did-you-mean
        self.single = None if self.group in reg.groups else self.group
        self.by_dataset: dict[str, list[str]] = {}
        for name in members:
            self.by_dataset.setdefault(name.rsplit("/", 1)[-1], []).append(name)

    def __call__(self, path: str) -> str:
        if self.single is not None:
            return self.single
        ds = dataset_name(path)
        found = self.by_dataset.get(ds, [])
        if len(found) == 1:
            return found[0]
        if found:
            raise UserError(f"{path}: {ds!r} names several tasks of {self.group} ({', '.join(found)}); "
                            "pass --task TASK")
        how = "" if self.explicit else " (without --task, files are LongBench's <dataset>.jsonl)"
        raise UserError(f"{path}: {ds!r} names no task of {self.group}{how}; pass --task TASK or GROUP")


def score_files(paths: Sequence[str], metric: str | None = None, task: str | None = None
                ) -> list[dict[str, Any]]:
    """Score every file (``expand_paths``) in this process: one result per file, in order, each with
    ``file`` and ``dataset`` added to what ``score_file`` returns."""
    files = expand_paths(paths)
    reg = default_registry()
    metric_obj = reg.metric(metric)() if metric else None
    names: list[str | None] = [None] * len(files)
    if metric_obj is None:
        resolve = _TaskResolver(reg, task)
        names = [resolve(f) for f in files]  # every file's task known before the first is scored
    tasks: dict[str, Any] = {}
    out = []
    for path, name in zip(files, names):
        rows = _read_lines(path)
        if name is None:
            res = _score_metric(path, rows, metric_obj, metric or "")
        else:
            if name not in tasks:
                tasks[name] = reg.task(name).factory()
            res = _score_task(path, rows, tasks[name], name)
        out.append({"file": path, "dataset": dataset_name(path), **res})
    return out


def result_json(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Upstream's ``result.json``: ``{dataset: score}`` in file order, the score as the official scorer
    writes it (LongBench: the rounded value; LongBench-E: the length buckets). Two files naming the same
    dataset are an error (eval.py would keep the last silently)."""
    out: dict[str, Any] = {}
    for r in results:
        ds = r["dataset"]
        if ds in out:
            raise UserError(f"two files name dataset {ds!r} ({r['file']}); result.json keys files by dataset")
        out[ds] = r.get("official", _rounded(r["score"]))
    return out


def write_result_json(results: Sequence[dict[str, Any]], dest: str) -> None:
    """Write ``result_json`` as eval.py does (``json.dump(..., ensure_ascii=False, indent=4)``; an empty
    LongBench-E bucket is NaN there and here)."""
    data = result_json(results)
    data = {k: ({b: math.nan if x is None else x for b, x in v.items()} if isinstance(v, dict) else v)
            for k, v in data.items()}
    text = json.dumps(data, ensure_ascii=False, indent=4)
    tmp = f"{dest}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, dest)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {dest}: {exc.strerror or exc}") from None


def _visible(text: str) -> str:
    """Control characters (a file name may hold any) shown as escapes, never sent to the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def print_table(results: Sequence[dict[str, Any]]) -> None:
    """One table: a row per file (file, task or metric, metric, official score, n, notes)."""
    from rich.markup import escape
    from rich.table import Table

    from .report import _console, _fmt

    t = Table(title=f"{len(results)} prediction file{'s' if len(results) != 1 else ''}")
    for col in ("file", "task", "metric", "score", "n", "notes"):
        t.add_column(col, justify="right" if col in {"score", "n"} else "left")
    for r in results:
        m = r["metrics"][0] if r["metrics"] else {}
        details = m.get("details") or {}
        official = r.get("official", _rounded(r["score"]))
        notes = []
        if details.get("rouge_errors"):
            notes.append(f"{details['rouge_errors']} ROUGE pairs failed as upstream (scored 0)")
        if isinstance(official, dict):
            notes.append("  ".join(f"{b}: {_fmt(v)}" for b, v in official.items()))
            official = _rounded(r["score"])
        t.add_row(escape(_visible(r["file"])), escape(r.get("task") or r.get("metric") or ""),
                  escape(m.get("name", "-")), _fmt(official), str(r["n"]), escape("; ".join(notes)))
    _console().print(t)
