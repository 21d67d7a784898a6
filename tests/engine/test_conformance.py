"""Conformance: every registered task, parametrized from the registry (a new task is covered without editing
this file), plus the task template (docs/template).

For each task, one gold run of its benchmark on small offline data (``FIXTURES``: the options that point a
benchmark at its fixture, or a task's own ``contracts.FixtureData``), then:

* the gold backend reaches the maximum of the task's primary metric (``primary_metric``, else its first);
* ``evalsuite score`` on the run folder gives the run's own scores (values and signatures);
* ``describe()`` as recorded in the manifest is JSON (it round-trips through ``json``);
* prompts hash deterministically: the same command planned a second time (a resume) finds every request
  key, which hashes the prompt, already answered: nothing new is generated and the plan is unchanged;
* the benchmark's README changelog lists the task's current version.

A benchmark whose data is not here (``../shared/data`` is absent on a fresh clone) is skipped with the reason
naming the task and the data. A task that reads data and has no entry in ``FIXTURES`` fails: add one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import math
import re
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from evalsuite import cli
from evalsuite import registry as registry_module
from evalsuite.contracts import FixtureData
from evalsuite.registry import Registry
from evalsuite.sources import needs_of
from evalsuite.task import task_metadata

REPO = Path(__file__).resolve().parents[1].parent
SHARED = REPO.parent / "shared" / "data"
FIX = REPO / "tests" / "fixtures"
TEMPLATE = REPO / "docs" / "template"


def _template_module():
    spec = importlib.util.spec_from_file_location("evalsuite_toy_plugin",
                                                  TEMPLATE / "evalsuite_toy_plugin" / "__init__.py")
    mod = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return mod


REGISTRY = Registry()
REGISTRY.load_all()
_template_module().register(REGISTRY)
TASKS = sorted(REGISTRY.tasks)

SLOW = {"longproc"}
"""Benchmarks whose conformance run takes over ten seconds here (LongProc compiles and runs C++ in the
sandbox): marked ``slow``; their own gold tests run by default (tests/tasks/longproc/test_longproc.py)."""
PARAMS = [pytest.param(t, marks=pytest.mark.slow) if t.split("/", 1)[0] in SLOW else t for t in TASKS]


# -- fixture data per benchmark ------------------------------------------------------------------------------
# prefix -> fn(tmp, env) giving the gold runs of the benchmark's tasks on small offline data: a list of
# ``Fixture``s (each one CLI run over the tasks it names, None: every task of the benchmark not named by
# another), or a string saying why none can run here (a skip naming the data). ``env(name)`` gives a session
# fixture (tokenizer folders, generated data sets).

@dataclass
class Fixture:
    args: list[str]
    tasks: list[str] | None = None
    skip: dict[str, str] = field(default_factory=dict)
    """Tasks of the benchmark this run leaves out, with the reason (their data is not here)."""
    metric: str | dict[str, str] | None = None
    """The metric (for every task of the run, or per task) whose maximum gold must reach when it is not the
    task's primary one, with the reason beside it."""


def _need(path: Path, what: str) -> str | None:
    return None if path.exists() else f"{what} not present ({path})"


def _ruler(tmp: Path, env) -> list[Fixture] | str:
    essays = SHARED / "ruler" / "essays"
    missing = _need(essays / "PaulGrahamEssays.json", "RULER's essays")
    if missing:
        return missing
    from ruler_qa_data import write_hotpotqa, write_squad

    squad = write_squad(tmp / "squad.json", essays / "PaulGrahamEssays")
    hotpot = write_hotpotqa(tmp / "hotpot.json", essays / "PaulGrahamEssays")
    return [Fixture(["--model", str(REPO / "tasks" / "ruler" / "fixtures" / "toy_tokenizer"), "-T", "length=2048",
                     "-T", "num_samples=2", "-T", f"data_file={essays / 'PaulGrahamEssays.json'}",
                     "-T", f"ruler/qa_1.qa_file={squad}", "-T", f"ruler/qa_2.qa_file={hotpot}",
                     "-T", "ruler/fwe.fill=true"])]


def _longbench(tmp: Path, env) -> list[Fixture]:
    return [Fixture(["--model", str(env("word_tokenizer_dir")), "-T", f"data_dir={FIX / 'longbench' / 'data'}"])]


