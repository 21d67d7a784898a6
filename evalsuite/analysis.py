"""Runs as pandas DataFrames: ``evalsuite.load_run(path)`` and ``evalsuite export``.

>>> import evalsuite
>>> r = evalsuite.load_run("results/<run-id>")
>>> r.scores()     # one row per task x metric: value, CI, stderr, n, counts, complete
>>> r.samples()    # one row per sample: prediction, reference, metrics.<name>, flags, error, tokens, metadata.<key>

Only the files of the run are read (``manifest.json``, ``scores.json``, ``per_sample.jsonl`` and the
samples log); nothing is re-scored. A partial run loads like any other; ``complete`` (per task, and
``RunResults.complete``) says whether its numbers are final. pandas is imported on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import UserError
from .store import ResultsStore

SCORE_COLUMNS = ["task", "metric", "value", "ci_low", "ci_high", "stderr", "n", "n_planned", "main",
                 "higher_is_better", "model", "backend", "version", "signature", "n_truncated",
                 "n_output_truncated", "n_errors", "n_missing", "complete", "run_id"]
"""Columns of ``RunResults.scores()``: what is read most at both ends (a frame printed narrower than its
width shows its first and last columns)."""
SAMPLE_COLUMNS = ["task", "index", "sample_id", "prediction", "reference", "flags", "error", "finish_reason",
                  "prompt_tokens", "completion_tokens", "latency_s", "prompt_truncated", "output_truncated", "model",
                  "run_id"]
"""Columns of ``RunResults.samples()``; the ``metrics.<name>`` columns come after ``reference`` and the
``metadata.<key>`` ones before ``run_id``."""
FORMATS = ("csv", "parquet", "jsonl")


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise UserError("loading runs into DataFrames needs pandas: pip install pandas") from None
    return pd


def _scalar(v: Any) -> Any:
    """A value as one DataFrame cell: scalars stay, anything else becomes its JSON text."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _reference(target: Any) -> Any:
    return target if isinstance(target, str) or target is None else json.dumps(target, ensure_ascii=False)


class RunResults:
    """One run folder, read for analysis."""

    def __init__(self, store: ResultsStore):
        self.store = store
        self.path = str(store.dir)
        self.run_id = store.run_id
        self.manifest = store.read_manifest()
        backend = self.manifest.get("backend") or {}
        self.backend = backend.get("id")
        self.model = backend.get("model") or backend.get("name") or (str(self.backend).split(":", 1)[0]
                                                                     if self.backend else None)

    def __repr__(self) -> str:
        return f"RunResults({self.path!r}, complete={self.complete})"

    @property
    def completeness(self) -> Any:
        from .completeness import run_completeness

        return run_completeness(self.store)

    @property
    def complete(self) -> bool:
        return self.completeness.complete

    def tasks(self) -> list[str]:
        return [t.task for t in self.completeness.tasks]

    def scores(self) -> Any:
        """One row per task x metric (columns ``SCORE_COLUMNS``)."""
        pd = _pandas()
        comp = self.completeness
        rows = []
        for tc in comp.tasks:
            s = self.store.read_scores(tc.task)
            if not s:
                continue
            for m in s.metrics:
                ci = m.ci95 or (None, None)
                rows.append({
                    "run_id": self.run_id, "model": self.model, "backend": self.backend, "task": tc.task,
                    "metric": m.name, "main": m.name == s.main, "value": m.value,
                    "ci_low": ci[0], "ci_high": ci[1], "stderr": m.stderr,
                    "higher_is_better": m.higher_is_better, "n": s.get("n"), "n_planned": s.get("n_planned"),
                    "n_missing": s.get("n_missing"), "n_errors": s.get("n_errors"),
                    "n_truncated": s.get("n_truncated"), "n_output_truncated": s.get("n_output_truncated"),
                    "complete": tc.complete, "version": _scalar(s.version), "signature": m.signature,
                })
        df = pd.DataFrame(rows, columns=SCORE_COLUMNS)
        for col in ("value", "ci_low", "ci_high", "stderr"):
            df[col] = df[col].astype("float64")
        return df

    def samples(self) -> Any:
        """One row per scored sample (columns ``SAMPLE_COLUMNS``, then ``metrics.<name>`` per metric and
        ``metadata.<key>`` per metadata field)."""
        pd = _pandas()
        rows = []
        for task in self.tasks():
            log = self.store.latest_rows(task)
            for ps in self.store.read_per_sample(task):
                row = log.get(ps.key or "")
                first = row
                seen: set[str] = set()
                while first is not None and first.parent and first.parent in log and first.parent not in seen:
                    seen.add(first.parent)
                    first = log[first.parent]
                gen = row.generation if row is not None else None
                flags = list(ps.flags)
                out: dict[str, Any] = {
                    "run_id": self.run_id, "model": self.model, "task": task, "sample_id": ps.sample_id,
                    "index": ps.index, "prediction": ps.prediction,
                    "reference": _reference(row.target if row is not None else None),
                    "flags": ",".join(flags), "error": ps.error,
                    "finish_reason": gen.finish_reason if gen is not None else None,
                    "prompt_tokens": first.generation.prompt_tokens if first is not None else None,
                    "completion_tokens": gen.completion_tokens if gen is not None else None,
                    "latency_s": gen.latency_s if gen is not None else None,
                    "prompt_truncated": "truncated" in flags, "output_truncated": "output_truncated" in flags,
                }
                for k, v in ps.metrics.items():
                    out[f"metrics.{k}"] = v
                for k, v in ps.metadata.items():
                    out[f"metadata.{k}"] = _scalar(v)
                rows.append(out)
        extra = {k for r in rows for k in r if k not in SAMPLE_COLUMNS}
        metric_cols = sorted(k for k in extra if k.startswith("metrics."))
        meta_cols = sorted(extra - set(metric_cols))
        columns = SAMPLE_COLUMNS[:5] + metric_cols + SAMPLE_COLUMNS[5:-1] + meta_cols + SAMPLE_COLUMNS[-1:]
        df = pd.DataFrame(rows, columns=columns)
        for col in ("prompt_tokens", "completion_tokens", "index"):
            df[col] = df[col].astype("Int64")
        for col in metric_cols + ["latency_s"]:
            df[col] = df[col].astype("float64")
        return _uniform_columns(df)


