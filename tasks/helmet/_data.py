"""Where HELMET's data comes from and how its files are read, and the sampling rules of HF ``datasets`` that
HELMET's loaders rely on, written out so that the same rows and demonstrations come out without
``datasets``.

Data: HELMET's release is the Hub dataset ``princeton-nlp/HELMET`` (one ``data.tar.gz`` of 11.3 GB that
unpacks to ``data/``: ``ruler/``, ``json_kv/``, ``kilt/``, ``msmarco/``, ``alce/``, ``infbench/`` and
``multi_lexsum/`` key points). HELMET loads the LongQA, Summ and ICL rows from other Hub datasets at run time.
Every file a task reads is one :class:`Rows` record: where it sits in a ``-T data_dir`` folder laid out like
HELMET's ``data/`` (the Hub rows as JSON lines, one row per line: tasks/helmet/README.md) and the
:class:`~evalsuite.sources.Need` records the data engine fetches it from (a member of the archive, or the
files of a Hub dataset at a pinned revision). Two Hub datasets have no pinned machine-readable release that
could be established here (Multi-LexSum, NLU: loading scripts): they are :class:`~evalsuite.sources.ManualSource`
records with the exact step. Provenance of every pin: tasks/helmet/SOURCE.md.

Every file goes through the shared loader (:mod:`evalsuite.datafiles`): a bad file is one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from evalsuite.data import hash_paths, local_data
from evalsuite.datafiles import check_fields, inside, read_records
from evalsuite.errors import UserError
from evalsuite.sources import HF, ManualSource, Need, RemoteFile, Source, resolve_need

HELMET_COMMIT = "4526dfbdc512bd9ff721da336bff4e3e75ecfd27"

HELMET_HUB_REVISION = "c5b85e7f0d954ffe71b3fe5b6d1da17a11094b1b"
ARCHIVE = "data.tar.gz"
HELMET = Source(
    id="helmet", host=HF, repo="princeton-nlp/HELMET", revision=HELMET_HUB_REVISION,
    files=(RemoteFile(ARCHIVE, sha256="9d693981aa3c065b8b2ff82ddf946141cdc4ece4524f18bff6f3fbd2a86982d9",
                      size=11_271_916_108),),
    license="MIT (HELMET); the files keep their sources' terms",
    page="https://huggingface.co/datasets/princeton-nlp/HELMET",
    note="the original (v1) data.tar.gz its configs read, unpacked once into the cache (about 30 GB); revision, "
         "size and sha256 (the file's git-LFS id) as recorded by third-party pinned manifests "
         "(tasks/helmet/SOURCE.md), not verified here")


def _hf(id: str, repo: str, revision: str, files: Sequence[RemoteFile], license: str, note: str) -> Source:
    return Source(id=id, host=HF, repo=repo, revision=revision, files=tuple(files), license=license,
                  page=f"https://huggingface.co/datasets/{repo}", note=note)


_NARRATIVEQA_TEST = (  # (size, sha256) of data/test-0000i-of-00008.parquet, as a third-party manifest pins them
    (8559262, "638fe830caab599fd40333b5c6783a83e12e431de35c9dde730d329596456f66"),
    (44507679, "51acc457d81b38e4cfb048436a239fe415aafa9c559577456720774c0cc5b407"),
    (101411128, "83f7672070ca24edb5a2844271cfbb18f351fc1fd84be945411a6814a13eb2e3"),
    (221739348, "2b305c1ac27799d710172855265ba665b8fc258430a97a7994d976414db03021"),
    (60842742, "c69949be3fe1d57f1171f929f18646eb99410784162b15632e778085a15abb79"),
    (121182898, "38b87f8c0a4f0dc139808693bd019e2d0eb3a193f0b52fd52977b20b61f793c4"),
    (243201775, "d0c894370b0cd1462582e89d39924a4e66db5caf69fa8d9ecc75e80284e7091a"),
    (58520238, "c9eddfda2441b23a7828886c3dad94986e693b989bf663a324c69c87870f2c3b"))
NARRATIVEQA_TRAIN_SHARDS = 24
NARRATIVEQA = _hf(
    "helmet-narrativeqa", "deepmind/narrativeqa", "2e643e7363944af1c33a652d1c87320d0871c4e4",
    [RemoteFile(f"data/test-{i:05d}-of-00008.parquet", sha256=sha, size=size)
     for i, (size, sha) in enumerate(_NARRATIVEQA_TEST)]
    + [RemoteFile(f"data/train-{i:05d}-of-{NARRATIVEQA_TRAIN_SHARDS:05d}.parquet")
       for i in range(NARRATIVEQA_TRAIN_SHARDS)],
    "Apache-2.0 (annotations); the stories keep their own terms",
    "HELMET: load_dataset(\"narrativeqa\"); revision as pinned by several third parties (MTEB among them); test "
    "shards' sizes and sha256 from a third-party manifest; train shard names as third-party scripts download "
    "them, sha256 recorded on first use")
INFBENCH = _hf(
    "helmet-infbench", "xinrongzhang2022/InfiniteBench", "90f0394333616266d9fe85824ceaf505093cbaa5",
    [RemoteFile("longbook_qa_eng.jsonl", sha256="7f53a3aabd5445fa29f168914f13569c348406cfc88a3e495f3f2c13a0966ca4"),
     RemoteFile("longbook_choice_eng.jsonl"), RemoteFile("longbook_sum_eng.jsonl")],
    "Apache-2.0",
    "HELMET: load_dataset(\"xinrongzhang2022/infinitebench\"), one split per released JSON lines file; revision "
    "as pinned by third parties (HELM among them), longbook_qa_eng.jsonl's sha256 from a third-party script, the "
    "others recorded on first use")
TREC = _hf(
    "helmet-trec", "CogComp/trec", "65752bf53af25bc935a0dce92fb5b6c930728450",
    [RemoteFile("default/train/0000.parquet"), RemoteFile("default/test/0000.parquet")],
    "none stated on the dataset card",
    "HELMET: load_dataset(\"CogComp/trec\") (a loading script); this revision is the Hub's parquet conversion "
    "(refs/convert/parquet) as third parties pin it, one of which checked it row by row against the original "
    "TREC_10.label; sha256 recorded on first use")
BANKING77 = _hf(
    "helmet-banking77", "PolyAI/banking77", "796a4623935746f71378f0ebd435635a8ce08e50",
    [RemoteFile("data/train-00000-of-00001.parquet",
                sha256="4526edfa60622ff9b39e238657ab6d712f6aba1ba91c9d7ed7897b0715ee0390"),
     RemoteFile("data/test-00000-of-00001.parquet",
                sha256="535fc96c4c2b4c2dbdeb0d4b31f24a4859620cf663d6c19c1bd1f97450c410be")],
    "CC-BY-4.0",
    "HELMET: load_dataset(\"PolyAI/banking77\"); revision, paths and sha256 as a third-party manifest pins them")
CLINIC150 = _hf(
    "helmet-clinic150", "clinc/clinc_oos", "155b9c710419136e17307b80d0a13e68cd46b4ec",
    [RemoteFile("plus/train-00000-of-00001.parquet"),
     RemoteFile("plus/validation-00000-of-00001.parquet",
                sha256="fbd545b46c611c4a7ba4b48cae6c7f09bb5b59f33ff56206ad1cd366c85cdfaa")],
    "CC-BY-3.0",
    "HELMET: load_dataset(\"clinc_oos\", \"plus\"); revision and paths as two third parties pin them, the "
    "validation file's sha256 from one of them, the train file's recorded on first use")
MULTI_LEXSUM = ManualSource(
    id="helmet-multi_lexsum", files=("multi_lexsum/train.jsonl", "multi_lexsum/validation.jsonl",
                                     "multi_lexsum/test.jsonl", "multi_lexsum/multi_lexsum_val.jsonl"),
    step="HELMET loads allenai/multi_lexsum (config v20230518) through its loading script, which the datasets "
         "package runs only before version 4: with datasets<4, write each split as JSON lines "
         "(load_dataset(\"allenai/multi_lexsum\", name=\"v20230518\", trust_remote_code=True)[split]"
         ".to_json(\"<folder>/multi_lexsum/<split>.jsonl\") for train, validation, test), put "
         "multi_lexsum/multi_lexsum_val.jsonl from HELMET's data.tar.gz next to them and pass "
         "-T data_dir=<folder> (layout: tasks/helmet/README.md)",
    license="ODC-By (Multi-LexSum)", page="https://huggingface.co/datasets/allenai/multi_lexsum",
    note="no pinned machine-readable release could be established here")
NLU = ManualSource(
    id="helmet-nlu", files=("icl/nlu/train.jsonl",),
    step="HELMET loads xingkunliuxtracta/nlu_evaluation_data through its loading script, which the datasets "
         "package runs only before version 4: with datasets<4, load_dataset(\"xingkunliuxtracta/"
         "nlu_evaluation_data\", trust_remote_code=True)[\"train\"].to_json(\"<folder>/icl/nlu/train.jsonl\") "
         "and pass -T data_dir=<folder> (layout: tasks/helmet/README.md)",
    license="CC-BY-4.0", page="https://huggingface.co/datasets/xingkunliuxtracta/nlu_evaluation_data",
    note="no pinned machine-readable release could be established here")


@dataclass(frozen=True)
class Rows:
    """One file of rows a HELMET task reads: its place in a ``-T data_dir`` folder (HELMET's ``data/``
    layout) and the engine's records of where it comes from by default (several files are read in order and
    concatenated: a split in parquet shards)."""

    local: str
    """Path below the data folder (``kilt/nq-dev-multikilt_1000_k50_dep6.jsonl``, ``narrativeqa/test.jsonl``)."""
    needs: tuple[Need, ...]
    what: str
    """What the file is, for messages (``KILT test file``)."""
    columns: tuple[str, ...] | None = None
    """Parquet columns read (None: all)."""


def archive(rel: str, what: str) -> Rows:
    """A file of HELMET's ``data/`` (``rel`` as its configs write it, with or without ``data/``)."""
    rel = rel[5:] if rel.startswith("data/") else rel
    return Rows(rel, (Need(HELMET, ARCHIVE, member="data/" + rel),), what)


