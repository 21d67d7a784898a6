"""A PunchBench fixture in the schema we assume (tasks/punchbench/README.md), made by us: four
image–caption pairs, each with a locally generated PNG, records in all six format files for each of
the three caption variants. Not the released data (which could not be read offline)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

FORMAT_FILES = {"perception_yes_no": "Perception/Yes_No.jsonl", "perception_matching": "Perception/Matching.jsonl",
                "perception_multi_option": "Perception/Multi_Option.jsonl",
                "reasoning_yes_no": "Reasoning/Yes_No.jsonl", "reasoning_matching": "Reasoning/Matching.jsonl",
                "reasoning_generation": "Reasoning/Generation.jsonl"}
VARIANTS = ("original", "synonymous", "antonymous")


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid solid-colour RGB PNG, written with zlib only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def build(root: Path, n_pairs: int = 4) -> Path:
    """Write the fixture under ``root/dev0610`` (images under ``root/images``); returns ``root``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {f: [] for f in FORMAT_FILES}
    for k in range(n_pairs):
        img = f"images/pair{k}.png"
        (root / img).write_bytes(png(8, 8, (40 * k % 256, 200, 255 - 30 * k)))
        for v in VARIANTS:
            punch = (k % 2 == 0) != (v == "antonymous")
            cap = {"original": f"My diet starts tomorrow, said cake number {k}.",
                   "synonymous": f"My eating plan begins tomorrow, said cake number {k}.",
                   "antonymous": f"My diet ended yesterday, said cake number {k}."}[v]
            base = {"id": f"p{k}", "image": img, "caption_type": v, "caption": cap}
            yn = "yes" if punch else "no"
            rows["perception_yes_no"].append({**base, "question": "Does this image-caption pair contain a punchline?",
                                              "answer": yn})
            pm_opts = [cap, f"A plain photo of item {k}."] if k % 2 == 0 else [f"A plain photo of item {k}.", cap]
            rows["perception_matching"].append({**{x: base[x] for x in ("id", "image", "caption_type")},
                                                "question": "Which caption forms a punchline with the image?",
                                                "options": pm_opts, "answer": 1 + pm_opts.index(cap)})
            mo = [f"Option {c} for pair {k}" for c in "ABCD"]
            rows["perception_multi_option"].append({**base, "question": "What is the punchline?", "options": mo,
                                                    "answer": "ABCD"[k % 4]})
            rows["reasoning_yes_no"].append({**base, "question": "Does this explanation fit: the cake talks?",
                                             "answer": "no" if punch else "yes"})
            rm = [f"Explanation one for {k}", f"Explanation two for {k}"]
            rows["reasoning_matching"].append({**base, "question": "Which explanation is correct?", "options": rm,
                                               "answer": rm[k % 2]})
            rows["reasoning_generation"].append({**base, "question": "Why is this funny?",
                                                 "answer": f"The speaker is a cake that avoids its own diet ({k})."})
    for f, rel in FORMAT_FILES.items():
        p = root / "dev0610" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r) + "\n" for r in rows[f]), encoding="utf-8")
    return root
