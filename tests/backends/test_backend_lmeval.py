"""The ``lmeval`` backend: lm-evaluation-harness models through ``generate_until``, offline.

lm-eval's own ``hf`` model on the tiny local Llamas (real SmolLM2 tokenizer and chat template) must
answer exactly what evalsuite's ``hf`` backend answers for the same requests: that proves the chat
template, prefill, raw-text and generation-parameter mapping. ``chain_llama_dir`` always says
"Hello world" then EOS, for exact stop strings and finish reasons.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("lm_eval")

from conftest import REPO, SHARED  # noqa: E402

from evalsuite.backends.hf import HFBackend  # noqa: E402
from evalsuite.backends.lmeval import (  # noqa: E402
    LMEvalBackend, is_secret_key, redact_model_args, resolve_secrets, split_model_args)
from evalsuite.errors import UserError  # noqa: E402
from evalsuite.tokenizer import render_request, request_ids  # noqa: E402
from evalsuite.types import GenParams, Message, Request  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def req(prompt, max_tokens=8, i=0, chat=True, ids=None, **params) -> Request:
    if isinstance(prompt, list):
        prompt = tuple(prompt)
    return Request(task="t", sample_id=f"s{i}", index=i, prompt=prompt,
                   params=GenParams(max_tokens=max_tokens, **params), use_chat_template=chat,
                   prompt_ids=tuple(ids) if ids is not None else None)


def hf_args(folder) -> str:
    return f"pretrained={folder},dtype=float32,device=cpu"


@pytest.fixture(scope="module")
def lme(tiny_llama_dir):
    b = LMEvalBackend(model="hf", model_args=hf_args(tiny_llama_dir), batch_size="4", threads="1")
    yield b
    b.close()


@pytest.fixture(scope="module")
def hfb(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), threads="1", batch_size="4")
    yield b
    b.close()


@pytest.fixture(scope="module")
def chain(chain_llama_dir):
    b = LMEvalBackend(model="hf", model_args=hf_args(chain_llama_dir), threads="1")
    yield b
    b.close()


MIXED = [
    req([Message("system", "Be terse."), Message("user", "What is the capital of France?")], i=0),
    req("Tell me about cats.", i=1),                                        # text prompt, chat template
    req("Once upon a time, in a small village", i=2, chat=False),          # raw text, no template
    req([Message("user", "What is 2+2?"), Message("assistant", "The answer is")], i=3),  # prefill
    req("Why is the sky blue? Explain in detail, please. " * 6, i=4, max_tokens=5),
]


# --- equivalence with evalsuite's own hf backend -------------------------------------------------------

def test_outputs_equal_the_hf_backend(lme, hfb):
    ours, theirs = lme.generate(MIXED), hfb.generate(MIXED)
    assert all(g.ok for g in ours), [g.error for g in ours]
    assert [g.text for g in ours] == [g.text for g in theirs]
    assert len({g.text for g in ours}) == len(MIXED)  # varied answers: equal lists really compare
    assert [g.prompt_tokens for g in ours] == [g.prompt_tokens for g in theirs]
    assert [g.finish_reason for g in ours] == ["length"] * len(MIXED)


def test_chat_rendering_equals_the_hf_backend(lme, hfb):
    for r in MIXED:
        assert render_request(lme.tokenizer, r) == render_request(hfb.tokenizer, r)
        assert request_ids(lme.tokenizer, r) == request_ids(hfb.tokenizer, r)
    prefill = render_request(lme.tokenizer, MIXED[3])
    assert prefill.endswith("<|im_start|>assistant\nThe answer is")


def test_what_lm_eval_receives(lme, monkeypatch):
    seen = []
    real = lme.lm.generate_until

    def spy(instances, **kw):
        seen.extend(instances)
        return real(instances, **kw)

    monkeypatch.setattr(lme.lm, "generate_until", spy)
    lme.generate([MIXED[2], req("hi", i=1, max_tokens=3, stop=("\n", "."), temperature=0.7, top_p=0.9, seed=5)])
    (ctx0, kw0), (ctx1, kw1) = seen[0].args, seen[1].args
    assert ctx0 == "Once upon a time, in a small village"  # raw text stays raw
    assert kw0 == {"until": [], "max_gen_toks": 8, "do_sample": False, "temperature": 0.0}
    assert ctx1.startswith("<|im_start|>") and ctx1.endswith("<|im_start|>assistant\n")
    assert kw1 == {"until": ["\n", "."], "max_gen_toks": 3, "do_sample": True, "temperature": 0.7, "top_p": 0.9}
    assert seen[0].request_type == "generate_until"


def test_sampling_is_seeded(lme):
    reqs = [req(p, max_tokens=8, i=i, temperature=1.0, top_p=0.95, seed=7) for i, p in enumerate(["a", "b"])]
    a, b = lme.generate(reqs), lme.generate(reqs)
    assert [g.text for g in a] == [g.text for g in b]
    assert lme.seed_mode == "global"
    other = lme.generate([req(p, max_tokens=8, i=i, temperature=1.0, seed=8) for i, p in enumerate(["a", "b"])])
    assert [g.text for g in other] != [g.text for g in a]


def test_truncated_prompt_ids_are_honoured(lme, hfb):
    ids = request_ids(hfb.tokenizer, MIXED[1])[-12:]
    a = lme.generate([req("ignored text", ids=ids)])[0]
    b = hfb.generate([req("other ignored text", ids=ids)])[0]
    assert a.ok and a.text == b.text and a.prompt_tokens == 12


# --- stop strings, finish reasons, limits (chain model: "Hello world" + EOS) -------------------------

def test_stop_strings_and_finish_reasons(chain):
    out = chain.generate([req("Say something.", max_tokens=8),
                          req("a", i=1, max_tokens=8, stop=(" world",)),
                          req("b", i=2, max_tokens=8, stop=("lo",)),
                          req("c", i=3, max_tokens=1),
                          req("Hello", i=4, chat=False, max_tokens=8)])
    assert [(g.text, g.finish_reason) for g in out] == [
        ("Hello world", "stop"), ("Hello", "stop"), ("Hel", "stop"), ("Hello", "length"), (" world", "stop")]
    assert out[0].completion_tokens == 2 and out[3].completion_tokens == 1


def test_context_limit_caps_generation_instead_of_cutting_the_prompt(chain_llama_dir):
    b = LMEvalBackend(model="hf", model_args=hf_args(chain_llama_dir), max_model_len="40", threads="1")
    try:
        out = b.generate([req("word " * 100, max_tokens=4), req("y", i=1, ids=[5] * 39, max_tokens=8)])
        assert not out[0].ok and "max_model_len is 40" in out[0].error
        assert (out[1].text, out[1].finish_reason) == ("Hello", "length")
    finally:
        b.close()


def test_a_failing_call_fails_its_chunk_only(chain, monkeypatch):
    calls = []
    real = chain.lm.generate_until

    def flaky(instances, **kw):
        calls.append(len(instances))
        if len(calls) == 1:
            raise RuntimeError("server fell over")
        return real(instances, **kw)

    monkeypatch.setattr(chain.lm, "generate_until", flaky)
    monkeypatch.setattr(chain, "batch_size", 2)
    out = dict(chain.generate_iter([req("a", i=0), req("b", i=1), req("c", i=2)]))
    assert calls == [2, 1]
    assert [out[i].ok for i in range(3)] == [False, False, True]
    assert "server fell over" in out[0].error and out[2].text == "Hello world"


# --- identity, description, secrets -------------------------------------------------------------------

def test_identity_and_describe(lme, tiny_llama_dir):
    assert lme.id.startswith("lmeval:hf:") and "@fp-" in lme.id
    d = lme.describe()
    assert d["lm_eval"] == "0.4.13" or d["lm_eval"].startswith("0.4.")
    assert d["lm_eval_model"] == "hf" and d["model_args"] == hf_args(tiny_llama_dir)
    assert d["tokenizer_sha256"] and d["chat_template_sha256"] and d["max_model_len"] == 8192
    assert d["lm_eval_class"] == "lm_eval.models.huggingface.HFLM"


def test_secret_redaction_unit():
    assert is_secret_key("api_key") and is_secret_key("auth_token") and is_secret_key("PASSWORD")
    assert is_secret_key("token") and is_secret_key("header")
    for plain in ("tokenizer", "tokenizer_backend", "tokenized_requests", "add_bos_token", "think_end_token",
                  "max_gen_toks", "pretrained", "base_url"):
        assert not is_secret_key(plain), plain
    assert redact_model_args("model=m,api_key=sk-abc,base_url=http://x/v1,tokenizer=t") == \
        "model=m,api_key=***,base_url=http://x/v1,tokenizer=t"
    assert redact_model_args("foo=sk-live-123,auth_token=env:MY_TOKEN") == "foo=***,auth_token=env:MY_TOKEN"
    with pytest.raises(UserError, match="env:VARIABLE"):
        resolve_secrets(split_model_args("model=m,api_key=sk-abc"))
    with pytest.raises(UserError, match=r"\$NOPE_NOT_SET is not set"):
        resolve_secrets(split_model_args("auth_token=env:NOPE_NOT_SET"))


@pytest.fixture(scope="module")
def recorder_model():
    """A custom lm-eval model (registered like any plugin model) that records its arguments."""
    from lm_eval.api.model import LM
    from lm_eval.api.registry import model_registry, register_model

    name = "evalsuite-test-recorder"
    if name not in model_registry:
        @register_model(name)
        class Recorder(LM):
            last: dict = {}

            def __init__(self, pretrained=None, auth_token=None, batch_size=1, **kw):
                super().__init__()
                type(self).last = {"pretrained": pretrained, "auth_token": auth_token, "batch_size": batch_size}
                self.seen = []

            def generate_until(self, requests, disable_tqdm=False):
                self.seen.extend(r.args for r in requests)
                return [f"echo:{r.args[0][-5:]}" for r in requests]

            def loglikelihood(self, requests):
                raise NotImplementedError

            def loglikelihood_rolling(self, requests):
                raise NotImplementedError

        @register_model("evalsuite-test-scorer")
        class ScorerOnly(Recorder):
            def generate_until(self, requests, disable_tqdm=False):
                raise NotImplementedError("no generation")
    return name


def test_secrets_come_from_the_environment_and_never_reach_the_description(recorder_model, monkeypatch):
    monkeypatch.setenv("FAKE_AUTH", "sk-test-0123456789")
    b = LMEvalBackend("my-model", model=recorder_model, model_args="auth_token=env:FAKE_AUTH", batch_size="3")
    cls = type(b.lm)
    assert cls.last == {"pretrained": "my-model", "auth_token": "sk-test-0123456789", "batch_size": 3}
    text = json.dumps(b.describe()) + b.id
    assert "sk-test" not in text and "env:FAKE_AUTH" in text
    assert b.tokenizer is None and b.max_model_len is None
    g = b.generate([req("plain prompt", chat=False, temperature=0.5, seed=3)])[0]
    assert (g.text, g.finish_reason, g.prompt_tokens) == ("echo:rompt", "stop", None)
    assert b.lm.seen[-1][1]["seed"] == 3 and b.seed_mode == "kwarg"
    with pytest.raises(UserError, match="looks like a credential"):
        LMEvalBackend(model=recorder_model, model_args="auth_token=sk-test-0123456789")
    with pytest.raises(UserError, match="disagree"):
        LMEvalBackend("a", model=recorder_model, model_args="pretrained=b")
    # scheduling arguments do not change the identity; the model does
    same = LMEvalBackend("my-model", model=recorder_model, model_args="auth_token=env:FAKE_AUTH,batch_size=2")
    other = LMEvalBackend("my-model-2", model=recorder_model, model_args="auth_token=env:FAKE_AUTH")
    assert same.id == b.id != other.id


# --- lm-eval's API models against a fake OpenAI-compatible server ------------------------------------

def test_local_chat_completions_sends_our_messages_and_params(fake_openai):
    pytest.importorskip("tenacity")  # lm-eval[api]
    server = fake_openai()
    b = LMEvalBackend(model="local-chat-completions", batch_size="4",
                      model_args=f"model=test-model,base_url={server.url}/chat/completions,max_retries=1")
    assert b.tokenizer is None and b.max_model_len is None and b.seed_mode == "kwarg"
    prefill = req([Message("user", "q"), Message("assistant", "The answer is")], i=0, max_tokens=5)
    out = b.generate([prefill, req("hi", i=1, max_tokens=7, stop=("\n",), temperature=0.5, top_p=0.9, seed=11),
                      req("raw", i=2, chat=False)])
    assert [(g.text, g.finish_reason) for g in out[:2]] == [("echo:The answer is", "stop"), ("echo:hi", "stop")]
    assert not out[2].ok and "chat messages only" in out[2].error  # fails alone, before any call
    bodies = [c.body for c in server.posts()]
    assert bodies[0]["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is"}]
    assert (bodies[0]["max_tokens"], bodies[0]["temperature"], bodies[0]["stop"]) == (5, 0.0, [])
    assert (bodies[1]["max_tokens"], bodies[1]["temperature"], bodies[1]["top_p"], bodies[1]["seed"],
            bodies[1]["stop"]) == (7, 0.5, 0.9, 11, ["\n"])


def test_local_completions_renders_the_chat_template_locally(fake_openai, tiny_llama_dir, hfb):
    pytest.importorskip("tenacity")
    server = fake_openai()
    # batch_size=1: the fake server answers one prompt per call (a real one takes a list)
    b = LMEvalBackend(model="local-completions", batch_size="1", model_args=(
        f"model=test-model,base_url={server.url}/completions,tokenizer={tiny_llama_dir},max_retries=1,"
        "max_length=4096"))
    assert b.tokenizer is not None and b.max_model_len
    out = b.generate([MIXED[3], MIXED[2]])
    assert all(g.ok for g in out), [g.error for g in out]
    sent = [c.body["prompt"][0] for c in server.posts()]  # lm-eval sends token ids
    assert sent == [request_ids(hfb.tokenizer, MIXED[3]), request_ids(hfb.tokenizer, MIXED[2])]
    assert out[0].prompt_tokens == len(sent[0])


def test_a_chat_prompt_without_a_local_template_fails_clearly(fake_openai):
    pytest.importorskip("tenacity")
    server = fake_openai()
    b = LMEvalBackend(model="local-completions", model_args=(
        f"model=test-model,base_url={server.url}/completions,tokenizer_backend=None,tokenized_requests=False"))
    out = b.generate([MIXED[0], MIXED[2]])
    assert not out[0].ok and "no local chat template" in out[0].error
    assert out[1].ok and [c.body["prompt"] for c in server.posts()] == [["Once upon a time, in a small village"]]


# --- errors a user can make -----------------------------------------------------------------------------

def test_user_errors(recorder_model, monkeypatch):
    with pytest.raises(UserError, match="needs -B model="):
        LMEvalBackend(model_args="pretrained=x")
    with pytest.raises(UserError, match="did you mean.*hf"):
        LMEvalBackend(model="hff")
    with pytest.raises(UserError, match="does not implement generate_until"):
        LMEvalBackend(model="evalsuite-test-scorer")
    with pytest.raises(UserError, match="hub is offline.*local folder"):
        LMEvalBackend(model="hf", model_args="pretrained=SomeOrg/some-model-7b,device=cpu")
    with pytest.raises(UserError, match="does not exist"):
        LMEvalBackend(model="hf", model_args="pretrained=./no/such/folder")
    with pytest.raises(UserError, match="unknown option"):
        LMEvalBackend(model="hf", colour="red")
    with pytest.raises(UserError, match="cannot import plugin module"):
        LMEvalBackend(model="hf", plugins="no_such_module_xyz")
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'evalsuite\[lmeval\]'"):
        LMEvalBackend(model="hf")


def test_module_imports_without_lm_eval_or_torch():
    code = ("import sys, evalsuite.backends.lmeval; "
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registered_under_its_name():
    from evalsuite.registry import default_registry

    assert default_registry().backend("lmeval") is LMEvalBackend


# --- the CLI, end to end on a real task ---------------------------------------------------------------------

ESSAYS = SHARED / "data" / "ruler" / "essays" / "PaulGrahamEssays"


def test_cli_run_on_ruler_matches_the_hf_backend(cli, tmp_path, tiny_llama_dir, hfb):
    r = cli("run", "--tasks", "ruler/niah_single_1", "--backend", "lmeval", "-B", "model=hf",
            "-B", f"model_args={hf_args(tiny_llama_dir)}", "-B", "threads=1", "-B", "batch_size=2",
            "-T", "length=512", "-T", f"data_dir={ESSAYS}", "--limit", "3", "--max-tokens", "6",
            "--run-id", "lme", "--log-prompts", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ruler/niah_single_1" in json.loads(r.stdout)["scores"]
    run = tmp_path / "results" / "lme"
    manifest = json.loads((run / "manifest.json").read_text())
    desc = manifest["backend"]["describe"]
    assert manifest["backend"]["id"].startswith("lmeval:hf:")
    assert desc["lm_eval_model"] == "hf" and desc["lm_eval"].startswith("0.4") and desc["tokenizer_sha256"]
    task = run / "ruler" / "niah_single_1"
    rows = {json.loads(x)["sample_id"]: json.loads(x) for x in (task / "samples.jsonl").read_text().splitlines()}
    prompts = [json.loads(x) for x in (task / "prompts.jsonl").read_text().splitlines()]
    assert len(rows) == len(prompts) == 3
    # RULER sized the prompts with the tokenizer the backend exposed; our hf backend answers the same.
    reqs = [req([Message.from_dict(m) for m in p["prompt"]], max_tokens=6, i=i) for i, p in enumerate(prompts)]
    theirs = hfb.generate(reqs)
    for p, g in zip(prompts, theirs, strict=True):
        row = rows[p["sample_id"]]
        assert row["generation"]["text"] == g.text and row["prompt_tokens"] == g.prompt_tokens <= 512


LONGBENCH = REPO / "tests" / "fixtures" / "longbench"


def test_cli_run_through_an_api_model_keeps_secrets_out_of_the_results(cli, tmp_path, fake_openai):
    pytest.importorskip("tenacity")
    server = fake_openai()
    secret = "sk-test-do-not-store-0123456789"
    args = ["run", "--tasks", "longbench/hotpotqa", "--backend", "lmeval", "-B", "model=local-chat-completions",
            "-T", f"data_dir={LONGBENCH}", "-T", "max_length=0", "--limit", "2", "--run-id", "api", "--json", "--no-progress"]
    r = cli(*args, "-B", f"model_args=model=test-model,base_url={server.url}/chat/completions,"
            "auth_token=env:EVALSUITE_TEST_TOKEN", env={"EVALSUITE_TEST_TOKEN": secret})
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(server.posts()) == 2 and "longbench/hotpotqa" in json.loads(r.stdout)["scores"]
    manifest = json.loads((tmp_path / "results" / "api" / "manifest.json").read_text())
    assert manifest["backend"]["describe"]["model_args"].endswith("auth_token=env:EVALSUITE_TEST_TOKEN")
    for f in (tmp_path / "results").rglob("*"):
        assert not f.is_file() or secret not in f.read_text(errors="replace"), f
    # a literal credential on the command line is refused before anything is written
    r = cli(*args[:-4], "--run-id", "api2", "-B",
            f"model_args=model=test-model,base_url={server.url}/chat/completions,auth_token={secret}")
    assert r.returncode == 2 and "env:VARIABLE" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "results" / "api2").exists()



def test_as_a_judge_backend(recorder_model):
    # --judge-backend lmeval -J model=<name>: --judge-model goes positionally, as --model does for runs
    from evalsuite.judge import JudgeConfig, JudgeProvider
    from evalsuite.registry import default_registry

    provider = JudgeProvider(JudgeConfig(backend="lmeval", model="judge-m", options={"model": recorder_model}),
                             default_registry())
    b = provider.backend()
    assert isinstance(b, LMEvalBackend) and type(b.lm).last["pretrained"] == "judge-m"


# --- token stops, minimum length and re-encoded prompts -------------------------------------------------

def test_token_stops_and_min_tokens_reach_hflm_and_match_the_hf_backend(chain, chain_llama_dir, monkeypatch):
    ref = HFBackend(str(chain_llama_dir), threads="1")
    try:
        hello, world = (ref.tokenizer.encode(t)[0] for t in ("Hello", " world"))
        reqs = [req("a", stop_token_ids=(world,)), req("b", i=1, stop_token_ids=(hello,), min_tokens=1),
                req("Hello", i=2, chat=False, min_tokens=2)]
        seen = []
        real = chain.lm.generate_until
        monkeypatch.setattr(chain.lm, "generate_until", lambda inst, **kw: seen.extend(inst) or real(inst, **kw))
        ours, theirs = chain.generate(reqs), ref.generate(reqs)
    finally:
        ref.close()
    # same answers as the hf backend, the stop token's text left out ("Hello", not "Hello world")
    assert [g.text for g in ours] == [g.text for g in theirs] and ours[0].text == "Hello"
    kw = [i.args[1] for i in seen]
    assert kw[0]["eos_token_id"] == sorted({2, world}) and "min_new_tokens" not in kw[0]
    assert kw[1]["eos_token_id"] == sorted({2, hello}) and kw[1]["min_new_tokens"] == 1
    assert kw[2]["eos_token_id"] == [2] and kw[2]["min_new_tokens"] == 2


def test_token_stops_reach_an_api_model_as_vllm_fields(fake_openai):
    pytest.importorskip("tenacity")
    server = fake_openai()
    b = LMEvalBackend(model="local-chat-completions", batch_size="4",
                      model_args=f"model=test-model,base_url={server.url}/chat/completions,max_retries=1")
    out = b.generate([req("hi", stop_token_ids=(198,), min_tokens=1), req("plain", i=1)])
    assert all(g.ok for g in out)
    bodies = {c.prompt_text: c.body for c in server.posts()}
    assert bodies["hi"]["stop_token_ids"] == [198] and bodies["hi"]["min_tokens"] == 1
    assert "stop_token_ids" not in bodies["plain"] and "min_tokens" not in bodies["plain"]


def test_a_reencoded_prompt_that_differs_is_flagged(lme, hfb):
    tok = hfb.tokenizer
    # "Hel" + "lo" as two tokens decodes to "Hello", which the model re-encodes as one token
    split = tok.encode("Say Hel") + tok.encode("lo there")
    assert tok.encode(tok.decode(split)) != split
    same = request_ids(hfb.tokenizer, MIXED[1])[-12:]
    a, b = lme.generate([req("x", ids=split), req("y", i=1, ids=same)])
    assert a.ok and a.flags == ("prompt_reencoded",) and a.prompt_tokens == len(tok.encode(tok.decode(split)))
    assert b.ok and b.flags == () and b.prompt_tokens == 12
    # the hf backend takes the ids as they are: nothing to flag
    assert hfb.generate([req("x", ids=split)])[0].flags == ()
