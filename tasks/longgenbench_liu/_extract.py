"""LongGenBench (Liu et al.) answer extraction: the official positional rule and a robust one.

Official (Dominic789654/LongGenBench@9845864, ``extract_ans`` + ``test_answer``, re-implemented): split the
response on ``Answer_`` and re-join with ``\\n``; every match of ``(?<=:\\n)(.*?)(?=\\n\\n|$)`` (DOTALL) is one
answer, stripped; answers pair with the questions by position. The scored string of answer ``i`` (0-based)
is ``"A_model:Q_<i>\\n<answer>\\n"`` as the script writes it to its log, so the ``A`` of ``A_model`` and the
digits of ``Q_<i>`` take part in the matching: GSM8K takes the last ``\\d*\\.?\\d+`` after removing commas and
compares strings; MMLU takes the last of ``A|B|C|D``, CommonsenseQA (our port, no upstream script) the last of
``A|B|C|D|E``. Questions with no answer are not counted (the GSM8K
script's zip; the MMLU script asks again in a new call, which a single-pass protocol cannot do).

Upstream then writes, per answered question, ``Question: <q>\nA_model:Q_<i>\n<answer>\nA_gold:\n<gold>\n\n`` to
a log and scores the log with ``parse_pred_ans``, which reads it line by line: every line that starts with
``Question:`` closes the record in progress (scored only once both an ``A_model:`` and an ``A_gold:`` line
were seen) and opens a new one, a line starting ``A_model:`` / ``A_gold:`` restarts the model / gold text, and
other lines extend the current part. A ``Question:`` line inside a model's answer therefore splits the
answer: the part before it is scored against the gold text still held (the previous record's), and the
count of questions grows by one. ``official_tally`` replays that reading (``official_log`` writes the log).

Robust [ours]: answers are found by their explicit number (``Answer_<n>:``, first occurrence wins, on the
same line or the next), so a skipped, extra or preamble answer shifts nothing; a missing answer is wrong;
the final answer is the one introduced by "The answer is" (else the last number / option letter), compared
numerically for GSM8K. The option letters are A-D for MMLU and A-E for CommonsenseQA.
"""

from __future__ import annotations

import re
from typing import Sequence

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


def _official_match(kind: str, model_text: str, gold_text: str) -> bool:
    """Upstream's ``test_answer`` on a record's model part and gold part (the gold is read as written, commas
    kept; a gold without a number / letter, where upstream would raise, is a miss)."""
    if kind == "gsm8k":
        pred, gold = _GSM_NUM.findall(model_text.replace(",", "")), _GSM_NUM.findall(gold_text)
    else:
        pred, gold = _OFFICIAL_LETTER[kind].findall(model_text), _OFFICIAL_LETTER[kind].findall(gold_text)
    return bool(pred) and bool(gold) and pred[-1] == gold[-1]


def official_log(questions: Sequence[str], golds: Sequence[str], text: str) -> str:
    """What upstream's script appends to its log for one batch: one block per extracted answer, paired with the
    questions and gold texts by position (``zip``: extra answers and unanswered questions are left out)."""
    return "".join(f"Question: {q}\nA_model:Q_{i}\n{a}\nA_gold:\n{g}\n\n"
                   for i, (q, g, a) in enumerate(zip(questions, golds, official_answers(text))))


def _log_lines(log: str) -> list[str]:
    # The script reads its log in text mode: "\r\n" and a lone "\r" end a line too.
    return log.replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)


def official_tally(kind: str, logs: Sequence[str]) -> list[tuple[int, int]]:
    """``(correct, records)`` per log, reading the logs one after another as one file, the way upstream's
    ``parse_pred_ans`` reads its log. A record belongs to the log holding the ``Question:`` line that opened it;
    ``records`` counts those lines (upstream's ``num_q``)."""
    tally = [[0, 0] for _ in logs]
    mode, model, gold, owner = "", None, None, -1

    def close() -> None:
        if model is not None and gold is not None and owner >= 0:
            tally[owner][0] += _official_match(kind, model, gold)

    for b, log in enumerate(logs):
        for line in _log_lines(log):
            if line.startswith("Question:"):
                close()
                mode, owner = "q", b
                tally[b][1] += 1
            elif line.startswith("A_model:"):
                mode, model = "am", line
            elif line.startswith("A_gold:"):
                mode, gold = "a", line
            elif mode == "am":
                model += line  # type: ignore[operator]
            elif mode == "a":
                gold += line  # type: ignore[operator]
    close()
    return [(c, n) for c, n in tally]


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
