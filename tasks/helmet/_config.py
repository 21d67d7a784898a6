"""HELMET's run configurations, read from the copies of its ``configs/*.yaml`` in ``configs/``.

Each category has a long config (128K) and a ``_short`` one (8K-64K). A config lists datasets, test files,
demo files, input and generation lengths position by position, plus settings shared by all its datasets
(``use_chat_template``, ``shots``, ``stop_new_line``, ``max_test_samples``). :func:`specs` folds the two
files of every category into one :class:`DatasetSpec` per dataset with its five lengths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"
CATEGORY_FILES = {"recall": "recall", "rag": "rag", "rerank": "rerank", "cite": "cite", "longqa": "longqa",
                  "summ": "summ", "icl": "icl"}
"""Category -> config stem (``<stem>.yaml`` for 128K, ``<stem>_short.yaml`` for 8K-64K)."""
LENGTHS = (8192, 16384, 32768, 65536, 131072)


@dataclass(frozen=True)
class LengthSpec:
    """One dataset at one input length, as a config line lists it."""

    dataset: str
    """HELMET's dataset name at this length (e.g. ``narrativeqa_7892``, ``icl_trec_coarse_400shot_balance``)."""
    test_file: str
    demo_file: str
    generation_max_length: int


@dataclass(frozen=True)
class DatasetSpec:
    base: str
    category: str
    use_chat_template: bool
    shots: int
    stop_new_line: bool
    max_test_samples: int
    lengths: dict[int, LengthSpec] = field(default_factory=dict)
    config_files: tuple[str, ...] = ()


_SUFFIXED = ("narrativeqa", "infbench_", "multi_lexsum", "alce_")


def base_name(dataset: str) -> str:
    """The dataset without its per-length suffix: ``narrativeqa_7892`` -> ``narrativeqa``,
    ``icl_banking77_360shot_balance`` -> ``icl_banking77``, ``alce_asqa_30`` -> ``alce_asqa``; names whose
    digits are part of the name (``ruler_niah_mk_2``, ``kilt_popqa_3``) are kept."""
    if dataset.startswith("icl_"):
        return re.sub(r"_\d+shot(_balance)?$", "", dataset)
    if dataset.startswith(_SUFFIXED):
        return re.sub(r"_\d+$", "", dataset)
    return dataset


def _split(v: object) -> list[str]:
    return [x.strip() for x in str(v).split(",")]


@lru_cache(maxsize=1)
def specs() -> dict[str, DatasetSpec]:
    import yaml

    out: dict[str, DatasetSpec] = {}
    for category, stem in CATEGORY_FILES.items():
        for fname in (f"{stem}_short.yaml", f"{stem}.yaml"):
            cfg = yaml.safe_load((CONFIGS / fname).read_text(encoding="utf-8"))
            names = _split(cfg["datasets"])
            n = len(names)

            def col(key: str) -> list[str]:
                vals = _split(cfg[key])
                return vals * n if len(vals) == 1 else vals

            for ds, test, demo, L, g in zip(names, col("test_files"), col("demo_files"),
                                            col("input_max_length"), col("generation_max_length")):
                base = base_name(ds)
                spec = out.get(base)
                if spec is None:
                    spec = out[base] = DatasetSpec(base, category, bool(cfg["use_chat_template"]), int(cfg["shots"]),
                                                   bool(cfg["stop_new_line"]), int(cfg["max_test_samples"]))
                if fname not in spec.config_files:
                    object.__setattr__(spec, "config_files", spec.config_files + (fname,))
                spec.lengths[int(L)] = LengthSpec(ds, test, demo, int(g))
    return out