def _longbench_v2(tmp: Path, env) -> list[Fixture]:
    return [Fixture(["--model", str(env("word_tokenizer_dir")),
                     "-T", f"data_file={FIX / 'longbench_v2' / 'data.json'}"])]


def _longproc(tmp: Path, env) -> list[Fixture] | str:
    data = SHARED / "longproc" / "data"
    if not data.is_dir():
        return f"LongProc's data not present ({data})"
    skip = {}
    for t in _members("longproc"):
        level = t.split("/", 1)[1]
        kind = level.rsplit("_", 1)[0]
        if not (data / kind / f"{level}.json").exists():
            skip[t] = f"{t}: {level}.json is not in the copied LongProc data ({data / kind})"
    return [Fixture(["-T", f"data_dir={data}", "--limit", "2"], skip=skip)]


def _deltabench(tmp: Path, env) -> list[Fixture]:
    return [Fixture(["-T", f"data_file={FIX / 'deltabench' / 'Deltabench_v1.jsonl'}"])]


def _helmet(tmp: Path, env) -> list[Fixture]:
    from helmet_fixture import LONG, SHORT, judge_verdicts as _verdicts

    data = env("helmet_data")
    short = REGISTRY.expand_tasks(SHORT)
    long = REGISTRY.expand_tasks(LONG)
    verdicts = _verdicts(data, tmp / "verdicts.jsonl")
    return [Fixture(["--model", str(env("smollm2_tokenizer_dir")), "-T", f"data_dir={data}", "-T", "lengths=8k",
                     "-T", "max_test_samples=1", "--judge-backend", "echo", "-J", "text=yes"], tasks=short),
            Fixture(["--model", str(env("helmet_word_tokenizer")), "-T", f"data_dir={data}", "-T", "lengths=8k",
                     "--judge-backend", "replay", "-J", f"file={verdicts}"], tasks=long)]


def _alce(tmp: Path, env) -> list[Fixture] | str:
    prompts = SHARED / "citation" / "helmet" / "prompts"
    if not prompts.is_dir():
        return f"ALCE's demo prompts not present ({prompts})"
    args = []
    for ds in ("asqa", "qampari"):
        demos = json.loads((prompts / f"{ds}_revised.json").read_text())["demos"]
        p = tmp / f"{ds}.json"
        p.write_text(json.dumps([{"question": d["question"], "answer": d["answer"], "docs": d["docs"]}
                                 for d in demos]))
        args += ["-T", f"alce/{ds}.data_file={p}"]
    # the citation metrics ask a judge whether passages entail claims: one that always says yes
    return [Fixture([*args, "--judge-backend", "echo", "-J", "text=yes"])]


LCITE_PROMPT = {"instruction": "Cite passages like [1][2].", "demo_sep": "\n\n",
                "demo_prompt": "{INST}\n\n{D}\n\nQuestion: {Q}\nAnswer:{A}", "doc_prompt": "Passage [{ID}]: {P}\n",
                "demos": [{"question": "dq", "answer": "da [1]", "docs": ["demo chunk"]}]}


def _lciteeval(tmp: Path, env) -> list[Fixture]:
    prompt = tmp / "prompt.json"
    prompt.write_text(json.dumps(LCITE_PROMPT))
    args = ["-T", f"prompt_file={prompt}", "--judge-backend", "echo", "-J", "text=yes"]  # NLI: always entailed
    # L-CiteEval's rows (question, answer, docs, length); counting_stars answers with counts
    rows = {"counting_stars": [{"id": 1, "question": "count", "answer": [3, 5], "length": 9000,
                                "docs": ["a", "The little penguin counted 3 \u2605", "The little penguin counted 5 \u2605"]}]}
    for t in _members("lciteeval"):
        ds = t.split("/", 1)[1]
        f = tmp / f"{ds}.json"
        f.write_text(json.dumps(rows.get(ds) or [{"id": 1, "question": "What is the number?", "answer": "7421",
                                                  "docs": ["filler one", "the needle is 7421 here", "filler two"],
                                                  "length": 9000}]))
        args += ["-T", f"{t}.data_file={f}"]
    # gold for the QA and summary tasks is the reference answer, which cites nothing (no gold citations exist):
    # gold must reach the maximum of the first correctness metric there; niah and counting_stars cite
    from evalsuite.tasks.lciteeval import RULE_TASKS
    from evalsuite.tasks.lciteeval._correct import metric_names

    uncited = {t: metric_names(t.split("/", 1)[1])[0] for t in _members("lciteeval")
               if t.split("/", 1)[1] not in RULE_TASKS}
    return [Fixture(args, metric=uncited)]


