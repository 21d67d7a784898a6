"""A third-party plugin used by the tests: one task group and one backend, declared through entry points
in ``evalsuite_toy_plugin-0.1.dist-info/entry_points.txt`` (a real installed-distribution layout, found
by importlib.metadata when this folder is on sys.path)."""

from __future__ import annotations

import random
from typing import Sequence

from evalsuite.backends import BaseBackend
from evalsuite.contracts import OfficialFormat
from evalsuite.metrics import MeanMetric
from evalsuite.task import BaseTask, Option
from evalsuite.types import GenParams, Generation, Request, Sample


class ExactMatch(MeanMetric):
    name = "toy_exact"

    def sample_score(self, record) -> float:
        return float(record.prediction.strip() == str(record.sample.target))


class Addition(BaseTask, OfficialFormat):
    """Add two numbers (a deterministic toy task)."""

    name = "toy/addition"
    version = "1"
    options = {"n": Option(int, 40, "number of samples"), "seed": Option(int, 7, "generator seed")}

    def samples(self):
        rng = random.Random(self.opts["seed"])
        for i in range(self.opts["n"]):
            a, b = rng.randint(0, 99), rng.randint(0, 99)
            yield Sample(id=f"add-{i}", index=i, input={"a": a, "b": b}, target=str(a + b),
                         metadata={"a": a, "b": b})

    def request(self, sample: Sample) -> Request:
        q = f"What is {sample.input['a']} + {sample.input['b']}? Answer with the number only."
        return Request.new(q, GenParams(max_tokens=8))

    def metrics(self):
        return [ExactMatch()]

    def gold(self, sample: Sample) -> str:
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


def register(registry) -> None:
    registry.add_task("toy/addition", Addition, Addition.__doc__)
    registry.add_task("toy/upper", Upper, "Uppercase a word")
    registry.add_group("toy", ["toy/addition", "toy/upper"])


class ReverseBackend(BaseBackend):
    """Answers with the prompt reversed (a plugin backend)."""

    def __init__(self, model=None, **options):
        self.id = "toy-reverse"

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [Generation(str(r.prompt)[::-1], "stop") for r in requests]
