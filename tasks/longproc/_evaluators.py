"""Per-task evaluators with the official semantics (LongProc ``longproc_data.py`` and the evaluator
modules, main 78e873a; the ``rmodels`` branch a9185e9 where ``evaluator=rmodels``). Each returns
``(metrics, info)``: metrics in [0, 1], info saying why a sample lost points (kept in the scores).
Countdown and travel planning live in their own modules with their trace builders.
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping, Sequence

from ._tsv import score_answer

EVALUATORS = {
    "main": "princeton-pli/LongProc main@78e873a",
    "rmodels": "princeton-pli/LongProc rmodels@a9185e9",
}
"""Evaluator semantics a run can select (``-T evaluator=``). They differ for tom_tracking only (rmodels
keeps "- Step N:" lines from the last "- Step 0:" on, for reasoning models) and in countdown's
exception guard (main crashes where rmodels scores 0; we score 0 in both)."""


# -- html_to_tsv ---------------------------------------------------------------------------------------

def html_to_tsv(prediction: str, reference: str) -> tuple[dict[str, float], dict[str, Any]]:
    res = score_answer(prediction, reference, extract=True)
    info: dict[str, Any] = {}
    if res.error or res.f1 < 1.0:
        info = dict(res.info)
    return res.as_dict(), info


# -- path_traversal ------------------------------------------------------------------------------------

def _tag(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>")
    if start == -1 or end == -1:
        return None
    return text[start + len(tag) + 2:end].strip()


def path_traversal(prediction: str, reference: str) -> tuple[dict[str, float], dict[str, Any]]:
    route = _tag(prediction, "Route")
    if route is None:
        return ({"accuracy": 0.0, "partial_accuracy": 0.0, "extraction_rate": 0.0},
                {"error": "no <Route>...</Route> block"})
    gt = reference.strip()
    if route == gt:
        return {"accuracy": 1.0, "partial_accuracy": 1.0, "extraction_rate": 1.0}, {}
    gt_lines = gt.split("\n")
    pred_lines = route.split("\n")
    info: dict[str, Any] = {}
    i = 0
    for i, (g, p) in enumerate(zip(gt_lines, pred_lines)):
        if g != p:
            info["diverged"] = {"line": i, "gt": g[:300], "pr": p[:300]}
            break
    else:
        info["lines"] = {"pred": len(pred_lines), "gt": len(gt_lines)}
    # the diverging line counts as correct (upstream adds 1 after the loop in both cases)
    return {"accuracy": 0.0, "partial_accuracy": (i + 1) / len(gt_lines), "extraction_rate": 1.0}, info


# -- tom_tracking --------------------------------------------------------------------------------------

_TOM_PUNCT = set(string.punctuation) | {"\u2019"}
_TOM_WORDS = re.compile(r"\b(a|an|the|on|in|at|the|step|thinks|think|believes|believe|is|are|of|location|"
                        r"know|knows|belief)\b")
_STEP = re.compile(r"^- Step \d+:")


def _tom_norm(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _TOM_PUNCT)
    return " ".join(_TOM_WORDS.sub(" ", text).split())


def _beliefs(text: str, rmodels: bool) -> list[str]:
    out = []
    for line in text.strip().split("\n"):
        keep = _STEP.match(line) is not None if rmodels else line.startswith("-")
        if not keep:
            continue
        content = _tom_norm(line.split("-", 1)[1].strip())
        if content:  # a line that normalises to nothing is dropped, as upstream's truthiness filter
            out.append(content)
    return out


def tom_tracking(prediction: str, reference: str, evaluator: str = "main") -> tuple[dict[str, float], dict[str, Any]]:
    rmodels = evaluator == "rmodels"
    pred = "\n".join(x for x in prediction.splitlines() if x.strip().startswith("-"))
    gt = "\n".join(x for x in reference.splitlines() if x.strip().startswith("-"))
    if rmodels and "- Step 0:" in pred:
        pred = pred[pred.rfind("- Step 0:"):]
    pb, gb = _beliefs(pred, rmodels), _beliefs(gt, rmodels)
    if len(pb) == len(gb) and all(a == b for a, b in zip(pb, gb)):
        return {"accuracy": 1.0, "partial_accuracy": 1.0, "extraction_rate": 1.0}, {}
    first = next((i for i, (a, b) in enumerate(zip(pb, gb)) if a != b), None)
    if first is not None:
        partial = first / len(gb)
        info: dict[str, Any] = {"diverged": {"line": first, "pr": pb[first][:300], "gt": gb[first][:300]}}
    else:
        partial = min(len(pb), len(gb)) / len(gb)
        info = {"lines": {"pred": len(pb), "gt": len(gb)}}
    return {"accuracy": 0.0, "partial_accuracy": partial, "extraction_rate": 1.0}, info


# -- pseudo_to_code ------------------------------------------------------------------------------------

INCLUDES = ("cstdio", "iostream", "vector", "algorithm", "numeric", "cmath", "cstring", "set", "map", "queue",
            "stack", "list", "fstream", "climits", "cassert", "iomanip", "sstream", "bitset")
PROGRAM_HEADER = "".join(f"#include <{h}>\n" for h in INCLUDES) + "using namespace std;\n"
"""Prepended to the model's code before compiling (the prompt tells the model these are included)."""

