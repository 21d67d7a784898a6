"""Synthetic CommonsenseQA items in the official dev_rand_split.jsonl schema (made by us for the tests)."""
from __future__ import annotations

N = 45
GOLDS = "ABEEC" + "ABCDE" * 8  # first five items: A B E E C


def synthetic_rows(n: int = N) -> list[dict]:
    """Synthetic items; stems get longer with the index except item 0, which is the longest of all, so
    sorting by length changes the order."""
    rows = []
    for i in range(n):
        pad = " very" * (60 if i == 0 else i)
        rows.append({"answerKey": GOLDS[i], "id": f"synthetic-{i:03d}",
                     "question": {"question_concept": f"concept {i}",
                                  "choices": [{"label": lab, "text": f"option {lab.lower()} of item {i}"}
                                              for lab in "ABCDE"],
                                  "stem": f"Synthetic question {i}: where is a{pad} ordinary thing kept?"}})
    return rows
