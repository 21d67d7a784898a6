"""RULER needle-in-a-haystack (the eight ``niah_*`` tasks of synthetic.yaml).

``NiahGenerator.generate(num_haystack)`` builds one sample the way RULER's
``scripts/data/synthetic/niah.py`` does, drawing from one ``random.Random(seed)`` in the same order:

1. for each key: the key, then each of its values (``words`` = ``random.choice`` over the sorted
   adjective-noun set, ``numbers`` = 7 digits via ``randint``, ``uuids`` = ``uuid4`` from
   ``getrandbits(128)``); each value makes one needle sentence (plural ``type_needle_v``);
2. the needles are shuffled with a fresh ``random.Random(seed)``;
3. ``needle`` haystack only: one random key and value per haystack line;
4. essay: ``random.sample(DEPTHS, n_needles)`` (needles at sentence index ``int(n_sents * depth/100)``);
   noise / needle: ``random.sample(range(num_haystack), n_needles)`` line positions;
5. the queried keys: ``random.sample(range(num_needle_k), num_needle_q)``.

The template is RULER's task template + answer prefix, with the singular replacements when
``num_needle_q * num_needle_v == 1``; the answer prefix is then split off at the last occurrence of its
first 10 characters, as upstream does.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import OrderedDict
from typing import Any, Callable, Sequence

from evalsuite.contracts import DataNeeds
from evalsuite.errors import UserError

from ._base import Draft, RulerTask
from ._resources import BASE_TEMPLATE, full_template, resources

# np.round(np.linspace(0, 100, num=40)).astype(int): 100*i/39 is never exactly .5 off an integer, so
# round-half-even and plain rounding agree; kept literal to avoid numpy.
DEPTHS = [round(100 * i / 39) for i in range(40)]

HAYSTACKS = ("noise", "essay", "needle")
NEEDLE_TYPES = ("numbers", "words", "uuids")


class NiahGenerator:
    """RULER's ``generate_input_output`` for one niah configuration, with its own random stream."""

    def __init__(self, config: dict[str, Any], seed: int, *, essay_text: str | None = None,
                 split_sentences: Callable[[str], list[str]] | None = None,
                 key_words: Sequence[str] | None = None, sentence_cache: int = 4,
                 model_template: str = BASE_TEMPLATE):
        t = resources().templates
        self.type_haystack = config["type_haystack"]
        self.type_k = config["type_needle_k"]
        self.type_v = config["type_needle_v"]
        self.num_v = int(config["num_needle_v"])
        self.num_q = int(config["num_needle_q"])
        self.num_k = max(int(config["num_needle_k"]), self.num_q)  # upstream: k = max(k, q)
        if self.type_haystack not in HAYSTACKS:
            raise UserError(f"niah: unknown type_haystack {self.type_haystack!r}")
        for typ in (self.type_k, self.type_v):
            if typ not in NEEDLE_TYPES:
                raise UserError(f"niah: unknown needle type {typ!r}")
        if "words" in (self.type_k, self.type_v) and key_words is None:
            raise ValueError("words needles need key_words")
        self.seed = seed
        self.rng = random.Random(seed)
        self.words = key_words
        fam = t["families"]["niah"]
        self.needle_fmt: str = t["niah_needle"]
        self.noise: str = t["noise_haystack"]
        self.prefix_marker: str = fam["answer_prefix"][:10]
        # the model template is part of what the singular replacements rewrite, as in upstream
        template = full_template("niah", model_template)
        type_v_shown = self.type_v
        if self.num_q * self.num_v == 1:
            for old, new in t["singular_replacements"]:
                template = template.replace(old, new)
            type_v_shown = self.type_v[:-1]
        self.template = template
        self.type_v_shown = type_v_shown
        self.words_haystack: list[str] | None = None
        if self.type_haystack == "essay":
            if essay_text is None or split_sentences is None:
                raise ValueError("essay haystack needs essay_text and split_sentences")
            self.words_haystack = re.sub(r"\s+", " ", essay_text).split(" ")
        self.split = split_sentences
        self._sents: OrderedDict[int, list[str]] = OrderedDict()
        self._sent_cache = sentence_cache

    # -- random draws, in RULER's order -------------------------------------------------------------
    def _random(self, typ: str) -> str:
        if typ == "numbers":
            return str(self.rng.randint(10**6, 10**7 - 1))
        if typ == "words":
            assert self.words is not None
            return self.rng.choice(self.words)
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _sentences(self, n: int) -> list[str]:
        """Sentences of the first ``n`` haystack words (repeated if needed); cached per ``n``."""
        if n in self._sents:
            self._sents.move_to_end(n)
            return self._sents[n]
        words = self.words_haystack
        assert words is not None and self.split is not None
        if n <= len(words):
            text = " ".join(words[:n])
        else:
            repeats = (n + len(words) - 1) // len(words)
            text = " ".join((words * repeats)[:n])
        sents = self.split(text.strip())
        self._sents[n] = sents
        if len(self._sents) > self._sent_cache:
            self._sents.popitem(last=False)
        return sents

    def generate(self, num_haystack: int) -> Draft:
        keys: list[str] = []
        values: list[list[str]] = []
        needles: list[str] = []
        for _ in range(self.num_k):
            keys.append(self._random(self.type_k))
            vals = []
            for _ in range(self.num_v):
                vals.append(self._random(self.type_v))
                needles.append(self.needle_fmt.format(type_needle_v=self.type_v, key=keys[-1], value=vals[-1]))
            values.append(vals)
        random.Random(self.seed).shuffle(needles)

        info: dict[str, Any] = {}
        if self.type_haystack == "essay":
            sents = self._sentences(num_haystack)
            depths = sorted(self.rng.sample(DEPTHS, len(needles)))
            positions = [int(len(sents) * (d / 100)) for d in depths]
            bounds = [0] + positions + [len(sents)]
            parts: list[str] = []
            for i in range(1, len(bounds)):
                parts.append(" ".join(sents[bounds[i - 1]:bounds[i]]))
                if i - 1 < len(needles):
                    parts.append(needles[i - 1])
            context = " ".join(parts)
            info.update(depths=depths, positions=positions, haystack_sentences=len(sents))
        else:
            if self.type_haystack == "noise":
                lines = [self.noise] * num_haystack
            else:
                lines = [self.needle_fmt.format(type_needle_v=self.type_v, key=self._random(self.type_k),
                                                value=self._random(self.type_v))
                         for _ in range(num_haystack)]
            indexes = sorted(self.rng.sample(range(num_haystack), len(needles)), reverse=True)
            for index, needle in zip(indexes, needles):
                lines.insert(index, needle)
            context = "\n".join(lines)
            ascending = indexes[::-1]  # context order: the last needle sits at the smallest index
            info.update(depths=[round(100 * p / num_haystack, 2) for p in ascending], positions=ascending)

        picked = self.rng.sample(range(self.num_k), self.num_q)
        queries = [keys[i] for i in picked]
        answers = [a for i in picked for a in values[i]]
        query = ", ".join(queries[:-1]) + ", and " + queries[-1] if len(queries) > 1 else queries[0]
        text = self.template.format(type_needle_v=self.type_v_shown, context=context, query=query)
        cut = text.rfind(self.prefix_marker)
        info.update(query=query)
        return Draft(input=text[:cut], answer_prefix=text[cut:], answers=answers, info=info)