MAX_TESTS = 10


def extract_cpp(prediction: str) -> str | None:
    """The text between the first ```` ```cpp ```` (or ```` ```c++ ````) and the last ```` ``` ```` after it,
    unstripped, as upstream's greedy regex; None when there is none."""
    text = prediction.replace("```c++", "```cpp")
    start = text.find("```cpp")
    if start < 0:
        return None
    end = text.rfind("```")
    if end < start + 6:
        return None
    return text[start + 6:end]


def pseudo_to_code(prediction: str, testcases: Sequence[Any], sandbox: Any,
                   precompile: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """Compile and run in ``sandbox`` (an :class:`evalsuite.sandbox.Sandbox`); ``skipped`` in info and no
    accuracy when it has no compiler."""
    code = extract_cpp(prediction)
    if not sandbox.available:  # no accuracy at all (not 0) for every sample; extraction is still known
        return {"extraction_rate": 0.0 if code is None else 1.0}, {"skipped": sandbox.missing_reason()}
    if code is None:
        return ({"accuracy": 0.0, "partial_accuracy": 0.0, "extraction_rate": 0.0},
                {"error": "no ```cpp ... ``` block"})
    report = sandbox.run_tests(code, testcases, max_tests=MAX_TESTS, prelude=PROGRAM_HEADER, precompile=precompile)
    if report.passed:
        return {"accuracy": 1.0, "partial_accuracy": 1.0, "extraction_rate": 1.0}, {"tests_run": report.n_run}
    info: dict[str, Any] = {"error": report.reason, "failed_test": report.failed_test}
    info.update({k: v for k, v in report.details.items()})
    return {"accuracy": 0.0, "partial_accuracy": 0.0, "extraction_rate": 1.0}, info


def evaluate(task: str, prediction: str, target: Mapping[str, Any], evaluator: str = "main",
             sandbox: Any = None, precompile: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """Dispatch on the task name (``html_to_tsv``, ...); ``target`` is the sample's target mapping."""
    if task == "html_to_tsv":
        return html_to_tsv(prediction, target["tsv"])
    if task == "path_traversal":
        return path_traversal(prediction, target["reference"])
    if task == "tom_tracking":
        return tom_tracking(prediction, target["reference"], evaluator)
    if task == "pseudo_to_code":
        return pseudo_to_code(prediction, target["testcases"], sandbox, precompile)
    if task == "countdown":
        from ._countdown import evaluate as countdown

        return countdown(prediction, list(target["nums"]), int(target["target"]), target["reference"])
    if task == "travel_planning":
        from ._travel import evaluate as travel

        return travel(prediction, target["cities"], target["durations"], target["reference"])
    raise KeyError(f"no LongProc task {task!r}")
