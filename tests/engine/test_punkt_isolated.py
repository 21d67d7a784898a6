"""RULER's sentence splitter: nltk's Punkt class loaded without nltk's package init, splitting exactly as
the real ``nltk.tokenize.punkt`` with the same English parameters, leaving ``import nltk`` untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ESSAYS = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "ruler" / "essays" \
    / "PaulGrahamEssays.json"

CHECK = r"""
import json, sys, time
t = time.perf_counter()
from evalsuite.text import english_sentence_splitter, english_parameters
split = english_sentence_splitter()
load_s = time.perf_counter() - t
leaked = sorted(m for m in sys.modules if m == "nltk" or m.startswith("nltk.") or m == "punkt" or m.startswith("punkt."))
heavy = sorted(m for m in ("scipy", "numpy", "sqlite3", "tkinter") if m in sys.modules)
texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
ours = [split(t) for t in texts]
import nltk  # the real package, initialised as usual after us
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
model = english_parameters()
p = PunktParameters()
p.abbrev_types, p.collocations, p.sent_starters = set(model.ABBREV_TYPES), set(model.COLLOCATIONS), set(model.SENT_STARTERS)
for w, f in model.ORTHO_CONTEXT.items():
    p.ortho_context[w] = f
tok = PunktSentenceTokenizer()
tok._params = p
print(json.dumps({"leaked": leaked, "heavy": heavy, "same": ours == [tok.tokenize(t) for t in texts],
                  "n": sum(map(len, ours)), "full_nltk": hasattr(nltk, "sent_tokenize") and hasattr(nltk, "corpus"),
                  "load_s": load_s}))
"""


def test_punkt_without_nltk_init_splits_as_nltk_and_leaves_nltk_importable(tmp_path):
    texts = ["Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.  "
             "And sometimes sentences\ncan start with non-capitalized words.  i is a good variable\nname.",
             "It was bad. ... But then it was fine.", "", "   ", "U.S.A. e.g. etc. Dr. No. 5. (Yes.) \"Quoted.\" Next",
             "Ellipsis... then? And! Mixed\u2026 unicode. \u00c9t\u00e9. Fin."]
    if ESSAYS.is_file():
        texts.append(json.loads(ESSAYS.read_text(encoding="utf-8"))["text"][:400_000])
    arg = tmp_path / "texts.json"
    arg.write_text(json.dumps(texts))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALSUITE_")}
    r = subprocess.run([sys.executable, "-c", CHECK, str(arg)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["leaked"] == [] and out["heavy"] == []  # nothing of nltk or scipy stays behind
    assert out["same"] and out["n"] > 1000 and out["full_nltk"]


def test_punkt_uses_an_already_imported_nltk():
    code = ("import nltk, sys; from evalsuite.text import punkt_module; "
            "print(punkt_module() is sys.modules['nltk.tokenize.punkt'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]
