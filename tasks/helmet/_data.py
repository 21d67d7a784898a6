"""Where HELMET's data comes from, how its files are read, and the sampling rules of HF ``datasets`` that
HELMET's loaders rely on, written out so that the same rows and demonstrations come out without
``datasets``.

Data: HELMET's release is the Hub dataset ``princeton-nlp/HELMET`` (one ``data.tar.gz`` of ~11 GB that
unpacks to ``data/``: ``ruler/``, ``json_kv/``, ``kilt/``, ``msmarco/``, ``alce/``, ``infbench/`` and
``multi_lexsum/`` key points). HELMET loads LongQA, Summ and ICL rows from other Hub datasets at run time;
here those are files in the same folder (layout in tasks/helmet/README.md). :data:`SOURCES` declares every
one of them in one place, for the data-on-demand engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from evalsuite.data import hash_paths
from evalsuite.errors import UserError

HELMET_COMMIT = "4526dfbdc512bd9ff721da336bff4e3e75ecfd27"

HELMET_HUB_REVISION = "c5b85e7f0d954ffe71b3fe5b6d1da17a11094b1b"
SOURCES: dict[str, dict[str, Any]] = {
    # Declared in the shape of the data-on-demand engine's records (``Source``: host/repo/revision/files;
    # ``ManualSource``: files/step), one entry per source; paths in ``files`` are relative to -T data_dir.
    "helmet": {
        "kind": "manual", "host": "hf", "repo": "princeton-nlp/HELMET", "repo_type": "dataset",
        "revision": HELMET_HUB_REVISION, "archive": "data.tar.gz", "archive_size": 11_271_916_108,
        "archive_sha256": "9d693981aa3c065b8b2ff82ddf946141cdc4ece4524f18bff6f3fbd2a86982d9",
        "files": ("ruler/", "json_kv/", "kilt/", "msmarco/", "alce/", "infbench/longbook_sum_eng_keypoints.jsonl",
                  "multi_lexsum/multi_lexsum_val.jsonl"),
        "step": f"download data.tar.gz of the Hugging Face dataset princeton-nlp/HELMET at revision "
                f"{HELMET_HUB_REVISION} (11.3 GB), unpack it (tar -xzf data.tar.gz) and pass "
                "-T data_dir=<the data/ folder>",
        "license": "HELMET: MIT; the data keep their sources' terms",
        "page": "https://huggingface.co/datasets/princeton-nlp/HELMET",
        "note": "size and sha256 as recorded by a third party, not verified here (no network); another "
                "third-party loader pins revision dddb209d03e38f1f0faf76d6d05ef4ccf96240ee. Not fetched "
                "automatically: an 11.3 GB archive (about 40 GB unpacked)."},
    # Hub datasets HELMET's data.py loads at run time, as local JSON lines files (one Hub row per line);
    # revisions are not pinned yet (no network here): the engine pins them on first fetch.
    "narrativeqa": {"kind": "hf", "repo": "deepmind/narrativeqa", "revision": None,
                    "loaded_as": 'load_dataset("narrativeqa")', "license": "Apache-2.0",
                    "files": {"train": "narrativeqa/train.jsonl", "test": "narrativeqa/test.jsonl"}},
    "infbench": {"kind": "hf", "repo": "xinrongzhang2022/InfiniteBench", "revision": None, "license": "Apache-2.0",
                 "loaded_as": 'load_dataset("xinrongzhang2022/infinitebench")',
                 "files": {"longbook_qa_eng": "infbench/longbook_qa_eng.jsonl",
                           "longbook_choice_eng": "infbench/longbook_choice_eng.jsonl",
                           "longbook_sum_eng": "infbench/longbook_sum_eng.jsonl"}},
    "multi_lexsum": {"kind": "hf", "repo": "allenai/multi_lexsum", "config": "v20230518", "revision": None,
                     "license": "ODC-By", "files": {"train": "multi_lexsum/train.jsonl",
                                                    "validation": "multi_lexsum/validation.jsonl",
                                                    "test": "multi_lexsum/test.jsonl"}},
    "trec": {"kind": "hf", "repo": "CogComp/trec", "revision": None,
             "files": {"train": "icl/trec/train.jsonl", "test": "icl/trec/test.jsonl"}},
    "banking77": {"kind": "hf", "repo": "PolyAI/banking77", "revision": None, "license": "CC-BY-4.0",
                  "files": {"train": "icl/banking77/train.jsonl", "test": "icl/banking77/test.jsonl"}},
    "clinic150": {"kind": "hf", "repo": "clinc_oos", "config": "plus", "revision": None, "license": "CC-BY-3.0",
                  "files": {"train": "icl/clinic150/train.jsonl", "validation": "icl/clinic150/validation.jsonl"}},
    "nlu": {"kind": "hf", "repo": "xingkunliuxtracta/nlu_evaluation_data", "revision": None, "license": "CC-BY-4.0",
            "files": {"train": "icl/nlu/train.jsonl"}},
    # The tokenizer HELMET pre-truncates LongQA/Summ documents with (``truncate_llama2``): -T doc_tokenizer=.
    "llama2_tokenizer": {"kind": "hf", "repo": "meta-llama/Llama-2-7b-hf", "repo_type": "model", "revision": None,
                         "files": ("tokenizer.json", "tokenizer_config.json"), "note": "gated on the Hub"},
}
"""Every data source of the HELMET tasks (tasks/helmet/README.md, "Data")."""


class DataRoot:
    """A folder laid out like HELMET's ``data/`` (``-T data_dir=``; the folder that holds ``data/`` works too)."""

    def __init__(self, task: str, data_dir: str | None):
        if not data_dir:
            raise UserError(f"{task}: HELMET's data is not downloaded automatically: {SOURCES['helmet']['step']} "
                            "(LongQA, Summ and ICL rows come from other Hub datasets, as JSON lines files in the "
                            "same folder: tasks/helmet/README.md)")
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise UserError(f"{task}: data folder {data_dir!r} does not exist or is not a folder")
        if (p / "data").is_dir() and not any((p / d).is_dir() for d in ("ruler", "kilt", "alce", "json_kv", "msmarco")):
            p = p / "data"
        self.task = task
        self.root = p.resolve()
        self.used: list[Path] = []

    def path(self, rel: str, what: str = "") -> Path:
        """A file under the root; ``rel`` may carry HELMET's ``data/`` prefix (as its configs write it)."""
        rel = rel[5:] if rel.startswith("data/") else rel
        p = (self.root / rel).resolve()
        if self.root not in p.parents:
            raise UserError(f"{self.task}: data path {rel!r} leaves the data folder")
        if not p.is_file():
            raise UserError(f"{self.task}: missing {what or 'data file'} {rel} under {self.root}"
                            " (layout: tasks/helmet/README.md)")
        if p not in self.used:
            self.used.append(p)
        return p

    def describe(self) -> dict[str, Any]:
        return {"kind": "dir", "path": str(self.root),
                "files": [str(p.relative_to(self.root)) for p in self.used],
                "sha256": hash_paths(self.used, self.root) if self.used else None}


