"""`evalsuite score-file` over several files and folders in one process: the task from each file's name as
LongBench's eval.py takes it, one table or one JSON document, and eval.py's result.json."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "longbench" / "golden_pred" \
    / "llama2-7b-chat-4k"
needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason="shared/data/longbench golden predictions not found")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _lb(pred: str, answers: list[str], length: int = 100, all_classes=None) -> dict:
    return {"pred": pred, "answers": answers, "all_classes": all_classes, "length": length}


@needs_golden
def test_golden_folder_in_one_call_writes_the_official_result_json(cli, tmp_path):
    r = cli("score-file", str(GOLDEN), "--result-json", "result.json")
    assert r.returncode == 0, r.stderr[-3000:]
    expected = json.loads((GOLDEN / "result.json").read_text())
    got = json.loads((tmp_path / "result.json").read_text())
    assert got == expected and list(got) == sorted(expected)  # files in sorted order, as listed
    # eval.py's layout: json.dump(..., ensure_ascii=False, indent=4)
    assert (tmp_path / "result.json").read_text() == json.dumps(got, ensure_ascii=False, indent=4)
    for ds, score in expected.items():  # one table: a row per file with its official score
        line = next(x for x in r.stdout.splitlines() if f"{ds}.jsonl" in x)
        assert f"longbench/{ds}" in line and f"{score:.2f}" in line
    r = cli("score-file", str(GOLDEN), "--json")
    files = json.loads(r.stdout)["files"]
    assert [f["dataset"] for f in files] == sorted(expected)
    assert {f["dataset"]: f["official"] for f in files} == expected
    assert all(f["task"] == f"longbench/{f['dataset']}" and len(f["per_line"]) == f["n"] for f in files)


@needs_golden
def test_files_and_folders_mixed_repeats_dropped(cli, tmp_path):
    sub = tmp_path / "more"
    sub.mkdir()
    shutil.copy(GOLDEN / "trec.jsonl", sub / "trec.jsonl")
    (sub / "notes.txt").write_text("not a prediction file")
    r = cli("score-file", str(GOLDEN / "hotpotqa.jsonl"), str(sub), str(GOLDEN / "hotpotqa.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    expected = json.loads((GOLDEN / "result.json").read_text())
    assert [(f["dataset"], f["official"]) for f in files] == [("hotpotqa", expected["hotpotqa"]),
                                                              ("trec", expected["trec"])]


def test_explicit_task_for_any_file_name_and_single_file_json(cli, tmp_path):
    f = _write(tmp_path / "my-preds.v2.jsonl", [_lb("Paris", ["Paris"]), _lb("Rome", ["Paris"])])
    r = cli("score-file", str(f), "--task", "longbench/hotpotqa")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # one file given as a file: its JSON document, as before
    assert out["task"] == "longbench/hotpotqa" and out["score"] == 50.0 and "file" not in out
    r = cli("score-file", str(f))  # without --task the name picks the dataset: "my-preds"
    assert r.returncode == 2 and "'my-preds' names no task of longbench" in r.stderr
    assert "--task" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_dataset_is_the_name_before_the_first_dot(cli, tmp_path):
    d = tmp_path / "pred"
    d.mkdir()
    _write(d / "passage_count.run1.jsonl", [_lb("3", ["3"]), _lb("3 and 4", ["3"])])
    _write(d / "repobench-p.jsonl", [_lb("x = 1", ["x = 1"])])
    r = cli("score-file", str(d), "--result-json", "r.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text()) == {"passage_count": 75.0, "repobench-p": 100.0}


def test_longbench_e_group_writes_length_buckets_like_eval_py_e(cli, tmp_path):
    d = tmp_path / "pred_e"
    d.mkdir()
    _write(d / "qasper.jsonl", [_lb("x y", ["x y"], 100), _lb("c", ["d"], 5000), _lb("z", ["z"], 4100)])
    _write(d / "trec.jsonl", [_lb("Date", ["Date"], 9000, ["Date", "Location"])])
    r = cli("score-file", str(d), "--task", "longbench_e", "--result-json", "r.json")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "r.json").read_text()
    got = json.loads(text)  # Python's json reads NaN, as eval.py --e writes an empty bucket's mean
    assert got["qasper"]["0-4k"] == 100.0 and got["qasper"]["4-8k"] == 50.0 and math.isnan(got["qasper"]["8k+"])
    assert got["trec"]["8k+"] == 100.0 and math.isnan(got["trec"]["0-4k"]) and "NaN" in text
    assert "longbench_e/qasper" in r.stdout and "0-4k: 100.00" in r.stdout


def test_ruler_group_from_file_names(cli, tmp_path):
    d = tmp_path / "ruler"
    d.mkdir()
    _write(d / "niah_single_1.jsonl", [{"index": 0, "pred": "1234567", "outputs": ["1234567"]}])
    _write(d / "vt.jsonl", [{"index": 0, "pred": "X1 X2", "outputs": ["X1", "X3"]}])
    r = cli("score-file", str(d), "--task", "ruler", "--json")
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    assert [(f["task"], f["score"]) for f in files] == [("ruler/niah_single_1", 100.0), ("ruler/vt", 50.0)]


def test_metric_over_several_files(cli, tmp_path):
    a = _write(tmp_path / "a.jsonl", [{"prediction": "x 1", "references": ["1"]}])
    b = _write(tmp_path / "b.jsonl", [{"prediction": "x", "references": ["1"]}])
    r = cli("score-file", str(a), str(b), "--metric", "string_match_all", "--json")
    assert r.returncode == 0, r.stderr
    assert [(f["dataset"], f["score"]) for f in json.loads(r.stdout)["files"]] == [("a", 100.0), ("b", 0.0)]


@pytest.mark.parametrize("setup, args, needle", [
    (lambda d: d.mkdir(), ["{d}"], "no *.jsonl prediction files"),
    (lambda d: d.write_bytes(b'{"pred": "\xff"}\n'), ["{d}", "--task", "longbench/trec"], "not UTF-8"),
    (lambda d: d.write_text("[" * 100000 + "]" * 100000 + "\n"), ["{d}", "--task", "longbench/trec"],
     "nested too deeply"),
    (lambda d: None, ["/dev/null", "--task", "longbench/trec"], "not a regular file"),
    (lambda d: None, ["{d}"], "No such file"),
    (lambda d: d.write_text('{"pred": "x", "answers": ["x"]}\n'), ["{d}", "--task", "nope_group"],
     "unknown task 'nope_group'"),
])
def test_bad_inputs_are_one_line_exit_2(cli, tmp_path, setup, args, needle):
    d = tmp_path / "in"
    setup(d)
    r = cli("score-file", *[a.format(d=d) for a in args])
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_file_is_named_before_any_is_scored(cli, tmp_path):
    d = tmp_path / "pred"
    d.mkdir()
    _write(d / "gov_report.jsonl", [_lb("a summary", ["a summary"])] * 3)
    _write(d / "zz_unknown.jsonl", [_lb("x", ["x"])])
    r = cli("score-file", str(d), "--result-json", "r.json")
    assert r.returncode == 2 and "zz_unknown" in r.stderr and not (tmp_path / "r.json").exists()


def test_result_json_refuses_two_files_of_one_dataset_and_bad_destinations(cli, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _write(tmp_path / sub / "trec.jsonl", [_lb("Date", ["Date"], all_classes=["Date"])])
    r = cli("score-file", str(tmp_path / "a"), str(tmp_path / "b"), "--result-json", "r.json")
    assert r.returncode == 2 and "two files name dataset 'trec'" in r.stderr
    r = cli("score-file", str(tmp_path / "a"), "--result-json", str(tmp_path / "no" / "dir" / "r.json"))
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path).glob("**/*.tmp*"))


def test_hostile_file_names_are_shown_inert(cli, tmp_path):
    d = tmp_path / "pred"
    d.mkdir()
    _write(d / "trec.[bold red]x\x1b[31m.jsonl", [_lb("Date", ["Date"], all_classes=["Date"])])
    _write(d / "hotpotqa.jsonl", [_lb("a", ["a"])])
    r = cli("score-file", str(d))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\\x1b" in r.stdout and "[bold red]x" in r.stdout
