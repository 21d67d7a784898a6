"""RULER variable tracking (``vt``): follow chains of ``VAR X = VAR Y`` assignments through a haystack.

``VtGenerator`` draws like RULER's ``scripts/data/synthetic/variable_tracking.py``: Python's ``random``
and NumPy's legacy global generator, both seeded with the seed, drawn in upstream's order:

1. once per run, an in-context example: chains with 3-letter names and the value 12345, sized by the
   same binary search to fit 500 tokens of the bare task template (no model template, nothing
   reserved for generation), its ``input`` followed by ``" " + " ".join(answer) + "\\n"``;
2. every sample (and every probe of the size search): ``(num_hops + 1) * num_chains`` 5-letter names
   from ``random.choices`` (redrawn while any repeat), a 5-digit value per chain from
   ``np.random.randint(10000, 99999)``, then the chain lines' positions (``random.sample``; noise) or
   the heap-interleaved chain order and ``random.sample(DEPTHS, ...)`` (essay);
3. every sample attempt (not the probes): the example with its names re-drawn (same lengths) and its
   value re-drawn, put before the task template.

The size search counts a probe as its prompt plus the example's tokens, and estimates tokens per unit
from the first probe without the example, as upstream does.
"""

from __future__ import annotations

import heapq
import random
import re
import string
from typing import Any, Callable

from evalsuite.errors import UserError

from ._base import Draft, RulerTask
from ._fit import SizeSearch, TokenModel, search_size
from ._resources import BASE_TEMPLATE, full_template, resources
from .niah import DEPTHS

ICL_MAX_TOKENS = 500
ICL_VALUE = "12345"


class VtGenerator:
    def __init__(self, config: dict[str, Any], seed: int, count: Callable[[str], int], *,
                 essay_text: str | None = None, split_sentences: Callable[[str], list[str]] | None = None,
                 model_template: str = BASE_TEMPLATE):
        import numpy as np

        fam = resources().templates["families"]["variable_tracking"]
        self.task_template: str = fam["template"]
        self.template: str = full_template("variable_tracking", model_template)
        # the in-context example is built without the model template (upstream removes it there)
        self.icl_template: str = full_template("variable_tracking")
        self.prefix_marker: str = fam["answer_prefix"][:10]
        self.num_chains = int(config.get("num_chains", 1))
        self.num_hops = int(config.get("num_hops", 4))
        self.type_haystack = config.get("type_haystack", "noise")
        if self.type_haystack not in ("noise", "essay"):
            raise UserError(f"vt: unknown type_haystack {self.type_haystack!r} (noise or essay)")
        self.noise: str = resources().templates["noise_haystack"]
        self.words_haystack: list[str] | None = None
        if self.type_haystack == "essay":
            if essay_text is None or split_sentences is None:
                raise ValueError("essay haystack needs essay_text and split_sentences")
            self.words_haystack = re.sub(r"\s+", " ", essay_text).split(" ")
        self.split = split_sentences
        self.rng = random.Random(seed)
        self.np_rng = np.random.RandomState(seed)  # = np.random.seed(seed) + np.random.randint
        self.count = count
        self.icl_example, self.icl_num_haystack = self._make_icl()

    # -- upstream's generate_chains / generate_input_output ------------------------------------------
    def _chains(self, is_icl: bool) -> tuple[list[list[str]], list[list[str]]]:
        k = 3 if is_icl else 5
        hops = min(10, self.num_hops) if is_icl else self.num_hops
        need = (hops + 1) * self.num_chains
        names = ["".join(self.rng.choices(string.ascii_uppercase, k=k)) for _ in range(need)]
        while len(set(names)) < need:
            names.append("".join(self.rng.choices(string.ascii_uppercase, k=k)))
        if len(names) != need:
            # Upstream keeps the repeated name and then fails on the short last chain.
            raise UserError("vt: repeated variable names drawn; upstream RULER fails on this seed too "
                            "(change -T seed)")
        vars_out, chains = [], []
        for i in range(0, need, hops + 1):
            these = names[i:i + hops + 1]
            vars_out.append(these)
            value = ICL_VALUE if is_icl else str(self.np_rng.randint(10000, 99999))
            chain = [f"VAR {these[0]} = {value}"]
            chain += [f"VAR {these[j + 1]} = VAR {these[j]} " for j in range(hops)]
            chains.append(chain)
        return vars_out, chains

    def _interleave(self, chains: list[list[str]]) -> list[str]:
        """Upstream's shuffle_sublists_heap: chains merged in random order, each chain's order kept."""
        heap: list[tuple[float, int, int]] = []
        for i in range(len(chains)):
            heapq.heappush(heap, (self.rng.random(), i, 0))
        out = []
        while heap:
            _, li, ei = heapq.heappop(heap)
            out.append(chains[li][ei])
            if ei + 1 < len(chains[li]):
                heapq.heappush(heap, (self.rng.random(), li, ei + 1))
        return out

    def _text(self, num_haystack: int, is_icl: bool) -> tuple[str, list[str], dict[str, Any]]:
        names, chains = self._chains(is_icl)
        value = chains[0][0].split("=")[-1].strip()
        info: dict[str, Any] = {}
        if self.type_haystack == "essay":
            assert self.words_haystack is not None and self.split is not None
            sents = self.split(" ".join(self.words_haystack[:num_haystack]).strip())
            flat = self._interleave(chains)
            positions = sorted(int(len(sents) * (d / 100)) for d in self.rng.sample(DEPTHS, len(flat)))
            bounds = [0] + positions + [len(sents)]
            parts = []
            for i in range(1, len(bounds)):
                parts.append(" ".join(sents[bounds[i - 1]:bounds[i]]))
                if i - 1 < len(flat):
                    parts.append(flat[i - 1].strip() + ".")
            context = " ".join(parts)
            info["depths"] = [round(100 * p / max(1, len(sents)), 2) for p in positions]
        else:
            lines = [self.noise] * num_haystack
            where: list[int] = []
            for chain in chains:
                positions = sorted(self.rng.sample(range(len(lines)), len(chain)))
                for j, pos in enumerate(positions):
                    lines.insert(pos + j, chain[j])
                    where.append(pos + j)
            context = "\n".join(lines)
            info["depths"] = [round(100 * p / len(lines), 2) for p in sorted(where)]
        context = context.replace(". \n", ".\n")
        text = (self.icl_template if is_icl else self.template).format(context=context, query=value,
                                                                        num_v=self.num_hops + 1)
        info["query"] = value
        return text, names[0], info

    # -- the in-context example -----------------------------------------------------------------------
    def _make_icl(self) -> tuple[str, int]:
        inc = 50 if self.type_haystack == "essay" else 5
        tokens_per_unit = self.count(self._text(inc, True)[0]) / inc
        lo, hi = inc, max(int((ICL_MAX_TOKENS / tokens_per_unit) * 3), inc * 2)
        best = None
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.count(self._text(mid, True)[0]) <= ICL_MAX_TOKENS:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        used = best if best is not None else inc
        for _ in range(1000):
            text, answer, _ = self._text(used, True)
            if self.count(text) <= ICL_MAX_TOKENS:
                return text + " " + " ".join(answer) + "\n", used
            if used > inc:
                used -= inc
        raise UserError("vt: no in-context example fits 500 tokens with this tokenizer")

    def _randomized_icl(self) -> str:
        """Upstream's randomize_icl: the example's answer names re-drawn, then its value."""
        icl = self.icl_example
        for item in icl.strip().split()[-self.num_hops - 1:]:
            icl = icl.replace(item, "".join(self.rng.choices(string.ascii_uppercase, k=len(item))))
        return icl.replace(ICL_VALUE, str(self.np_rng.randint(10000, 99999)))

    # -- samples ----------------------------------------------------------------------------------------
    def probe(self, num_haystack: int) -> Draft:
        text, answer, info = self._text(num_haystack, False)
        return self._draft(text, answer, info)

    def generate(self, num_haystack: int) -> Draft:
        text, answer, info = self._text(num_haystack, False)
        cut = text.index(self.task_template[:20])
        text = text[:cut] + self._randomized_icl() + "\n" + text[cut:]
        return self._draft(text, answer, info)

    def _draft(self, text: str, answer: list[str], info: dict[str, Any]) -> Draft:
        cut = text.rfind(self.prefix_marker)
        return Draft(input=text[:cut], answer_prefix=text[cut:], answers=list(answer), info=info)


