"""The PunchBench task adapter: loading and validating records, prompting (zero-shot, few-shot, CoT,
SC-CoQ), the caption-only ablation, parsing and metrics. See tasks/punchbench/README.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from evalsuite.contracts import DataNeeds, MultiPass
from evalsuite.data import read_jsonl, resolve
from evalsuite.sources import ManualSource, Need
from evalsuite.errors import UserError
from evalsuite.multimodal import image_sha256, resolve_image
from evalsuite.task import BaseTask, Option, parse_bool
from evalsuite.options import choice, positive_int
from evalsuite.types import ContentPart, GenParams, Message, Request, Sample, sha256_text

from ._metric import Accuracy, JudgedAccuracy, ParseFailureRate
from ._parse import parse_letter, parse_yes_no

HERE = Path(__file__).resolve().parent
TEMPLATES_FILE = HERE / "templates.json"
HUB_ID = "RUBBISHLIKE/PunchBench"
SOURCE = ManualSource(
    id="punchbench", files=("dev0610/<Perception|Reasoning>/<File>.jsonl", "the images they name"),
    step="download the dev0610/ folder of the Hugging Face dataset RUBBISHLIKE/PunchBench (e.g. `hf download "
         "RUBBISHLIKE/PunchBench --repo-type dataset --include 'dev0610/*' --local-dir DIR`) and pass "
         "-T data_dir=DIR",
    license="CC BY-NC 4.0 per a secondary paper summary (not verified against a license file)",
    page="https://huggingface.co/datasets/RUBBISHLIKE/PunchBench",
    note="not fetched automatically: no revision of the hub repository could be pinned here and its full file "
         "list (the Yes_No and Generation files, the images) was not visible; the GitHub repository holds "
         "only a README")

LAYERS = ("perception", "reasoning")
VARIANTS = ("original", "synonymous", "antonymous")
# format -> (layer, Hub file name under dev0610/<Layer>/, number of options: 0 yes/no, -1 free text)
FORMATS: dict[str, tuple[str, str, int]] = {
    "perception_yes_no": ("perception", "Yes_No", 0),
    "perception_matching": ("perception", "Matching", 2),
    "perception_multi_option": ("perception", "Multi_Option", 4),
    "reasoning_yes_no": ("reasoning", "Yes_No", 0),
    "reasoning_matching": ("reasoning", "Matching", 2),
    "reasoning_generation": ("reasoning", "Generation", -1),
}
# SC-CoQ chains (simple to complex; the target question is always last)
INTRA = {"perception": ["perception_yes_no", "perception_matching", "perception_multi_option"],
         "reasoning": ["reasoning_yes_no", "reasoning_matching", "reasoning_generation"]}
INTER_PARTNER = {"perception_yes_no": "reasoning_yes_no", "reasoning_yes_no": "perception_yes_no",
                 "perception_matching": "reasoning_matching", "reasoning_matching": "perception_matching",
                 "perception_multi_option": "reasoning_generation",
                 "reasoning_generation": "perception_multi_option"}
PROMPTINGS = ("zero_shot", "few_shot", "cot", "sc_coq_intra", "sc_coq_inter")
FIELDS = ("id", "image", "caption_type", "caption", "question", "options", "answer")


def required_fields(fmt: str) -> tuple[str, ...]:
    base = ("id", "image", "caption_type", "question", "answer")
    n = FORMATS[fmt][2]
    if fmt.endswith("matching") and fmt.startswith("perception"):
        return base + ("options",)  # the two candidate captions are the options
    return base + ("caption",) + (("options",) if n > 0 else ())


def parse_field_map(text: str | None) -> dict[str, str]:
    """``ours=theirs,...`` -> {ours: theirs}; our names are the ones in FIELDS."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in FIELDS or not theirs.strip():
            raise ValueError(f"expected ours=theirs with ours in {', '.join(FIELDS)}; got {item!r}")
        out[ours.strip()] = theirs.strip()
    return out


def _canonical_answer(fmt: str, raw: Any, options: Sequence[str] | None) -> str:
    n = FORMATS[fmt][2]
    if n == -1:
        return str(raw)
    if n == 0:
        v = str(raw).strip().lower()
        if v in {"yes", "no"}:
            return v
        raise ValueError(f"a yes/no answer must be 'yes' or 'no', got {raw!r}")
    letters = "ABCD"[:n]
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= n:
        return letters[raw - 1]
    s = str(raw).strip()
    if s.strip("()").upper() in letters and len(s.strip("()")) == 1:
        return s.strip("()").upper()
    if s.isdigit() and 1 <= int(s) <= n:
        return letters[int(s) - 1]
    if options and s in options:
        return letters[list(options).index(s)]
    raise ValueError(f"answer {raw!r} is not an option letter (A-{letters[-1]}), 1-based index or option text")


