"""RULER common words extraction (``cwe``): name the 10 words repeated most often in a numbered list.

``CweGenerator`` draws like RULER's ``scripts/data/synthetic/common_words_extraction.py`` from one
``random.Random(seed)``:

* the vocabulary: wonderwords' nouns + adjectives + verbs, de-duplicated, sorted, then shuffled by a
  fresh ``random.Random(seed)``; when a sample needs more distinct words than that (about 128K tokens
  and up), RULER's ``english_words.json`` (``-T words_file=``; not bundled, it is 8.5 MB) instead;
* per example: ``random.sample`` of the words; the first ``num_cw`` are the common ones, repeated
  ``freq_cw`` times, the rest ``freq_ucw`` times; the list is shuffled by a fresh
  ``random.Random(seed)`` and numbered ``1. w 2. w ...``;
* per sample: ``num_fewshot`` (1) worked examples of 40 words (10/3 repeats) first, then the sample.
  Below 4096 tokens the example has 20 words (3/1 repeats) and the sample 6/1 repeats, as upstream.

Size search: the first probe has 4096 words, the upper bound is ``int(L // tokens_per_word) * 2``,
the step 10 words.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from evalsuite.errors import UserError
from evalsuite.task import Option

from ._base import Draft, RulerTask
from ._fit import SizeSearch, TokenModel, search_size
from ._resources import BASE_TEMPLATE, full_template, resources

NUM_FEWSHOT = 1
FIRST_PROBE_WORDS = 4096


@lru_cache(maxsize=1)
def wonderwords_vocabulary() -> tuple[str, ...]:
    """sorted(set(nouns + adjectives + verbs)) from the installed wonderwords lists."""
    from wonderwords import random_word

    words: list[str] = []
    for name in ("nounlist.txt", "adjectivelist.txt", "verblist.txt"):
        words += random_word._get_words_from_text_file(name)
    return tuple(sorted(set(words)))


def load_english_words(path: str | None, task: str) -> list[str]:
    if not path:
        raise UserError(f"{task}: this length needs more distinct words than wonderwords has; pass RULER's "
                        "english_words.json (scripts/data/synthetic/json/, git-LFS) with -T words_file=<path>")
    from evalsuite.datafiles import read_json

    obj = read_json(Path(path).expanduser(), task)
    if not isinstance(obj, dict):
        raise UserError(f"{task}: {path} is not RULER's english_words.json (a JSON object)")
    return [str(v) for v in obj.values()]


class CweGenerator:
    def __init__(self, config: dict[str, Any], seed: int, max_seq_length: int,
                 more_words: Callable[[], Sequence[str]], model_template: str = BASE_TEMPLATE):
        fam = resources().templates["families"]["common_words_extraction"]
        # with a model template, upstream wraps every worked example in it too (its template string is
        # the whole model template + task template + answer prefix)
        self.template: str = full_template("common_words_extraction", model_template)
        self.prefix_marker: str = fam["answer_prefix"][:10]
        self.freq_cw = int(config.get("freq_cw", 30))
        self.freq_ucw = int(config.get("freq_ucw", 3))
        self.num_cw = int(config.get("num_cw", 10))
        self.seed = seed
        self.short = max_seq_length < 4096
        words = list(wonderwords_vocabulary())
        random.Random(seed).shuffle(words)
        self.words = words
        self._more_words = more_words
        self.rng = random.Random(seed)

    def _example(self, num_words: int, common_repeats: int, uncommon_repeats: int) -> tuple[str, list[str]]:
        pool = self.words if num_words <= len(self.words) else self._more_words()
        picked = self.rng.sample(pool, num_words)
        common, uncommon = picked[:self.num_cw], picked[self.num_cw:]
        listed = common * common_repeats + uncommon * uncommon_repeats
        random.Random(self.seed).shuffle(listed)
        return " ".join(f"{i + 1}. {w}" for i, w in enumerate(listed)), common

    def generate(self, num_words: int) -> Draft:
        if self.short:
            shots = [self._example(20, 3, 1) for _ in range(NUM_FEWSHOT)]
            context, answer = self._example(num_words, 6, 1)
        else:
            shots = [self._example(40, 10, 3) for _ in range(NUM_FEWSHOT)]
            context, answer = self._example(num_words, self.freq_cw, self.freq_ucw)
        worked = "\n".join(self.template.format(num_cw=self.num_cw, context=c, query="") + " "
                           + " ".join(f"{i + 1}. {w}" for i, w in enumerate(a)) for c, a in shots)
        text = worked + "\n" + self.template.format(num_cw=self.num_cw, context=context, query="")
        cut = text.rfind(self.prefix_marker)
        return Draft(input=text[:cut], answer_prefix=text[cut:], answers=list(answer),
                     info={"num_words": num_words})


class CweTask(RulerTask):
    """RULER ``cwe`` (synthetic.yaml: freq_cw 30, freq_ucw 3, num_cw 10)."""

    family = "common_words_extraction"
    options = {**RulerTask.options,
               "words_file": Option(
                   str, None, "RULER's english_words.json, needed only when a sample needs more distinct words "
                   "than wonderwords' lists (around 128K tokens)")}

    def _setup(self) -> None:
        self._english: list[str] | None = None
        self.generator = CweGenerator(self.config, self.opts["seed"], self.length, self._english_words,
                                      model_template=self.model_template)

    def _english_words(self) -> list[str]:
        if self._english is None:
            self._english = load_english_words(self.opts["words_file"], self.name)
        return self._english

    def _incremental(self) -> int:
        return 10

    def _slack(self, length: int) -> int:
        # Three copies of each random word: more sample-to-sample spread than a needle.
        return 64 + length // 100

    def _search_size(self, length: int, model: TokenModel) -> SizeSearch:
        return search_size(self._probe, self._probe_tokens, length, self.opts["tokens_to_generate"],
                           self._incremental(), model=model, first_probe=FIRST_PROBE_WORDS,
                           upper=lambda L, per_word: int(L // per_word) * 2)

    def _generate(self, size: int, index: int) -> Draft:
        return self.generator.generate(size)

    def _gold_text(self, answers: Sequence[str]) -> str:
        return " " + " ".join(f"{i + 1}. {w}" for i, w in enumerate(answers))

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        g = self.generator
        return {"freq_cw": g.freq_cw, "freq_ucw": g.freq_ucw, "num_cw": g.num_cw,
                "vocabulary": "english_words.json" if draft.info["num_words"] > len(g.words) else "wonderwords"}

    def _describe_family(self) -> dict[str, Any]:
        from ._words import wonderwords_version

        d: dict[str, Any] = {"words": "wonderwords nounlist + adjectivelist + verblist",
                             "wonderwords": wonderwords_version(), "num_fewshot": NUM_FEWSHOT}
        if self.opts.get("words_file"):
            from evalsuite.data import hash_paths

            p = Path(self.opts["words_file"]).expanduser()
            d["words_file"] = {"path": str(p), "sha256": hash_paths([p]) if p.is_file() else None}
        return d
