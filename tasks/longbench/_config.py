"""LongBench v1's benchmark definitions: the official config files (byte-exact, in ``config/``) and the
facts about each dataset that upstream keeps in code (``LongBench/pred.py``, ``LongBench/README.md``).

* ``config/dataset2prompt.json``: the prompt template per dataset, filled with ``template.format(**row)``.
* ``config/dataset2maxlen.json``: max new tokens per dataset.
* ``config/model2maxlen.json``: upstream's truncation budget per reference model (context - 500), used by
  ``-T max_length=official``; otherwise kept for provenance and recorded in ``describe()``.
* ``config/model2path.json``: upstream's reference model names -> Hugging Face ids, so that
  ``-T max_length=official`` finds a model given by its hub id (or a folder named like it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CONFIG_FILES = ("dataset2prompt", "dataset2maxlen", "model2maxlen")

HUB_ID = "THUDM/LongBench"
"""Hugging Face dataset: one config per dataset id (``<id>_e`` for LongBench-E), split ``test``."""


@dataclass(frozen=True)
class DatasetInfo:
    category: str
    """The README's task category (its tables average per category)."""
    language: str
    """``en``, ``zh`` or ``code`` (the code sets count in both the English and the Chinese table)."""


# The 21 v1 datasets in pred.py's order, with the README's categories.
DATASETS: Mapping[str, DatasetInfo] = {
    "narrativeqa": DatasetInfo("Single-Document QA", "en"),
    "qasper": DatasetInfo("Single-Document QA", "en"),
    "multifieldqa_en": DatasetInfo("Single-Document QA", "en"),
    "multifieldqa_zh": DatasetInfo("Single-Document QA", "zh"),
    "hotpotqa": DatasetInfo("Multi-Document QA", "en"),
    "2wikimqa": DatasetInfo("Multi-Document QA", "en"),
    "musique": DatasetInfo("Multi-Document QA", "en"),
    "dureader": DatasetInfo("Multi-Document QA", "zh"),
    "gov_report": DatasetInfo("Summarization", "en"),
    "qmsum": DatasetInfo("Summarization", "en"),
    "multi_news": DatasetInfo("Summarization", "en"),
    "vcsum": DatasetInfo("Summarization", "zh"),
    "trec": DatasetInfo("Few-shot Learning", "en"),
    "triviaqa": DatasetInfo("Few-shot Learning", "en"),
    "samsum": DatasetInfo("Few-shot Learning", "en"),
    "lsht": DatasetInfo("Few-shot Learning", "zh"),
    "passage_count": DatasetInfo("Synthetic Task", "en"),
    "passage_retrieval_en": DatasetInfo("Synthetic Task", "en"),
    "passage_retrieval_zh": DatasetInfo("Synthetic Task", "zh"),
    "lcc": DatasetInfo("Code Completion", "code"),
    "repobench-p": DatasetInfo("Code Completion", "code"),
}

E_DATASETS: tuple[str, ...] = (
    "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec", "triviaqa",
    "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p",
)
"""LongBench-E (``pred.py --e``), in pred.py's order."""

NO_CHAT_TEMPLATE = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})
"""pred.py sends these raw ("chat models are better off without build prompts on these tasks")."""

NEWLINE_STOP = frozenset({"samsum"})
"""pred.py also ends generation at the "\\n" token here (and forces >= 1 new token)."""


@dataclass(frozen=True)
class Config:
    prompts: Mapping[str, str]
    max_new_tokens: Mapping[str, int]
    model_max_length: Mapping[str, int]
    sha256: Mapping[str, str]
    """File stem -> sha256 of the file bytes (recorded in the run manifest)."""


@lru_cache(maxsize=1)
def config() -> Config:
    data, sha = {}, {}
    for stem in CONFIG_FILES:
        raw = (CONFIG_DIR / f"{stem}.json").read_bytes()
        data[stem] = json.loads(raw.decode("utf-8"))
        sha[stem] = hashlib.sha256(raw).hexdigest()
    return Config(prompts=data["dataset2prompt"], max_new_tokens=data["dataset2maxlen"],
                  model_max_length=data["model2maxlen"], sha256=sha)


@dataclass(frozen=True)
class OfficialBudget:
    key: str
    """The ``model2maxlen`` entry (upstream's model name)."""
    max_length: int
    matched: str
    """How the model was matched: ``name``, ``hub_id``, ``folder_name`` or ``explicit``."""


@lru_cache(maxsize=1)
def _model2path() -> Mapping[str, str]:
    return json.loads((CONFIG_DIR / "model2path.json").read_bytes().decode("utf-8"))


def official_budget(model: str | None, explicit_key: str | None = None) -> OfficialBudget:
    """Upstream's ``max_length`` for a model: ``model2maxlen[key]``, the key being ``explicit_key`` when given,
    else the model's name itself, else the entry whose ``model2path`` hub id equals the model (or whose
    hub id's last part is the model folder's name).

    Raises:
        KeyError: no entry matches (the message lists the table's names).
    """
    table = config().model_max_length
    paths = _model2path()
    if explicit_key is not None:
        if explicit_key in table:
            return OfficialBudget(explicit_key, int(table[explicit_key]), "explicit")
        raise KeyError(explicit_key)
    name = (model or "").strip().rstrip("/")
    if name in table:
        return OfficialBudget(name, int(table[name]), "name")
    for key, hub in paths.items():
        if key in table and name == hub:
            return OfficialBudget(key, int(table[key]), "hub_id")
    base = name.rsplit("/", 1)[-1]
    hits = [k for k, hub in paths.items() if k in table and base and hub.rsplit("/", 1)[-1] == base]
    if len(hits) == 1:
        return OfficialBudget(hits[0], int(table[hits[0]]), "folder_name")
    raise KeyError(name)