def load_records(path: Path, fmt: str, field_map: Mapping[str, str], root: Path) -> list[dict[str, Any]]:
    """Read one format's JSONL, map fields to ours, validate every record. All problems are collected
    and raised as one UserError naming the file, the records and the missing or bad fields."""
    need = required_fields(fmt)
    n_opts = FORMATS[fmt][2]
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    missing_by_field: dict[str, list[int]] = {}
    for i, row in enumerate(read_jsonl(path)):
        rec = {ours: row.get(field_map.get(ours, ours)) for ours in FIELDS}
        missing = [f for f in need if rec.get(f) in (None, "", [])]
        for f in missing:
            missing_by_field.setdefault(f, []).append(i + 1)
        if missing:
            continue
        try:
            if rec["caption_type"] not in VARIANTS:
                raise ValueError(f"caption_type {rec['caption_type']!r} is not one of {', '.join(VARIANTS)}")
            if n_opts > 0:
                opts = rec["options"]
                if not isinstance(opts, list) or len(opts) != n_opts or not all(isinstance(o, str) for o in opts):
                    raise ValueError(f"options must be a list of {n_opts} strings")
            rec["answer"] = _canonical_answer(fmt, rec["answer"], rec.get("options"))
            rec["image"] = resolve_image(str(rec["image"]), root)
        except (ValueError, UserError) as exc:
            problems.append(f"record {i + 1}: {exc}")
            continue
        rec["id"] = str(rec["id"])
        out.append(rec)
    if missing_by_field or problems:
        parts = []
        for f, rows in missing_by_field.items():
            shown = ", ".join(map(str, rows[:5])) + (f" (+{len(rows) - 5} more)" if len(rows) > 5 else "")
            mapped = f" (read from field {field_map[f]!r})" if f in field_map else ""
            parts.append(f"missing field {f!r}{mapped} in record(s) {shown}")
        parts += problems[:10] + ([f"+{len(problems) - 10} more bad records"] if len(problems) > 10 else [])
        parts.append("expected fields: " + ", ".join(need)
                     + " (if the release names them differently pass -T field_map=ours=theirs,...)")
        # one line, as every user error
        raise UserError(f"punchbench/{fmt}: {path} does not match the expected schema: " + "; ".join(parts))
    return out


_prompting = choice(*PROMPTINGS)


