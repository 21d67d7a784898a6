"""Paired comparison of two runs (``evalsuite compare A B``), the engine under ``evalsuite gate``.

Per task and metric, on the samples both runs scored (joined by sample id):

* the paired difference candidate - baseline, in the metric's reported scale (x100 for RULER/LongBench);
* a paired bootstrap CI (seeded, ``iterations`` resamples) of that difference for any metric with
  per-sample values, and a two-sided bootstrap p-value;
* McNemar's exact test instead of the bootstrap p-value when every per-sample value is 0 or 1;
* for corpus metrics (no per-sample values), a paired corpus-level bootstrap when the per-sample rows
  carry the metric's per-segment statistics (``stats: {metric: [...]}``) and the metric class offers
  ``corpus_from_stats(list_of_stats) -> value`` (BLEU/chrF sums of n-gram counts, COMET segment scores).

Two runs are comparable only when, per task, the task version, every ``*sha256`` fingerprint the task
records in its manifest entry (data files, configs, templates), the metric signatures and the prompts of
the shared samples (stage-0 prompt hash) agree. Otherwise :class:`Incomparable` is raised, unless
``allow_mismatch`` is set, in which case the differences are reported as warnings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import UserError
from .stats import mcnemar_exact, paired_bootstrap, paired_corpus_bootstrap
from .rows import PerSampleRow, TaskScores
from .store import ResultsStore
from .types import MetricResult


class Incomparable(UserError):
    """The runs differ in something that moves a number (version, data, prompts, metric)."""


@dataclass
class TaskRun:
    """One task of one run, as read back from the results store."""

    name: str
    scores: TaskScores
    manifest_entry: dict[str, Any]
    per_sample: dict[str, PerSampleRow]
    """sample id -> per_sample.jsonl row"""
    prompt_hashes: dict[str, str]
    """sample id -> sha256 of the sample's first (stage 0) prompt"""

    def __post_init__(self) -> None:
        # the file forms (a scores.json dict, per_sample.jsonl dicts) are accepted and typed here
        if not isinstance(self.scores, TaskScores):
            self.scores = TaskScores.from_dict(dict(self.scores)) or TaskScores(self.name, None, (), None, None)
        typed = {}
        for sid, row in self.per_sample.items():
            r = row if isinstance(row, PerSampleRow) else PerSampleRow.from_dict(row)
            if r is not None:
                typed[sid] = r
        self.per_sample = typed

    @property
    def version(self) -> str | None:
        v = self.scores.version if "version" in self.scores else self.manifest_entry.get("version")
        return None if v is None else str(v)

    def fingerprints(self) -> dict[str, str]:
        """Every ``...sha256`` value in the task's manifest description (data, configs, templates)."""
        out: dict[str, str] = {}
        _collect_hashes(self.manifest_entry.get("describe", {}), "", out)
        return out

    def metric_entries(self) -> dict[str, MetricResult]:
        return {m.name: m for m in self.scores.metrics if m.name}


