"""Countdown: the reference search trace (regenerated, as the official loader does) and the evaluator.

Trace: a depth-first search over pairs of numbers, written out step by step in the official wording
(LongProc ``countdown_evaluator.py``, main 78e873a; re-implemented from its description, not copied).
The state is a list of numbers; the root lists all pairs; each pair (i < j, in list order) is tried
with the larger number first as ``a + b``, ``a - b``, ``a * b``, ``a / b``. A result is dropped when it
is not an integer, 2000 or more, or a division by zero; otherwise it goes to the *front* of the list and
the search descends. The first leaf equal to the target ends the search; its path is the solution.

Evaluator: the ``<Solution>`` block must hold exactly three lines ``a op b = c`` that use up the four
numbers and leave the target. Each line is checked with integer arithmetic by our own parser; the
official evaluator computes ``a op b`` with Python's ``eval`` on the model's text, which we never do.
What ``eval`` would reject (no Python literal, e.g. leading zeros ``05``) is rejected here too; where
the official main branch would crash on such a line, the sample scores 0 (as its ``rmodels`` branch).
Partial credit compares the search procedure with the reference trace line by line.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

MAX_INTERMEDIATE = 2000

ICL_DEMOS = ((40, 19, 23, 7, 29), (9, 16, 6, 18, 12))
"""The two in-context examples of the official prompt: four numbers and the target."""

_SOLUTION_BLOCK = ("Now we have found the target, let's trace back the solution:\n"
                   "Final step: {2}\nThe step before: {1}\nThe first step: {0}\n\n"
                   "Output the solution in the required format:\n<Solution>\n{0}\n{1}\n{2}\n</Solution>\n")


def _indent(level: int) -> str:
    return "" if level == 0 else " " * level + "|- "


def _pairs(nums: list[Any]) -> list[tuple[Any, Any, list[Any]]]:
    out = []
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            out.append((nums[i], nums[j], [x for k, x in enumerate(nums) if k not in (i, j)]))
    return out


def _pair_list(nums: list[Any]) -> str:
    return "[" + ", ".join(f"({a}, {b})" for a, b, _ in _pairs(nums)) + "]"


class _Search:
    def __init__(self, target: int):
        self.target = target
        self.parts: list[str] = []
        self.path: list[str] = []

    def expand(self, nums: list[int], depth: int, root: bool) -> bool:
        """Write the state line of ``nums`` and search its children; True when the target was found."""
        if len(nums) == 2:
            self.parts.append(f" Current number set: {nums}, target: {self.target}, just two numbers left.")
        else:
            if root:
                self.parts.append(f"Initial number set: {nums}, target: {self.target}. "
                                  f"Options for choosing two numbers: {_pair_list(nums)}.")
            else:
                self.parts.append(f" Current number set: {nums}, target: {self.target}. "
                                  f"Options for choosing two numbers: {_pair_list(nums)}.")
            depth += 1
        for x, y, rest in _pairs(nums):
            if len(nums) > 2:
                self.parts.append(f"\n{_indent(depth)}Pick two numbers ({x}, {y}) (numbers left: {rest}). "
                                  "Try possible operations.")
            a, b = (y, x) if x < y else (x, y)
            for op in "+-*/":
                if self.step(a, b, op, rest, depth + 1):
                    return True
        return False

    def step(self, a: int, b: int, op: str, rest: list[int], depth: int) -> bool:
        ind = "\n" + _indent(depth)
        if op == "/" and b == 0:
            self.parts.append(f"{ind}Try {a} / {b} (invalid operation). drop this branch.")
            return False
        if op == "+":
            value: Any = a + b
        elif op == "-":
            value = a - b
        elif op == "*":
            value = a * b
        elif a % b == 0:
            value = a // b
        else:
            q = a / b
            self.parts.append(f"{ind}Try {a} / {b} = {q:.1f}. {q:.1f} is a decimal, drop this branch.")
            return False
        eq = f"{a} {op} {b} = {value}"
        if value >= MAX_INTERMEDIATE:
            self.parts.append(f"{ind}Try {eq}. {value} exceeds the maximum intermediate result, drop this branch.")
            return False
        nums = [value] + rest
        if len(nums) == 1:
            if value == self.target:
                self.parts.append(f"{ind}Try {eq}. Evaluate {value} == {self.target}, target found!")
                self.path.append(eq)
                return True
            self.parts.append(f"{ind}Try {eq}. Evaluate {value} != {self.target}, drop this branch.")
            return False
        self.parts.append(f"{ind}Try {eq}. Add {value} to the number set.")
        if self.expand(nums, depth, root=False):
            self.path.append(eq)
            return True
        return False


def build_trace(nums: list[int], target: int) -> tuple[list[str], str]:
    """The solution equations (first step first) and the full reference output
    ("# Search Procedure" + trace + the trace-back and ``<Solution>`` block)."""
    search = _Search(target)
    if not search.expand(list(nums), 0, root=True):
        raise ValueError(f"countdown: no solution for {list(nums)} -> {target}")
    solution = list(reversed(search.path))
    if len(solution) != 3:
        raise ValueError(f"countdown: expected a 3-step solution for {list(nums)}, got {solution}")
    trace = "".join(search.parts)
    return solution, "# Search Procedure\n" + trace + "\n\n" + _SOLUTION_BLOCK.format(*solution)


def icl_demonstration() -> str:
    """The ``{demonstration}`` block of the official prompt: both worked examples."""
    blocks = []
    for *nums, target in ICL_DEMOS:
        _, ref = build_trace(list(nums), target)
        blocks.append(f"# Example\nNumbers: {list(nums)}\nTarget: {target}\n\n{ref}")
    return "\n\n".join(blocks)


# -- evaluation ------------------------------------------------------------------------------------------

# One operand as Python's tokenizer would read it in an expression: an optional minus sign, then a
# decimal integer literal (no leading zeros except for zero itself; single underscores between digits).
_LITERAL = re.compile(r"[ \t\f]*(-?)[ \t\f]*(0(?:_?0)*|[1-9](?:_?[0-9])*)[ \t\f]*")


def _operand(text: str, allow_sign: bool) -> int | None:
    """The integer an operand denotes, or None where upstream's ``eval`` + ``int`` would fail."""
    m = _LITERAL.fullmatch(text)
    if m is None or (m.group(1) and not allow_sign):
        return None
    try:
        return int(text)  # int() also rejects "- 3" (space after the sign), as upstream's int(a) does
    except ValueError:
        return None


