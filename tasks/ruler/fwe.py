"""RULER frequent words extraction (``fwe``): find the three most frequent coded words in a text whose
word frequencies follow a Zipf (zeta) law.

``FweGenerator`` follows RULER's ``scripts/data/synthetic/freq_words_extraction.py``:

* per draw, a vocabulary of ``(length - tokens_to_generate) // 50`` distinct 6-letter lowercase words
  (``random.choices``, redrawn while any repeats), sorted, shuffled by a fresh ``random.Random(seed)``,
  its first word replaced by ``...`` (the most frequent "word" is noise);
* a text of ``n`` words holds ``int(n * k**-alpha / zeta(alpha))`` copies of the k-th word, shuffled by a
  fresh ``random.Random(seed)``; the answer is the 2nd to 4th words;
* sizing is not a binary search: from ``n = budget // 6`` words the count grows by ``budget // 32``
  while the prompt stays under the budget, then steps back once; every sample then draws its own
  vocabulary and steps down by the same amount while it does not fit.

The counts are NumPy float64 arithmetic as upstream (``np.arange``, ``**``, ``astype(int)``), so the texts
match for the same seed. ``zeta`` is the Riemann zeta function (SciPy upstream; here ``pi**2/6`` for the
configured alpha = 2 and a converging series otherwise).
"""

from __future__ import annotations

import math
import random
import string
from typing import Any

from evalsuite.task import Option, parse_bool

from ._base import Draft, RulerTask
from ._fit import Fitted, TokenModel
from ._resources import BASE_TEMPLATE

CODED_WORDLEN = 6


def zeta(alpha: float) -> float:
    """Riemann zeta(alpha) for alpha > 1."""
    if alpha <= 1:
        raise ValueError("zeta needs alpha > 1")
    if alpha == 2.0:
        return math.pi ** 2 / 6
    # Euler-Maclaurin: sum to N-1, then the integral tail and correction terms.
    n = 64
    s = math.fsum(k ** -alpha for k in range(1, n))
    tail = n ** (1 - alpha) / (alpha - 1) + 0.5 * n ** -alpha
    b = [1 / 6, -1 / 30, 1 / 42, -1 / 30]
    fact, rising = 1.0, alpha
    term_pow = n ** (-alpha - 1)
    for j, bj in enumerate(b, start=1):
        fact *= (2 * j - 1) * (2 * j) if j > 1 else 2
        tail += bj / fact * rising * term_pow
        rising *= (alpha + 2 * j - 1) * (alpha + 2 * j)
        term_pow /= n * n
    return s + tail


class FweGenerator:
    def __init__(self, config: dict[str, Any], seed: int, budget: int, model_template: str = BASE_TEMPLATE):
        from ._resources import full_template, resources

        fam = resources().templates["families"]["freq_words_extraction"]
        self.template: str = full_template("freq_words_extraction", model_template)
        self.prefix_marker: str = fam["answer_prefix"][:10]
        self.alpha = float(config.get("alpha", 2.0))
        self.zeta = zeta(self.alpha)
        self.seed = seed
        self.rng = random.Random(seed)
        self.budget = budget
        self.vocab_size = budget // 50
        self.step = budget // 32

    def vocabulary(self) -> list[str]:
        size = self.vocab_size
        vocab = ["".join(self.rng.choices(string.ascii_lowercase, k=CODED_WORDLEN)) for _ in range(size)]
        while len(set(vocab)) < size:
            vocab.append("".join(self.rng.choices(string.ascii_lowercase, k=CODED_WORDLEN)))
        vocab = sorted(set(vocab))
        random.Random(self.seed).shuffle(vocab)
        vocab[0] = "..."
        return vocab

    def text(self, vocab: list[str], num_words: int) -> Draft:
        import numpy as np

        k = np.arange(1, len(vocab) + 1)
        counts = (num_words * (k ** -self.alpha) / self.zeta).astype(int)
        words = [w for w, c in zip(vocab, counts.tolist()) for _ in range(c)]
        random.Random(self.seed).shuffle(words)
        text = self.template.format(context=" ".join(words), query="")
        cut = text.rfind(self.prefix_marker)
        return Draft(input=text[:cut], answer_prefix=text[cut:], answers=vocab[1:4],
                     info={"num_words": num_words, "vocab_size": len(vocab)})


class FweTask(RulerTask):
    """RULER ``fwe`` (synthetic.yaml: alpha 2.0)."""

    family = "freq_words_extraction"
    options = {**RulerTask.options,
               "fill": Option(parse_bool, False, "not upstream: grow each sample while one more step of words fits "
                              "(upstream sizes every sample from one search, so prompts may end several steps "
                              "under the length; samples then differ from RULER's)")}

    def _setup(self) -> None:
        budget = self.length - self.opts["tokens_to_generate"]
        self.generator = FweGenerator(self.config, self.opts["seed"], budget, model_template=self.model_template)
        self._num_words: int | None = None

    def _incremental(self) -> int:
        return self.generator.step

    def _search_words(self, model: TokenModel) -> int:
        """Upstream's walk: grow while the prompt is under the budget, then one step back."""
        g = self.generator
        vocab = g.vocabulary()
        n = g.budget // CODED_WORDLEN
        probes = []
        while True:
            known = model.decide(n)
            if known is None:
                t = self._prompt_tokens(g.text(vocab, n))
                model.add(n, t)
                probes.append((n, t))
                known = t <= model.budget
            if not known:
                break
            n += g.step
        self._probes = probes
        return n - g.step

    def _fit(self, length: int, local: int) -> Fitted:
        g = self.generator
        if self._num_words is None:
            # Same text for the same word count and vocabulary, and more words never make it shorter:
            # measured sizes decide exactly (slack 0). "Under the budget" is tokens <= budget - 1.
            self._num_words = self._search_words(TokenModel(g.budget - 1, 0))
        vocab = g.vocabulary()
        n, attempts, tokenized = self._num_words, 0, 0
        while True:
            draft = g.text(vocab, n)
            attempts += 1
            if n > 0 and self._over_budget(draft, g.budget):
                n -= g.step
                continue
            t = self._prompt_tokens(draft)
            tokenized += 1
            if t <= g.budget or n <= 0:
                break
            n -= g.step
        if t > g.budget:
            from evalsuite.errors import UserError

            raise UserError(f"{self.name}: length={length} leaves no room for any coded word")
        while self.opts["fill"]:
            # Not upstream: grow this sample's text while one more step still fits.
            bigger = g.text(vocab, n + g.step)
            attempts += 1
            if self._over_budget(bigger, g.budget):
                break
            tb = self._prompt_tokens(bigger)
            tokenized += 1
            if tb > g.budget:
                break
            n, draft, t = n + g.step, bigger, tb
        return Fitted(draft, n, t, attempts, tokenized)

    def _generate(self, size: int, index: int) -> Draft:  # sizing is _fit's own walk
        return self.generator.text(self.generator.vocabulary(), size)

    def fit_info(self, length: int | None = None) -> dict[str, Any] | None:
        return {"num_words": self._num_words, "probes": [list(p) for p in getattr(self, "_probes", [])]}

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        return {"alpha": self.generator.alpha, "vocab_size": draft.info["vocab_size"]}

    def _describe_family(self) -> dict[str, Any]:
        import numpy

        return {"zeta_alpha": self.generator.zeta, "numpy": numpy.__version__}
