"""Travel planning: the reference solving procedure (regenerated, as the official loader does) and the
evaluator (LongProc ``travel_planning_evaluator.py``, main 78e873a; re-implemented, not copied).

Trace: the requirements are restated (per-city constraints in their given order, the fixed schedules
sorted by arrival day, the cities that still need a slot); then a depth-first search over days: on
each day either the fixed city arriving that day, or each free city in constraint order, is tried;
a try needs a direct flight from the previous city (any city is reachable from the starting point)
and must end no later than the next fixed schedule starts. The first complete plan is written as
"**Day a-b:** ..." lines. The builder checks itself against the second paragraph of the item's
``ground_truth_plan`` (as upstream asserts).

Accuracy: the ``<Plan>`` block parsed as NATURAL PLAN parses it (day ranges and "from X to Y" flights),
the stays compared with the gold cities and durations. Partial credit: the solving procedure compared
line by line with the reference, each normalised reference line having to occur inside the predicted
line.
"""

from __future__ import annotations

import re
import string
from typing import Any, Mapping, Sequence

_START = "the starting point"
_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


class TravelTraceError(ValueError):
    """The regenerated plan differs from the item's published plan (the data and the builder disagree)."""


def _indent(level: int) -> str:
    return "" if level == 0 else " " * level + "|- "


def _names(items: Sequence[Mapping[str, Any]]) -> str:
    return "[" + ", ".join(str(x["city"]) for x in items) + "]"


