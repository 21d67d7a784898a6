"""Issue 18: habits users bring from lm-eval and inspect (--model hf, provider/model, --temperature,
--gen-kwargs, --tasks a b), progress without a terminal, and "did you mean" for -B / -J keys."""

from __future__ import annotations

import json
import time

import pytest

from evalsuite.cli_habits import parse_gen_kwargs, resolve_model_spelling, split_tasks
from evalsuite.errors import UserError
from evalsuite.progress import Progress
from evalsuite.types import Generation

NAMES = ["echo", "embedded", "gold", "hf", "lmeval", "openai", "replay", "vllm"]


@pytest.mark.parametrize("model", ["hf", "vllm", "openai"])
def test_a_backend_name_given_as_model_gets_a_one_line_hint(cli, model):
    r = cli("run", "--tasks", "toy/addition", "--model", model)
    assert r.returncode == 2
    assert f"--model {model!r} names a backend; did you mean --backend {model} --model" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_provider_slash_model_selects_the_backend(cli, tmp_path, fake_openai):
    server = fake_openai(models=("gpt-4o-mini",))
    r = cli("run", "--tasks", "toy/upper", "--model", "openai/gpt-4o-mini", "-B", f"base_url={server.url}",
            "--json")
    assert r.returncode == 0, r.stderr
    assert "reading --model openai/gpt-4o-mini as --backend openai --model gpt-4o-mini" in r.stderr
    run = json.loads(r.stdout)["run_dir"]
    man = json.loads((tmp_path / run / "manifest.json").read_text())
    assert man["backend"]["name"] == "openai" and man["backend"]["model"] == "gpt-4o-mini"
    assert {c.body["model"] for c in server.posts()} == {"gpt-4o-mini"}


def test_model_spelling_rules():
    assert resolve_model_spelling("hf/org/name", None, NAMES)[:2] == ("org/name", "hf")
    assert resolve_model_spelling("vllm/meta/llama", None, NAMES)[:2] == ("meta/llama", "vllm")
    # with --backend the model is taken as written; a hub id whose org is not a backend stays a hub id
    assert resolve_model_spelling("openai/gpt-oss-20b", "hf", NAMES) == ("openai/gpt-oss-20b", "hf", None)
    assert resolve_model_spelling("Qwen/Qwen2.5-7B", None, NAMES) == ("Qwen/Qwen2.5-7B", None, None)
    # scripted backends are no providers
    assert resolve_model_spelling("gold/x", None, NAMES) == ("gold/x", None, None)
    with pytest.raises(UserError, match="did you mean --backend lmeval"):
        resolve_model_spelling("lmeval", None, NAMES)


def test_local_folder_named_like_a_provider_wins(tmp_path, monkeypatch):
    (tmp_path / "openai" / "tok").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_spelling("openai/tok", None, NAMES) == ("openai/tok", None, None)


def test_tasks_space_or_comma_separated(cli):
    a = json.loads(cli("run", "--tasks", "toy/addition", "toy/upper", "--backend", "gold", "--json").stdout)
    b = json.loads(cli("run", "--tasks", "toy/addition,toy/upper", "--backend", "gold", "--json").stdout)
    assert a["run_id"] == b["run_id"] and set(a["scores"]) == {"toy/addition", "toy/upper"}
    assert split_tasks(["a,b", "c", " d ,e"]) == ["a", "b", "c", "d", "e"]
    assert split_tasks("a,b c") == ["a", "b", "c"]


