"""LongGenBench (Liu et al.) answer extraction: the official positional rule and a robust one.

Official (Dominic789654/LongGenBench@9845864, ``extract_ans`` + ``test_answer``, re-implemented): split the
response on ``Answer_`` and re-join with ``\\n``; every match of ``(?<=:\\n)(.*?)(?=\\n\\n|$)`` (DOTALL) is one
answer, stripped; answers pair with the questions by position. The scored string of answer ``i`` (0-based)
is ``"A_model:Q_<i>\\n<answer>\\n"`` as the script writes it to its log, so the ``A`` of ``A_model`` and the
digits of ``Q_<i>`` take part in the matching: GSM8K takes the last ``\\d*\\.?\\d+`` after removing commas and
compares strings; MMLU takes the last of ``A|B|C|D``, CommonsenseQA (our port, no upstream script) the last of
``A|B|C|D|E``. Questions with no answer are not counted (the GSM8K
script's zip; the MMLU script asks again in a new call, which a single-pass protocol cannot do).

Robust [ours]: answers are found by their explicit number (``Answer_<n>:``, first occurrence wins, on the
same line or the next), so a skipped, extra or preamble answer shifts nothing; a missing answer is wrong;
the final answer is the one introduced by "The answer is" (else the last number / option letter), compared
numerically for GSM8K. The option letters are A-D for MMLU and A-E for CommonsenseQA.
"""

from __future__ import annotations

import re

_OFFICIAL = re.compile(r"(?<=:\n)(.*?)(?=\n\n|$)", re.DOTALL)
_GSM_NUM = re.compile(r"\d*\.?\d+")
LETTERS = {"mmlu": "ABCD", "csqa": "ABCDE"}
"""Option letters of the multiple-choice kinds."""
_OFFICIAL_LETTER = {k: re.compile("|".join(v)) for k, v in LETTERS.items()}
_TAG = re.compile(r"Answer_(\d+)\s*:")
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ANSWER_IS_NUM = re.compile(r"answer is\s*:?\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?|-?\.\d+)", re.IGNORECASE)
_ROBUST_LETTER = {k: (re.compile(rf"answer is\s*:?\s*\**\s*\(?([{v}])\)?(?![A-Za-z])", re.IGNORECASE),
                      re.compile(rf"\(([{v}])\)"), re.compile(rf"\b([{v}])\b")) for k, v in LETTERS.items()}


def official_answers(text: str) -> list[str]:
    joined = "\n".join(text.split("Answer_"))
    return [m.strip() for m in _OFFICIAL.findall(joined)]


def gsm8k_gold_official(solution: str) -> str:
    """The gold number as the official test reads it: the last ``\\d*\\.?\\d+`` of the solution."""
    found = _GSM_NUM.findall(solution)
    return found[-1] if found else ""


def official_correct(kind: str, position: int, answer: str, gold: str) -> bool:
    scored = f"A_model:Q_{position}\n{answer}\n"
    if kind == "gsm8k":
        found = _GSM_NUM.findall(scored.replace(",", ""))
        return bool(found) and found[-1] == gold
    found = _OFFICIAL_LETTER[kind].findall(scored)
    return bool(found) and found[-1] == gold


def official_score(kind: str, text: str, golds: list[str]) -> tuple[int, int]:
    """``(correct, answered)`` for one batch response."""
    answers = official_answers(text)
    n = min(len(answers), len(golds))
    return sum(official_correct(kind, i, answers[i], golds[i]) for i in range(n)), n


def robust_answers(text: str) -> dict[int, str]:
    """Question number -> its answer text (first ``Answer_<n>:`` wins)."""
    tags = list(_TAG.finditer(text))
    out: dict[int, str] = {}
    for j, m in enumerate(tags):
        end = tags[j + 1].start() if j + 1 < len(tags) else len(text)
        out.setdefault(int(m.group(1)), text[m.end():end].strip())
    return out


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def gsm8k_pred(answer: str) -> float | None:
    hits = _ANSWER_IS_NUM.findall(answer)
    if not hits:
        hits = _NUM.findall(answer)
    return _to_float(hits[-1]) if hits else None


def mmlu_pred(answer: str, kind: str = "mmlu") -> str | None:
    """The chosen option letter (``kind`` picks the letter set: ``mmlu`` A-D, ``csqa`` A-E)."""
    for pat in _ROBUST_LETTER[kind]:
        hits = pat.findall(answer)
        if hits:
            return hits[-1].upper()
    return None


def robust_correct(kind: str, answer: str | None, gold: str) -> bool:
    if answer is None:
        return False
    if kind == "gsm8k":
        p, g = gsm8k_pred(answer), _to_float(gold)
        return p is not None and g is not None and abs(p - g) <= 1e-6 * max(1.0, abs(g))
    return mmlu_pred(answer, kind) == gold


def robust_score(kind: str, text: str, golds: list[str], first: int) -> tuple[int, int]:
    """``(correct, answered)``: question ``first + i`` is answered by ``Answer_<first + i>:``."""
    found = robust_answers(text)
    answers = [found.get(first + i) for i in range(len(golds))]
    return (sum(robust_correct(kind, a, g) for a, g in zip(answers, golds)),
            sum(a is not None for a in answers))
