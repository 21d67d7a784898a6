"""Records, registry, store, reasoning stripping, truncation and statistics."""

from __future__ import annotations

import json
import sys

import pytest

from evalsuite.errors import UserError
from evalsuite.reasoning import split_reasoning
from evalsuite.registry import Registry
from evalsuite.stats import bootstrap_ci, stderr
from evalsuite.store import ResultsStore
from evalsuite.tokenizer import load_tokenizer, render_request, request_ids
from evalsuite.truncation import Truncation
from evalsuite.types import GenParams, Generation, Message, Request

from conftest import PLUGIN_DIR


def test_genparams_require_explicit_max_tokens():
    with pytest.raises(TypeError):
        GenParams()  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        GenParams(max_tokens=0)
    p = GenParams(max_tokens=5, stop=["x"])
    assert p.stop == ("x",)
    assert GenParams.from_dict(p.to_dict()) == p


def test_request_roundtrip_and_key_depends_on_everything():
    r = Request("t", "s1", 0, (Message("user", "hi"), Message("assistant", "The answer is")),
                GenParams(max_tokens=4))
    assert Request.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    k = r.key("b1")
    assert k == Request.from_dict(r.to_dict()).key("b1")
    assert k != r.key("b2")
    from dataclasses import replace
    assert k != replace(r, params=GenParams(max_tokens=5)).key("b1")
    assert k != replace(r, prompt="hi").key("b1")
    assert k != replace(r, prompt_ids=(1, 2)).key("b1")


def test_registry_did_you_mean_and_groups(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    reg = Registry()
    assert reg.expand_tasks(["toy"]) == ["toy/addition", "toy/upper"]
    assert reg.expand_tasks(["toy/upper", "toy"]) == ["toy/upper", "toy/addition"]
    with pytest.raises(UserError, match="did you mean 'toy/addition'"):
        reg.task("toy/adition")
    with pytest.raises(UserError, match="did you mean 'echo'"):
        reg.backend("ecoh")
    # the plugin's backend resolves through its entry point, like the built-ins
    assert reg.backend("toy-reverse").__name__ == "ReverseBackend"
    assert reg.backend("gold").__name__ == "GoldBackend"


def test_registry_isolates_broken_plugins(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.backends]\nbroken = no_such_module:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    assert reg.backend("echo")  # others still load
    with pytest.raises(UserError, match="could not be loaded: ModuleNotFoundError"):
        reg.backend("broken")


def test_registry_sees_a_plugin_path_added_after_its_first_lookup(tmp_path, monkeypatch):
    """Entry points are read once per import path (not once per lookup), and read again when it changes."""
    reg = Registry()
    assert reg.backend("echo")
    with pytest.raises(UserError, match="unknown backend|did you mean"):
        reg.backend("late-plugin")
    dist = tmp_path / "late_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: late-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.backends]\nlate-plugin = late_plugin_mod:Late\n")
    (tmp_path / "late_plugin_mod.py").write_text("class Late:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reg.backend("late-plugin").__name__ == "Late"


def test_store_repairs_torn_tail(tmp_path):
    st = ResultsStore(tmp_path, "r1")
    row = {"key": "k1", "generation": {"finish_reason": "stop"}}
    st.append("a/b", [row])
    path = st.task_dir("a/b") / "samples.jsonl"
    with open(path, "a") as f:
        f.write('{"key": "k2", "genera')  # a crash mid-write
    assert [r["key"] for r in st.rows("a/b")] == ["k1"]
    st.append("a/b", [{"key": "k3", "generation": {"finish_reason": "stop"}}])
    assert [r["key"] for r in st.rows("a/b")] == ["k1", "k3"]
    assert path.read_text().count("\n") == 2


def test_store_latest_rows_prefers_answers_over_errors(tmp_path):
    st = ResultsStore(tmp_path, "r1")
    err = {"key": "k", "generation": {"finish_reason": "error"}}
    ok = {"key": "k", "generation": {"finish_reason": "stop"}}
    st.append("t", [err, ok, err])
    assert st.latest_rows("t")["k"]["generation"]["finish_reason"] == "stop"
    assert st.done_keys("t") == {"k"}


def test_bad_run_id():
    with pytest.raises(UserError):
        ResultsStore("results", "../escape")


@pytest.mark.parametrize("text,answer,unterminated", [
    ("<think>hmm</think> 42", "42", False),
    ("<think>a</think>x</think>y", "y", False),
    ("<think>never ends", "", True),
    ("plain", "plain", False),
])
def test_split_reasoning(text, answer, unterminated):
    a, _, u = split_reasoning(text)
    assert (a, u) == (answer, unterminated)


def test_stats():
    assert stderr([1.0]) is None
    assert stderr([0.0, 1.0]) == pytest.approx(0.5)
    lo, hi = bootstrap_ci([0.0] * 50 + [100.0] * 50, seed=1)
    assert lo < 50 < hi and 35 < lo and hi < 65
    assert bootstrap_ci([0.0] * 50 + [100.0] * 50, seed=1) == (lo, hi)


def test_local_tokenizer_chat_and_prefill(word_tokenizer_dir):
    tok = load_tokenizer(word_tokenizer_dir)
    req = Request("t", "s", 0, (Message("user", "Hello world"), Message("assistant", "The answer is")),
                  GenParams(max_tokens=3))
    text = render_request(tok, req)
    assert text.endswith("assistant The answer is")  # continued, no end-of-turn token after the prefill
    assert "<|im_end|> <|im_start|> assistant The answer is" in text
    plain = Request("t", "s", 0, "Hello world", GenParams(max_tokens=3), use_chat_template=False)
    assert render_request(tok, plain) == "Hello world"
    assert len(request_ids(tok, plain)) == 2


def test_middle_truncation_on_token_ids(word_tokenizer_dir):
    tok = load_tokenizer(word_tokenizer_dir)
    words = [f"w{i}" for i in range(100)]
    raw = Request("t", "s", 0, " ".join(words), GenParams(max_tokens=3), use_chat_template=False)
    out = Truncation(max_tokens=10).apply(raw, tok)
    assert out.truncated and tok.decode(out.prompt_ids).split() == words[:5] + words[-5:]
    chat = Request("t", "s", 0, " ".join(words), GenParams(max_tokens=3))
    out = Truncation(max_tokens=20).apply(chat, tok)
    assert len(out.prompt_ids) == 20
    dec = tok.decode(out.prompt_ids).split()
    assert dec[:3] == ["<|im_start|>", "user", "w0"] and dec[-3:] == ["<|im_end|>", "<|im_start|>", "assistant"]
    kept = [w for w in dec if w.startswith("w")]
    assert kept == words[:len(kept) // 2] + words[100 - (len(kept) - len(kept) // 2):]
    short = Request("t", "s", 0, "w1 w2", GenParams(max_tokens=3), use_chat_template=False)
    assert Truncation(max_tokens=10).apply(short, tok) is short


def test_heavy_modules_not_imported_by_core():
    import subprocess
    code = ("import sys, evalsuite.cli, evalsuite.runner, evalsuite.backends.scripted, evalsuite.registry;"
            "bad=[m for m in ('torch','transformers','vllm','comet') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_manifest_redacts_url_credentials():
    from evalsuite.runner import _redact_options
    out = _redact_options({"base_url": "http://user:secret@127.0.0.1:8000/v1", "concurrency": "4"})
    assert out == {"base_url": "http://***@127.0.0.1:8000/v1", "concurrency": "4"}