def check_line(line: str) -> tuple[bool, str, tuple[int, int, int] | None]:
    """One solution line: (valid, reason, (a, b, c)). Valid means ``a op b`` equals ``c`` exactly."""
    line = line.strip()
    sides = line.split("=")
    if len(sides) != 2:
        return False, "not one '='", None
    lhs, rhs = sides
    op = next((o for o in "+-*/" if o in lhs), None)
    if op is None:
        return False, "no operator", None
    parts = lhs.split(op)
    if len(parts) != 2:
        return False, f"not two operands around {op!r}", None
    a = _operand(parts[0], allow_sign=op == "+")
    b = _operand(parts[1], allow_sign=op == "+")
    if a is None or b is None:
        return False, "operands are not integers", None
    try:
        c = int(rhs)
    except ValueError:
        return False, "result is not an integer", None
    if op == "+":
        value: Any = a + b
    elif op == "-":
        value = a - b
    elif op == "*":
        value = a * b
    elif b == 0:
        return False, "division by zero", None
    else:
        value = Fraction(a, b)
    if value != c:
        return False, f"{a} {op} {b} is not {c}", None
    return True, "", (a, b, c)


def check_solution(nums: list[int], target: int, solution: str) -> tuple[bool, str]:
    """Upstream's final-solution check: exactly three lines, each valid, each using two numbers still
    available (replaced by the result), the number left first in the list equal to the target."""
    pool = list(nums)
    lines = solution.split("\n")
    if len(lines) != 3:
        return False, f"{len(lines)} lines instead of 3"
    for k, line in enumerate(lines):
        ok, why, abc = check_line(line)
        if not ok or abc is None:
            return False, f"line {k + 1} ({line.strip()!r}): {why}"
        a, b, c = abc
        for x in (a, b):
            if x not in pool:
                return False, f"line {k + 1} ({line.strip()!r}): {x} is not available in {pool}"
            pool.remove(x)
        pool.append(c)
    if pool[0] != target:
        return False, f"the solution ends at {pool[0]}, not {target}"
    return True, ""


def procedure_partial(prediction_procedure: str, reference_procedure: str) -> tuple[float, dict[str, Any]]:
    """Upstream's partial credit for the search procedure (quirks kept: see the package README)."""
    pred = prediction_procedure.strip().split("\n")
    gt = reference_procedure.strip().split("\n")
    if pred[0] != gt[0]:
        return 0.0, {"line": 0, "pr": pred[0][:300], "gt": gt[0][:300]}
    pred, gt = pred[1:], gt[1:]
    idx = -1
    report: dict[str, Any] = {}
    for p, g in zip(pred, gt):
        idx += 1
        if p == g:
            continue
        if "Pick two numbers" in g:
            report = {"line": idx + 1, "pr": p[:300], "gt": g[:300]}
            break
        if "|- Try" in g:
            if p.split("=")[0] != g.split("=")[0] or ("drop this branch" in g) != ("drop this branch" in p):
                report = {"line": idx + 1, "pr": p[:300], "gt": g[:300]}
                break
            continue
        raise ValueError(f"countdown: unexpected reference line {g!r}")
    return idx / len(gt), report


def _tag(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>")
    if start == -1 or end == -1:
        return None
    return text[start + len(tag) + 2:end].strip()


def evaluate(prediction: str, nums: list[int], target: int, reference: str) -> tuple[dict[str, float], dict[str, Any]]:
    """accuracy / partial_accuracy / extraction_rate and why, as the official ``eval_countdown``."""
    solution = _tag(prediction, "Solution")
    info: dict[str, Any] = {}
    if solution is not None:
        ok, why = check_solution(nums, target, solution)
        if ok:
            return {"accuracy": 1.0, "partial_accuracy": 1.0, "extraction_rate": 1.0}, {}
        info["solution_error"] = why
    else:
        info["solution_error"] = "no <Solution>...</Solution> block"
    extraction = 1.0 if solution is not None else 0.0
    if "# Search Procedure" not in prediction:
        info["procedure_error"] = "no '# Search Procedure'"
        return {"accuracy": 0.0, "partial_accuracy": 0.0, "extraction_rate": extraction}, info
    pred_proc = prediction.split("# Search Procedure")[-1].strip()
    gt_proc = reference.split("# Search Procedure")[-1].split("Now we have found the target")[0].strip()
    partial, report = procedure_partial(pred_proc, gt_proc)
    if report:
        info["diverged"] = report
    return {"accuracy": 0.0, "partial_accuracy": partial, "extraction_rate": extraction}, info