class NiahTask(RulerTask, DataNeeds):
    """One RULER niah configuration from synthetic.yaml (subclassed per task by ``register``)."""

    family = "niah"

    @classmethod
    def data_needs(cls, options: dict[str, Any]) -> list[Any]:
        """Essay haystacks read the default essay source unless options name other essays."""
        from ._essays import NEED

        cfg = resources().tasks[cls.config_name]["args"]
        if cfg["type_haystack"] != "essay" or options.get("essay_dataset"):
            return []
        return [NEED]

    def _setup(self) -> None:
        cfg = self.config
        essay_text = split = None
        if cfg["type_haystack"] == "essay":
            from evalsuite.text import english_sentence_splitter

            essay_text = self._essay_source().text
            split = english_sentence_splitter()
        words = None
        if "words" in (cfg["type_needle_k"], cfg["type_needle_v"]):
            from ._words import wonderwords_keys

            words = wonderwords_keys()
        self.generator = NiahGenerator(cfg, self.opts["seed"], essay_text=essay_text, split_sentences=split,
                                       key_words=words, model_template=self.model_template)

    def _incremental(self) -> int:
        if self.config["type_haystack"] == "essay":
            return 500
        return 5 if self.length < 4096 else 25

    def _generate(self, size: int, index: int) -> Draft:
        return self.generator.generate(size)

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        cfg = self.config
        # RULER's token_position_answer: tokens before the first answer's first occurrence in the prompt.
        pos = rendered.find(draft.answers[0])
        tpa = self._tokens_before(rendered, pos) if pos >= 0 else None
        return {"haystack": cfg["type_haystack"], "type_needle_k": cfg["type_needle_k"],
                "type_needle_v": cfg["type_needle_v"], "num_needle_k": max(cfg["num_needle_k"], cfg["num_needle_q"]),
                "num_needle_v": cfg["num_needle_v"], "num_needle_q": cfg["num_needle_q"],
                "token_position_answer": tpa}

    def _describe_family(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        essays = self._essays
        if self.config["type_haystack"] == "essay":
            from evalsuite.text import splitter_description

            d["haystack_data"] = essays.describe() if essays is not None else None
            d["sentence_splitter"] = splitter_description()
        if "words" in (self.config["type_needle_k"], self.config["type_needle_v"]):
            from ._words import wonderwords_version

            d["key_words"] = {"source": "wonderwords adjectivelist x nounlist", "wonderwords": wonderwords_version()}
        return d