class _Planner:
    def __init__(self, n_cities: int, fixed: list[dict[str, Any]], flights: set[tuple[str, str]]):
        self.n_cities = n_cities
        self.fixed = fixed
        self.flights = flights
        self.lines: list[str] = []

    def say(self, depth: int, text: str) -> None:
        self.lines.append(_indent(depth) + text)

    def search(self, day: int, plan: list[dict[str, Any]], free: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        depth = 2 * len(plan)
        self.say(depth, f"Current day: {day}. Current plan: {_names(plan)}.")
        if len(plan) == self.n_cities:
            self.say(depth, f"All {self.n_cities} cities are arranged. Complete plan is found!")
            return plan
        self.say(depth, f"Check whether the city with an arrival day of Day {day} - is fixed.")
        arriving = next((f for f in self.fixed if f["start_day"] == day), None)
        if arriving is not None:
            self.say(depth, f"Yes. The city with an arrival day of Day {day} - is fixed: {arriving['city']}.")
            options = [{"city": arriving["city"], "num_days": arriving["end_day"] - arriving["start_day"] + 1,
                        "start_day": arriving["start_day"], "end_day": arriving["end_day"]}]
        else:
            self.say(depth, f"No. Consider possible options from cities needing arrangement: {_names(free)} "
                            "and explore these options in order.")
            options = [{"city": f["city"], "num_days": f["num_days"], "start_day": day,
                        "end_day": day + f["num_days"] - 1} for f in free]
        prev = _START if not plan else plan[-1]["city"]
        next_fixed = next((f for f in self.fixed if f["start_day"] > day), None)
        depth += 1
        for opt in options:
            city, end = opt["city"], opt["end_day"]
            self.say(depth, f"Try arranging to visit {city} from Day {day}. Duration: {opt['num_days']} days. "
                            f"Schedule: Day {day} - {day + opt['num_days'] - 1}.")
            self.say(depth, f"Check for direct flight from {prev} to {city}.")
            if prev != _START and (prev, city) not in self.flights:
                self.say(depth, "No. Drop this branch.")
                continue
            self.say(depth, "Yes.")
            if next_fixed is None:
                self.say(depth, "Check whether this arrangement is compatible with the next fixed schedule after "
                                f"Day {day}: None.")
                self.say(depth, "No following fixed schedules. This arrangement is compatible.")
            else:
                nf, ns = next_fixed["city"], next_fixed["start_day"]
                self.say(depth, "Check whether this arrangement is compatible with the next fixed schedule after "
                                f"Day {day}: {nf} (Day {ns} - {next_fixed['end_day']}).")
                if ns == opt["start_day"]:
                    raise TravelTraceError("invalid fixed schedule")
                head = (f"The departure day of {city} is Day {end}. The arrival day of {nf} is Day {ns}. "
                        f"Day {end} is ")
                if ns < end:
                    self.say(depth, head + f"later than (>) Day {ns}. This arrangement is incompatible. "
                                           "Drop this branch.")
                    continue
                self.say(depth, head + f"not later than (<=) Day {ns}. This arrangement is compatible.")
            self.say(depth, "This arrangement is feasible for now. Continue to arrange the rest of the plan.")
            found = self.search(end, plan + [opt], [f for f in free if f["city"] != city])
            if found is not None:
                return found
        self.say(depth, f"Fail to arrange any option on day {day} in the current arrangement. Drop this branch.")
        return None


def format_plan(plan: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for i, stop in enumerate(plan):
        city, a, b, n = stop["city"], stop["start_day"], stop["end_day"], stop["num_days"]
        if i == 0:
            out.append(f"**Day {a}-{b}:** Arriving in {city} and visit {city} for {n} days.")
        else:
            out.append(f"**Day {a}-{b}:** Visit {city} for {n} days.")
        if i + 1 < len(plan):
            out.append(f"**Day {b}:** Fly from {city} to {plan[i + 1]['city']}.")
    return "\n".join(out)


def build_reference(item: Mapping[str, Any], check: bool = True) -> str:
    """The reference output: ``<Solving Procedure>`` trace, then the ``<Plan>`` block."""
    constraints = list(item["constraints"])
    fixed = [c for c in constraints if c["type"] == "fixed"]
    fixed_names = {c["city"] for c in fixed}
    free = [c for c in constraints if c["type"] == "duration" and c["city"] not in fixed_names]
    lines = ["Read the requirements and identify the cities that have fixed schedules and the cities that need "
             "to be arranged."]
    for i, c in enumerate(constraints):
        if c["type"] == "fixed":
            continue
        if c["city"] in fixed_names:
            nxt = constraints[i + 1] if i + 1 < len(constraints) else None
            if nxt is None or nxt["type"] != "fixed" or nxt["city"] != c["city"]:
                raise TravelTraceError(f"the fixed schedule of {c['city']} must follow its duration")
            lines.append(f"* City: {c['city']}, Duration: {c['num_days']} days, Fixed Schedule: Day "
                         f"{nxt['start_day']} - {nxt['end_day']}.")
        else:
            lines.append(f"* City: {c['city']}, Duration: {c['num_days']} days.")
    lines.append("")
    if fixed:
        fixed = sorted(fixed, key=lambda c: c["start_day"])
        lines.append("Cities that have fixed schedules (sorted by their arrival days):")
        lines.extend(f"* City: {c['city']}, Fixed Schedule: Day {c['start_day']} - {c['end_day']}." for c in fixed)
    else:
        lines.append("Cities that have fixed schedules: None.")
    lines.append("")
    if free:
        lines.append("Cities needing arrangement:")
        lines.extend(f"* City: {c['city']}, Duration: {c['num_days']} days." for c in free)
    else:
        lines.append("Cities needing arrangement: None.")
    lines.append("")
    planner = _Planner(int(item["num_cities"]), fixed, {tuple(x) for x in item["connected_cities"]})
    planner.lines = lines
    plan = planner.search(1, [], free)
    if plan is None:
        raise TravelTraceError("no plan found")
    text = format_plan(plan)
    if check:
        published = str(item["ground_truth_plan"]).split("\n\n")[1].strip()
        if text != published:
            raise TravelTraceError(f"regenerated plan differs from ground_truth_plan of {item.get('id')!r}")
    return (f"<Solving Procedure>\n" + "\n".join(planner.lines) + "\n</Solving Procedure>\n\n"
            f"Output the plan in the required format:\n<Plan>\n{text}\n</Plan>")


def icl_demonstration(examples: Sequence[Mapping[str, Any]]) -> str:
    """The ``{demonstration}`` block: "# Example\\n{problem}\\n\\n{reference}" per example."""
    return "\n\n".join(f"# Example\n{ex['disambig_question_text']}\n\n{build_reference(ex)}" for ex in examples)


# -- evaluation ------------------------------------------------------------------------------------------

_VISIT = re.compile(r"\d+-\d+")
_FLIGHT = re.compile(r".*Day (\d+).*from (\w+) to (\w+)")
_TOTAL = re.compile(r"European cities for (\d+) days")


def parse_plan(text: str) -> list[tuple[str, int]]:
    """(city, days) stays from a plan text, NATURAL PLAN's way: flights chain the cities, a stay lasts
    from one flight day to the next (the first from day 1, the last to the end of the last range)."""
    ranges: list[str] = []
    flights: list[tuple[str, str, str]] = []
    total = None
    for piece in text.split("\n"):
        m = _TOTAL.findall(piece)
        if m:
            total = int(m[0])
        v = _VISIT.findall(piece)
        if v:
            ranges.append(v[0])
            if int(v[0].split("-")[1]) == total:
                break
        f = _FLIGHT.findall(piece)
        if f:
            flights.append(f[0])
    cities: list[str] = []
    days: list[int] = []
    for day, src, dst in flights:
        days.append(int(day))
        if not cities:
            cities.extend([src, dst])
        else:
            cities.append(dst)
    if not ranges or not flights or not cities:
        return []
    bounds = [1] + days + [int(ranges[-1].split("-")[1])]
    return [(c, bounds[i + 1] - bounds[i] + 1) for i, c in enumerate(cities)]


def plan_correct(cities: str, durations: str, plan_text: str) -> tuple[float, dict[str, Any]]:
    stays = [x for x in cities.split("**") if x]
    days = [int(x) for x in durations.split("**") if x]
    parsed = parse_plan(plan_text)
    n = 0
    for i in range(min(len(stays), len(parsed))):
        if stays[i] == parsed[i][0] and days[i] == parsed[i][1]:
            n += 1
        else:
            break
    info: dict[str, Any] = {} if n == len(stays) else {
        "plan_error": f"stay {n + 1} differs: expected {stays[n] if n < len(stays) else None} for "
                      f"{days[n] if n < len(days) else None} days, parsed {parsed[n] if n < len(parsed) else None}"}
    return (0.0 if n / len(stays) < 1.0 else 1.0), info


def _norm(line: str) -> str:
    return " ".join(_ARTICLES.sub(" ", line.lower().translate(_PUNCT)).split())


def procedure_partial(prediction: str, reference: str) -> tuple[float, dict[str, Any]]:
    phrase = "Output the plan in the required format:"
    gt = reference.replace(phrase, "")
    out = prediction.replace(phrase, "")
    gt = "<Solving Procedure>" + gt.split("<Solving Procedure>")[1]
    if "<Solving Procedure>" in out:
        out = "<Solving Procedure>" + out.split("<Solving Procedure>")[1]
    pred_lines = [x.rstrip() for x in out.strip().split("\n") if x.strip()]
    gt_lines = [x.rstrip() for x in gt.strip().split("\n") if x.strip()]
    idx = -1
    report: dict[str, Any] = {}
    for p, g in zip(pred_lines, gt_lines):
        idx += 1
        if _norm(g) in _norm(p):
            continue
        report = {"line": idx, "pr": p[:300], "gt": g[:300]}
        break
    if idx < 0:
        idx = 0
        report = {"empty_output": True}
    return idx / len(gt_lines), report


def _tag(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    end = text.find(f"</{tag}>")
    if start == -1 or end == -1:
        return None
    return text[start + len(tag) + 2:end].strip()


def evaluate(prediction: str, cities: str, durations: str, reference: str) -> tuple[dict[str, float], dict[str, Any]]:
    plan = _tag(prediction, "Plan")
    info: dict[str, Any] = {}
    if plan is None:
        accuracy, extraction = 0.0, 0.0
        info["plan_error"] = "no <Plan>...</Plan> block"
    else:
        extraction = 1.0
        accuracy, more = plan_correct(cities, durations, plan.strip())
        info.update(more)
    if accuracy == 1.0:
        return {"accuracy": 1.0, "partial_accuracy": 1.0, "extraction_rate": extraction}, {}
    partial, report = procedure_partial(prediction, reference)
    if report:
        info["diverged"] = report
    return {"accuracy": accuracy, "partial_accuracy": partial, "extraction_rate": extraction}, info
