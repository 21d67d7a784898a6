"""Small synthetic QA files in the official SQuAD v2 dev and HotpotQA dev-distractor formats, built from
the Paul Graham essays in ../shared/data (the real files need network). Questions are synthetic
("Which word comes right after ... ?"); the structure (articles, paragraphs, impossible questions,
ten titled context entries) is the official one, which is what RULER's qa generator reads."""

from __future__ import annotations

import json
import re
from pathlib import Path


def _chunks(par: str, size: int = 900) -> list[str]:
    """A long paragraph cut at sentence ends into pieces of about ``size`` characters."""
    out, cur = [], ""
    for sent in par.split(". "):
        cur = f"{cur}. {sent}" if cur else sent
        if len(cur) >= size:
            out.append(cur + ".")
            cur = ""
    return out + ([cur] if len(cur) >= 200 else [])


def _paragraphs(essay_dir: Path, limit: int, split_long: bool = False) -> list[tuple[str, list[str]]]:
    """(essay title, paragraphs of 200-1500 characters) per essay, in file-name order; with
    ``split_long``, longer paragraphs are cut into pieces instead of dropped (more documents)."""
    out = []
    for f in sorted(essay_dir.glob("*.txt")):
        paras = [re.sub(r"\s+", " ", p).strip() for p in f.read_text(encoding="utf-8").split("\n\n")]
        if split_long:
            paras = [c for p in paras for c in (_chunks(p) if len(p) > 1500 else [p])]
        paras = [p for p in paras if 200 <= len(p) <= 1500]
        if paras:
            out.append((f.stem, paras))
        if len(out) >= limit:
            break
    return out


def _question(par: str, k: int) -> tuple[str, str]:
    """A question whose answer is a word of 7+ letters (so it does not turn up in any text by chance)."""
    words = par.split(" ")
    i = (7 * k + 3) % max(1, len(words) - 1)
    for j in list(range(i, len(words) - 1)) + list(range(0, i)):
        if len(words[j + 1]) >= 7 and words[j + 1].isalpha():
            i = j
            break
    return f"Which word comes right after \"{words[i]}\" in the passage?", words[i + 1]


def write_squad(path: Path, essay_dir: Path, articles: int = 20, split_long: bool = False) -> Path:
    data = []
    k = 0
    for title, paras in _paragraphs(essay_dir, articles, split_long):
        ps = []
        for par in paras[:12]:
            q, a = _question(par, k)
            k += 1
            start = par.find(a)
            ps.append({"context": par, "qas": [
                {"question": q, "id": f"q{k}", "answers": [{"text": a, "answer_start": start}],
                 "is_impossible": False},
                {"question": "What is the name of the essay's cat?", "id": f"q{k}x", "answers": [],
                 "plausible_answers": [{"text": "Tom", "answer_start": 0}], "is_impossible": True},
            ]})
        data.append({"title": title, "paragraphs": ps})
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path


def write_hotpotqa(path: Path, essay_dir: Path, questions: int = 60, split_long: bool = False) -> Path:
    flat = [(t, p) for t, ps in _paragraphs(essay_dir, 40, split_long) for p in ps]
    rows = []
    for k in range(questions):
        ctx = []
        for j in range(10):
            t, p = flat[(k * 10 + j * 7) % len(flat)]
            sents = [s + ". " for s in p.split(". ")[:2]]  # short entries, as HotpotQA's are
            ctx.append([f"{t} {(k * 10 + j * 7) % len(flat)}", sents])
        gold_par = "".join(ctx[0][1])
        q, a = _question(gold_par, k)
        rows.append({"_id": f"h{k}", "question": q, "answer": a, "type": "bridge", "level": "easy",
                     "supporting_facts": [[ctx[0][0], 0]], "context": ctx})
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path