def _collect_hashes(obj: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if "sha256" in str(k).lower() and isinstance(v, (str, Mapping)):
                if isinstance(v, str):
                    out[p] = v
                else:
                    for kk, vv in v.items():
                        out[f"{p}.{kk}"] = json.dumps(vv, sort_keys=True) if not isinstance(vv, str) else vv
            else:
                _collect_hashes(v, p, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _collect_hashes(v, f"{path}[{i}]", out)


def load_task(store: ResultsStore, name: str, manifest: Mapping[str, Any] | None = None) -> TaskRun | None:
    """A scored task of a run, or None when it has no scores.json."""
    scores = store.read_scores(name)
    if scores is None:
        return None
    manifest = manifest if manifest is not None else store.read_manifest()
    per_sample = {r.sample_id: r for r in store.read_per_sample(name)}
    prompts: dict[str, str] = {}
    for row in store.rows(name):
        if row.stage in (0, None) and row.prompt_sha256 and row.sample_id is not None:
            prompts[row.sample_id] = row.prompt_sha256
    return TaskRun(name=name, scores=scores, manifest_entry=dict(manifest.get("tasks", {}).get(name, {})),
                   per_sample=per_sample, prompt_hashes=prompts)


def check_comparable(base: TaskRun, cand: TaskRun) -> list[str]:
    """Human-readable differences that make a paired comparison of the two meaningless (empty: none)."""
    problems = []
    if base.version != cand.version:
        problems.append(f"task version {base.version!r} vs {cand.version!r}")
    fa, fb = base.fingerprints(), cand.fingerprints()
    for k in sorted(set(fa) | set(fb)):
        if fa.get(k) != fb.get(k):
            problems.append(f"{k}: {_short(fa.get(k))} vs {_short(fb.get(k))}")
    ma, mb = base.metric_entries(), cand.metric_entries()
    for m in sorted(set(ma) & set(mb)):
        if ma[m].signature != mb[m].signature:
            problems.append(f"metric {m} signature {ma[m].signature!r} vs {mb[m].signature!r}")
    shared = set(base.prompt_hashes) & set(cand.prompt_hashes)
    differ = sorted(s for s in shared if base.prompt_hashes[s] != cand.prompt_hashes[s])
    if differ:
        problems.append(f"prompts differ on {len(differ)} of {len(shared)} shared samples "
                        f"(first: sample {differ[0]})")
    return problems


def _short(v: str | None) -> str:
    if v is None:
        return "absent"
    return v[:12] if len(v) > 16 else v


@dataclass(frozen=True)
class CompareOptions:
    iterations: int = 2000
    seed: int = 0
    alpha: float = 0.05
    allow_mismatch: bool = False
    tasks: tuple[str, ...] | None = None


@dataclass
class Comparison:
    baseline: str
    candidate: str
    options: CompareOptions
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_in_candidate: list[str] = field(default_factory=list)
    missing_in_baseline: list[str] = field(default_factory=list)
    shared_tasks: list[str] = field(default_factory=list)
    """Tasks both runs scored (compared, whether or not a metric was shared)."""
    metrics: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    """Per shared task: the metric names of (baseline, candidate)."""
    baseline_completeness: dict[str, Any] = field(default_factory=dict)
    """``evalsuite.completeness`` of the baseline run (``complete``, counts, per task)."""
    candidate_completeness: dict[str, Any] = field(default_factory=dict)

    @property
    def partial(self) -> list[str]:
        """"baseline" / "candidate" for each run whose numbers are not final."""
        return [side for side, c in (("baseline", self.baseline_completeness),
                                     ("candidate", self.candidate_completeness)) if c and not c.get("complete")]

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        return {"baseline": self.baseline, "candidate": self.candidate,
                "options": {"iterations": o.iterations, "seed": o.seed, "alpha": o.alpha,
                            "allow_mismatch": o.allow_mismatch},
                "warnings": list(self.warnings), "missing_in_candidate": list(self.missing_in_candidate),
                "missing_in_baseline": list(self.missing_in_baseline),
                "baseline_complete": bool(self.baseline_completeness.get("complete", True)),
                "candidate_complete": bool(self.candidate_completeness.get("complete", True)),
                "baseline_completeness": dict(self.baseline_completeness),
                "candidate_completeness": dict(self.candidate_completeness), "rows": list(self.rows)}


def _values(run: TaskRun, metric: str, ids: Iterable[str]) -> list[float | None]:
    out = []
    for sid in ids:
        v = run.per_sample[sid].metrics.get(metric)
        out.append(None if v is None else float(v))
    return out


def _corpus_fn(metric: str) -> Callable[[Sequence[Any]], float] | None:
    try:
        from .registry import default_registry

        factory = default_registry().metric(metric)
    except Exception:
        return None
    from .contracts import CorpusStats

    return factory.corpus_from_stats if isinstance(factory, CorpusStats) else None


def _with_signature(fn: Callable[..., float], signature: str | None) -> Callable[[Sequence[Any]], float]:
    """``fn`` given the run's recorded metric signature, when it takes one, so that the corpus score is rebuilt
    with the options the run was scored with (BLEU smoothing and effective order, chrF orders, beta and
    epsilon smoothing), not with the metric's defaults."""
    import inspect

    try:
        takes_signature = "signature" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_signature = False
    if signature and takes_signature:
        return lambda stats: fn(stats, signature=signature)
    return fn


def compare_task(base: TaskRun, cand: TaskRun, opts: CompareOptions,
                 metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per metric both runs scored."""
    ma, mb = base.metric_entries(), cand.metric_entries()
    names = [m for m in ma if m in mb and (metrics is None or m in metrics)]
    main = base.scores.main
    ids = sorted(set(base.per_sample) & set(cand.per_sample), key=lambda s: (base.per_sample[s].index, s))
    rows = []
    for name in names:
        ea, eb = ma[name], mb[name]
        scale = ea.scale
        row: dict[str, Any] = {
            "task": base.name, "metric": name, "main": name == main,
            "higher_is_better": ea.higher_is_better,
            "baseline_value": ea.value, "candidate_value": eb.value,
            "n_baseline": len(base.per_sample), "n_candidate": len(cand.per_sample),
            "n_shared": 0, "baseline": None, "candidate": None, "delta": None,
            "ci_low": None, "ci_high": None, "p_value": None, "test": None,
        }
        va, vb = _values(base, name, ids), _values(cand, name, ids)
        pairs = [(a, b) for a, b in zip(va, vb) if a is not None and b is not None]
        if pairs:
            row["n_shared"] = len(pairs)
            xs = [a for a, _ in pairs]
            ys = [b for _, b in pairs]
            row["baseline"] = scale * sum(xs) / len(xs)
            row["candidate"] = scale * sum(ys) / len(ys)
            boot = paired_bootstrap([scale * (b - a) for a, b in pairs], n_resamples=opts.iterations,
                                    alpha=opts.alpha, seed=opts.seed)
            assert boot is not None
            row.update(delta=boot["mean"], ci_low=boot["ci_low"], ci_high=boot["ci_high"],
                       p_value=boot["p_value"], test="paired_bootstrap")
            if all(v in (0.0, 1.0) for v in xs + ys):
                b_cnt = sum(1 for a, b in pairs if a == 1.0 and b == 0.0)  # baseline right, candidate wrong
                c_cnt = sum(1 for a, b in pairs if a == 0.0 and b == 1.0)
                row.update(test="mcnemar", p_value=mcnemar_exact(b_cnt, c_cnt), discordant=[b_cnt, c_cnt])
        else:
            stats_pairs = [((base.per_sample[s].stats or {}).get(name), (cand.per_sample[s].stats or {}).get(name))
                           for s in ids]
            stats_pairs = [(a, b) for a, b in stats_pairs if a is not None and b is not None]
            fn = _corpus_fn(name) if stats_pairs else None
            if fn is not None:
                fn = _with_signature(fn, ea.signature)
            if fn is not None:
                res = paired_corpus_bootstrap([a for a, _ in stats_pairs], [b for _, b in stats_pairs], fn,
                                              n_resamples=opts.iterations, alpha=opts.alpha, seed=opts.seed)
                assert res is not None
                row.update(n_shared=len(stats_pairs), baseline=fn([a for a, _ in stats_pairs]),
                           candidate=fn([b for _, b in stats_pairs]), delta=res["mean"], ci_low=res["ci_low"],
                           ci_high=res["ci_high"], p_value=res["p_value"], test="corpus_bootstrap")
            elif isinstance(ea.value, (int, float)) and isinstance(eb.value, (int, float)):
                # corpus value only: the difference is known, its uncertainty is not
                row.update(n_shared=len(ids), baseline=float(ea.value), candidate=float(eb.value),
                           delta=float(eb.value) - float(ea.value))
        rows.append(row)
    return rows


def compare_runs(baseline: str, candidate: str, opts: CompareOptions = CompareOptions(),
                 metrics_for: Callable[[str], Sequence[str] | None] | None = None) -> Comparison:
    """Compare every task both runs scored (or ``opts.tasks``). Raises :class:`Incomparable`."""
    sa, sb = ResultsStore.open_existing(baseline), ResultsStore.open_existing(candidate)
    man_a, man_b = sa.read_manifest(), sb.read_manifest()
    tasks_a = [t for t in sa.tasks() if sa.read_scores(t) is not None]
    tasks_b = [t for t in sb.tasks() if sb.read_scores(t) is not None]
    if opts.tasks:
        unknown = [t for t in opts.tasks if t not in tasks_a and t not in tasks_b]
        if unknown:
            raise UserError(f"task(s) {', '.join(unknown)} scored in neither run")
        tasks_a = [t for t in tasks_a if t in opts.tasks]
        tasks_b = [t for t in tasks_b if t in opts.tasks]
    from .completeness import run_completeness

    comp_a, comp_b = run_completeness(sa), run_completeness(sb)
    cmp = Comparison(baseline=str(sa.dir), candidate=str(sb.dir), options=opts,
                     missing_in_candidate=[t for t in tasks_a if t not in tasks_b],
                     missing_in_baseline=[t for t in tasks_b if t not in tasks_a],
                     baseline_completeness=comp_a.to_dict(), candidate_completeness=comp_b.to_dict())
    for side, comp in (("baseline", comp_a), ("candidate", comp_b)):
        if not comp.complete:
            cmp.warnings.append(f"the {side} run is PARTIAL ({comp.summary()}): its numbers are not final")
    pairs = []
    problems: list[str] = []
    for t in tasks_a:
        if t not in tasks_b:
            continue
        ta, tb = load_task(sa, t, man_a), load_task(sb, t, man_b)
        assert ta is not None and tb is not None
        problems.extend(f"{t}: {p}" for p in check_comparable(ta, tb))
        pairs.append((ta, tb))
        cmp.shared_tasks.append(t)
        cmp.metrics[t] = (list(ta.metric_entries()), list(tb.metric_entries()))
    if problems:
        if not opts.allow_mismatch:
            raise Incomparable("refusing to compare runs that differ in what moves a number:\n  "
                               + "\n  ".join(problems)
                               + "\n(pass --allow-mismatch to compare anyway; the differences are reported)")
        cmp.warnings.extend(problems)
    for ta, tb in pairs:
        cmp.rows.extend(compare_task(ta, tb, opts, metrics_for(ta.name) if metrics_for else None))
    return cmp


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.{digits}f}" if digits < 0 else f"{v:.{digits}f}"
    return str(v)


def format_p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def print_comparison(cmp: Comparison) -> None:
    from rich.table import Table

    from .report import _console

    t = Table(title=f"candidate {cmp.candidate} vs baseline {cmp.baseline}")
    for col in ("task", "metric", "baseline", "candidate", "delta", f"{100 * (1 - cmp.options.alpha):g}% CI",
                "p", "test", "n"):
        t.add_column(col, justify="left" if col in {"task", "metric", "test"} else "right")
    for r in cmp.rows:
        ci = f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]" if r["ci_low"] is not None else "-"
        delta = f"{r['delta']:+.2f}" if r["delta"] is not None else "-"
        t.add_row(r["task"], r["metric"], _fmt(r["baseline"]), _fmt(r["candidate"]), delta, ci,
                  format_p(r["p_value"]), r["test"] or "-", str(r["n_shared"]))
    console = _console()
    console.print(t)
    for w in cmp.warnings:
        console.print(f"warning: {w}")
    if cmp.missing_in_candidate:
        console.print(f"only in baseline: {', '.join(cmp.missing_in_candidate)}")
    if cmp.missing_in_baseline:
        console.print(f"only in candidate: {', '.join(cmp.missing_in_baseline)}")
