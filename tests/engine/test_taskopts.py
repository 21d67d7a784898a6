"""-T routing across benchmarks: task > group > global, group prefixes, data_file vs a global data_dir,
"did you mean" for misspelled keys and targets."""

from __future__ import annotations

import pytest

from evalsuite.errors import UserError
from evalsuite.registry import Registry
from evalsuite.task import BaseTask, Option
from evalsuite.taskopts import route_task_options


def _task(name: str, keys: tuple[str, ...]) -> type:
    return type(name.replace("/", "_"), (BaseTask,), {"name": name, "options": {k: Option(str) for k in keys}})


@pytest.fixture
def reg() -> Registry:
    r = Registry()
    r._loaded.update({"task:lb", "task:rl", "task:drt"})  # nothing to load from entry points
    for n in ("lb/a", "lb/b", "lb/c"):
        r.add_task(n, _task(n, ("data_dir", "data_file", "max_length")))
    for n in ("rl/x", "rl/y"):
        r.add_task(n, _task(n, ("data_dir", "data_file", "length")))
    r.add_task("drt/direct", _task("drt/direct", ("data_dir", "data_file")))
    r.add_group("lb", ["lb/a", "lb/b", "lb/c"])
    r.add_group("lb_small", ["lb/a"])
    r.add_group("rl", ["rl/x", "rl/y"])
    r.add_group("drt", ["drt/direct"])
    return r


NAMES = ["lb/a", "lb/b", "lb/c", "rl/x", "rl/y", "drt/direct"]


def test_precedence_task_over_group_over_global(reg):
    out = route_task_options(reg, NAMES, {"max_length": "100", "lb.max_length": "200", "lb_small.max_length": "300",
                                          "lb/c.max_length": "400", "length": "8"})
    assert out["lb/a"]["max_length"] == "300"  # the smaller group is the more specific one
    assert out["lb/b"]["max_length"] == "200"
    assert out["lb/c"]["max_length"] == "400"
    assert out["rl/x"] == {"length": "8"} and "max_length" not in out["drt/direct"]


def test_task_data_file_overrides_a_global_data_dir_instead_of_colliding(reg):
    out = route_task_options(reg, NAMES, {"data_dir": "/pack", "drt/direct.data_file": "/x/test.jsonl",
                                          "lb.data_file": "/lb.jsonl"})
    assert out["drt/direct"] == {"data_file": "/x/test.jsonl"}
    assert out["lb/b"] == {"data_file": "/lb.jsonl"}
    assert out["rl/x"] == {"data_dir": "/pack"}


def test_same_level_data_dir_and_data_file_are_both_kept_for_the_task_to_refuse(reg):
    out = route_task_options(reg, ["drt/direct"], {"data_dir": "/d", "data_file": "/f"})
    assert out["drt/direct"] == {"data_dir": "/d", "data_file": "/f"}


def test_prefix_groups_need_no_registration(reg):
    del reg.groups["rl"]
    out = route_task_options(reg, NAMES, {"rl.length": "16"})
    assert out["rl/x"] == {"length": "16"} == out["rl/y"]


def test_misspelled_key_and_target_get_a_suggestion(reg):
    with pytest.raises(UserError, match="'lenght'.*did you mean 'length'"):
        route_task_options(reg, NAMES, {"lenght": "1"})
    with pytest.raises(UserError, match="did you mean 'max_length'"):
        route_task_options(reg, NAMES, {"lb.max_lenght": "1"})
    with pytest.raises(UserError, match="'lbb' is neither a selected task nor a group.*did you mean .*'lb'"):
        route_task_options(reg, NAMES, {"lbb.max_length": "1"})
    with pytest.raises(UserError, match="not accepted by task drt/direct"):
        route_task_options(reg, NAMES, {"drt/direct.length": "1"})


def test_task_construction_suggests_close_options():
    cls = _task("t/x", ("data_dir",))
    with pytest.raises(UserError, match="did you mean 'data_dir'"):
        cls(data_dri="x")


def test_cli_group_option_reaches_real_tasks(cli, tmp_path):
    """`-T longbench.data_dir=` with a per-task data_file next to it, through the real registry and CLI."""
    import json

    row = {"input": "q", "context": "c", "answers": ["Abbreviation"], "all_classes": ["Abbreviation", "Entity"],
           "length": 2, "dataset": "trec", "language": "en", "_id": "t0"}
    folder = tmp_path / "lb"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "trec.jsonl").write_text(json.dumps(row) + "\n")
    drt = tmp_path / "drt.jsonl"
    drt.write_text(json.dumps({"en": "Hello", "zh": "你好"}) + "\n")
    r = cli("run", "--tasks", "longbench/trec,drt/direct", "--backend", "gold", "-T", "max_length=0",
            "-T", f"longbench.data_dir={folder}", "-T", f"drt/direct.data_file={drt}", "-T", "data_dir=/nonexistent",
            "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    scores = json.loads(r.stdout)["scores"]
    assert scores["longbench/trec"]["n"] == 1 and scores["drt/direct"]["n"] == 1
    r = cli("run", "--tasks", "longbench/trec", "--backend", "gold", "-T", "longbench.max_lenght=0")
    assert r.returncode == 2 and "did you mean 'max_length'" in r.stderr
