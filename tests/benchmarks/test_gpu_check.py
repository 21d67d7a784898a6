"""benchmarks/gpu_check.sh: the prepared GPU check. No GPU here: its dry run, its refusal without a GPU,
and every code path of its measurement on CPU with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1].parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_") and k != "OUT"}
    e["PYTHON"] = sys.executable
    e.update(env or {})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_script_syntax_and_dry_run():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    r = _run("--dry-run")
    assert r.returncode == 0, r.stderr
    assert "1024 tok x batch 1" in r.stdout and "8192 tok x batch 32" in r.stdout and "dry run: plan checked" in r.stdout
    r = _run("--dry-run", "--lengths", "2048", "--batches", "4", "--out", "/tmp/x")
    assert r.returncode == 0 and "2048 tok x batch 4" in r.stdout and "/tmp/x" in r.stdout
    r = _run("--help")
    assert r.returncode == 0 and "--dry-run" in r.stdout


@pytest.mark.parametrize("args, needle", [
    ((), "no NVIDIA GPU"),  # this machine has none (or no CUDA torch)
    (("--bogus",), "unknown option --bogus"),
    (("--dry-run", "--batches", "0"), "positive integers"),
    (("--python", "/no/such/python"), "no Python"),
])
def test_refusals_are_one_line_exit_2(args, needle):
    if not args and subprocess.run(["bash", "-c", "command -v nvidia-smi"], capture_output=True).returncode == 0:
        pytest.skip("this machine has nvidia-smi")
    r = _run(*args)
    assert r.returncode == 2 and needle in r.stderr, (r.stdout, r.stderr)


@pytest.mark.slow
def test_measurement_code_paths_on_cpu(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    r = _run("--device", "cpu", "--model", str(tiny_llama_dir), "--lengths", "512", "--batches", "1,2",
             "--requests", "2", "--max-tokens", "2", "--rounds", "1", env={"OUT": str(out)}, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    data = json.loads((out / "gpu_check.json").read_text())
    rows = data["results"]
    assert [(x["length"], x["batch"]) for x in rows] == [(512, 1), (512, 2)]
    for x in rows:
        assert x["identical_outputs"] == "2/2"  # direct transformers, backend and harness agree
        assert x["harness_over_direct"] > 0 and x["new_tok_per_s_direct"] >= 0
    assert "harness" in (out / "gpu_check.txt").read_text()