class VtTask(RulerTask):
    """RULER ``vt`` (synthetic.yaml: noise haystack, 1 chain of 4 hops)."""

    family = "variable_tracking"

    def _setup(self) -> None:
        essay_text = split = None
        if self.config.get("type_haystack", "noise") == "essay":
            from evalsuite.text import english_sentence_splitter

            essay_text, split = self._essay_source().text, english_sentence_splitter()
        self.generator = VtGenerator(self.config, self.opts["seed"], self._count, essay_text=essay_text,
                                     split_sentences=split, model_template=self.model_template)
        self._icl_tokens = self._count(self.generator.icl_example)

    def _incremental(self) -> int:
        if self.config.get("type_haystack", "noise") == "essay":
            return 500
        return 5 if self.length < 4096 else 10

    def _probe(self, size: int) -> Draft:
        return self.generator.probe(size)

    def _probe_tokens(self, draft: Draft) -> int:
        return self._prompt_tokens(draft) + self._icl_tokens

    def _search_size(self, length: int, model: TokenModel) -> SizeSearch:
        return search_size(self._probe, self._probe_tokens, length, self.opts["tokens_to_generate"],
                           self._incremental(), model=model, first_tokens=self._prompt_tokens)

    def _generate(self, size: int, index: int) -> Draft:
        return self.generator.generate(size)

    def _gold_text(self, answers) -> str:
        # The answer prefix ends with "they are: ".
        return " ".join(answers)

    def _sample_metadata(self, draft: Draft, rendered: str) -> dict[str, Any]:
        return {"haystack": self.config.get("type_haystack", "noise"), "num_chains": self.generator.num_chains,
                "num_hops": self.generator.num_hops, "icl_num_haystack": self.generator.icl_num_haystack}

    def _describe_family(self) -> dict[str, Any]:
        import numpy

        d: dict[str, Any] = {"random_streams": f"python random + numpy {numpy.__version__} legacy RandomState"}
        if self._essays is not None:
            from evalsuite.text import splitter_description

            d["haystack_data"] = self._essays.describe()
            d["sentence_splitter"] = splitter_description()
        return d
