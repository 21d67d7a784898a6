"""HELMET parity: evalsuite's prompts and numbers equal those of HELMET's own code (princeton-nlp/HELMET@4526dfb,
run from a scratch copy outside the repo on the synthetic fixture of tests/helmet_fixture.py; its outputs are
the JSON files in tests/fixtures/helmet/, see tasks/helmet/SOURCE.md).

* prompts: every prompt of every dataset at 8K and 32K, byte for byte (sha256), HELMET's truncation included;
* metrics: every category's numbers on synthetic outputs (right, wrong, partial, badly formatted): per output
  and averaged, with the same scripted NLI verdicts (Cite) and the same scripted judge answers (LongQA, Summ).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
import helmet_fixture  # noqa: E402

FIXTURES = Path(__file__).parents[2] / "fixtures" / "helmet"
LONGDOC = ("narrativeqa", "infbench", "multi_lexsum")


def _task(dataset: str, **opts: Any):
    from evalsuite.registry import default_registry
    from evalsuite.tasks.helmet import _TASKS
    from evalsuite.tasks.helmet._config import base_name

    name = "helmet/" + _TASKS[base_name(dataset)][2]
    return default_registry().task(name).factory(**{k: str(v) for k, v in opts.items()})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _prompts(task: Any, tok: Any) -> dict[int, list[str]]:
    from evalsuite.task import TaskContext
    from evalsuite.tokenizer import render_request

    task.prepare(TaskContext(tokenizer=tok))
    out: dict[int, list[str]] = {}
    for s in task.samples():
        out.setdefault(int(s.metadata["input_max_length"]), []).append(_sha(render_request(tok, task.request(s))))
    return out


def _check_prompts(upstream: dict[str, list[dict[str, Any]]], data: Path, tok: Any, doc_tok: Path | None,
                   fast_icl: bool) -> None:
    from evalsuite.tasks.helmet._config import base_name

    groups: dict[str, dict[int, list[str]]] = {}
    for key, rows in upstream.items():
        d, L = key.split("@")
        groups.setdefault(base_name(d), {})[int(L)] = [r["sha256"] for r in rows]
    for base, want in groups.items():
        opts: dict[str, Any] = {"data_dir": data, "lengths": ",".join(str(L) for L in sorted(want))}
        if base.startswith("icl"):
            opts["max_test_samples"] = 10  # as in the upstream run
        if doc_tok is not None and base.startswith(LONGDOC):
            opts["doc_tokenizer"] = doc_tok
        got = _prompts(_task(base, **opts), tok) if not (fast_icl and base.startswith("icl")) else {}
        if fast_icl and base.startswith("icl"):
            # 8K with HELMET's truncation check; at 32K every ICL prompt fits (HELMET cuts nothing), so the
            # prompt is built without counting its ~14K tokens again.
            got.update(_prompts(_task(base, **{**opts, "lengths": "8192"}), tok))
            got.update(_prompts(_task(base, **{**opts, "lengths": "32768", "truncate": "false"}), tok))
        assert got == want, f"{base}: prompts differ from HELMET's"


def test_prompts_equal_helmet_short_contexts(helmet_data, smollm2_tokenizer_dir):
    """Recall, RAG, re-rank, cite, ICL: SmolLM2's tokenizer, 8K and 32K (truncation happens at 8K for RULER
    and ALCE ASQA/QAMPARI rows)."""
    from evalsuite.tokenizer import load_tokenizer

    up = json.loads((FIXTURES / "upstream_prompts.json").read_text())["smollm2"]
    _check_prompts(up, helmet_data, load_tokenizer(smollm2_tokenizer_dir), None, fast_icl=True)


def test_prompts_equal_helmet_long_documents(helmet_data, helmet_word_tokenizer):
    """LongQA and Summ: HELMET's document filter, pre-truncation (Llama-2 in HELMET, here the word-level test
    tokenizer on both sides), numpy-global demo draws and context truncation, 8K and 32K."""
    from evalsuite.tokenizer import load_tokenizer

    up = json.loads((FIXTURES / "upstream_prompts.json").read_text())["word_longdoc"]
    _check_prompts(up, helmet_data, load_tokenizer(helmet_word_tokenizer), helmet_word_tokenizer, fast_icl=False)


@pytest.mark.slow
def test_prompts_equal_helmet_long_documents_smollm2(helmet_data, smollm2_tokenizer_dir):
    """LongQA and Summ with SmolLM2's tokenizer for documents and model (~150K-token documents)."""
    from evalsuite.tokenizer import load_tokenizer

    up = json.loads((FIXTURES / "upstream_prompts_smollm2_longdoc.json").read_text())
    _check_prompts(up, helmet_data, load_tokenizer(smollm2_tokenizer_dir), smollm2_tokenizer_dir, fast_icl=False)


# -- metrics ---------------------------------------------------------------------------------------
METRICS = json.loads((FIXTURES / "upstream_metrics.json").read_text()) if (FIXTURES / "upstream_metrics.json").exists() else {}


def nli_verdict(passage: str, claim: str) -> int:
    """The scripted entailment both sides use (upstream's ``_run_nli_autoais`` replaced by it)."""
    return int(hashlib.sha256((passage + "\x00" + claim).encode("utf-8")).hexdigest()[0] in "0123456789ab")


def canned_judge(prompt: str) -> str:
    """The scripted judge both sides use: a canned answer picked by the prompt's sha256."""
    canned = METRICS["canned_judge_outputs"]
    kind = ("longqa" if '"correctness"' in prompt else "precision" if '"precision":' in prompt
            else "recall" if '"recall":' in prompt else "fluency")
    return canned[kind][int(_sha(prompt), 16) % len(canned[kind])]


class ScriptedNLI:
    id = "scripted-nli"
    nli_pairs = True

    def generate(self, reqs):
        from evalsuite.types import Generation

        return [Generation("1" if nli_verdict(r.prompt[0].content, r.prompt[1].content) else "0", "stop") for r in reqs]

    def close(self) -> None:
        pass


class ScriptedJudge:
    id = "scripted-judge"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, reqs):
        from evalsuite.types import Generation

        self.prompts += [r.prompt for r in reqs]
        return [Generation(canned_judge(r.prompt), "stop") for r in reqs]

    def close(self) -> None:
        pass


def _records(dataset: str, data: Path, word_tok: Path, cases: list[dict[str, Any]]):
    from evalsuite.task import TaskContext
    from evalsuite.types import Generation, Record

    opts: dict[str, Any] = {"data_dir": data, "lengths": "8192", "truncate": "false"}
    if dataset.startswith("icl"):
        opts["max_test_samples"] = 10
    if dataset.startswith(LONGDOC):
        opts["doc_tokenizer"] = word_tok
    task = _task(dataset, **opts)
    task.prepare(TaskContext())
    samples = list(task.samples())
    recs = []
    for c in cases:
        s = samples[c["index"]]
        g = Generation(c["generation"], "stop")
        recs.append(Record(s, task.extract(s, g), g))
    return task, recs


def _judge(backend: Any, tmp_path: Path, name: str):
    from evalsuite.judge import Judge, JudgeConfig

    return Judge(backend, JudgeConfig("scripted"), tmp_path / f"{name}.jsonl", name)


PLAIN = [k for k in METRICS.get("datasets", {}) if not k.endswith("_judge") and not k.startswith("alce")]


@pytest.mark.parametrize("key", PLAIN)
def test_metrics_equal_helmet(key, helmet_data, helmet_word_tokenizer):
    """data.py's post-processing + metrics: per output and averaged (x100)."""
    up = METRICS["datasets"][key]
    task, recs = _records(up["helmet_dataset"], helmet_data, helmet_word_tokenizer, up["cases"])
    ours = {m.name: m.score(recs) for m in task.metrics() if not getattr(m, "needs_judge", False)}
    compared = 0
    for name, want in up["averaged"].items():
        if name not in ours:
            continue
        res = ours[name]
        assert res.value == pytest.approx(want, abs=1e-9), (key, name)
        per = [c["metrics"][name] for c in up["cases"]]
        assert list(res.per_sample) == pytest.approx(per, abs=1e-12), (key, name)
        compared += 1
    assert compared >= 1 and up["helmet_dataset"]


@pytest.mark.parametrize("key", [k for k in METRICS.get("datasets", {}) if k.startswith("alce")])
def test_cite_metrics_equal_eval_alce(key, helmet_data, helmet_word_tokenizer, tmp_path):
    """eval_alce.py: STR-EM / QAMPARI rec@5 and citation recall / precision (scripted NLI), per output and over
    all outputs (a sample without any sentence is left out of the citation means, as upstream does)."""
    up = METRICS["datasets"][key]
    task, recs = _records(up["helmet_dataset"], helmet_data, helmet_word_tokenizer, up["cases"])
    judge = _judge(ScriptedNLI(), tmp_path, key)
    metrics = task.metrics()
    for m in metrics:
        res = m.score(recs, judge=judge) if getattr(m, "needs_judge", False) else m.score(recs)
        assert res.value == pytest.approx(up["averaged"][m.name], abs=1e-9), (key, m.name)
    for c, rec in zip(up["cases"], recs):
        for m in task.metrics():
            res = m.score([rec], judge=judge) if getattr(m, "needs_judge", False) else m.score([rec])
            want = c["metrics"][m.name]
            if m.name.startswith("citation") and not c["has_sentence"]:
                assert res.details["n_samples_scored"] == 0 and want == 0  # upstream: 0 for an empty corpus
                continue
            assert res.value == pytest.approx(want, abs=1e-9), (key, m.name, c["generation"])


@pytest.mark.parametrize("key", [k for k in METRICS.get("datasets", {}) if k.endswith("_judge")])
def test_judged_metrics_equal_helmet_scripts(key, helmet_data, helmet_word_tokenizer, tmp_path):
    """eval_gpt4_longqa.py / eval_gpt4_summ.py with a scripted judge: the same judge prompts (sha256, in order)
    and the same scores per output (None where upstream found no verdict) and averaged."""
    up = METRICS["datasets"][key]
    task, recs = _records(up["helmet_dataset"], helmet_data, helmet_word_tokenizer, up["cases"])
    backend = ScriptedJudge()
    judge = _judge(backend, tmp_path, key)
    judged = {m.name: m.score(recs, judge=judge) for m in task.metrics() if getattr(m, "needs_judge", False)}
    # the same judge prompts (identical ones are asked once here: the judge de-duplicates a scoring pass)
    assert sorted(_sha(p) for p in backend.prompts) == sorted(set(up["prompt_sha256"]))
    if key.startswith("narrativeqa"):
        assert judged["judge_score"].value == pytest.approx(up["averaged"]["gpt-4-score"] * 100 / 3, abs=1e-9)
    else:
        for ours, theirs in {"judge_f1": "gpt-4-f1", "judge_recall": "gpt-4-recall",
                             "judge_precision": "gpt-4-precision", "judge_fluency": "gpt-4-fluency"}.items():
            assert judged[ours].value == pytest.approx(100 * up["averaged"][theirs], abs=1e-9), ours
    # output by output: the same score, or no score where upstream found no verdict
    for c, rec in zip(up["cases"], recs):
        for m in task.metrics():
            if not getattr(m, "needs_judge", False):
                continue
            res = m.score([rec], judge=judge)
            if c["judge"] is None:
                assert res.details["n_scored"] == 0, (m.name, c["generation"])
                continue
            j = c["judge"]
            want = (j["fluency"] * j["correctness"] / 3 if key.startswith("narrativeqa")
                    else j[m.name.removeprefix("judge_")])
            assert res.value == pytest.approx(100 * want, abs=1e-9), (m.name, c["generation"])