def _split(local: str, src: Source | ManualSource, paths: Sequence[str], what: str,
           columns: tuple[str, ...] | None = None) -> Rows:
    return Rows(local, tuple(Need(src, p) for p in paths), what, columns)


HUB: dict[str, dict[str, Rows]] = {
    # HELMET's Hub datasets, split by split: the local file (JSON lines, one Hub row per line) and the source
    "narrativeqa": {
        "test": _split("narrativeqa/test.jsonl", NARRATIVEQA, [f.path for f in NARRATIVEQA.files if "/test-" in f.path],
                       "NarrativeQA test split"),
        "train": _split("narrativeqa/train.jsonl", NARRATIVEQA,
                        [f.path for f in NARRATIVEQA.files if "/train-" in f.path], "NarrativeQA train split",
                        columns=("question", "answers"))},
    "infbench": {k: _split(f"infbench/{k}.jsonl", INFBENCH, [f"{k}.jsonl"], f"InfiniteBench {k} file")
                 for k in ("longbook_qa_eng", "longbook_choice_eng", "longbook_sum_eng")},
    "multi_lexsum": {k: _split(f"multi_lexsum/{k}.jsonl", MULTI_LEXSUM, [f"multi_lexsum/{k}.jsonl"],
                               f"Multi-LexSum {k} split") for k in ("train", "validation", "test")},
    "trec": {k: _split(f"icl/trec/{k}.jsonl", TREC, [f"default/{k}/0000.parquet"], f"TREC {k} split")
             for k in ("train", "test")},
    "banking77": {k: _split(f"icl/banking77/{k}.jsonl", BANKING77, [f"data/{k}-00000-of-00001.parquet"],
                            f"BANKING77 {k} split") for k in ("train", "test")},
    "clinic150": {k: _split(f"icl/clinic150/{k}.jsonl", CLINIC150, [f"plus/{k}-00000-of-00001.parquet"],
                            f"CLINC150 (plus) {k} split") for k in ("train", "validation")},
    "nlu": {"train": _split("icl/nlu/train.jsonl", NLU, ["icl/nlu/train.jsonl"], "NLU train split")},
}
"""Every Hub split a HELMET task reads (tasks/helmet/README.md, "Data")."""


