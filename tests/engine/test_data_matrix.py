"""Every registered task x every kind of bad data file: one line on stderr, exit status 2, never a traceback.

The task list comes from the registry, so a new task is covered without editing this file. A task that
reads data is given the bad file through its own data option (``data_file``, or ``qa_file`` for RULER's qa
tasks), or, for the tasks that only take a folder, at the place in that folder where the task reads it: the
files its ``data_layout(options)`` declares (every one of them bad), or ``DIR_LAYOUT`` here for tasks that
declare none (a new folder-only task fails here until it declares its layout). A task that declares no data
(RULER's generated haystacks) must not read any. The error must name the bad file: an error about anything
else (a missing prompt file, the offline hub) would let a task pass without ever reading the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite import cli
from evalsuite.registry import Registry
from evalsuite.sources import needs_of

KINDS = ("utf16", "latin1", "json_array_for_jsonl", "deep_nesting", "non_object_lines", "empty")

DIR_LAYOUT = {
    # task -> path of the file inside the folder given as -T data_dir (the official layout the task reads)
    "longgenbench_liu/mmlu": "test/abstract_algebra_test.csv",
    "longgenbench_liu/mmlu_baseline": "test/abstract_algebra_test.csv",
}
PUNCH_FILES = {"yes_no": "Perception/Yes_No.jsonl", "matching": "Perception/Matching.jsonl",
               "multi_option": "Perception/Multi_Option.jsonl", "r_yes_no": "Reasoning/Yes_No.jsonl",
               "r_matching": "Reasoning/Matching.jsonl", "r_multi_option": "Reasoning/Multi_Option.jsonl",
               "generation": "Reasoning/Generation.jsonl"}

FILE_NAMES = {  # the name each task's data file has upstream (the suffix decides its format)
    "ruler/": "PaulGrahamEssays.json", "ruler/qa_1": "dev-v2.0.json", "ruler/qa_2": "hotpot_dev_distractor_v1.json",
    "longbench/": "data.jsonl", "longbench_e/": "data_e.jsonl", "longbench_v2": "data.json",
    "longproc/": "task.json", "deltabench": "Deltabench_v1.jsonl", "drt/": "test.jsonl",
    "ragtrans/": "RAGtrans_test.jsonl", "longgenbench_wu/": "Dataset_short.json",
    "longgenbench_liu/": "test.jsonl", "alce/": "asqa_eval_gtr_top2000.json", "lciteeval/": "task.json",
    "longbench_cite/": "LongBench-Cite.json",
}

_registry = Registry()
_registry.load_all()
TASKS = sorted(_registry.tasks)


def _file_name(task: str) -> str:
    for prefix, name in sorted(FILE_NAMES.items(), key=lambda kv: -len(kv[0])):
        if task == prefix or (prefix.endswith("/") and task.startswith(prefix)) or task.startswith(prefix):
            return name
    return "data.jsonl"


def bad_bytes(kind: str, fmt: str) -> bytes:
    row = {"question": "q", "text": "t"}
    valid = json.dumps([row]) if fmt == "json" else (json.dumps(row) + "\n" if fmt == "jsonl" else "q,a,b,c,d,A\n")
    if kind == "utf16":
        return valid.encode("utf-16")
    if kind == "latin1":
        return valid.replace("q", "caf\u00e9").encode("latin-1")
    if kind == "json_array_for_jsonl":
        return b'[\n  {"a": 1},\n  {"b": 2}\n]\n'
    if kind == "deep_nesting":
        return b"[" * 100_000 + b"]" * 100_000 + b"\n"
    if kind == "non_object_lines":
        return b'[1, "x", null, [1, 2]]\n' if fmt == "json" else b'1\n"x"\nnull\n[1, 2]\n'
    return b""


LCITE_PROMPT = {"instruction": "Answer.", "demo_sep": "\n\n", "demo_prompt": "{INST}\n\n{D}\n\nQ: {Q}\nA: {A}",
                "doc_prompt": "Passage [{ID}]: {P}\n",
                "demos": [{"question": "q", "answer": "a [1]", "docs": ["d"]}]}


def _place(task: str, kind: str, tmp: Path) -> tuple[list[str], str | tuple[str, ...]]:
    """The -T options that hand ``task`` the bad file, and a string the error must contain (or strings, one
    of which it must contain: the names of the files a folder-only task reads)."""
    factory = _registry.task(task).factory
    declared = getattr(factory, "options", {}) or {}
    extra: list[str] = []
    if task.startswith("lciteeval/"):
        p = tmp / "prompt.json"
        p.write_text(json.dumps(LCITE_PROMPT))
        extra = ["-T", f"prompt_file={p}"]
    if task.startswith("punchbench/"):
        folder = tmp / "punch"
        for rel in PUNCH_FILES.values():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(bad_bytes(kind, "jsonl"))
        return ["-T", f"data_dir={folder}", *extra], "punch"
    layout = getattr(factory, "data_layout", None)
    if callable(layout) and not {"data_file", "qa_file"} & set(declared):
        folder = tmp / "folder"
        names = []
        for rel in layout({}):
            f = folder / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(bad_bytes(kind, f.suffix.lstrip(".")))
            names.append(f.name)
        assert names, f"{task} declares data ({needs_of(factory)}) but an empty data_layout"
        return ["-T", f"data_dir={folder}", *extra], tuple(names)
    if task in DIR_LAYOUT:
        folder = tmp / "folder"
        f = folder / DIR_LAYOUT[task]
        f.parent.mkdir(parents=True)
        f.write_bytes(bad_bytes(kind, Path(f).suffix.lstrip(".")))
        return ["-T", f"data_dir={folder}", *extra], f.name
    option = "qa_file" if "qa_file" in declared else "data_file"
    assert option in declared, f"{task} declares data ({needs_of(factory)}) but neither data_file nor qa_file: " \
                               f"add it to DIR_LAYOUT in {__file__}"
    f = tmp / _file_name(task)
    f.write_bytes(bad_bytes(kind, f.suffix.lstrip(".")))
    return ["-T", f"{option}={f}", *extra], f.name


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", TASKS)
def test_bad_data_file_is_one_line_and_exit_2(task, kind, tmp_path, capsys, word_tokenizer_dir, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    factory = _registry.task(task).factory
    if not needs_of(factory) and "data_file" not in (getattr(factory, "options", {}) or {}):
        pytest.skip(f"{task} reads no data")
    if not needs_of(factory):
        # generated data (RULER noise/needle haystacks, cwe, fwe, vt): its data options serve other tasks of
        # the group, and it reads none (test_generated_tasks_read_no_data_file)
        pytest.skip(f"{task} generates its data")
    opts, name = _place(task, kind, tmp_path)
    rc = cli.main(["run", "--tasks", task, "--backend", "gold", "--model", str(word_tokenizer_dir), "--limit", "2",
                   "--output", str(tmp_path / "out"), "--no-progress", *opts])
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("evalsuite: error:"), err
    assert "Traceback" not in err
    names = (name,) if isinstance(name, str) else name
    assert any(n in lines[0] for n in names), f"the error does not name a bad file {names}: {lines[0]}"


def test_the_matrix_covers_every_task_that_reads_data():
    reading = [t for t in TASKS if needs_of(_registry.task(t).factory)]
    groups = {t.split("/")[0] for t in reading}
    assert {"longbench", "longbench_e", "longbench_v2", "longproc", "deltabench", "ragtrans", "drt", "alce",
            "lciteeval", "longbench_cite", "longgenbench_liu", "longgenbench_wu", "punchbench", "ruler",
            "helmet"} <= groups
    helmet = [t for t in TASKS if t.startswith("helmet/")]
    assert len(helmet) == 21 and all(needs_of(_registry.task(t).factory) for t in helmet)


def test_generated_tasks_read_no_data_file(tmp_path, capsys, word_tokenizer_dir):
    """A RULER task with a generated haystack ignores the group's essay file, even a bad one."""
    bad = tmp_path / "PaulGrahamEssays.json"
    bad.write_bytes(bad_bytes("deep_nesting", "json"))
    rc = cli.main(["run", "--tasks", "ruler/niah_single_1", "--backend", "gold", "--model", str(word_tokenizer_dir),
                   "--limit", "1", "-T", "length=512", "-T", f"data_file={bad}", "--output", str(tmp_path / "o"),
                   "--no-progress", "--json"])
    assert rc == 0, capsys.readouterr().err
