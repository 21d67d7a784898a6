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

    [tasks]                # optional: gate only these tasks (default: every task the baseline scored)
    include = ["ruler/*"]

A check **fails** when the candidate is worse than the baseline by more than ``tolerance`` (point
estimate of the paired difference) **and** the paired test rejects "no difference" at ``alpha``
(exact McNemar for 0/1 scores, paired bootstrap otherwise, paired corpus bootstrap for corpus metrics).
A drop beyond tolerance that cannot be tested (a corpus metric without per-segment statistics) fails
too. A task the baseline scored but the candidate did not, or fewer than ``min_samples`` shared samples,
fails. Exit codes: 0 pass, 1 a check failed, 2 usage error (bad policy, missing run, incomparable runs).
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping
from xml.etree import ElementTree as ET

from .compare import CompareOptions, Comparison, compare_runs, format_p
from .errors import UserError

DEFAULTS = {"tolerance": 1.0, "alpha": 0.05, "min_samples": 50, "iterations": 2000, "seed": 0}
RULE_KEYS = {"task", "metric", "tolerance", "alpha", "min_samples", "direction", "skip"}


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


def _number(where: str, key: str, v: Any, lo: float, hi: float, integer: bool = False) -> Any:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    if integer:
        ok = ok and float(v).is_integer()
    if not ok:
        raise UserError(f"policy {where}: {key} must be a {'whole ' if integer else ''}number in [{lo:g}, {hi:g}], "
                        f"got {v!r}")
    return int(v) if integer else float(v)


def _validate(where: str, d: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
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
    if "skip" in d and not isinstance(d["skip"], bool):
        raise UserError(f"policy {where}: skip must be true or false")
    for k in ("task", "metric"):
        if k in d and not isinstance(d[k], str):
            raise UserError(f"policy {where}: {k} must be a glob string")
    return out


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
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read policy {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"policy {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"defaults", "rule", "tasks"})
    if unknown:
        raise UserError(f"policy {path}: unknown table(s) {unknown}; expected [defaults], [[rule]], [tasks]")
    defaults = {**DEFAULTS, **_validate("[defaults]", data.get("defaults", {}),
                                        set(DEFAULTS) | {"direction"})}
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise UserError(f"policy {path}: rules are written [[rule]]")
    rules = tuple(_validate(f"[[rule]] #{i + 1}", r, RULE_KEYS) for i, r in enumerate(rules))
    include = None
    if "tasks" in data:
        _validate("[tasks]", {k: v for k, v in data["tasks"].items() if k != "include"}, set())
        inc = data["tasks"].get("include")
        if not isinstance(inc, list) or not all(isinstance(x, str) for x in inc):
            raise UserError(f"policy {path}: [tasks] include must be a list of globs")
        include = tuple(inc)
    return Policy(defaults=defaults, rules=rules, include=include, source=str(p))


# -- evaluation --------------------------------------------------------------------------------------

@dataclass
class GateResult:
    comparison: Comparison
    checks: list[dict[str, Any]]
    policy: Policy

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["status"] == "fail"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {"status": "fail" if self.failed else "pass", "exit_code": self.exit_code,
                "policy": {"source": self.policy.source, "defaults": dict(self.policy.defaults),
                           "rules": [dict(r) for r in self.policy.rules],
                           "include": list(self.policy.include) if self.policy.include is not None else None},
                "n_checks": len(self.checks), "n_failed": len(self.failed), "checks": self.checks,
                "comparison": self.comparison.to_dict()}


def evaluate(cmp: Comparison, policy: Policy) -> list[dict[str, Any]]:
    checks = []
    for task in cmp.missing_in_candidate:
        if policy.gates_task(task):
            checks.append({"task": task, "metric": "*", "status": "fail",
                           "reason": "scored in the baseline but missing from the candidate"})
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
        if r["delta"] is None or r["n_shared"] < c.min_samples:
            check.update(status="fail", reason=f"{r['n_shared']} shared samples, fewer than min_samples "
                                               f"{c.min_samples}")
        else:
            drop = -r["delta"] if higher else r["delta"]
            check["drop"] = drop
            beyond = drop > c.tolerance
            significant = r["p_value"] is None or r["p_value"] < c.alpha
            if beyond and significant:
                why = (f"p={format_p(r['p_value'])} < {c.alpha:g} ({r['test']})" if r["p_value"] is not None
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
    return GateResult(comparison=cmp, checks=evaluate(cmp, policy), policy=policy)


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
    status = "FAILED" if res.failed else "passed"
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
    for w in cmp.warnings:
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
