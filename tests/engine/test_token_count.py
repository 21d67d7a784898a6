"""Requests carry the token count planning made (RULER fits each prompt with the backend's tokenizer), the
scripted backends record it without encoding the prompt again, and it equals a fresh encode."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

import evalsuite.tasks.ruler as ruler
from evalsuite.backends.scripted import EchoBackend, GoldBackend
from evalsuite.registry import Registry
from evalsuite.task import TaskContext
from evalsuite.tokenizer import load_tokenizer, request_ids, request_token_count
from evalsuite.types import GenParams, Request

ESSAYS = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "ruler" / "essays" \
    / "PaulGrahamEssays.json"


class _Counting:
    """A tokenizer that counts the characters it is asked to encode."""

    def __init__(self, inner):
        self._inner = inner
        self.encoded_chars = 0

    def encode(self, text, add_special_tokens=False):
        self.encoded_chars += len(text)
        return self._inner.encode(text, add_special_tokens=add_special_tokens)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize("name, opts", [
    ("ruler/niah_single_1", {"length": 2048}),
    ("ruler/niah_single_1", {"length": 2048, "chat_template": "false"}),
    ("ruler/vt", {"length": 2048}),
    ("ruler/cwe", {"length": 2048, "chat_template": "false"}),
])
def test_ruler_requests_carry_the_count_of_a_fresh_encode(smollm2_tokenizer_dir, name, opts):
    tok = load_tokenizer(smollm2_tokenizer_dir)
    reg = Registry()
    ruler.register(reg)
    task = reg.task(name).factory(num_samples="4", **opts)
    task.prepare(TaskContext(tokenizer=tok))
    reqs = [task.request(s) for s in itertools.islice(task.samples(), 4)]
    for req in reqs:
        fresh = len(request_ids(tok, replace(req, token_count=None)))
        assert req.token_count == fresh and request_token_count(tok, req) == fresh
        # derived, so it moves neither the prompt hash nor the resume key
        assert req.prompt_hash() == replace(req, token_count=None).prompt_hash()
        assert req.key("b") == replace(req, token_count=None).key("b")
        assert Request.from_dict(req.to_dict()) == req
    # The scripted backends record the count without encoding the prompt again.
    backend = EchoBackend(model=str(smollm2_tokenizer_dir), text="The answer is 1.")
    backend.tokenizer = counting = _Counting(backend.tokenizer)
    gens = backend.generate(reqs)
    assert [g.prompt_tokens for g in gens] == [r.token_count for r in reqs]
    assert counting.encoded_chars == len("The answer is 1.") * len(reqs)  # only the completions


def test_without_a_count_backends_still_count(smollm2_tokenizer_dir):
    tok = load_tokenizer(smollm2_tokenizer_dir)
    req = Request(task="t", sample_id="0", index=0, prompt="Hello world, twice: hello world.",
                  params=GenParams(max_tokens=4), use_chat_template=False)
    assert request_token_count(tok, req) == len(tok.encode(req.prompt, add_special_tokens=True))
    ids = replace(req, prompt_ids=(1, 2, 3), token_count=99)
    assert request_token_count(tok, ids) == 3  # the carried ids win over a stale count
    gold = GoldBackend(model=str(smollm2_tokenizer_dir))
    gold._gold = {("t", "0"): "x"}
    assert gold.generate([req])[0].prompt_tokens == request_token_count(tok, req)


@pytest.mark.skipif(not ESSAYS.is_file(), reason="shared RULER essays not found")
def test_cli_run_records_counts_equal_to_a_fresh_encode(cli, smollm2_tokenizer_dir, tmp_path):
    r = cli("run", "--tasks", "ruler/niah_single_2", "--backend", "gold", "--model", str(smollm2_tokenizer_dir),
            "-T", "length=4096", "-T", f"data_file={ESSAYS}", "--limit", "3", "--run-id", "tc", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    tok = load_tokenizer(smollm2_tokenizer_dir)
    from evalsuite.store import ResultsStore

    log = ResultsStore.open_existing(str(tmp_path / "results" / "tc")).task_dir("ruler/niah_single_2") \
        / "samples.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    reg = Registry()
    ruler.register(reg)
    task = reg.task("ruler/niah_single_2").factory(length="4096", data_file=str(ESSAYS))
    task.prepare(TaskContext(tokenizer=tok))
    fresh = [len(request_ids(tok, replace(task.request(s), token_count=None)))
             for s in itertools.islice(task.samples(), 3)]
    recorded = [row["prompt_tokens"] for row in rows if "prompt_tokens" in row]
    assert recorded == fresh and len(fresh) == 3 and all(n > 3000 for n in fresh)