def needs_of(files: Iterable[Rows]) -> list[Need]:
    """The engine records of ``files``, each once, manual sources first (a run that cannot get them stops
    before anything is downloaded)."""
    needs = list(dict.fromkeys(n for r in files for n in r.needs))
    return [n for n in needs if isinstance(n.source, ManualSource)] + \
        [n for n in needs if not isinstance(n.source, ManualSource)]


def _read(path: Path, task: str, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Rows of one file through the shared loader: ``.json`` a JSON list or ``{"data": [...]}`` (HELMET's
    ``load_dataset("json", field="data")``), ``.parquet``, anything else JSON lines."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_records(path, task, "json", array_key="data")
    if suffix == ".parquet":
        return read_records(path, task, "parquet", columns=columns)
    return read_records(path, task, "jsonl")


def _intern(rows: list[dict[str, Any]], seen: dict[str, str]) -> list[dict[str, Any]]:
    """NarrativeQA repeats its story in every question's row: one copy of each story text is kept."""
    for r in rows:
        doc = r.get("document")
        text = doc.get("text") if isinstance(doc, dict) else None
        if isinstance(text, str):
            prev = seen.setdefault(f"{doc.get('id')}:{hash(text)}", text)
            if prev is not text and prev == text:
                doc["text"] = prev
    return rows


class DataRoot:
    """Where a task's files come from; :meth:`rows` reads one :class:`Rows` record."""

    def __init__(self, task: str):
        self.task = task
        self.records: list[dict[str, Any]] = []
        self._interned: dict[str, str] = {}

    def rows(self, spec: Rows, fields: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _check(self, rows: list[dict[str, Any]], fields: Mapping[str, Any] | None, path: Path) -> list[dict[str, Any]]:
        if fields:
            check_fields(rows, fields, f"{self.task}: {path}")
        return _intern(rows, self._interned)

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


class LocalRoot(DataRoot):
    """A folder laid out like HELMET's ``data/`` (``-T data_dir=``; the folder that holds ``data/`` works too),
    with the Hub rows as JSON lines files (tasks/helmet/README.md)."""

    def __init__(self, task: str, data_dir: str):
        super().__init__(task)
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise UserError(f"{task}: data folder {data_dir!r} does not exist or is not a folder")
        if (p / "data").is_dir() and not any((p / d).is_dir() for d in ("ruler", "kilt", "alce", "json_kv", "msmarco")):
            p = p / "data"
        self.root = p.resolve()
        self.used: list[Path] = []

    def path(self, rel: str, what: str = "") -> Path:
        """A file under the root (``rel`` may carry HELMET's ``data/`` prefix, as its configs write it),
        resolved strictly inside it (``datafiles.inside``: no ``..``, absolute path or symlink out)."""
        rel = rel[5:] if rel.startswith("data/") else rel
        p = inside(self.root, rel, f"{self.task}: {what or 'data file'}", "path")
        if not p.is_file():
            raise UserError(f"{self.task}: missing {what or 'data file'} {rel} under {self.root}"
                            " (layout: tasks/helmet/README.md)")
        if p not in self.used:
            self.used.append(p)
        return p

    def rows(self, spec: Rows, fields: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        p = self.path(spec.local, spec.what)
        return self._check(_read(p, self.task), fields, p)

    def describe(self) -> dict[str, Any]:
        return {"kind": "dir", "path": str(self.root),
                "files": [str(p.relative_to(self.root)) for p in self.used],
                "sha256": hash_paths(self.used, self.root) if self.used else None}


class SourceRoot(DataRoot):
    """The declared sources (:mod:`evalsuite.sources`): the cache, a download, or a folder written by
    ``evalsuite data fetch --to`` given as ``-T data_dir``."""

    def __init__(self, task: str, data_dir: str | None):
        super().__init__(task)
        self.data_dir = data_dir

    def rows(self, spec: Rows, fields: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for need in spec.needs:
            got = resolve_need(self.task, need, self.data_dir)
            if got.record not in self.records:
                self.records.append(got.record)
            out.extend(self._check(_read(got.path, self.task, spec.columns), fields, got.path))
        return out

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for r in self.records:
            digest.update(f"{r.get('source')}:{r.get('file')}:{r.get('member')}:"
                          f"{r.get('member_sha256') or r.get('sha256')}\n".encode())
        return {"kind": "source", "files": list(self.records),
                "sha256": digest.hexdigest() if self.records else None}


def cached(need: Need, data_dir: str | None) -> bool:
    """Whether ``need`` is on disk already (a fetched ``-T data_dir`` folder, or the cache): the unpacked archive
    lists the member, or the file is stored and recorded. A cheap look (nothing is hashed); reading the file
    verifies it."""
    from evalsuite import sources

    src = need.source
    if isinstance(src, ManualSource):
        return False
    src = sources.effective(src)
    stores = [sources.Store(Path(data_dir).expanduser())] if sources.is_data_folder(data_dir) else []
    for store in stores + [sources.Store(sources.cache_root())]:
        if need.member is not None:
            try:
                info = json.loads((sources.unpacked_dir(store, src, src.file(need.path)) / sources.UNPACKED)
                                  .read_text(encoding="utf-8"))
            except (OSError, ValueError):
                info = None
            if isinstance(info, dict) and need.member in (info.get("members") or {}):
                return True
        if store.present(src, need.path):
            return True
    return False


def open_root(task: str, data_dir: str | None) -> DataRoot:
    """``-T data_dir`` in HELMET's layout: that folder; otherwise (nothing, or a folder written by
    ``evalsuite data fetch --to``) the declared sources."""
    if local_data(data_dir, None):
        assert data_dir is not None
        return LocalRoot(task, data_dir)
    return SourceRoot(task, data_dir)


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