def read_rows(path: Path, task: str) -> list[dict[str, Any]]:
    """Rows of a HELMET data file: JSON lines, a JSON list, or ``{"data": [...]}`` (``load_dataset("json",
    field="data")``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{task}: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{task}: cannot read {path}: {exc.strerror}") from None
    rows: Any
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = _loads(stripped, path, task)
    elif stripped.startswith("{") and path.suffix == ".json":
        doc = _loads(stripped, path, task)
        rows = doc.get("data") if isinstance(doc, dict) else None
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                rows.append(_loads(line, path, task, n))
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{task}: {path} must hold JSON objects (a JSON list, JSON lines or {{\"data\": [...]}})")
    return rows


def _loads(text: str, path: Path, task: str, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f"{path}:{line}" if line else str(path)
        raise UserError(f"{task}: {where}: not valid JSON ({str(exc)[:80]})") from None


class Row(dict):
    """A row whose missing keys read as None, as ``datasets`` fills columns a row lacks (so a template's
    ``{title}`` on a passage without one renders ``None``, as in HELMET)."""

    def __missing__(self, key: str) -> None:
        return None


def fmt(template: str, row: dict[str, Any], **extra: Any) -> str:
    """``template.format(**row, **extra)`` with missing keys rendered as ``None``."""
    return template.format_map(Row({**row, **extra}))


# -- HF datasets' sampling, written out -----------------------------------------------------------
def permutation(n: int, seed: int) -> list[int]:
    """``Dataset.shuffle(seed=seed)``: rows in the order of ``np.random.default_rng(seed).permutation(n)``."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def shuffled_first(n_rows: int, n: int | None, seed: int) -> list[int]:
    """``Dataset.shuffle(seed).select(range(min(n_rows, n)))`` as row indices (all rows in order when n is
    None: HELMET only shuffles when ``max_test_samples`` is set)."""
    if n is None:
        return list(range(n_rows))
    return permutation(n_rows, seed)[:min(n_rows, n)]


