"""``evalsuite score-file``: score predictions produced elsewhere with our metrics or a task's scorer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError
from .registry import default_registry
from .types import Generation, Record, Sample


def _read_lines(path: str) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}:{n}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no lines to score")
    return rows


def _result(metric_results: list[Any], n: int) -> dict[str, Any]:
    per_line = [{"line": i + 1} for i in range(n)]
    out_metrics = []
    for res in metric_results:
        scale = float(res.details.get("scale", 1.0)) if res.details else 1.0
        entry = {"name": res.name, "value": res.value, "signature": res.signature}
        if res.details:
            entry["details"] = dict(res.details)
        out_metrics.append(entry)
        if res.per_sample is not None:
            for i, v in enumerate(res.per_sample):
                per_line[i][res.name] = v * scale
    return {"n": n, "metrics": out_metrics, "score": out_metrics[0]["value"] if out_metrics else None,
            "per_line": per_line}


def score_file(path: str, metric: str | None = None, task: str | None = None) -> dict[str, Any]:
    rows = _read_lines(path)
    reg = default_registry()
    if metric:
        m = reg.metric(metric)()
        records = []
        for i, row in enumerate(rows):
            if "prediction" not in row or "references" not in row:
                raise UserError(f"{path}:{i + 1}: needs 'prediction' and 'references'")
            extra = {k: v for k, v in row.items() if k not in {"prediction", "references"}}
            pred = str(row["prediction"])
            records.append(Record(Sample(id=str(row.get("id", i)), index=i, input=None,
                                         target=row["references"], metadata=extra),
                                  pred, Generation(pred, "stop")))
        return {"metric": metric, **_result([m.score(records)], len(records))}
    t = reg.task(task).factory()
    hook = getattr(t, "official_records", None)
    if hook is None:
        raise UserError(f"task {task!r} does not read an official prediction format; use --metric")
    records = hook(rows)
    return {"task": task, "version": getattr(t, "version", "0"),
            **_result([m.score(records) for m in t.metrics()], len(records))}
