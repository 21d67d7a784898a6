"""HELMET many-shot ICL: TREC coarse / fine, NLU, BANKING77, CLINC150 (``load_icl`` in HELMET's data.py,
the ``*_balance`` datasets of its configs).

* Test set: all of it when it has at most 500 rows (TREC), else 500 rows with balanced labels
  (``Dataset.shuffle(seed)``, then HELMET's ``balance_labels(test, 500, seed)``). NLU is first split 90/10
  with ``train_test_split(test_size=0.1, seed=seed)``.
* Demonstrations per test question: ``balance_labels(train, shots, local_seed)`` with ``local_seed =
  (sha256(question) + seed) % 2**31``: rounds of one example per label (labels in order of first
  appearance), each round shuffled, cut to ``shots`` (400...6600 by length, from HELMET's dataset names).
* Labels are shown as numbers: the label ids permuted by ``random.Random(local_seed).shuffle``.
* Completion prompt ending in ``label:``; stop at a newline; 20 new tokens. Metric: ``exact_match`` of the
  text after ``label:`` (``parse_output``) against the mapped label.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

from evalsuite.types import Record

from ._base import HelmetTask, Item
from ._data import HUB, DataRoot, Rows, fmt, permutation, sha_seed, train_test_split
from ._metrics import Analysis, HelmetMetric, calculate_metrics, parse_output

ICL_DATA = {
    # dataset: (Hub dataset in _data.HUB, train split, test split, label field, number of labels)
    "icl_trec_coarse": ("trec", "train", "test", "coarse_label", 6),
    "icl_trec_fine": ("trec", "train", "test", "fine_label", 50),
    "icl_banking77": ("banking77", "train", "test", "label", 77),
    "icl_clinic150": ("clinic150", "train", "validation", "intent", 151),
    "icl_nlu": ("nlu", "train", None, "label", 68),
}
TEXT_FIELD = "text"


class _Groups:
    """Rows grouped by label, labels in order of first appearance (``balance_labels``' dict)."""

    def __init__(self, rows: Sequence[dict[str, Any]], label: str):
        self.groups: dict[Any, list[dict[str, Any]]] = {}
        for r in rows:
            self.groups.setdefault(r[label], []).append(r)

    def balance(self, shots: int, seed: int) -> list[dict[str, Any]]:
        """HELMET's ``balance_labels(data, shots, seed)``."""
        rand = random.Random(seed)
        rounds = math.ceil(shots / len(self.groups))
        new: list[list[dict[str, Any]]] = [[] for _ in range(rounds)]
        for samples in self.groups.values():
            idx = rand.sample(range(len(samples)), rounds % len(samples))
            while len(idx) < rounds:
                idx += rand.sample(range(len(samples)), min(rounds - len(idx), len(samples)))
            for i, j in enumerate(idx):
                new[i].append(samples[j])
        for part in new:
            rand.shuffle(part)
        return [x for part in new for x in part][:shots]


class IclTask(HelmetTask):
    category = "icl"
    template = "icl"
    primary_metric = "exact_match"

    @classmethod
    def data_files(cls, lengths: Sequence[int], options: Mapping[str, Any]) -> list[Rows]:
        src, train_split, test_split, _, _ = ICL_DATA[cls.dataset]
        return [HUB[src][s] for s in (train_split, test_split) if s is not None]

    def _splits(self, root: DataRoot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        label = ICL_DATA[self.dataset][3]
        files = [root.rows(f, {TEXT_FIELD: str, label: int}) for f in self.data_files([], self.opts)]
        train = files[0]
        if len(files) == 1:
            tr, te = train_test_split(len(train), 0.1, self.opts["seed"])
            return [train[i] for i in tr], [train[i] for i in te]
        return train, files[1]

    def _items(self, length: int, root: DataRoot) -> list[Item]:
        _, _, _, label, num_labels = ICL_DATA[self.dataset]
        shots = int(self.spec.lengths[length].dataset.split("shot")[0].split("_")[-1])
        train, test = self._splits(root)
        seed = self.opts["seed"]
        n = self.opts["max_test_samples"]
        if n is not None and len(test) > n:
            shuffled = [test[i] for i in permutation(len(test), seed)]
            test = _Groups(shuffled, label).balance(n, seed)
        groups = _Groups(train, label)
        item = self.tmpl["item"]
        out = []
        for pos, s in enumerate(test):
            local = (sha_seed(s[TEXT_FIELD]) + seed) % 2**31
            demos = groups.balance(shots, local)
            mapping = list(range(num_labels))
            random.Random(local).shuffle(mapping)
            context = "\n\n".join(fmt(item, {}, text=d[TEXT_FIELD], label=str(mapping[int(d[label])])) for d in demos)
            answer = str(mapping[int(s[label])])
            out.append(Item(key=str(pos), fields={"context": context, "question": s[TEXT_FIELD], "answer": answer},
                            target={"answers": answer}, meta={"shots": shots, "label": int(s[label])}))
        return out

    def metrics(self) -> Sequence[Any]:
        def fn(records: Sequence[Record]) -> list[dict[str, float] | None]:
            out = []
            for r in records:
                parsed = parse_output(r.prediction, "label:")
                out.append(calculate_metrics(parsed if parsed is not None else "", r.sample.target["answers"]))
            return out

        an = Analysis(fn)
        # HELMET computes all of calculate_metrics; for a numeric label only these two say something
        return [HelmetMetric(m, an, "parsed:'label:'|norm:squad") for m in ("exact_match", "substring_exact_match")]