class PunchBenchTask(BaseTask, MultiPass, DataNeeds):
    """One PunchBench format with one caption variant (set by subclasses: ``fmt``, ``variant``)."""

    fmt = "perception_yes_no"
    variant = "original"
    version = "1"
    primary_metric = "accuracy"
    group = "punchbench"
    options: Mapping[str, Option] = {
        "data_dir": Option(str, None, "folder holding the release as dev0610/<Perception|Reasoning>/<Format>.jsonl "
                           "(or <Perception|Reasoning>/<Format>.jsonl) with the images at the paths records name"),
        "field_map": Option(parse_field_map, {}, "ours=theirs,... when the release names fields differently "
                            "(ours: id, image, caption_type, caption, question, options, answer)"),
        "prompting": Option(_prompting, "zero_shot", "zero_shot, few_shot (3 shots from the same file), cot, "
                            "sc_coq_intra or sc_coq_inter (multi-turn chain of questions, image sent once)"),
        "caption_only": Option(parse_bool, False, "ablation: send no image (runs on text-only models)"),
        "n_shots": Option(positive_int, 3, "few-shot examples"),
        "max_tokens": Option(positive_int, None, "answer budget per turn (default: 16 for closed formats, "
                             "512 for cot and generation)"),
        "limit": Option(positive_int, None, "only the first N records"),
    }

    def __init__(self, **opts: Any):
        super().__init__(**opts)
        self.templates = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
        self._source: dict[str, Any] | None = None
        self._chains: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._shots: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    # -- data -------------------------------------------------------------------------------------------
    @classmethod
    def data_needs(cls, options: Mapping[str, Any]) -> list[Need]:
        return [Need(SOURCE, "dev0610/")]

    def _root(self) -> Path:
        if not self.opts["data_dir"]:
            raise UserError(f"{self.name}: PunchBench is not downloaded automatically: {SOURCE.step}")
        src = resolve(self.name, self.opts["data_dir"], None, HUB_ID, ("*.jsonl", "*"))
        self._source = src.describe()
        return src.path

    def _file(self, root: Path, fmt: str) -> Path:
        layer, stem, _ = FORMATS[fmt]
        for base in (root / "dev0610", root):
            p = base / layer.capitalize() / f"{stem}.jsonl"
            if p.is_file():
                return p
        raise UserError(f"{self.name}: no {layer.capitalize()}/{stem}.jsonl under {root} (or {root}/dev0610)")

    def _records(self, root: Path, fmt: str) -> list[dict[str, Any]]:
        recs = load_records(self._file(root, fmt), fmt, self.opts["field_map"], root)
        return [r for r in recs if r["caption_type"] == self.variant]

    def _chain_formats(self) -> list[str]:
        p = self.opts["prompting"]
        if p == "sc_coq_intra":
            chain = INTRA[FORMATS[self.fmt][0]]
            return chain[:chain.index(self.fmt) + 1]
        if p == "sc_coq_inter":
            return [INTER_PARTNER[self.fmt], self.fmt]
        return [self.fmt]

    def samples(self) -> Iterator[Sample]:
        root = self._root()
        recs = self._records(root, self.fmt)
        chain = self._chain_formats()
        others = {f: {r["id"]: r for r in self._records(root, f)} for f in chain[:-1]}
        shots_pool = recs
        for i, rec in enumerate(recs):
            if self.opts["limit"] and i >= self.opts["limit"]:
                break
            steps = []
            for f in chain[:-1]:
                if rec["id"] not in others[f]:
                    raise UserError(f"{self.name}: SC-CoQ needs the {f} record with id {rec['id']!r} "
                                    f"({self.variant} caption) but that file has none; the chain joins files by id")
                steps.append((f, others[f][rec["id"]]))
            steps.append((self.fmt, rec))
            self._chains[rec["id"]] = steps
            if self.opts["prompting"] == "few_shot":
                self._shots[rec["id"]] = [
                    (self.fmt, s) for s in shots_pool if s["id"] != rec["id"]][: self.opts["n_shots"]]
            yield Sample(id=rec["id"], index=i, input=rec, target=rec["answer"],
                         metadata={"format": self.fmt, "layer": FORMATS[self.fmt][0], "caption_type": self.variant,
                                   "prompting": self.opts["prompting"], "caption_only": self.opts["caption_only"],
                                   "image_sha256": image_sha256(rec["image"]),
                                   "chain": chain})

    # -- prompts ----------------------------------------------------------------------------------------
    def question_text(self, fmt: str, rec: Mapping[str, Any]) -> str:
        t = self.templates
        caption_line = t["caption_line"].replace("{caption}", rec.get("caption") or "") if rec.get("caption") else ""
        opts = rec.get("options") or []
        options = "\n".join(f"{'ABCD'[k]}. {o}" for k, o in enumerate(opts))
        text = (t["formats"][fmt].replace("{caption_line}", caption_line)
                .replace("{question}", rec["question"]).replace("{options}", options))
        if self.opts["prompting"] == "cot":
            text += t["cot_suffix"]
        return text

    def _user(self, fmt: str, rec: Mapping[str, Any], with_image: bool) -> Message:
        text = self.question_text(fmt, rec)
        if self.opts["caption_only"]:
            return Message("user", self.templates["no_image_note"] + text)
        if with_image:
            return Message("user", (ContentPart("image", image=rec["image"]), ContentPart("text", text=text)))
        return Message("user", text)

    def _max_tokens(self, fmt: str) -> int:
        if self.opts["max_tokens"]:
            return self.opts["max_tokens"]
        return 512 if (self.opts["prompting"] == "cot" or FORMATS[fmt][2] == -1) else 16

    def _turn(self, sample: Sample, k: int, answers: Sequence[str]) -> Request:
        steps = self._chains[sample.id]
        msgs: list[Message] = []
        if self.opts["prompting"] == "few_shot":
            for f, shot in self._shots[sample.id]:
                msgs += [self._user(f, shot, True), Message("assistant", self.gold_text(f, shot["answer"]))]
        for j in range(k + 1):
            f, rec = steps[j]
            msgs.append(self._user(f, rec, with_image=(j == 0)))
            if j < k:
                msgs.append(Message("assistant", answers[j]))
        f = steps[k][0]
        return Request.new(prompt=tuple(msgs),
                       params=GenParams(max_tokens=self._max_tokens(f)))

    def request(self, sample: Sample) -> Request:
        return self._turn(sample, 0, [])

    def next_request(self, sample: Sample, history: Sequence[tuple[Request, Any]]) -> Request | None:
        steps = self._chains[sample.id]
        if len(history) >= len(steps):
            return None
        return self._turn(sample, len(history), [g.text for _, g in history])

    # -- scoring ----------------------------------------------------------------------------------------
    def extract(self, sample: Sample, generation: Any) -> str:
        n = FORMATS[self.fmt][2]
        if n == -1:
            return generation.text
        return parse_yes_no(generation.text) if n == 0 else parse_letter(generation.text, n)

    def metrics(self) -> Sequence[Any]:
        if FORMATS[self.fmt][2] == -1:
            return [JudgedAccuracy()]
        return [Accuracy(), ParseFailureRate()]

    @staticmethod
    def gold_text(fmt: str, answer: str) -> str:
        return answer if FORMATS[fmt][2] == -1 else f"Answer: {answer}"

    def gold(self, sample: Sample) -> str:
        return self.gold_text(self.fmt, sample.target)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["options"]["field_map"] = dict(self.opts["field_map"])
        d.update({"benchmark": "PunchBench (OuyangKun10/PunchBench, data RUBBISHLIKE/PunchBench dev0610)",
                  "format": self.fmt, "caption_type": self.variant,
                  "templates_sha256": sha256_text(TEMPLATES_FILE.read_text(encoding="utf-8")),
                  "data": self._source})
        return d
