"""DeltaBench (OpenStellarTeam/DeltaBench, ACL 2025): find the erroneous sections of a long chain of thought.

``register(registry)`` adds the task ``deltabench``: the model under test is the critic. Its prompt is the
official ``critic_judge_prompt`` (``critic_judge_prompt.txt``, byte-exact), filled by plain replacement of
``{{question}}`` and ``{{model_output}}`` (the record's ``sections_content``, else ``section_content``),
sent as one user message. Greedy by default (upstream samples at T=1.0, top_p 0.8); think blocks are
removed by the runner before parsing. Metrics: see ``_metric.py`` and tasks/deltabench/README.md.

Data: by default ``data/Deltabench_v1.jsonl`` of the official GitHub repository at a pinned commit, checked
against its git blob id (:data:`SOURCE`; the Hugging Face copy ``OpenStellarTeam/DeltaBench`` could not be
pinned to a revision here); or ``-T data_file=Deltabench_v1.jsonl`` / ``-T data_dir=<folder holding it>``.
Offline without a copy it fails at once, naming ``evalsuite data fetch`` and the options.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds
from evalsuite.data import hash_paths, local_data, resolve
from evalsuite.datafiles import read_records
from evalsuite.errors import UserError
from evalsuite.sources import GITHUB, Need, RemoteFile, Source, resolve_need
from evalsuite.task import BaseTask, Option, parse_bool
from evalsuite.options import positive_int
from evalsuite.types import GenParams, Request, Sample, sha256_text

from ._metric import DeltaBenchMetric

HERE = Path(__file__).resolve().parent
PROMPT_FILE = HERE / "critic_judge_prompt.txt"
HUB_ID = "OpenStellarTeam/DeltaBench"
HUB_FILE = "Deltabench_v1.jsonl"
SOURCE = Source(
    id="deltabench", host=GITHUB, repo="OpenStellarTeam/DeltaBench", revision="6b67c64ad177553ec73f85ff98b18b0e6627341f",
    files=(RemoteFile("data/Deltabench_v1.jsonl", git_blob="d41b2bbca025b5b048a98f3e746b65cd2d3eaf7b"),),
    license="none stated (no LICENSE file in the repository)", page="https://github.com/OpenStellarTeam/DeltaBench",
    note="commit 6b67c64 \"[ADD] add data\"; pinned by the git blob id in the repository tree (the blob itself was "
         "not available here, so its sha256 is recorded on first use)")
NEED = Need(SOURCE, "data/Deltabench_v1.jsonl")
DOMAINS = ("math", "code", "Physics&Chemistry&Biology", "general")
_SECTION_HEAD = re.compile(r"(?m)^section\d+:")


def gold_sections(row: Mapping[str, Any]) -> list[int]:
    """``reason_error_section_numbers`` ∪ ``reason_unuseful_section_numbers`` (never the per-section labels,
    whose count often differs from the real sections: LivingFutureLab/DeltaBench#4)."""
    return sorted({int(x) for x in (row.get("reason_error_section_numbers") or [])}
                  | {int(x) for x in (row.get("reason_unuseful_section_numbers") or [])})


def n_sections(row: Mapping[str, Any]) -> int:
    secs = row.get("sections")
    if isinstance(secs, list) and secs:
        return len(secs)
    return len(_SECTION_HEAD.findall(row.get("sections_content") or row.get("section_content") or ""))


class DeltaBenchTask(BaseTask, DataNeeds):
    name = "deltabench"
    version = "2"
    description = "DeltaBench: critic finds erroneous sections of long CoTs (macro section P/R/F1, per domain)"
    options: Mapping[str, Option] = {
        "data_file": Option(str, None, "Deltabench_v1.jsonl (official JSONL schema)"),
        "data_dir": Option(str, None, "folder holding Deltabench_v1.jsonl"),
        "domains": Option(str, None, "only these task_l1 domains, comma-separated (math, code, "
                          "Physics&Chemistry&Biology, general)"),
        "max_tokens": Option(positive_int, 8192, "critic generation budget (thinking critics need more; "
                             "up to 32768)"),
        "temperature": Option(float, 0.0, "0 = greedy (upstream: 1.0 with top_p 0.8)"),
        "top_p": Option(float, 1.0, "nucleus sampling mass"),
        "chat_template": Option(parse_bool, True, "send the prompt as one user message (upstream: chat API)"),
        "mode": Option(str, "critic", "critic (the model reads the sections and names the wrong ones); "
                       "a PRM mode is not implemented yet"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        if self.opts["mode"] != "critic":
            raise UserError("deltabench: only -T mode=critic is implemented (PRM mode needs reward scores)")
        self.template = PROMPT_FILE.read_text(encoding="utf-8")
        self._source: dict[str, Any] | None = None

    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [NEED]

    def _rows(self) -> list[dict[str, Any]]:
        if not local_data(self.opts["data_dir"], self.opts["data_file"]):
            got = resolve_need(self.name, NEED, self.opts["data_dir"])
            path, self._source = got.path, {"kind": "source", **got.record}
        else:
            src = resolve(self.name, self.opts["data_dir"], self.opts["data_file"], HUB_ID,
                          (HUB_FILE, "*.jsonl"))
            if src.kind == "file":
                path = src.path
            else:
                cands = sorted(src.path.rglob(HUB_FILE)) or sorted(src.path.rglob("*.jsonl"))
                if len(cands) != 1:
                    raise UserError(f"deltabench: {src.path} holds {len(cands)} candidate JSONL files; pass "
                                    "-T data_file=")
                path = cands[0]
            self._source = {**src.describe(), "file": str(path), "sha256": hash_paths([path])}
        rows = [r for r in read_records(path, self.name, "jsonl") if "question" in r]
        if not rows:
            raise UserError(f"{self.name}: no samples in {path} (no record has a 'question')")
        return rows

    def samples(self) -> Iterator[Sample]:
        want = None
        if self.opts["domains"]:
            want = {d.strip() for d in self.opts["domains"].split(",") if d.strip()}
        for i, row in enumerate(self._rows()):
            if want is not None and row.get("task_l1") not in want:
                continue
            content = row.get("sections_content", row.get("section_content"))
            if not isinstance(content, str) or not isinstance(row["question"], str):
                raise UserError(f"deltabench: record {i} needs a string question and a string sections_content "
                                "(or section_content)")
            sid = row.get("id")
            yield Sample(id=str(sid) if sid else f"deltabench-{i}", index=i,
                         input={"question": row["question"], "sections_content": content},
                         target=gold_sections(row),
                         metadata={"domain": row.get("task_l1"), "subdomain": row.get("task_l2"),
                                   "origin": row.get("origin"), "n_sections": n_sections(row),
                                   "error_type": row.get("error_type")})

    def prompt(self, sample: Sample) -> str:
        return self.template.replace("{{question}}", sample.input["question"]).replace(
            "{{model_output}}", sample.input["sections_content"])

    def request(self, sample: Sample) -> Request:
        params = GenParams(max_tokens=self.opts["max_tokens"], temperature=self.opts["temperature"],
                           top_p=self.opts["top_p"])
        return Request.new(prompt=self.prompt(sample),
                       params=params, use_chat_template=bool(self.opts["chat_template"]))

    def metrics(self) -> Sequence[Any]:
        return [DeltaBenchMetric("official", "f1"), DeltaBenchMetric("official", "precision"),
                DeltaBenchMetric("official", "recall"), DeltaBenchMetric("strict", "f1"),
                DeltaBenchMetric("trivial", "f1")]

    def gold(self, sample: Sample) -> str:
        return "Conclusion: yes\n" + "".join(f"Error Section Number: {n}\nExplanation: labelled erroneous.\n"
                                             for n in sample.target)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"benchmark": "DeltaBench (OpenStellarTeam/DeltaBench@6b67c64)",
                  "prompt_sha256": sha256_text(self.template), "data": self._source,
                  "generation": {"max_tokens": self.opts["max_tokens"], "temperature": self.opts["temperature"],
                                 "top_p": self.opts["top_p"]}})
        return d


def summarize(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The leaderboard's per-domain columns: official macro F1 per ``task_l1`` (and the strict one)."""
    s = scores.get("deltabench")
    out: list[dict[str, Any]] = []
    for m in (s or {}).get("metrics", []):
        if m["name"] not in ("macro_f1", "strict_macro_f1"):
            continue
        label = "F1" if m["name"] == "macro_f1" else "strict F1"
        for domain, v in ((m.get("details") or {}).get("per_domain") or {}).items():
            out.append({"name": f"deltabench {domain} {label}", "value": round(v["macro_f1"], 2), "n": v["n"]})
    return out


def register(registry: Any) -> None:
    registry.add_task(DeltaBenchTask.name, DeltaBenchTask, DeltaBenchTask.description)
    registry.add_summary("deltabench", summarize)