def _uniform_columns(df: Any) -> Any:
    """Object columns holding several Python types (a metadata key that is a number in one task and text
    in another) become text, so the frame writes to parquet and reads back unchanged."""
    for col in df.columns:
        if df[col].dtype != object:
            continue
        kinds = {type(v) for v in df[col] if v is not None and v == v}
        if len(kinds) > 1:
            df[col] = [None if v is None or v != v else (v if isinstance(v, str) else json.dumps(v)) for v in df[col]]
    return df


def _plain(v: Any) -> Any:
    """numpy scalars (and anything else JSON cannot take) as plain values."""
    item = getattr(v, "item", None)
    return item() if callable(item) else str(v)


def load_run(path: str | os.PathLike[str]) -> RunResults:
    """A run folder (``results/<run-id>``) or a run id under ``results/``."""
    return RunResults(ResultsStore.open_existing(path))


def stack(runs: Iterable[RunResults], table: str) -> Any:
    pd = _pandas()
    frames = [r.scores() if table == "scores" else r.samples() for r in runs]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS if table == "scores" else SAMPLE_COLUMNS)
    return _uniform_columns(pd.concat(frames, ignore_index=True, sort=False))


def export(paths: Sequence[str], output: str, fmt: str | None = None, table: str = "scores") -> dict[str, Any]:
    """Stack one table (``scores`` or ``samples``) of several runs into one file (csv, parquet, jsonl)."""
    if table not in {"scores", "samples"}:
        raise UserError(f"--table must be scores or samples, got {table!r}")
    out = Path(output)
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".")
        fmt = {"pq": "parquet", "json": "jsonl", "ndjson": "jsonl"}.get(suffix, suffix)
        if fmt not in FORMATS:
            raise UserError(f"cannot tell the format from {output!r}: pass --format csv|parquet|jsonl")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    runs = [load_run(p) for p in paths]
    df = stack(runs, table)
    if not out.parent.is_dir():
        raise UserError(f"-o {output!r}: folder {str(out.parent)!r} does not exist")
    if fmt == "csv":
        df.to_csv(out, index=False)
    elif fmt == "jsonl":
        # written row by row with Python's float repr (round-trip exact; pandas' to_json keeps 10 digits)
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        with open(out, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False, default=_plain) + "\n")
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("parquet needs pyarrow: pip install 'evalsuite[parquet]'") from None
        df.to_parquet(out, index=False)
    return {"output": str(out), "format": fmt, "table": table, "rows": int(len(df)), "runs": len(runs),
            "partial": [r.run_id for r in runs if not r.complete]}
