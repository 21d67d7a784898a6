"""Multi-pass tasks (Task.next_request): later passes see earlier answers; resume never re-asks a
finished pass; a sample whose chain is incomplete is not scored from an intermediate answer."""

from __future__ import annotations

import json

import pytest

from evalsuite.backends import BaseBackend
from evalsuite.metrics import MeanMetric
from evalsuite.registry import Registry
from evalsuite.runner import RunConfig, rescore, run
from evalsuite.store import ResultsStore
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Generation, Request, Sample


class Exact(MeanMetric):
    name = "exact"

    def sample_score(self, record) -> float:
        return float(record.prediction.strip() == record.sample.target)


class TwoPass(BaseTask):
    """Pass 1: think about a+b. Pass 2: answer, given the pass-1 notes."""

    name = "toy/twopass"
    version = "1"
    options = {"n": Option(int, 6)}

    def samples(self):
        for i in range(self.opts["n"]):
            yield Sample(id=f"s{i}", index=i, input=(i, 10 * i), target=str(11 * i))

    def request(self, sample):
        a, b = sample.input
        return Request(self.name, sample.id, sample.index, f"THINK {a} {b}", GenParams(max_tokens=16))

    def next_request(self, sample, history):
        if len(history) == 1:
            notes = history[-1][1].text
            return Request(self.name, sample.id, sample.index, f"ANSWER given: {notes}", GenParams(max_tokens=4))
        return None

    def metrics(self):
        return [Exact()]

    def gold(self, sample):
        return sample.target


class Calculator(BaseBackend):
    """THINK a b -> 'sum is a+b'; ANSWER given: sum is N -> N. Optionally fails the answer pass."""

    def __init__(self, fail_answers: bool = False):
        self.id = "calc"
        self.fail_answers = fail_answers
        self.prompts: list[str] = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.prompts.append(r.prompt)
            if r.prompt.startswith("THINK"):
                _, a, b = r.prompt.split()
                out.append(Generation(f"sum is {int(a) + int(b)}", "stop"))
            elif self.fail_answers:
                out.append(Generation.failed("server error"))
            else:
                out.append(Generation(r.prompt.rsplit(" ", 1)[-1], "stop"))
        return out


@pytest.fixture
def reg():
    r = Registry()
    r.add_task("toy/twopass", TwoPass)
    return r


def _cfg(tmp_path, run_id="r"):
    return RunConfig(tasks=["toy/twopass"], backend="calc", run_id=run_id, output=str(tmp_path), progress=False)


def test_second_pass_sees_first_answer(tmp_path, reg):
    be = Calculator()
    out = run(_cfg(tmp_path), registry=reg, backend=be)
    assert out.scores["toy/twopass"]["value"] == 100.0
    assert out.n_generated == 12
    assert "ANSWER given: sum is 33" in be.prompts
    rows = list(ResultsStore(tmp_path, "r").rows("toy/twopass"))
    first = [r for r in rows if r["stage"] == 0]
    second = {r["key"]: r for r in rows if r["stage"] == 1}
    assert all(r["next"] in second and second[r["next"]]["parent"] == r["key"] for r in first)
    # rescoring from the logs alone follows the chains to the same result
    assert rescore(ResultsStore(tmp_path, "r"), registry=reg)["toy/twopass"]["value"] == 100.0


def test_failed_pass_then_resume_reuses_finished_passes(tmp_path, reg):
    out = run(_cfg(tmp_path), registry=reg, backend=Calculator(fail_answers=True))
    s = out.scores["toy/twopass"]
    assert s["n_errors"] == 6 and s["value"] == 0.0
    be = Calculator()
    out = run(_cfg(tmp_path), registry=reg, backend=be)
    assert out.scores["toy/twopass"]["value"] == 100.0
    assert all(p.startswith("ANSWER") for p in be.prompts)  # no first pass asked again
    assert out.n_generated == 6 and out.n_reused == 6


def test_crash_mid_chain_loses_nothing_and_scores_only_complete_chains(tmp_path, reg):
    class Crash(Exception):
        pass

    seen = []

    def crash_after_eight(item, gen):
        seen.append(item.stage)
        if len(seen) == 8:
            raise Crash()

    with pytest.raises(Crash):
        run(_cfg(tmp_path), registry=reg, backend=Calculator(), on_generation=crash_after_eight)
    store = ResultsStore(tmp_path, "r")
    # scoring now (e.g. `evalsuite score`) must not take a first-pass note as an answer
    partial = rescore(store, registry=reg)["toy/twopass"]
    assert partial["n"] == 2 and partial["n_missing"] == 4 and partial["value"] == 100.0
    be = Calculator()
    out = run(_cfg(tmp_path), registry=reg, backend=be)
    assert out.scores["toy/twopass"]["value"] == 100.0 and out.scores["toy/twopass"]["n"] == 6
    assert not any(p.startswith("THINK") for p in be.prompts)
    keys = [r["key"] for r in store.rows("toy/twopass")]
    assert len(keys) == len(set(keys)) == 12
    per = [json.loads(x) for x in (tmp_path / "r/toy/twopass/per_sample.jsonl").read_text().splitlines()]
    assert [p["prediction"] for p in per] == [str(11 * i) for i in range(6)]
