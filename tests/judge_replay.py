"""Replayed judge verdicts for LongGenBench (Wu et al.) on the real data in ../shared (used by the judge,
results-schema, LongGenBench and conformance tests)."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import SHARED

WU_DIR = SHARED / "data" / "longgenbench-wu" / "Dataset"


def wu_verdicts(path: Path, setting: str = "short", limit: int | None = None) -> list[str]:
    """Replay verdicts answering from the check descriptions: "yes" when the gold entry of the unit (which
    names every event of the unit) contains the description. Returns every query id."""
    rows = json.loads((WU_DIR / f"Dataset_{setting}.json").read_text())[:limit]
    ids = []
    with open(path, "w") as f:
        for i, row in enumerate(rows):
            unit_events: dict[str, list[str]] = {}
            for kind in ("once", "range", "periodic"):
                for unit, desc in row[f"checks_{kind}"].items():
                    unit_events.setdefault(unit, []).append(desc)
            for kind in ("once", "range", "periodic"):
                for unit, desc in row[f"checks_{kind}"].items():
                    qid = f"{setting}-{i}/{kind}/{unit}"
                    ids.append(qid)
                    f.write(json.dumps({"sample_id": qid, "output": "yes" if desc in unit_events[unit] else "no"}) + "\n")
    return ids
