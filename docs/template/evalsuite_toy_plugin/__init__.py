"""The task template: a complete evalsuite plugin with two tasks, one metric and one backend.

Copy ``docs/template/`` to start a benchmark of your own (docs/extending.md walks through it). The test suite
uses this very package as its third-party plugin (tests/conftest.py puts this folder on ``PYTHONPATH``), so
what the guide describes is what the tests run.

The entry points are declared in ``pyproject.toml`` (``pip install -e .`` makes them visible). The folder
``evalsuite_toy_plugin-0.1.dist-info/`` holds the same declarations in the layout an installed package has,
so the tests find the plugin by putting this folder on ``sys.path`` without installing it; delete it in
your copy.
"""

from __future__ import annotations

import random
from typing import Sequence

from evalsuite.backends import BaseBackend
from evalsuite.contracts import OfficialFormat
from evalsuite.metrics import MeanMetric
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Generation, Request, Sample


# -- a metric ----------------------------------------------------------------------------------------------
# MeanMetric: the corpus value is the mean of sample_score() x 100, signed "toy_exact|scale:100|v:1". Bump
# ``version`` whenever the number could change for the same predictions.

class ExactMatch(MeanMetric):
    name = "toy_exact"

    def sample_score(self, record) -> float:
        return float(record.prediction.strip() == str(record.sample.target))


# -- a task ------------------------------------------------------------------------------------------------
# ``name`` as registered, ``version`` (bump it, and add a line to README.md's Changelog, whenever prompts,
# data, extraction or metrics change a number), ``options`` (the -T key=value it accepts, parsed once into
# self.opts; read them, never write them). OfficialFormat: `evalsuite score-file` reads the benchmark's own
# prediction files through official_records().

class Addition(BaseTask, OfficialFormat):
    """Add two numbers (a deterministic toy task)."""

    name = "toy/addition"
    version = "1"
    options = {"n": Option(int, 40, "number of samples"), "seed": Option(int, 7, "generator seed")}

    def samples(self):
        # Samples are deterministic (same options -> same samples, same prompt hashes). ``target`` and
        # ``metadata`` are kept in the samples log for scoring; ``input`` is not.
        rng = random.Random(self.opts["seed"])
        for i in range(self.opts["n"]):
            a, b = rng.randint(0, 99), rng.randint(0, 99)
            yield Sample(id=f"add-{i}", index=i, input={"a": a, "b": b}, target=str(a + b),
                         metadata={"a": a, "b": b})

    def request(self, sample: Sample) -> Request:
        # Request.new: the runner stamps the task name, sample id and index. max_tokens is always explicit.
        q = f"What is {sample.input['a']} + {sample.input['b']}? Answer with the number only."
        return Request.new(q, GenParams(max_tokens=8))

    def metrics(self):
        return [ExactMatch()]

    def gold(self, sample: Sample) -> str:
        # What a perfect model answers: `--backend gold` must reach every metric's maximum with it
        # (tests/engine/test_conformance.py checks this for every registered task).
        return str(sample.target)

    def official_records(self, rows):
        from evalsuite.types import Record

        return [Record(Sample(id=str(i), index=i, input=None, target=str(r["answer"])), str(r["pred"]),
                       Generation(str(r["pred"]), "stop")) for i, r in enumerate(rows)]


class Upper(Addition):
    name = "toy/upper"

    def samples(self):
        for i, w in enumerate(["alpha", "beta", "gamma", "delta"]):
            yield Sample(id=f"up-{i}", index=i, input=w, target=w.upper())

    def request(self, sample: Sample) -> Request:
        return Request.new(f"Uppercase: {sample.input}", GenParams(max_tokens=8))


# -- registration: the "evalsuite.tasks" entry point --------------------------------------------------------
# The registry calls register(registry) the first time a toy task is looked up. A task class is checked
# against the capabilities it declares here (a declared capability without its method fails at once).

def register(registry) -> None:
    registry.add_task("toy/addition", Addition, Addition.__doc__)
    registry.add_task("toy/upper", Upper, "Uppercase a word")
    registry.add_group("toy", ["toy/addition", "toy/upper"])


# -- a backend: the "evalsuite.backends" entry point ---------------------------------------------------------
# Built as ReverseBackend(model=<--model>, **<-B options>); generate() takes a batch of requests and returns
# one Generation per request, in order. A failure is Generation.failed(message), not an exception.

class ReverseBackend(BaseBackend):
    """Answers with the prompt reversed (a plugin backend)."""

    def __init__(self, model=None, **options):
        self.id = "toy-reverse"

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [Generation(str(r.prompt)[::-1], "stop") for r in requests]