def sample_by_key(rows: Sequence[dict[str, Any]], key: str, n: int | None, seed: int) -> list[int]:
    """HELMET's question sampling (``load_qa``, ``load_msmarco_rerank``): ``random.sample`` of ``n`` of the
    sorted distinct ``key`` values from ``random.Random(seed)`` (HELMET: the global ``random`` just
    seeded), then every row with a drawn value, in file order."""
    if n is None:
        return list(range(len(rows)))
    import random

    keys = sorted({r.get(key) for r in rows})
    chosen = set(random.Random(seed).sample(keys, min(n, len(keys))))
    return [i for i, r in enumerate(rows) if r.get(key) in chosen]


class GlobalNumpyShuffles:
    """``Dataset.shuffle()`` without a seed, call after call: each takes a seed from NumPy's global
    generator state and advances it by one ``random()`` draw. HELMET's NarrativeQA and Multi-LexSum demos
    are drawn this way; their global state is seeded by ``transformers.set_seed(seed)`` when the model
    loads, so the sequence replayed here from ``np.random.RandomState(seed)`` is HELMET's when nothing else
    drew from that state in between."""

    def __init__(self, seed: int):
        import numpy as np

        self._rs = np.random.RandomState(seed)

    def next_seed(self) -> int:
        _, keys, pos, *_ = self._rs.get_state()
        seed = int(keys[pos] if pos < 624 else keys[0])
        self._rs.random_sample()
        return seed

    def permutation(self, n: int) -> list[int]:
        return permutation(n, self.next_seed())


def train_test_split(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """``Dataset.train_test_split(test_size, seed=seed)`` row indices: (train, test)."""
    import numpy as np

    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    perm = [int(i) for i in np.random.default_rng(seed).permutation(n)]
    return perm[n_test:n_test + n_train], perm[:n_test]


def first_unique(order: Iterable[int], rows: Sequence[dict[str, Any]], key: str, k: int) -> list[int]:
    """``drop_duplicates(shuffled, key).select(range(k))``: the first ``k`` rows of ``order`` whose ``key``
    value was not seen before."""
    seen: set[Any] = set()
    out: list[int] = []
    for i in order:
        v = rows[i].get(key)
        if v in seen:
            continue
        seen.add(v)
        out.append(i)
        if len(out) == k:
            break
    if len(out) < k:
        raise UserError(f"need {k} distinct demonstrations, found {len(out)}")
    return out


def sha_seed(text: str) -> int:
    """``int(sha256(text).hexdigest(), 16)`` (HELMET's deterministic per-sample seeds)."""
    import hashlib

    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