def test_generation_overrides_from_the_cli_are_recorded(cli, tmp_path):
    r = cli("run", "--tasks", "toy/addition", "--backend", "gold", "--limit", "3", "--temperature", "0.7",
            "--top-p", "0.9", "--seed", "5", "--gen-kwargs", 'max_gen_toks=6,until=["\\n", "Q:"]', "--run-id", "g",
            "--json")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "results/g/manifest.json").read_text())
    want = {"max_tokens": 6, "temperature": 0.7, "top_p": 0.9, "stop": ["\n", "Q:"], "seed": 5}
    assert man["tasks"]["toy/addition"]["generation_params"] == [want]
    assert man["invocations"][-1]["generation_overrides"] == want
    assert man["identity"]["generation"] == want
    rows = [json.loads(x) for x in (tmp_path / "results/g/toy/addition/samples.jsonl").read_text().splitlines()]
    assert all(row["params"] == want for row in rows)


@pytest.mark.parametrize("args, needle", [
    (["--temperature", "0.5", "--gen-kwargs", "temperature=0.1"], "given both as --temperature and in --gen-kwargs"),
    (["--max-tokens", "4", "--gen-kwargs", "max_new_tokens=8"], "max_tokens given both"),
    (["--gen-kwargs", "temprature=1"], "did you mean 'temperature'"),
    (["--gen-kwargs", "top_p=2"], "top_p must be in (0, 1]"),
    (["--gen-kwargs", "seed=abc"], "bad value for seed"),
    (["--temperature", "-1"], "expected a number >= 0"),
    (["--gen-kwargs", "do_sample=true"], "needs a temperature > 0"),
])
def test_bad_generation_overrides_are_one_line_exit_2(cli, args, needle):
    r = cli("run", "--tasks", "toy/addition", "--backend", "gold", *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_parse_gen_kwargs_like_lm_eval():
    assert parse_gen_kwargs("do_sample=false,temperature=0") == {"temperature": 0.0}
    assert parse_gen_kwargs("temperature=0.6, top_p=0.95,seed=3") == {"temperature": 0.6, "top_p": 0.95, "seed": 3}
    assert parse_gen_kwargs('stop=["a,b", "c"]') == {"stop": ("a,b", "c")}
    assert parse_gen_kwargs("until=###") == {"stop": ("###",)}
    assert parse_gen_kwargs("") == {}


def test_progress_lines_without_a_terminal(cli):
    r = cli("run", "--tasks", "toy/upper", "--backend", "echo", "-B", "delay=0.4", "--run-id", "pl",
            env={"EVALSUITE_PROGRESS_INTERVAL": "0.3"})
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("evalsuite: generating")]
    assert len(lines) >= 2
    assert "/4 requests" in lines[0] and "ETA" in lines[0] and "prompt" in lines[0] and "generated" in lines[0]
    assert lines[-1].startswith("evalsuite: generating 4/4 requests") and "toy/upper" in lines[-1]
    quiet = cli("run", "--tasks", "toy/upper", "--backend", "echo", "-B", "delay=0.4", "--run-id", "pl2",
                "--no-progress", env={"EVALSUITE_PROGRESS_INTERVAL": "0.3"})
    assert "evalsuite: generating" not in quiet.stderr


def test_eta_comes_from_completed_requests(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("evalsuite.progress.time.perf_counter", lambda: clock[0])
    p = Progress("off")
    p.grow(16)
    assert p.eta() is None  # nothing finished: no guess
    clock[0] += 70.0
    for _ in range(8):  # one batch of 8 finished after 70 s
        p.advance("longbench/hotpotqa", Generation("x", "stop", prompt_tokens=1000, completion_tokens=10))
    assert p.eta() == pytest.approx(70.0)
    assert "prompt 114 tok/s, generated 1.1 tok/s" in p.line()
    assert "(last: longbench/hotpotqa)" in p.line()


def test_backend_and_judge_option_typos_get_did_you_mean(cli):
    r = cli("run", "--tasks", "toy/addition", "--backend", "replay", "-B", "fiel=x.jsonl")
    assert r.returncode == 2 and "did you mean 'file'" in r.stderr
    r = cli("run", "--tasks", "toy/addition", "--backend", "gold", "--judge-backend", "echo", "-J", "txt=yes")
    assert r.returncode == 2 and "did you mean 'text'" in r.stderr