def _longbench_cite(tmp: Path, env) -> list[Fixture]:
    # gold is the reference answer, which cites nothing, so citation F1 cannot be at its maximum: gold must
    # reach the maximum of correctness instead, rated by a judge that gives the top of each dataset's scale
    data = ["-T", f"data_file={FIX / 'longbench_cite' / 'LongBench-Cite.synthetic.json'}", "--judge-backend", "echo"]
    qa = [t for t in _members("longbench_cite") if t not in ("longbench_cite/gov_report", "longbench_cite/longbench-chat")]
    return [Fixture([*data, "-J", "text=[[3]]"], tasks=qa, metric="correctness"),
            Fixture([*data, "-J", "text=[[5]]"], tasks=["longbench_cite/gov_report"], metric="correctness"),
            Fixture([*data, "-J", "text=[[10]]"], tasks=["longbench_cite/longbench-chat"], metric="correctness")]


def _longgenbench_liu(tmp: Path, env) -> list[Fixture]:
    from csqa_fixture import synthetic_rows

    csqa = tmp / "dev_rand_split.jsonl"
    csqa.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows()))
    mmlu = SHARED / "longgenbench-liu" / "data" / "MMLU" / "data"
    gsm = ["-T", f"data_file={FIX / 'longgenbench_liu' / 'gsm8k_test.jsonl'}", "-T", "k=2", "-T", "batches=2",
           "-T", "order=dataset"]
    runs = [Fixture(gsm, tasks=["longgenbench_liu/gsm8k", "longgenbench_liu/gsm8k_baseline"]),
            Fixture(["-T", f"data_file={csqa}"], tasks=["longgenbench_liu/csqa", "longgenbench_liu/csqa_baseline"])]
    mm = ["longgenbench_liu/mmlu", "longgenbench_liu/mmlu_baseline"]
    if mmlu.is_dir():
        runs.append(Fixture(["-T", f"data_dir={mmlu}"], tasks=mm))
    else:
        runs.append(Fixture([], tasks=[], skip={t: f"{t}: the MMLU slice is not present ({mmlu})" for t in mm}))
    return runs


def _longgenbench_wu(tmp: Path, env) -> list[Fixture] | str:
    data = SHARED / "longgenbench-wu" / "Dataset"
    if not data.is_dir():
        return f"LongGenBench (Wu)'s data not present ({data})"
    from judge_replay import wu_verdicts

    verdicts = tmp / "verdicts.jsonl"
    wu_verdicts(verdicts, "short", limit=2)
    wu_verdicts(tmp / "long.jsonl", "long", limit=2)
    verdicts.write_text(verdicts.read_text() + (tmp / "long.jsonl").read_text())
    return [Fixture(["-T", f"data_dir={data}", "--limit", "2", "--judge-backend", "replay",
                     "-J", f"file={verdicts}"])]


def _ragtrans(tmp: Path, env) -> list[Fixture]:
    fix = REPO / "tasks" / "ragtrans" / "fixtures"
    return [Fixture(["--model", str(env("word_tokenizer_dir")), "-T", "doc_tokens=20",
                     "-T", f"ragtrans/test.data_file={fix / 'RAGtrans_test.synthetic.jsonl'}",
                     "-T", f"ragtrans/dev.data_file={fix / 'RAGtrans_dev.synthetic.jsonl'}"])]


def _drt(tmp: Path, env) -> list[Fixture] | str:
    data = SHARED / "drt-o1" / "data" / "test.jsonl"
    return _need(data, "DRT's test set") or [Fixture(["-T", f"data_file={data}", "--limit", "3"])]


def _punchbench(tmp: Path, env) -> list[Fixture]:
    from punchbench_fixture import build

    data = build(tmp / "pb")
    verdicts = tmp / "verdicts.jsonl"
    verdicts.write_text("".join(json.dumps({"sample_id": f"p{k}/explanation", "output": "yes"}) + "\n"
                                for k in range(4)))
    return [Fixture(["-T", f"data_dir={data}", "--judge-backend", "replay", "-J", f"file={verdicts}"])]


