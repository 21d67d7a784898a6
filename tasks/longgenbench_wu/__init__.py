"""LongGenBench by Wu et al. (ICLR 2025; repo mozhu621/LongGenBench@62c0e86): long structured generation.

``register(registry)`` adds ``longgenbench_wu/short`` (``Dataset_short.json``, 16K-token budget) and
``longgenbench_wu/long`` (``Dataset_long.json``, 32K). Each record's ``prompt`` is sent as released, as a raw
completion (no chat template) ending in the first unit header; ``-T chat_template=true`` wraps it as one
user message instead. Stop string ``*** finished``. The completion is prefixed with the record's
``prefix`` before parsing (as upstream). The judged metrics need ``--judge-backend`` (see docs/judge.md);
completion rate needs none. See ``_metric.py`` and tasks/longgenbench_wu/README.md.

Data: by default ``Dataset/Dataset_<setting>.json`` of the GitHub repository at the pinned commit
(:data:`SOURCE`, sha256 + git blob pins), fetched once into the evalsuite data cache; or
``-T data_dir=<folder with Dataset_<setting>.json, e.g. the repo's Dataset/>`` /
``-T data_file=<one Dataset_*.json>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds
from evalsuite.data import data_path
from evalsuite.datafiles import check_fields, read_records
from evalsuite.registry import family_class
from evalsuite.sources import GITHUB, Need, RemoteFile, Source
from evalsuite.task import BaseTask, Option, parse_bool
from evalsuite.options import positive_int
from evalsuite.types import GenParams, Generation, Request, Sample

from ._metric import JUDGED, KINDS, CompletionRate, JudgedMetric

HUB_ID = "mozhu/LongGenBench"
SOURCE = Source(
    id="longgenbench_wu", host=GITHUB, repo="mozhu621/LongGenBench", revision="62c0e869219c225671a0b8f50217b0cd836b882b",
    files=(RemoteFile("Dataset/Dataset_short.json", size=1474710, git_blob="1a4d96a91531e5e01f383b5077298900685bf86d",
                      sha256="3cf98c4badc330a93d1010f57f6658b09f2ebc2e6428a3df083b652d902d96e8"),
           RemoteFile("Dataset/Dataset_long.json", size=1244214, git_blob="2073608ea4cfa3bc9eacfe89f791bf673562141a",
                      sha256="f61048da5ecfb1b717584af8b2dc5999198459e9b95aceedde2dcc6f5cdd35e7")),
    license="none stated in the repository (a third-party catalogue lists CC-BY-ND-4.0 for the HF copy)",
    page="https://github.com/mozhu621/LongGenBench",
    note="sha256 of shared/data/longgenbench-wu copies whose git blob ids equal the repository's at the pinned "
         "commit; the Hugging Face copy mozhu/LongGenBench could not be pinned to a revision here")
STOP = "*** finished"
SETTINGS = {"short": 16000, "long": 32000}
"""Setting -> the repo's max_tokens for it."""


class LongGenBenchWuTask(BaseTask, DataNeeds):
    setting = "short"
    version = "1"
    options: Mapping[str, Option] = {
        "data_file": Option(str, None, "one Dataset_<setting>.json file as released"),
        "data_dir": Option(str, None, "folder holding Dataset_short.json / Dataset_long.json (any depth)"),
        "chat_template": Option(parse_bool, False, "wrap the prompt in the chat template (default: raw "
                                "completion, as the repo's inference.py)"),
        "max_tokens": Option(positive_int, None, "generation budget (default 16000 short, 32000 long, as the repo)"),
        "temperature": Option(float, 0.0, "0 = greedy (paper); the repo samples at 0.95"),
        "top_p": Option(float, 1.0, "nucleus mass (repo: 0.95)"),
        "seed": Option(int, 0, "sampling seed (repo: 6211027)"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        if self.opts["max_tokens"] is None:
            self.opts["max_tokens"] = SETTINGS[self.setting]
        self._source: dict[str, Any] | None = None

    @property
    def file_name(self) -> str:
        return f"Dataset_{self.setting}.json"

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [Need(SOURCE, f"Dataset/Dataset_{cls.setting}.json")]

    def _path(self) -> Path:
        path, self._source = data_path(self.name, Need(SOURCE, f"Dataset/{self.file_name}"), self.opts["data_dir"],
                                       self.opts["data_file"], self.file_name)
        return path

    def samples(self) -> Iterator[Sample]:
        path = self._path()
        rows = read_records(path, self.name, "json")
        check_fields(rows, {"prompt": str, "type": str, "prefix": str, "number": (int, str)},
                     f"{self.name}: {path}", unit="record")
        for i, row in enumerate(rows):
            yield Sample(id=f"{self.setting}-{i}", index=i, input={"prompt": row["prompt"]},
                         target={f"checks_{k}": dict(row.get(f"checks_{k}") or {}) for k in KINDS},
                         metadata={"type": row["type"], "number": int(row["number"]), "prefix": row["prefix"]})

    def request(self, sample: Sample) -> Request:
        params = GenParams(max_tokens=self.opts["max_tokens"], temperature=self.opts["temperature"],
                           top_p=self.opts["top_p"], seed=self.opts["seed"], stop=(STOP,))
        return Request.new(prompt=sample.input["prompt"],
                       params=params, use_chat_template=bool(self.opts["chat_template"]))

    def extract(self, sample: Sample, generation: Generation) -> str:
        """The record's prefix + the completion (upstream parses exactly this)."""
        return sample.metadata["prefix"] + generation.text

    def metrics(self) -> Sequence[Any]:
        shared: dict[str, Any] = {}
        return [JudgedMetric("wavg", shared), CompletionRate(),
                *(JudgedMetric(n, shared) for n in JUDGED if n != "wavg")]

    def gold(self, sample: Sample) -> str:
        """A completion with a block for every unit that names every checked event of that unit."""
        unit_type, number = sample.metadata["type"], int(sample.metadata["number"])
        events: dict[int, list[str]] = {}
        for k in KINDS:
            for unit, desc in sample.target[f"checks_{k}"].items():
                events.setdefault(int(unit), []).append(desc)
        parts = []
        # a few records check a unit past ``number`` (Dataset_short.json rows 221, 228: Menu Week 53 of 52);
        # gold writes those units too
        for u in range(1, max([number, *events]) + 1):
            body = "; ".join(events.get(u, [])) or "An ordinary entry."
            parts.append(f"\n{body}\n" if u == 1 else f"#*# {unit_type} {u}:\n{body}\n")
        return "".join(parts)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "LongGenBench (Wu et al., mozhu621/LongGenBench@62c0e86)",
                  "setting": self.setting, "data": self._source, "stop": [STOP],
                  "max_tokens": self.opts["max_tokens"], "chat_template": bool(self.opts["chat_template"])})
        return d


def configs() -> dict[str, dict[str, Any]]:
    return {s: {"setting": s, "description": f"LongGenBench (Wu) {s}: long structured generation, "
                f"CR/STIC-1/STIC-2/wAvg (judge), {SETTINGS[s]} tokens"} for s in SETTINGS}


def _cls(setting: str) -> type[LongGenBenchWuTask]:
    """The task class of one setting (as registered)."""
    return family_class("longgenbench_wu", LongGenBenchWuTask, setting, configs()[setting])


def register(registry: Any) -> None:
    registry.add_family("longgenbench_wu", LongGenBenchWuTask, configs())
