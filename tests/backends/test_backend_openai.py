"""The openai backend against a fake OpenAI-compatible server on 127.0.0.1 (fixture ``fake_openai``).

Everything is offline: each test starts its own server on port 0 and stops it at teardown.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import sys
import threading
import time

import pytest

from evalsuite.backends.openai import RETRY_HINT, OpenAIBackend
from evalsuite.errors import BackendUnavailable, UserError
from evalsuite.tokenizer import load_tokenizer, request_ids
from evalsuite.types import ContentPart, GenParams, Generation, Message, Request

from openai_fake import FakeReply  # the fake_openai fixture comes through conftest.py

MODEL = "test-model"
KEY = "sk-test-SECRET-0123456789"


def make(server, **opts) -> OpenAIBackend:
    """A backend for ``server``, options passed as the strings ``-B key=value`` would give."""
    opts.setdefault("base_url", server.url)
    return OpenAIBackend(model=MODEL, **{k: str(v) for k, v in opts.items()})


def req(prompt, i: int = 0, max_tokens: int = 16, stop=(), **kw) -> Request:
    return Request(task="t", sample_id=f"s{i}", index=i, prompt=prompt,
                   params=GenParams(max_tokens=max_tokens, stop=tuple(stop)), **kw)


def chat(text: str, i: int = 0, **kw) -> Request:
    return req((Message("user", text),), i, **kw)


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("evalsuite-openai")]


# -- happy paths -----------------------------------------------------------------------------------

def test_chat_order_preserved_under_concurrency_and_body_fields(fake_openai):
    def jittery(call):
        if call.method != "POST":
            return None
        reply = server.default_reply(call)
        # Deterministic per prompt, so later prompts often finish before earlier ones.
        reply.delay = random.Random(call.prompt_text).uniform(0, 0.08)
        return reply

    server = fake_openai(jittery)
    b = make(server, concurrency=8)
    reqs = [chat(f"question {i}", i) for i in range(40)]
    reqs[3] = chat("question 3", 3, stop=("\n", "END"))
    gens = b.generate(reqs)

    assert [g.text for g in gens] == [f"echo:question {i}" for i in range(40)]
    assert all(g.ok and g.finish_reason == "stop" for g in gens)
    assert gens[0].prompt_tokens == 7 and gens[0].completion_tokens == 3 and gens[0].latency_s > 0
    assert 1 < server.max_in_flight <= 8
    bodies = {c.prompt_text: c.body for c in server.posts()}
    body = bodies["question 0"]
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "question 0"}],
                    "max_tokens": 16, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert "stop" not in body and "continue_final_message" not in body
    assert bodies["question 3"]["stop"] == ["\n", "END"]
    assert all(c.path == "/v1/chat/completions" for c in server.posts())
    assert not worker_threads()


def test_generate_iter_yields_each_position_once_as_it_finishes(fake_openai):
    # Request 0 is slow, so it is not the first to arrive: the runner must persist by position.
    server = fake_openai(lambda c: FakeReply(body=server.default_reply(c).body, delay=0.4)
                         if c.method == "POST" and c.prompt_text == "slow" else None)
    b = make(server, concurrency=4)
    got = list(b.generate_iter([chat("slow", 0), chat("a", 1), chat("b", 2)]))
    assert sorted(p for p, _ in got) == [0, 1, 2]
    assert got[-1][0] == 0
    assert dict(got)[0].text == "echo:slow"
    assert list(b.generate_iter([])) == []


def test_finish_reason_mapping(fake_openai):
    reasons = {"a": "length", "b": "eos", "c": None, "d": "stop"}

    def respond(call):
        if call.method != "POST":
            return None
        reply = server.default_reply(call)
        reply.body["choices"][0]["finish_reason"] = reasons[call.prompt_text]
        return reply

    server = fake_openai(respond)
    gens = make(server).generate([chat(k, i) for i, k in enumerate(reasons)])
    assert [g.finish_reason for g in gens] == ["length", "stop", "stop", "stop"]


def test_split_out_reasoning_is_put_back_in_think_tags(fake_openai):
    answers = {"done": ({"content": "42", "reasoning_content": "6*7"}, "stop"),
               "cut": ({"content": None, "reasoning": "let me think"}, "length"),
               "plain": ({"content": None}, "stop")}

    def respond(call):
        if call.method != "POST":
            return None
        message, finish = answers[call.prompt_text]
        return FakeReply(body={"choices": [{"message": {"role": "assistant", **message}, "finish_reason": finish}]})

    server = fake_openai(respond)
    gens = make(server).generate([chat(k, i) for i, k in enumerate(answers)])
    assert [(g.text, g.finish_reason) for g in gens] == [
        ("<think>6*7</think>42", "stop"), ("<think>let me think", "length"), ("", "stop")]
    assert gens[0].prompt_tokens is None  # no usage in the answer


def test_completions_routing_raw_text_and_prompt_ids(fake_openai):
    server = fake_openai()
    b = make(server)
    gens = b.generate([req("raw text", 0, use_chat_template=False),
                       req("ignored text", 1, prompt_ids=(5, 6, 7)),
                       chat("templated", 2)])
    assert [g.text for g in gens] == ["echo:raw text", "echo:[5, 6, 7]", "echo:templated"]
    paths = {c.prompt_text: c.path for c in server.posts()}
    assert paths == {"raw text": "/v1/completions", "[5, 6, 7]": "/v1/completions",
                     "templated": "/v1/chat/completions"}
    prompts = sorted(json.dumps(c.body["prompt"]) for c in server.posts() if "prompt" in c.body)
    assert prompts == ['"raw text"', "[5, 6, 7]"]
    assert all(c.body["max_tokens"] == 16 for c in server.posts())


def test_completions_endpoint_renders_chat_with_tokenizer(fake_openai, word_tokenizer_dir):
    server = fake_openai()
    r = chat("Hello world", 0)
    with pytest.raises(UserError, match="tokenizer"):
        make(server, endpoint="completions").generate([r])
    b = make(server, endpoint="completions", tokenizer=word_tokenizer_dir)
    assert b.generate([r])[0].ok
    tok = load_tokenizer(word_tokenizer_dir)
    (call,) = server.posts()
    assert call.path == "/v1/completions" and call.body["prompt"] == request_ids(tok, r)
    d = b.describe()
    assert d["tokenizer_sha256"] == tok.tokenizer_hash and ":tok=" in b.id
    assert b.tokenizer is not None


def test_prefill_flags(fake_openai):
    server = fake_openai()
    prefill = req((Message("user", "Find the key."), Message("assistant", "The answer is")), 0)
    assert make(server).generate([prefill])[0].ok
    body = server.posts()[0].body
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "The answer is"}


def test_image_parts_are_encoded(fake_openai, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (tmp_path / "pic.png").write_bytes(png)
    (tmp_path / "noext").write_bytes(png)
    server = fake_openai()
    parts = (ContentPart("text", text="look"), ContentPart("image", image=str(tmp_path / "pic.png")),
             ContentPart("image", image=str(tmp_path / "noext")),
             ContentPart("image", image="https://example.org/x.jpg"))
    missing = (ContentPart("text", text="gone"), ContentPart("image", image=str(tmp_path / "missing.png")))
    gens = make(server).generate([req((Message("user", parts),), 0), req((Message("user", missing),), 1)])
    assert gens[0].ok
    assert not gens[1].ok and "cannot read image" in gens[1].error and "missing.png" in gens[1].error
    (call,) = server.posts()  # the unreadable image never reached the server
    content = call.body["messages"][0]["content"]
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert content == [{"type": "text", "text": "look"},
                       {"type": "image_url", "image_url": {"url": data_uri}},
                       {"type": "image_url", "image_url": {"url": data_uri}},
                       {"type": "image_url", "image_url": {"url": "https://example.org/x.jpg"}}]


def test_api_key_is_sent_but_never_shown(fake_openai, monkeypatch):
    def respond(call):
        if call.method == "POST" and call.prompt_text == "deny":
            # A careless server that echoes the credential back in its error.
            return FakeReply(401, {"error": {"message": f"bad key {call.headers.get('authorization')}"}})
        return None

    server = fake_openai(respond)
    monkeypatch.setenv("MY_KEY", KEY)
    b = make(server, api_key_env="MY_KEY")
    gens = b.generate([chat("ok", 0), chat("deny", 1)])
    assert all(c.headers.get("authorization") == f"Bearer {KEY}" for c in server.calls)
    assert gens[0].ok and not gens[1].ok
    assert "HTTP 401" in gens[1].error and KEY not in gens[1].error and "***" in gens[1].error
    assert len(server.posts()) == 2  # 401 is not retried
    for text in (b.id, repr(b.describe()), repr(vars(b))):
        assert KEY not in text
    assert b.describe()["api_key_set"] is True

    with pytest.raises(UserError) as err:
        OpenAIBackend(model=MODEL, base_url=server.url, api_key=KEY)
    assert KEY not in str(err.value) and "api_key_env" in str(err.value)


def test_no_key_means_no_auth_header(fake_openai):
    server = fake_openai()
    make(server).generate([chat("x")])
    assert "authorization" not in server.posts()[0].headers


def test_extra_body_merged_and_reserved_keys_refused(fake_openai):
    server = fake_openai()
    plain = make(server)
    b = make(server, extra_body='{"top_k": -1, "chat_template_kwargs": {"enable_thinking": false}}')
    b.generate([chat("x")])
    body = server.posts()[0].body
    assert body["top_k"] == -1 and body["chat_template_kwargs"] == {"enable_thinking": False}
    assert b.id != plain.id and b.describe()["extra_body"]["top_k"] == -1
    with pytest.raises(UserError, match="temperature"):
        make(server, extra_body='{"temperature": 0.7}')
    with pytest.raises(UserError, match="JSON"):
        make(server, extra_body="{top_k: -1}")


def test_options_and_identity(fake_openai):
    server = fake_openai()
    with pytest.raises(UserError, match="--model"):
        OpenAIBackend(base_url=server.url)
    with pytest.raises(UserError, match="endpoint"):
        make(server, endpoint="responses")
    with pytest.raises(UserError, match="unknown option"):
        make(server, concurency=4)
    with pytest.raises(UserError, match="base_url"):
        make(server, base_url="127.0.0.1:8000/v1")
    b = make(server, base_url=server.url.replace("://", "://user:pw@") + "/")
    assert b.id == f"openai:{MODEL}:chat"  # the address is not part of the resume identity
    assert "pw" not in repr(b.describe())
    d = b.describe()
    assert d["server_model"] == {"id": MODEL, "root": MODEL, "owned_by": "fake", "max_model_len": 4096}
    assert b.max_model_len == 4096 and make(server, max_model_len=1024).max_model_len == 1024
    assert (d["concurrency"], d["timeout_s"], d["max_retries"]) == (8, 600.0, 7)
    assert b.batch_size >= 256 and b.sort_by_length is False


# -- failures --------------------------------------------------------------------------------------

def test_acceptance_chaos_every_request_answered_or_failed_clearly(fake_openai):
    """Seeded chaos: 429 (some with Retry-After: 0), 500, hangs past the timeout, malformed JSON, answers
    missing choices. Outcomes depend on (prompt, attempt number) only, so thread timing cannot change them."""
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def chaos(call):
        if call.method != "POST":
            return None
        key = call.prompt_text
        with lock:
            attempts[key] = n = attempts.get(key, 0) + 1
        if key == "always-fails":
            return FakeReply(500, {"error": {"message": "engine crashed"}})
        if key == "never-right":  # a different failure on every attempt
            return [FakeReply(429, "", {"Retry-After": "0"}), FakeReply(delay=1.5), FakeReply(200, "{oops"),
                    FakeReply(502, "bad gateway")][(n - 1) % 4]
        r = random.Random(f"7:{key}:{n}").random()
        if r < 0.12:
            return FakeReply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if r < 0.22:
            return FakeReply(429, "rate limited")
        if r < 0.34:
            return FakeReply(500, "Internal Server Error")
        if r < 0.42:
            return FakeReply(200, body=None, delay=1.5)  # hangs past the 0.3 s timeout
        if r < 0.50:
            return FakeReply(200, '{"choices": [{"message": ')
        if r < 0.54:
            return FakeReply(200, {"object": "error", "message": "overloaded"})
        return None

    server = fake_openai(chaos)
    b = make(server, concurrency=8, timeout=0.3, backoff=0.01, max_retries=6)
    reqs = [chat(f"q{i}", i) for i in range(60)] + [chat("always-fails", 60), chat("never-right", 61)]
    t0 = time.perf_counter()
    gens = b.generate(reqs)
    elapsed = time.perf_counter() - t0

    assert len(gens) == len(reqs)
    for r, g in zip(reqs, gens, strict=True):
        if g.ok:
            assert g.text == f"echo:{r.messages()[-1].text}"
        else:
            assert g.error.startswith("gave up after 7 attempts (") and "last error:" in g.error
    assert sum(g.ok for g in gens[:60]) >= 55
    bad = gens[60]
    assert not bad.ok and bad.finish_reason == "error" and bad.text == ""
    assert "gave up after 7 attempts (HTTP 500 x7); last error: HTTP 500: engine crashed" + RETRY_HINT == bad.error
    assert attempts["always-fails"] == 7  # max_retries + 1
    assert gens[61].error == ("gave up after 7 attempts (HTTP 429 x2, timeout x2, malformed JSON x2, HTTP 502); "
                              "last error: malformed response (not JSON): {oops" + RETRY_HINT)
    kinds = {k for k, n in attempts.items() if n > 1}
    assert len(kinds) > 20  # the chaos did make most requests retry
    assert elapsed < 10
    assert not worker_threads()


def test_timeout_message(fake_openai):
    server = fake_openai(lambda c: FakeReply(delay=2.0) if c.method == "POST" else None)
    t0 = time.perf_counter()
    (g,) = make(server, timeout=0.2, max_retries=1, backoff=0).generate([chat("x")])
    assert time.perf_counter() - t0 < 3  # two 0.2 s attempts; generous for a loaded 2-core machine
    assert g.error == "gave up after 2 attempts (timeout x2); last error: no answer within 0.2 s" + RETRY_HINT


def test_400_is_not_retried(fake_openai):
    msg = "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens."
    server = fake_openai(lambda c: FakeReply(400, {"object": "error", "message": msg, "code": 400})
                         if c.method == "POST" else None)
    (g,) = make(server, backoff=0).generate([chat("too long")])
    assert len(server.posts()) == 1
    assert g.error == f"HTTP 400 from /chat/completions: {msg}"


def test_long_error_bodies_are_cut(fake_openai):
    server = fake_openai(lambda c: FakeReply(404, "<html>" + "x" * 5000) if c.method == "POST" else None)
    (g,) = make(server).generate([chat("x")])
    assert g.error.startswith("HTTP 404 from /chat/completions: <html>xxx") and len(g.error) < 400


def test_retry_after_wins_over_backoff(fake_openai):
    seen: list[float] = []

    def respond(call):
        if call.method != "POST":
            return None
        seen.append(time.perf_counter())
        if len(seen) == 1:
            return FakeReply(429, "", {"Retry-After": "0"})
        if len(seen) == 2:
            return FakeReply(503, "", {"retry-after-ms": "300"})
        return None

    server = fake_openai(respond)
    (g,) = make(server, backoff=30).generate([chat("x")])  # 30 s backoff would blow the test timeout
    assert g.ok and len(seen) == 3
    assert seen[1] - seen[0] < 0.25 and seen[2] - seen[1] >= 0.29


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_backend_unavailable(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        OpenAIBackend(model=MODEL, base_url=f"http://127.0.0.1:{_free_port()}/v1")
    assert time.perf_counter() - t0 < 5  # milliseconds in practice


def test_server_gone_mid_run_is_backend_unavailable(fake_openai):
    server = fake_openai()
    b = make(server, concurrency=2, max_retries=1, backoff=0.01)
    assert b.generate([chat("before")])[0].ok
    server.close()
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="stopped accepting connections"):
        b.generate([chat(f"q{i}", i) for i in range(10)])
    assert time.perf_counter() - t0 < 3
    assert not worker_threads()


def test_preflight_401_and_missing_model(fake_openai, monkeypatch):
    server = fake_openai(lambda c: FakeReply(401, {"error": "unauthorized"}) if c.method == "GET" else None)
    with pytest.raises(BackendUnavailable, match=r"401.*\$OPENAI_API_KEY is not set"):
        make(server)
    other = fake_openai(models=("llama", "qwen"))
    with pytest.raises(BackendUnavailable, match="does not serve model 'test-model'.*llama, qwen"):
        make(other)
    b = make(other, check_model="false")
    assert b.generate([chat("x")])[0].ok and "server_model" not in b.describe()
    # A server without /models is fine: it says nothing about generation.
    bare = fake_openai(lambda c: FakeReply(404, "not found") if c.method == "GET" else None)
    assert make(bare).max_model_len is None


def test_preflight_that_hangs_does_not_block(fake_openai):
    server = fake_openai(lambda c: FakeReply(delay=3) if c.method == "GET" else None)
    t0 = time.perf_counter()
    b = make(server, timeout=0.3)
    assert time.perf_counter() - t0 < 2.5 and b.server_model is None
    assert b.generate([chat("x")])[0].ok


def test_early_close_cancels_in_flight_and_joins(fake_openai):
    server = fake_openai(lambda c: None if c.method == "GET" or c.prompt_text == "fast"
                         else FakeReply(delay=10))
    b = make(server, concurrency=4)
    it = b.generate_iter([chat("fast", 0)] + [chat(f"slow{i}", i + 1) for i in range(5)])
    pos, g = next(it)
    assert pos == 0 and g.ok
    t0 = time.perf_counter()
    it.close()
    assert time.perf_counter() - t0 < 3  # the slow answers would take 10 s
    assert not worker_threads()


def test_generate_works_inside_a_running_event_loop(fake_openai):
    import asyncio

    server = fake_openai()
    b = make(server)

    async def notebook_cell() -> list[Generation]:
        return b.generate([chat("x")])

    assert asyncio.run(notebook_cell())[0].text == "echo:x"


def test_import_is_light():
    code = "import sys, evalsuite.backends.openai; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_registered_as_openai():
    from evalsuite.registry import default_registry

    assert default_registry().backend("openai") is OpenAIBackend


def test_token_stops_and_min_tokens_are_sent_as_vllm_fields(fake_openai):
    server = fake_openai()
    b = make(server)
    p = GenParams(max_tokens=16, stop_token_ids=(198,), min_tokens=1)
    out = b.generate([Request(task="t", sample_id="a", index=0, prompt="Summary:", use_chat_template=False,
                              params=p), chat("plain", 1)])
    assert all(g.ok for g in out)
    bodies = {c.prompt_text: c.body for c in server.posts()}
    assert bodies["Summary:"]["stop_token_ids"] == [198] and bodies["Summary:"]["min_tokens"] == 1
    assert "stop_token_ids" not in bodies["plain"] and "min_tokens" not in bodies["plain"]
    with pytest.raises(UserError, match="min_tokens"):
        make(server, extra_body='{"min_tokens": 3}')


def test_a_server_refusing_token_fields_fails_that_request_with_a_hint(fake_openai):
    def strict(call):
        if call.method == "POST" and "stop_token_ids" in (call.body or {}):
            return FakeReply(400, {"error": {"message": "Unrecognized request argument supplied: stop_token_ids"}})
        return None

    server = fake_openai(strict)
    token_stop = Request(task="t", sample_id="a", index=0, prompt=(Message("user", "x"),),
                         params=GenParams(max_tokens=8, stop_token_ids=(198,)))
    out = make(server, backoff=0).generate([token_stop, chat("y", 1)])
    assert not out[0].ok and "Unrecognized request argument" in out[0].error
    assert "stop_token_ids/min_tokens" in out[0].error and "no fallback" in out[0].error
    assert out[1].ok