FIXTURES: dict[str, Callable[[Path, Any], list[Fixture] | str]] = {
    "toy": lambda tmp, env: [Fixture(["-T", "n=5"])],
    "ruler": _ruler,
    "longbench": _longbench,
    "longbench_e": _longbench,
    "longbench_v2": _longbench_v2,
    "longproc": _longproc,
    "deltabench": _deltabench,
    "helmet": _helmet,
    "alce": _alce,
    "lciteeval": _lciteeval,
    "longbench_cite": _longbench_cite,
    "longgenbench_liu": _longgenbench_liu,
    "longgenbench_wu": _longgenbench_wu,
    "ragtrans": _ragtrans,
    "drt": _drt,
    "punchbench": _punchbench,
}


def _family(task: str) -> str:
    return task.split("/", 1)[0]


def _members(family: str) -> list[str]:
    return [t for t in TASKS if _family(t) == family]


def _judge_args(args: list[str]) -> list[str]:
    out = []
    for i, a in enumerate(args):
        if a in ("--judge-backend", "--judge-model", "-J"):
            out += [a, args[i + 1]]
    return out


class _Out:
    def __init__(self, out: str, err: str):
        self.out, self.err = out, err


def _main(argv: list[str]) -> tuple[int, _Out]:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = cli.main(argv)
    return rc, _Out(o.getvalue(), e.getvalue())


# -- one gold run per benchmark (module cache) -------------------------------------------------------------

class _Runs:
    """Gold runs, one per ``Fixture``, made the first time one of their tasks is checked."""

    def __init__(self, request, tmp_factory):
        self.request = request
        self.tmp_factory = tmp_factory
        self.families: dict[str, dict[str, Any] | str] = {}
        self.done: dict[tuple[str, int], dict[str, Any]] = {}

    def get(self, task: str) -> dict[str, Any]:
        family = _family(task)
        if family not in self.families:
            self.families[family] = self._plan(family)
        plan = self.families[family]
        if isinstance(plan, str):
            pytest.skip(plan)
        if task in plan["skip"]:
            pytest.skip(plan["skip"][task])
        i = plan["run_of"][task]
        if (family, i) not in self.done:
            self.done[family, i] = self._run(family, i, plan["fixtures"][i], plan["tasks_of"][i])
        return self.done[family, i]

    def _plan(self, family: str) -> dict[str, Any] | str:
        tasks = _members(family)
        tmp = self.tmp_factory.mktemp("data-" + family.replace("/", "_"))
        factory = REGISTRY.task(tasks[0]).factory
        if isinstance(factory, FixtureData):
            opts = factory.fixture_options(tmp)
            if opts is None:
                return f"{family}: the task says it cannot run offline here (fixture_options is None)"
            fixtures = [Fixture([a for k, v in opts.items() for a in ("-T", f"{k}={v}")])]
        elif family in FIXTURES:
            fixtures = FIXTURES[family](tmp, self.request.getfixturevalue)
            if isinstance(fixtures, str):
                return f"{', '.join(tasks)}: {fixtures}"
        else:
            reading = [t for t in tasks if needs_of(REGISTRY.task(t).factory)]
            assert not reading, (f"{reading} read data but {__file__} has no FIXTURES entry for {family!r} "
                                 "(and the task does not declare contracts.FixtureData)")
            fixtures = [Fixture([])]
        skip = {t: r for f in fixtures for t, r in f.skip.items()}
        named = {t for f in fixtures for t in (f.tasks or ())}
        run_of, tasks_of = {}, []
        for i, f in enumerate(fixtures):
            mine = [t for t in (f.tasks if f.tasks is not None else [t for t in tasks if t not in named])
                    if t not in skip]
            tasks_of.append(mine)
            run_of.update({t: i for t in mine})
        return {"fixtures": fixtures, "tasks_of": tasks_of, "run_of": run_of, "skip": skip}

    def _run(self, family: str, i: int, fixture: Fixture, tasks: list[str]) -> dict[str, Any]:
        tmp = self.tmp_factory.mktemp(f"conf-{family}-{i}")
        args = fixture.args
        out = tmp / "results"
        base = ["run", "--tasks", ",".join(tasks), "--backend", "gold", "--output", str(out), "--run-id", "gold",
                "--no-progress", "--json", *args]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(registry_module, "_default", REGISTRY)
            mp.setenv("EVALSUITE_CACHE", str(tmp / "cache"))
            rc, first = _main(base)
            assert rc == 0, first.err[-3000:]
            run_dir = out / "gold"
            before = {t: ((run_dir / t / "samples.jsonl").read_bytes(), (run_dir / t / "plan.json").read_bytes())
                      for t in tasks}
            rc, second = _main(base)  # the same command again: a second plan of every task
            assert rc == 0, second.err[-3000:]
            after = {t: ((run_dir / t / "samples.jsonl").read_bytes(), (run_dir / t / "plan.json").read_bytes())
                     for t in tasks}
            rc, rescored = _main(["score", str(run_dir), "--json", *_judge_args(args)])
            assert rc == 0, rescored.err[-3000:]
        return {"dir": run_dir, "tasks": tasks, "metric": fixture.metric, "before": before, "after": after,
                "rescored": json.loads(rescored.out)["scores"],
                "manifest": json.loads((run_dir / "manifest.json").read_text())}


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    return _Runs(request, tmp_path_factory)


