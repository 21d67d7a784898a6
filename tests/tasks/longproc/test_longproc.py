"""LongProc tasks: registration, byte-exact prompts, regenerated reference traces, the official evaluator
semantics on a corpus of hand-made wrong outputs (expected metrics computed by the upstream evaluators,
tests/fixtures/longproc/README.md), gold runs through the CLI on the real data, missing-compiler skips,
and a repository-wide check that model text never reaches eval/exec.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import pytest

import evalsuite.tasks.longproc as longproc
from evalsuite.registry import Registry
from evalsuite.types import Generation, Record, Sample
from evalsuite.tasks.longproc import _countdown, _travel
from evalsuite.tasks.longproc._task import PROMPT_DIR, template

REPO = Path(__file__).resolve().parents[2].parent
DATA = REPO.parent / "shared" / "data" / "longproc" / "data"
CORPUS = REPO / "tests" / "fixtures" / "longproc" / "wrong_outputs.jsonl"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="LongProc data not present")
needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

OFFLINE = ["html_to_tsv_0.5k", "html_to_tsv_2k", "html_to_tsv_8k", "pseudo_to_code_0.5k", "pseudo_to_code_2k",
           "path_traversal_0.5k", "tom_tracking_0.5k", "tom_tracking_2k", "countdown_0.5k", "countdown_2k",
           "countdown_8k"]

# sha256 of data/<task>/prompts.yaml at princeton-pli/LongProc 78e873a (`git show <commit>:<path> | sha256sum`)
UPSTREAM_PROMPT_SHA256 = {
    "html_to_tsv": "1192cf2432084b49aff6ec8e0f1ed4f8b56f926826849041711b3733d2fe4dbb",
    "pseudo_to_code": "d0739b6becb28c16fad99291f9b32e15bdba7aaf5ef21f789d414ee947c22b16",
    "path_traversal": "8625b1fe0c77b667b20bb2533b4116192f47aafb9069b0aa2295adb46cc7d685",
    "tom_tracking": "1a15f592f722eea0e2e8622de960ea38ee4b594d09a58ecd91704f34db56908b",
    "countdown": "ac6193f0168e5081343dc1fc8a79078281ddc33b27e7c5729826db1f6aefc396",
    "travel_planning": "69c73829e2677830af5320815c95378b5ae64b725a93f00699a45337cec21ddc",
    "travel_planning_icl_examples.json": "f8a68e4216d0fac50bafe01dc230170621a554ebfb043adbd0afd8f0271cf8b8",
}


@pytest.fixture(scope="module")
def registry():
    r = Registry()
    longproc.register(r)
    return r


def make(registry, name, **opts):
    return registry.tasks[f"longproc/{name}"].factory(**opts)


# -- registration, prompts, budgets -------------------------------------------------------------------------

def test_tasks_and_groups(registry):
    assert len(longproc.task_names()) == 16
    assert registry.groups["longproc"] == longproc.task_names()
    assert registry.groups["longproc/0.5k"] == [f"longproc/{t}_0.5k" for t in
                                                ("html_to_tsv", "pseudo_to_code", "path_traversal", "tom_tracking",
                                                 "countdown")]
    assert "longproc/travel_planning_2k" in registry.groups["longproc/2k"]
    assert registry.groups["longproc/8k"] == [f"longproc/{t}_8k" for t in
                                              ("html_to_tsv", "path_traversal", "tom_tracking", "countdown",
                                               "travel_planning")]
    assert "longproc/pseudo_to_code_8k" not in registry.tasks


def test_prompt_files_are_byte_exact():
    for task, sha in UPSTREAM_PROMPT_SHA256.items():
        name = task if task.endswith(".json") else f"{task}.yaml"
        assert hashlib.sha256((PROMPT_DIR / name).read_bytes()).hexdigest() == sha, name


@needs_data
def test_requests_budgets_and_describe(registry):
    for name, budget in (("countdown_0.5k", 1024), ("tom_tracking_2k", 3072), ("countdown_8k", 9216)):
        t = make(registry, name, data_dir=str(DATA))
        s = next(iter(t.samples()))
        req = t.request(s)
        assert req.params.max_tokens == budget and req.params.temperature == 0.0 and req.use_chat_template
        d = t.describe()
        assert d["evaluator"]["name"] == "main" and "78e873a" in d["evaluator"]["upstream"]
        assert d["prompt_sha256"] == UPSTREAM_PROMPT_SHA256[name.rsplit("_", 1)[0]]
    t = make(registry, "countdown_0.5k", data_dir=str(DATA), evaluator="rmodels", max_tokens="10240")
    assert t.describe()["evaluator"]["upstream"].endswith("a9185e9") and t.max_new_tokens == 10240
    s = next(iter(t.samples()))
    p = t.prompt(s)
    # the two worked examples, then the item
    assert p.count("# Example\nNumbers: ") == 2 and "Numbers: [40, 19, 23, 7]\nTarget: 29" in p
    assert p.endswith("Numbers: [21, 16, 17, 26]\nTarget: 46")


@needs_data
def test_html_prompt_reads_the_page(registry):
    t = make(registry, "html_to_tsv_0.5k", data_dir=str(DATA))
    s = next(iter(t.samples()))
    page = (DATA / "html_to_tsv" / "webpage" / "W309_0.5k_1.html").read_text(encoding="utf-8")
    p = t.prompt(s)
    assert page in p and "{Your TSV output}" in p and s.id == "W309_0.5k_1"


# -- reference traces -------------------------------------------------------------------------------------

@needs_data
def test_countdown_traces_equal_the_stored_ones_for_all_600_items():
    n = 0
    for level in ("0.5k", "2k", "8k"):
        for row in json.loads((DATA / "countdown" / f"countdown_{level}.json").read_text()):
            solution, ref = _countdown.build_trace(row["nums"], row["target"])
            stored = row["demonstration"]
            # the release wraps the trace in <Search Procedure> tags; the loader writes "# Search Procedure"
            assert stored.startswith("<Search Procedure>\n")
            expected = "# Search Procedure\n" + stored[len("<Search Procedure>\n"):].replace(
                "\n</Search Procedure>\n\n", "\n\n", 1)
            assert ref == expected, (level, row["nums"], row["target"])
            assert _countdown.check_solution(row["nums"], row["target"], "\n".join(solution)) == (True, "")
            n += 1
    assert n == 600


def test_travel_builder_reproduces_the_icl_plans():
    examples = json.loads((PROMPT_DIR / "travel_planning_icl_examples.json").read_text())
    for ex in examples:
        ref = _travel.build_reference(ex)  # raises when the plan differs from ground_truth_plan
        plan = ref.split("<Plan>\n")[1].split("\n</Plan>")[0]
        assert plan == ex["ground_truth_plan"].split("\n\n")[1].strip()
        assert ref.startswith("<Solving Procedure>\nRead the requirements")
        assert _travel.evaluate(ref, ex["ground_truth_cities"], ex["ground_truth_durations"], ref)[0]["accuracy"] == 1.0
    demo = template("travel_planning")
    assert demo.count("# Example\nYou plan to visit") == 4 and demo.endswith("{problem}")


def test_travel_wrong_plan_and_partial():
    ex = json.loads((PROMPT_DIR / "travel_planning_icl_examples.json").read_text())[0]
    ref = _travel.build_reference(ex)
    lines = ref.split("\n")
    # a plan with one stay a day too long: accuracy 0; the procedure still matches up to line k
    wrong = ref.replace("<Plan>\n**Day 1-5:**", "<Plan>\n**Day 1-6:**").replace("**Day 5:** Fly", "**Day 6:** Fly")
    m, info = _travel.evaluate(wrong, ex["ground_truth_cities"], ex["ground_truth_durations"], ref)
    assert m["accuracy"] == 0.0 and m["extraction_rate"] == 1.0 and "plan_error" in info
    k = 6
    cut = "\n".join(lines[:k] + ["something else entirely"])
    m, info = _travel.evaluate(cut, ex["ground_truth_cities"], ex["ground_truth_durations"], ref)
    gt_lines = [x for x in ref.replace("Output the plan in the required format:", "").split("\n") if x.strip()]
    kept = [x for x in lines[:k] if x.strip()]
    assert m == {"accuracy": 0.0, "partial_accuracy": len(kept) / len(gt_lines), "extraction_rate": 0.0}
    assert info["diverged"]["line"] == len(kept)


# -- countdown's own parser (never eval) ----------------------------------------------------------------------

@pytest.mark.parametrize("line,ok", [
    ("21 + 16 = 37", True), ("16+21=37", True), ("-16 + 21 = 5", True), ("12 / 4 = 3", True),
    ("7 / 2 = 3", False), ("7 / 2 = 3.5", False), ("021 + 16 = 37", False), ("2*3+1 = 7", False),
    ("x + 1 = 2", False), ("4 / 0 = 0", False), ("3 ** 2 = 9", False), ("1_0 + 2 = 12", True),
    ("(3) + 4 = 7", False), ("__import__('os') + 1 = 2", False), ("5 - 3 = 2 = 2", False), ("00 + 5 = 5", True),
])
def test_countdown_line_parser(line, ok):
    assert _countdown.check_line(line)[0] is ok


# -- wrong-output corpus ------------------------------------------------------------------------------------

def _corpus():
    return [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]


def _record(sample, output):
    return Record(sample=Sample(sample.id, sample.index, None, sample.target, sample.metadata), prediction=output,
                  generation=Generation(output, "stop"))


@needs_data
@pytest.mark.parametrize("case", [c for c in _corpus() if not c["dataset"].startswith("pseudo")],
                         ids=lambda c: f"{c['dataset']}:{c['case']}")
def test_wrong_outputs_get_the_official_scores(registry, case):
    t = make(registry, case["dataset"], data_dir=str(DATA), evaluator=case["evaluator"])
    s = list(t.samples())[case["index"]]
    (metrics, info), = t.evaluate([_record(s, case["output"])])
    assert metrics == pytest.approx(case["expected"], abs=1e-12), info
    if min(metrics.values()) < 1.0:
        assert info, "a sample that lost points says why"


@needs_data
@needs_gpp
def test_wrong_programs_get_the_official_scores_and_stay_contained(registry, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cases = [c for c in _corpus() if c["dataset"].startswith("pseudo")]
    assert {"infinite loop", "allocates too much memory", "opens a network socket"} <= {c["case"] for c in cases}
    t = make(registry, "pseudo_to_code_0.5k", data_dir=str(DATA), timeout="1.0")
    s = list(t.samples())[0]
    results = t.evaluate([_record(s, c["output"]) for c in cases])
    for c, (metrics, info) in zip(cases, results):
        assert metrics == pytest.approx(c["expected"], abs=1e-12), (c["case"], info)
    why = {c["case"]: info for c, (_, info) in zip(cases, results)}
    assert why["infinite loop"]["error"] == "timeout"
    assert why["allocates too much memory"]["error"].startswith("killed by signal")
    assert why["compile error"]["error"] == "compilation error"
    assert why["wrong output"]["error"] == "inconsistent" and why["wrong output"]["failed_test"] == 0
    assert why["opens a network socket"]["got"] in ("refused\n", "no socket\n")
    assert list(tmp_path.iterdir()) == []  # every temporary directory is gone


# -- gold runs through the CLI -------------------------------------------------------------------------------

def _scores(stdout: str) -> dict:
    return {s["task"]: s for s in json.loads(stdout)["scores"]} if stdout.strip().startswith("{") else {}


@needs_data
def test_gold_scores_100_on_every_offline_task_level(cli, tmp_path):
    names = ",".join(f"longproc/{n}" for n in OFFLINE)
    r = cli("run", "--tasks", names, "--backend", "gold", "-T", f"data_dir={DATA}", "--limit", "2",
            "--run-id", "gold", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    scores = json.loads((tmp_path / "results" / "gold" / "manifest.json").read_text())
    for n in OFFLINE:
        s = _find_scores(tmp_path / "results" / "gold", f"longproc/{n}")
        assert s["n"] == 2 and s["n_errors"] == 0, n
        for m in s["metrics"]:
            assert m["value"] == pytest.approx(100.0), (n, m["name"])
    entry = scores["tasks"]["longproc/countdown_0.5k"]
    assert entry["describe"]["evaluator"]["name"] == "main"
    assert entry["describe"]["prompt_sha256"] == UPSTREAM_PROMPT_SHA256["countdown"]


def _find_scores(run: Path, task: str) -> dict:
    for p in run.rglob("scores.json"):
        d = json.loads(p.read_text())
        if d.get("task") == task:
            return d
    raise AssertionError(f"no scores.json for {task}")


@needs_data
def test_gold_on_all_items_of_the_longest_outputs(cli, tmp_path):
    names = "longproc/html_to_tsv_8k,longproc/countdown_8k,longproc/tom_tracking_2k"
    r = cli("run", "--tasks", names, "--backend", "gold", "-T", f"data_dir={DATA}", "--run-id", "full",
            "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    expect_n = {"html_to_tsv_8k": 120, "tom_tracking_2k": 200, "countdown_8k": 200}
    for n, count in expect_n.items():
        s = _find_scores(tmp_path / "results" / "full", f"longproc/{n}")
        assert s["n"] == count and all(m["value"] == pytest.approx(100.0) for m in s["metrics"]), n


@needs_data
def test_missing_compiler_stops_the_run_before_anything_loads(cli, tmp_path):
    r = cli("run", "--tasks", "longproc/pseudo_to_code_0.5k", "--backend", "gold", "-T", f"data_dir={DATA}",
            "-T", "cxx=/nonexistent/g++", "--limit", "2", "--run-id", "nocxx", "--no-progress")
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "no C++ compiler" in lines[0] and "/nonexistent/g++" in lines[0] and "-T cxx=" in lines[0]
    assert not (tmp_path / "results" / "nocxx").exists()  # refused before a run folder or a model


@needs_data
def test_score_without_a_compiler_skips_accuracy_with_a_reason(cli, tmp_path):
    import os
    import sys

    r = cli("run", "--tasks", "longproc/pseudo_to_code_2k", "--backend", "gold", "-T", f"data_dir={DATA}",
            "--limit", "2", "--run-id", "nopath", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    acc = _find_scores(tmp_path / "results" / "nopath", "longproc/pseudo_to_code_2k")["metrics"][0]
    assert acc["name"] == "accuracy" and acc["value"] == pytest.approx(100.0)
    # the finished run scored again on a machine without g++ on PATH: accuracy is missing (NaN), not 0
    empty = tmp_path / "bin"
    empty.mkdir()
    r = cli("score", str(tmp_path / "results" / "nopath"), env={"PATH": str(empty)})
    assert r.returncode == 0, r.stderr[-3000:]
    s = _find_scores(tmp_path / "results" / "nopath", "longproc/pseudo_to_code_2k")
    by = {m["name"]: m for m in s["metrics"]}
    assert math.isnan(by["accuracy"]["value"]) and by["accuracy"]["details"]["n_skipped"] == 2
    assert "no C++ compiler" in by["accuracy"]["details"]["skip_reason"] and "g++" in by["accuracy"]["details"]["skip_reason"]
    assert by["extraction_rate"]["value"] == pytest.approx(100.0)
    assert "accuracy skipped for 2 samples: no C++ compiler" in r.stderr
    assert os.path.exists(sys.executable)


@needs_data
def test_per_sample_details_say_why(cli, tmp_path):
    r = cli("run", "--tasks", "longproc/path_traversal_0.5k,longproc/html_to_tsv_0.5k", "--backend", "echo",
            "-B", "text=From A, take a bus to B.", "-T", f"data_dir={DATA}", "--limit", "2", "--run-id", "echo",
            "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    path = _find_scores(tmp_path / "results" / "echo", "longproc/path_traversal_0.5k")
    why = path["metrics"][0]["details"]["samples"]
    assert set(why) == {"path_traversal_0.5k_0", "path_traversal_0.5k_1"}
    assert all(v["error"] == "no <Route>...</Route> block" for v in why.values())
    html = _find_scores(tmp_path / "results" / "echo", "longproc/html_to_tsv_0.5k")
    assert all("prediction" in v["error"] for v in html["metrics"][0]["details"]["samples"].values())


# -- no eval/exec on model text ----------------------------------------------------------------------------

_CALL = re.compile(r"(?<![\w.])(eval|exec)\s*\(")


def test_no_eval_or_exec_anywhere_in_the_repository():
    """No Python, JavaScript, HTML template or shell file outside .venv calls the eval or exec builtins (so no
    model text can reach them); method calls such as ``model.eval()`` are not calls of the builtin."""
    import os

    offenders = []
    files = []
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "dist", "node_modules")]
        files.extend(Path(root) / n for n in names if n.endswith((".py", ".js", ".html", ".jinja", ".sh")))
    assert len(files) > 50
    for path in files:
        rel = path.relative_to(REPO)
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            code = line.split("#", 1)[0]
            code = re.sub(r"(\"[^\"]*\"|'[^']*')", "", code)  # ignore mentions inside string literals
            if _CALL.search(code):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []
