"""Declared contracts (evalsuite.contracts): a capability declared without its method fails at registration
with one line; the runner works from what is declared (stamping requests, the metric context, the legacy
metric signature); MetricResult's own serialisation; the structured Signature."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import cli_env, run_cli
from evalsuite.backends import BaseBackend, iterate
from evalsuite.contracts import (NO_CONTEXT, ContractError, MultiPass, NeedsJudge, ScoreContext, Streaming,
                                 check_class)
from evalsuite.metrics import MeanMetric, score_metric
from evalsuite.registry import Registry
from evalsuite.runner import RunConfig, run
from evalsuite.signature import Signature
from evalsuite.task import BaseTask
from evalsuite.types import GenParams, Generation, MetricResult, Record, Request, Sample


class _Exact(MeanMetric):
    name = "exact"

    def sample_score(self, record):
        return float(record.prediction == record.sample.target)


class _Words(BaseTask):
    name = "c/words"
    version = "1"

    def samples(self):
        for i, w in enumerate(["alpha", "beta", "gamma"]):
            yield Sample(id=f"w{i}", index=i, input=w, target=w)

    def request(self, sample):
        return Request.new(f"say {sample.input}", GenParams(max_tokens=4))

    def metrics(self):
        return [_Exact()]

    def gold(self, sample):
        return sample.target


class _Echo(BaseBackend):
    id = "echo-tail"

    def generate(self, requests):
        return [Generation(r.prompt.split()[-1], "stop") for r in requests]


# -- registration checks ---------------------------------------------------------------------------------

def test_a_declared_capability_without_its_method_fails_at_registration():
    class NoFollowUp(_Words, MultiPass):
        pass

    with pytest.raises(ContractError, match=r"task 'c/x' .*NoFollowUp\) declares MultiPass but does not define "
                                            r"next_request\(\)"):
        Registry().add_task("c/x", NoFollowUp)

    class NoStream(BaseBackend, Streaming):  # BaseBackend's generate_iter satisfies Streaming: fine
        pass

    check_class(NoStream, "backend", "ok")

    class Lacking(Streaming):
        def generate(self, requests):
            return []

        def describe(self):
            return {}

        def close(self):
            pass

    with pytest.raises(ContractError, match=r"declares Streaming but does not define generate_iter\(\)"):
        Registry().add_backend("lacking", Lacking)


def test_a_plugin_that_breaks_its_contract_is_one_line_and_exit_2(tmp_path):
    pkg = tmp_path / "plugins"
    (pkg / "badplug").mkdir(parents=True)
    (pkg / "badplug" / "__init__.py").write_text(
        "from evalsuite.contracts import MultiPass\n"
        "from evalsuite.task import BaseTask\n"
        "class T(BaseTask, MultiPass):  # everything but the declared next_request\n"
        "    name = 'bad/t'\n"
        "    def samples(self): return []\n"
        "    def request(self, sample): return None\n"
        "    def metrics(self): return []\n"
        "    def gold(self, sample): return ''\n"
        "def register(r):\n"
        "    r.add_task('bad/t', T)\n")
    dist = pkg / "badplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.tasks]\nbad = badplug:register\n")
    r = run_cli(["run", "--tasks", "bad/t", "--backend", "gold"], cwd=tmp_path,
                env=cli_env({"PYTHONPATH": str(pkg)}, plugin=False))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "declares MultiPass but does not define next_request()" in r.stderr
    # the other plugins are unaffected
    r = run_cli(["list", "tasks", "--json"], cwd=tmp_path, env=cli_env({"PYTHONPATH": str(pkg)}, plugin=False))
    assert r.returncode == 0 and "ruler/niah_single_1" in r.stdout and "badplug" not in r.stdout
    assert "plugin task:bad failed to load: ContractError" in r.stderr


# -- the runner stamps identity, works from declared capabilities ----------------------------------------

def test_the_runner_stamps_task_sample_and_index_on_every_request(tmp_path):
    reg = Registry()
    reg.add_task("c/words", _Words)
    seen: list[Request] = []

    class Spy(_Echo):
        def generate(self, requests):
            seen.extend(requests)
            return super().generate(requests)

    out = run(RunConfig(tasks=["c/words"], output=str(tmp_path), run_id="r", progress=False), registry=reg,
              backend=Spy())
    assert [(r.task, r.sample_id, r.index) for r in seen] == [("c/words", f"w{i}", i) for i in range(3)]
    assert out.scores["c/words"]["value"] == 100.0
    rows = [json.loads(x) for x in (tmp_path / "r" / "c" / "words" / "samples.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in rows] == ["w0", "w1", "w2"]


def test_iterate_is_the_one_way_to_ask_a_backend():
    class Plain:  # no BaseBackend: neither Streaming nor Batched
        id = "plain"

        def __init__(self):
            self.calls = []

        def generate(self, requests):
            self.calls.append(len(requests))
            return [Generation("x", "stop") for _ in requests]

    reqs = [Request.new(str(i), GenParams(max_tokens=1)) for i in range(130)]
    b = Plain()
    assert [p for p, _ in iterate(b, reqs)] == list(range(130)) and b.calls == [64, 64, 2]

    class Short(Plain):
        def generate(self, requests):
            return []

    with pytest.raises(RuntimeError, match="returned 0 generations for 64 requests"):
        list(iterate(Short(), reqs))


# -- metrics: one entry point, the context, the old signature --------------------------------------------

def _records():
    return [Record(Sample(str(i), i, None, t), p, Generation(p, "stop"))
            for i, (p, t) in enumerate([("a", "a"), ("b", "c"), ("d", "d")])]


def test_metric_context_carries_the_judge_and_old_signatures_still_score():
    class OldPlain:
        name, higher_is_better = "old_plain", True

        def signature(self):
            return "old_plain|v:1"

        def score(self, records):
            return MetricResult(self.name, 1.0, self.signature())

    class OldJudged:
        name, higher_is_better, needs_judge = "old_judged", True, True

        def signature(self):
            return "old_judged|v:1"

        def score(self, records, judge=None):
            return MetricResult(self.name, 2.0 if judge == "J" else -1.0, self.signature())

    class NewJudged(NeedsJudge):
        name, higher_is_better = "new_judged", True

        def signature(self):
            return "new_judged|v:1"

        def score(self, records, ctx=NO_CONTEXT, *, judge=None):
            j = ctx.need_judge(self.name, judge)
            return MetricResult(self.name, 3.0 if j == "J" else -1.0, self.signature(),
                                details={"task": ctx.task, "opt": ctx.options.get("k")})

    ctx = ScoreContext(task="t", judge="J", options={"k": 5})  # type: ignore[arg-type]
    recs = _records()
    assert score_metric(OldPlain(), recs, ctx).value == 1.0
    assert score_metric(OldJudged(), recs, ctx).value == 2.0
    res = score_metric(NewJudged(), recs, ctx)
    assert res.value == 3.0 and res.details == {"task": "t", "opt": 5}
    # an old-style caller passing the judge by keyword gets the same
    assert NewJudged().score(recs, judge="J").value == 3.0
    with pytest.raises(ValueError, match="new_judged needs a judge"):
        NewJudged().score(recs)


def test_a_legacy_metric_runs_end_to_end_through_the_runner(tmp_path):
    class Legacy:
        name, higher_is_better = "legacy", True

        def signature(self):
            return "legacy|v:1"

        def score(self, records):
            per = tuple(float(r.prediction == r.sample.target) for r in records)
            return MetricResult(self.name, 100 * sum(per) / len(per), self.signature(), per, True, {"scale": 100.0})

    class T(_Words):
        def metrics(self):
            return [Legacy()]

    reg = Registry()
    reg.add_task("c/words", T)
    out = run(RunConfig(tasks=["c/words"], output=str(tmp_path), run_id="r", progress=False), registry=reg,
              backend=_Echo())
    m = out.scores["c/words"]["metrics"][0]
    assert (m["name"], m["value"], m["signature"]) == ("legacy", 100.0, "legacy|v:1")
    assert m["ci95"] == [100.0, 100.0] and m["stderr"] == 0.0


# -- MetricResult owns its serialisation --------------------------------------------------------------------

def test_metric_result_round_trips_with_scale_and_ci():
    res = MetricResult("m", 200 / 3, "m|v:1", (1.0, 0.0, 1.0), True, {"scale": 100.0, "x": [1]}).with_stats()
    d = res.to_dict()
    assert list(d) == ["name", "value", "signature", "higher_is_better", "stderr", "ci95", "details"]
    assert res.scale == 100.0 and d["ci95"] == list(res.ci95) and d["stderr"] == pytest.approx(100 / 3, rel=1e-9)
    back = MetricResult.from_dict(json.loads(json.dumps(d)))
    assert (back.name, back.value, back.signature, back.scale, back.ci95, back.stderr) == \
           (res.name, res.value, res.signature, 100.0, res.ci95, res.stderr)
    # read back without per-sample values: the interval is kept, the standard error is not written again
    assert back.to_dict() == {"name": "m", "value": res.value, "signature": "m|v:1", "higher_is_better": True,
                              "ci95": d["ci95"], "details": d["details"]}
    corpus = MetricResult("bleu", 30.0, "bleu|x", None, True, {"ci95": [28.0, 32.0]}).with_stats()
    assert corpus.to_dict()["ci95"] == [28.0, 32.0] and "stderr" not in corpus.to_dict()
    plain = MetricResult("nan", math.nan, "s").with_stats().to_dict()
    assert list(plain) == ["name", "value", "signature", "higher_is_better"] and math.isnan(plain["value"])


# -- Signature ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,text", [
    (Signature("string_match_all", scale=100.0, v="1"), "string_match_all|scale:100|v:1"),
    (Signature("deltabench", "strict", "f1", "macro", scale=100, v="1"), "deltabench|strict|f1|macro|scale:100|v:1"),
    (Signature("bleu", "nrefs:1|case:mixed|tok:zh", evalsuite="1"), "bleu|nrefs:1|case:mixed|tok:zh|evalsuite:1"),
    (Signature("x", scale=0.5), "x|scale:0.5"),
])
def test_signature_renders_as_recorded(sig, text):
    assert str(sig) == text and sig == text
    parsed = Signature.parse(text)
    assert str(parsed) == text and parsed.parts[0] == (None, text.split("|")[0])


def test_old_run_signatures_are_reproduced_by_the_signature_objects():
    """Every signature recorded in the old-run fixture is what today's metrics render."""
    root = Path(__file__).resolve().parents[1] / "fixtures" / "run_v0" / "results" / "gold"
    recorded = {m["name"]: m["signature"] for p in root.rglob("scores.json")
                for m in json.loads(p.read_text())["metrics"]}
    assert recorded["toy_exact"] == str(Signature("toy_exact", scale=100.0, v="1"))
    assert recorded["accuracy"].startswith("accuracy|longbench_v2|")