def _scores(run: dict[str, Any], task: str) -> dict[str, Any]:
    return json.loads((run["dir"] / task / "scores.json").read_text())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# -- the checks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", PARAMS)
def test_gold_reaches_the_maximum(task, runs):
    run = runs.get(task)
    s = _scores(run, task)
    assert s["n"] > 0 and s["n_errors"] == 0, (task, s["n"], s["n_errors"])
    metrics = {m["name"]: m for m in s["metrics"]}
    declared = task_metadata(task, REGISTRY.task(task).factory)["primary_metric"]
    assert declared is None or declared in metrics, f"{task}: primary_metric {declared!r} is not among {list(metrics)}"
    override = run["metric"].get(task) if isinstance(run["metric"], dict) else run["metric"]
    name = override or declared or s["metrics"][0]["name"]
    m = metrics[name]
    best = 100.0 if m.get("higher_is_better", True) else 0.0  # on 0-100; ROUGE's F has a 1e-8 epsilon
    assert m["value"] == pytest.approx(best, abs=1e-6), (task, name, m["value"])


@pytest.mark.parametrize("task", PARAMS)
def test_score_on_the_run_folder_equals_the_run(task, runs):
    run = runs.get(task)
    ours = {m["name"]: (m["value"], m["signature"]) for m in _scores(run, task)["metrics"]}
    again = {m["name"]: (m["value"], m["signature"]) for m in run["rescored"][task]["metrics"]}
    assert ours.keys() == again.keys()
    for name in ours:
        assert _same(ours[name][0], again[name][0]) and ours[name][1] == again[name][1], (task, name)


@pytest.mark.parametrize("task", PARAMS)
def test_describe_is_json(task, runs):
    run = runs.get(task)
    d = run["manifest"]["tasks"][task]["describe"]
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["version"] == REGISTRY.task(task).factory.version


@pytest.mark.parametrize("task", PARAMS)
def test_prompts_hash_deterministically(task, runs):
    run = runs.get(task)
    samples, plan = run["before"][task]
    assert samples and run["after"][task] == (samples, plan), \
        f"{task}: planning the same command twice gave other request keys (prompt hashes)"


def _readme(task: str) -> Path:
    factory = REGISTRY.task(task).factory
    here = Path(inspect.getfile(factory)).resolve().parent
    for folder in (here, here.parent):
        if (folder / "README.md").exists():
            return folder / "README.md"
    raise AssertionError(f"{task}: no README.md beside {here}")


@pytest.mark.parametrize("task", TASKS)
def test_readme_changelog_lists_the_current_version(task):
    version = str(REGISTRY.task(task).factory.version)
    text = _readme(task).read_text(encoding="utf-8")
    assert "## Changelog" in text, f"{_readme(task)} has no '## Changelog' section"
    log = text.split("## Changelog", 1)[1]
    entry = re.compile(r"^\s*[*-]\s+(?:\(still\s+)?(?:v|\*\*)?" + re.escape(version) + r"(?:\*\*)?\b", re.M)
    assert entry.search(log), f"{task}: version {version} is not in the changelog of {_readme(task)}"
