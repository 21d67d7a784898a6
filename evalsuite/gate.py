"""A regression gate for CI (``evalsuite gate``): baseline + candidate + a TOML policy.

Policy file::

    [defaults]
    tolerance = 1.0        # allowed drop, in the metric's reported units (points for x100 metrics)
    alpha = 0.05           # significance level of the paired test
    min_samples = 50       # fewer shared samples than this fails the check
    iterations = 2000      # bootstrap resamples
    seed = 0

    [[rule]]               # later rules override earlier ones; globs match task and metric names
    task = "ruler/*"
    metric = "*"
    tolerance = 2.0
    direction = "higher"   # "higher" | "lower"; default: the metric's own higher_is_better
    skip = false
    allow_partial = false  # also in [defaults]; matched by task only

    [tasks]                # optional: gate only these tasks (default: every task the baseline scored)
    include = ["ruler/*"]

A check **fails** when the candidate is worse than the baseline by more than ``tolerance`` (point
estimate of the paired difference) **and** the paired test rejects "no difference" at ``alpha``
(exact McNemar for 0/1 scores, paired bootstrap otherwise, paired corpus bootstrap for corpus metrics).
A drop beyond tolerance that cannot be tested (a corpus metric without per-segment statistics) fails
too. A task the baseline scored but the candidate did not, or fewer than ``min_samples`` shared samples,
fails. A value that is NaN or missing on either side fails (with the side and the reason), and so does a
task both runs have but with no metric in common. A **partial** candidate task (planned samples without
an answer, or failed requests: ``n_missing``/``n_errors`` in ``scores.json`` or the plan against the log)
fails unless the policy sets ``allow_partial = true``; a partial baseline is a warning.

Nothing passes by accident: a gate that evaluated zero checks (every rule skips, ``include`` matches no
task, the baseline scored nothing) exits 2 ("nothing was gated"), and an ``include`` pattern or a rule that
matches nothing is reported. Exit codes: 0 pass, 1 a check failed, 2 usage error (bad policy, missing run,
incomparable runs, nothing gated).
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from xml.etree import ElementTree as ET

from .compare import CompareOptions, Comparison, compare_runs, format_p
from .errors import UserError

DEFAULTS = {"tolerance": 1.0, "alpha": 0.05, "min_samples": 50, "iterations": 2000, "seed": 0,
            "allow_partial": False}
RULE_KEYS = {"task", "metric", "tolerance", "alpha", "min_samples", "direction", "skip", "allow_partial"}


@dataclass(frozen=True)
class Check:
    tolerance: float
    alpha: float
    min_samples: int
    direction: str | None
    skip: bool = False


@dataclass(frozen=True)
class Policy:
    defaults: Mapping[str, Any]
    rules: tuple[Mapping[str, Any], ...]
    include: tuple[str, ...] | None = None
    source: str = ""

    def check_for(self, task: str, metric: str) -> Check:
        d = dict(self.defaults)
        c = Check(tolerance=float(d["tolerance"]), alpha=float(d["alpha"]), min_samples=int(d["min_samples"]),
                  direction=d.get("direction"), skip=False)
        for r in self.rules:
            if fnmatch.fnmatchcase(task, r.get("task", "*")) and fnmatch.fnmatchcase(metric, r.get("metric", "*")):
                c = replace(c, **{k: r[k] for k in ("tolerance", "alpha", "min_samples", "direction", "skip")
                                   if k in r})
        return c

    def gates_task(self, task: str) -> bool:
        return self.include is None or any(fnmatch.fnmatchcase(task, p) for p in self.include)

    def allows_partial(self, task: str) -> bool:
        """``allow_partial`` from [defaults], overridden by the last rule whose ``task`` glob matches."""
        allowed = bool(self.defaults.get("allow_partial", False))
        for r in self.rules:
            if "allow_partial" in r and fnmatch.fnmatchcase(task, r.get("task", "*")):
                allowed = bool(r["allow_partial"])
        return allowed


def _number(where: str, key: str, v: Any, lo: float, hi: float, integer: bool = False) -> Any:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    if integer:
        ok = ok and float(v).is_integer()
    if not ok:
        raise UserError(f"policy {where}: {key} must be a {'whole ' if integer else ''}number in [{lo:g}, {hi:g}], "
                        f"got {v!r}")
    return int(v) if integer else float(v)


def _validate(where: str, d: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise UserError(f"policy {where} must be a table, got {_toml_type(d)}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise UserError(f"policy {where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    out = dict(d)
    if "tolerance" in d:
        out["tolerance"] = _number(where, "tolerance", d["tolerance"], 0, math.inf)
    if "alpha" in d:
        out["alpha"] = _number(where, "alpha", d["alpha"], 1e-12, 0.5)
    if "min_samples" in d:
        out["min_samples"] = _number(where, "min_samples", d["min_samples"], 0, 1e12, integer=True)
    if "iterations" in d:
        out["iterations"] = _number(where, "iterations", d["iterations"], 100, 1e7, integer=True)
    if "seed" in d:
        out["seed"] = _number(where, "seed", d["seed"], 0, 2 ** 63, integer=True)
    if "direction" in d and d["direction"] not in {"higher", "lower"}:
        raise UserError(f"policy {where}: direction must be 'higher' or 'lower', got {d['direction']!r}")
    for k in ("skip", "allow_partial"):
        if k in d and not isinstance(d[k], bool):
            raise UserError(f"policy {where}: {k} must be true or false, got {d[k]!r}")
    for k in ("task", "metric"):
        if k in d and not isinstance(d[k], str):
            raise UserError(f"policy {where}: {k} must be a glob string")
    return out


def _toml_type(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def load_policy(path: str | Path) -> Policy:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UserError("reading a TOML policy on Python 3.10 needs `pip install tomli`") from None
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read policy {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"policy {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"policy {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"defaults", "rule", "tasks"})
    if unknown:
        raise UserError(f"policy {path}: unknown table(s) {unknown}; expected [defaults], [[rule]], [tasks]")
    defaults = {**DEFAULTS, **_validate("[defaults]", data.get("defaults", {}),
                                        set(DEFAULTS) | {"direction"})}
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise UserError(f"policy [[rule]]: rules are written [[rule]] tables, got {_toml_type(rules)}")
    rules = tuple(_validate(f"[[rule]] #{i + 1}", r, RULE_KEYS) for i, r in enumerate(rules))
    include = None
    if "tasks" in data:
        if not isinstance(data["tasks"], dict):
            raise UserError(f"policy [tasks] must be a table, got {_toml_type(data['tasks'])}")
        _validate("[tasks]", {k: v for k, v in data["tasks"].items() if k != "include"}, set())
        inc = data["tasks"].get("include")
        if not isinstance(inc, list) or not all(isinstance(x, str) for x in inc):
            raise UserError(f"policy [tasks]: include must be a list of globs, got {inc!r}")
        include = tuple(inc)
    return Policy(defaults=defaults, rules=rules, include=include, source=str(p))


# -- evaluation --------------------------------------------------------------------------------------

@dataclass
class GateResult:
    comparison: Comparison
    checks: list[dict[str, Any]]
    policy: Policy
    warnings: list[str] = field(default_factory=list)
    """Policy lines that matched nothing, partial baselines, allowed partial candidates, ..."""

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["status"] == "fail"]

    @property
    def nothing_gated(self) -> bool:
        return not self.checks

    @property
    def exit_code(self) -> int:
        return 2 if self.nothing_gated else 1 if self.failed else 0

    @property
    def status(self) -> str:
        return "error" if self.nothing_gated else "fail" if self.failed else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code,
                "policy": {"source": self.policy.source, "defaults": dict(self.policy.defaults),
                           "rules": [dict(r) for r in self.policy.rules],
                           "include": list(self.policy.include) if self.policy.include is not None else None},
                "n_checks": len(self.checks), "n_failed": len(self.failed), "checks": self.checks,
                "warnings": list(self.warnings), "comparison": self.comparison.to_dict()}


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _value_problem(r: Mapping[str, Any]) -> str | None:
    """Why a comparison row has no usable numbers (NaN or missing on either side), or None."""
    m = r["metric"]
    for side in ("baseline", "candidate"):
        corpus = r.get(f"{side}_value")
        if _is_nan(corpus) or _is_nan(r.get(side)):
            return f"the {side}'s {m} is NaN (a failed scorer or every sample errored)"
        if not isinstance(corpus, (int, float)) or isinstance(corpus, bool):
            return f"the {side} has no value for {m}"
    if r.get("delta") is None:
        return None  # no shared samples: the min_samples check says so
    if _is_nan(r["delta"]):
        return f"the difference in {m} is NaN"
    return None


def _completeness(run: str, task: str) -> tuple[int, int, int]:
    """``(n_planned, n_missing, n_errors)`` of a run's task: the larger of what ``scores.json`` says and
    what the plan and the log say now (a sample planned but without an answer, or answered with an error)."""
    from .runner.scoring import rows_in_plan
    from .store import PLAN, ResultsStore

    store = ResultsStore.open_existing(run)
    scores = store.read_scores(task)
    planned, missing, errors = (scores.n_planned, scores.n_missing, scores.n_errors) if scores else (0, 0, 0)
    if (store.task_dir(task) / PLAN).is_file():
        try:
            plan = store.read_plan(task)
            rows = rows_in_plan(store, task, plan) if plan is not None else []
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            plan = None
        if plan is None:
            return planned, max(missing, 1), errors  # an unreadable plan is not a complete run
        planned = max(planned, len(plan.keys))
        missing = max(missing, len(plan.keys) - len(rows))
        errors = max(errors, sum(1 for r in rows if not r.ok))
    return planned, missing, errors


def _partial_text(side: str, task: str, planned: int, missing: int, errors: int) -> str:
    parts = []
    if missing:
        parts.append(f"{missing} of {planned} planned samples have no answer")
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    return f"the {side} is partial for {task}: {', '.join(parts)}"


def evaluate(cmp: Comparison, policy: Policy, warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """The checks of a comparison under a policy; policy lines that match nothing, partial baselines and
    allowed partial candidates are added to ``warnings``."""
    warnings = warnings if warnings is not None else []
    checks = []
    tasks_a = {r["task"] for r in cmp.rows} | set(cmp.missing_in_candidate) | set(cmp.shared_tasks)
    tasks_b = {r["task"] for r in cmp.rows} | set(cmp.missing_in_baseline) | set(cmp.shared_tasks)
    every = tasks_a | tasks_b
    if policy.include is not None:
        for pat in policy.include:
            if not any(fnmatch.fnmatchcase(t, pat) for t in every):
                warnings.append(f"[tasks] include pattern {pat!r} matches no task of either run")
    pairs = {(r["task"], r["metric"]) for r in cmp.rows} | {(t, "*") for t in every}
    for i, rule in enumerate(policy.rules):
        t, m = rule.get("task", "*"), rule.get("metric", "*")
        if not any(fnmatch.fnmatchcase(pt, t) and fnmatch.fnmatchcase(pm, m) for pt, pm in pairs):
            warnings.append(f"[[rule]] #{i + 1} (task {t!r}, metric {m!r}) matches no task and metric")
    for task in cmp.missing_in_candidate:
        if policy.gates_task(task):
            checks.append({"task": task, "metric": "*", "status": "fail",
                           "reason": "scored in the baseline but missing from the candidate"})
    for task in cmp.missing_in_baseline:
        if policy.gates_task(task):
            warnings.append(f"{task} is scored in the candidate only: not gated")
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for r in cmp.rows:
        by_task.setdefault(r["task"], []).append(r)
    for task in cmp.shared_tasks:
        if not policy.gates_task(task):
            continue
        for side, run in (("baseline", cmp.baseline), ("candidate", cmp.candidate)):
            planned, missing, errors = _completeness(run, task)
            if not (missing or errors):
                continue
            text = _partial_text(side, task, planned, missing, errors)
            if side == "baseline":
                warnings.append(text)
            elif policy.allows_partial(task):
                warnings.append(text + " (allowed by the policy: allow_partial)")
            else:
                checks.append({"task": task, "metric": "*", "status": "fail", "n_planned": planned,
                               "n_missing": missing, "n_errors": errors,
                               "reason": text + " (set allow_partial = true to gate partial runs)"})
        if not by_task.get(task) and not policy.check_for(task, "*").skip:
            ma, mb = cmp.metrics.get(task, ([], []))
            checks.append({"task": task, "metric": "*", "status": "fail",
                           "reason": f"no metric scored by both runs (baseline: {', '.join(ma) or 'none'}; "
                                     f"candidate: {', '.join(mb) or 'none'})"})
    for r in cmp.rows:
        if not policy.gates_task(r["task"]):
            continue
        c = policy.check_for(r["task"], r["metric"])
        if c.skip:
            continue
        higher = (c.direction == "higher") if c.direction else bool(r["higher_is_better"])
        check = {"task": r["task"], "metric": r["metric"], "direction": "higher" if higher else "lower",
                 "tolerance": c.tolerance, "alpha": c.alpha, "min_samples": c.min_samples,
                 "baseline": r["baseline"], "candidate": r["candidate"], "delta": r["delta"],
                 "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p_value": r["p_value"], "test": r["test"],
                 "n_shared": r["n_shared"]}
        problem = _value_problem(r)
        if problem is not None:
            check.update(status="fail", reason=problem)
        elif r["delta"] is None or r["n_shared"] < c.min_samples:
            check.update(status="fail", reason=f"{r['n_shared']} shared samples, fewer than min_samples "
                                               f"{c.min_samples}")
        else:
            drop = -r["delta"] if higher else r["delta"]
            check["drop"] = drop
            beyond = drop > c.tolerance
            significant = r["p_value"] is None or _is_nan(r["p_value"]) or r["p_value"] < c.alpha
            if beyond and significant:
                why = (f"p={format_p(r['p_value'])} < {c.alpha:g} ({r['test']})"
                       if r["p_value"] is not None and not _is_nan(r["p_value"])
                       else "no significance test is possible for this metric")
                check.update(status="fail", reason=f"worse by {drop:.2f} (tolerance {c.tolerance:g}); {why}")
            elif beyond:
                check.update(status="pass", reason=f"worse by {drop:.2f} but not significant "
                                                   f"(p={format_p(r['p_value'])} >= {c.alpha:g})")
            else:
                check.update(status="pass", reason="within tolerance" if drop > 0 else "no regression")
        checks.append(check)
    return checks


def run_gate(baseline: str, candidate: str, policy: Policy, allow_mismatch: bool = False) -> GateResult:
    d = policy.defaults
    opts = CompareOptions(iterations=int(d["iterations"]), seed=int(d["seed"]), alpha=float(d["alpha"]),
                          allow_mismatch=allow_mismatch)
    cmp = compare_runs(baseline, candidate, opts)
    warnings: list[str] = []
    checks = evaluate(cmp, policy, warnings)
    return GateResult(comparison=cmp, checks=checks, policy=policy, warnings=warnings)


def nothing_gated_reason(res: GateResult) -> str:
    """One line for a gate that evaluated no check."""
    cmp = res.comparison
    if not cmp.shared_tasks and not cmp.missing_in_candidate:
        why = "the baseline has no scored task" if not cmp.missing_in_baseline else \
            "no task is scored in both runs"
    else:
        why = "every task and metric is excluded by the policy ([tasks] include, skip = true)"
    extra = f"; {'; '.join(res.warnings)}" if res.warnings else ""
    return f"nothing was gated: {why}{extra}"


# -- outputs -----------------------------------------------------------------------------------------

def _num(v: Any, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _md_cell(text: str) -> str:
    """Markdown table cell: no pipes or newlines, and no raw HTML (task names come from plugins)."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def to_markdown(res: GateResult) -> str:
    cmp = res.comparison
    status = "NOTHING GATED" if res.nothing_gated else "FAILED" if res.failed else "passed"
    lines = [f"## evalsuite gate: {status}", "",
             f"candidate `{_md_cell(cmp.candidate)}` vs baseline `{_md_cell(cmp.baseline)}`: "
             f"{len(res.checks)} checks, {len(res.failed)} failed", ""]
    if res.checks:
        lines += ["| status | task | metric | baseline | candidate | Δ | CI | p | n | note |",
                  "|---|---|---|---:|---:|---:|---|---:|---:|---|"]
        for c in sorted(res.checks, key=lambda c: (c["status"] != "fail", c["task"], c["metric"])):
            ci = f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]" if c.get("ci_low") is not None else "–"
            lines.append("| " + " | ".join(_md_cell(x) for x in (
                "❌ fail" if c["status"] == "fail" else "✅ pass", c["task"], c["metric"], _num(c.get("baseline")),
                _num(c.get("candidate")), _num(c.get("delta"), True), ci, format_p(c.get("p_value")),
                str(c.get("n_shared", "–")), c["reason"])) + " |")
    for w in list(cmp.warnings) + list(res.warnings):
        lines += ["", f"> warning: {_md_cell(w)}"]
    return "\n".join(lines) + "\n"


def to_junit(res: GateResult) -> str:
    suite = ET.Element("testsuite", name="evalsuite-gate", tests=str(len(res.checks)),
                       failures=str(len(res.failed)), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="baseline", value=res.comparison.baseline)
    ET.SubElement(props, "property", name="candidate", value=res.comparison.candidate)
    for c in res.checks:
        tc = ET.SubElement(suite, "testcase", classname=c["task"], name=c["metric"], time="0")
        if c["status"] == "fail":
            f = ET.SubElement(tc, "failure", message=c["reason"], type="regression")
            f.text = json.dumps({k: v for k, v in c.items() if k != "reason"}, sort_keys=True)
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = c["reason"]
    root = ET.Element("testsuites", name="evalsuite", tests=suite.get("tests"), failures=suite.get("failures"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
