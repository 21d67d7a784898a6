"""Issue 18: `-B batch_size=auto` on the hf backend finds the largest batch that fits by halving on
out-of-memory, and records it. The out-of-memory here is torch's own error type raised for batches above
a size (a CPU has no device memory to exhaust); benchmarks/gpu_auto_batch.py makes a real CUDA OOM."""

from __future__ import annotations

import json

import pytest

from evalsuite.backends.hf import HFBackend, is_oom
from evalsuite.types import GenParams, Request

torch = pytest.importorskip("torch")

PROMPTS = ["hello", "Tell me about cats.", "x", "The number 12345 and 67890.", "short one", "Why is the sky blue?",
           "a b c", "the end"]


def _reqs():
    return [Request("t", f"s{i}", i, p, GenParams(max_tokens=6)) for i, p in enumerate(PROMPTS)]


def test_auto_batch_halves_on_oom_and_records_what_it_found(tiny_llama_dir, monkeypatch):
    fixed = HFBackend(str(tiny_llama_dir), threads="1", batch_size="2")
    try:
        want = [g.text for g in fixed.generate(_reqs())]
    finally:
        fixed.close()
    b = HFBackend(str(tiny_llama_dir), threads="1", batch_size="auto")
    try:
        assert b.batch_size == 8 and b.describe()["batch_size"] == "auto"  # the CPU start
        real = b._run_batch
        sizes = []

        def limited(chunk, params):
            sizes.append(len(chunk))
            if len(chunk) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return real(chunk, params)

        monkeypatch.setattr(b, "_run_batch", limited)
        out = b.generate(_reqs())
        assert [g.text for g in out] == want and all(g.ok for g in out)
        assert b.batch_size == 2
        assert sizes[:2] == [8, 4] and set(sizes[2:]) == {2}
        t = b.timings()["batch_size_auto"]
        assert t["start"] == 8 and t["found"] == 2
        assert [(h["from"], h["to"]) for h in t["halvings"]] == [(8, 4), (4, 2)]
        # later batches start at the size found
        sizes.clear()
        b.generate(_reqs()[:4])
        assert sizes == [2, 2]
    finally:
        b.close()


def test_a_request_that_fails_alone_is_still_a_per_request_failure(tiny_llama_dir, monkeypatch):
    b = HFBackend(str(tiny_llama_dir), threads="1", batch_size="auto")
    try:
        monkeypatch.setattr(b, "_run_batch", lambda chunk, params: (_ for _ in ()).throw(
            torch.cuda.OutOfMemoryError("CUDA out of memory")))
        out = b.generate(_reqs()[:3])
        assert [g.finish_reason for g in out] == ["error"] * 3 and "out of memory" in out[0].error
        assert b.batch_size == 1
    finally:
        b.close()


def test_oom_detection():
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"))
    assert is_oom(MemoryError())
    assert not is_oom(RuntimeError("shape mismatch"))


def test_auto_batch_through_the_cli_is_recorded(cli, tmp_path, tiny_llama_dir):
    r = cli("run", "--tasks", "toy/upper", "--backend", "hf", "--model", str(tiny_llama_dir), "-B", "batch_size=auto",
            "-B", "threads=1", "--max-tokens", "4", "--run-id", "ab")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "results/ab/manifest.json").read_text())
    assert man["backend"]["describe"]["batch_size"] == "auto"
    assert man["invocations"][-1]["backend_timings"]["batch_size_auto"] == {"start": 8, "found": 8, "halvings": []}
    bad = cli("run", "--tasks", "toy/upper", "--backend", "hf", "--model", str(tiny_llama_dir), "-B", "batch_size=0")
    assert bad.returncode == 2 and "batch_size must be >= 1 or auto" in bad.stderr
