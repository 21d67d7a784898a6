"""jieba for LongBench's Chinese metrics: its dictionary from our cache equals what jieba builds from its own
dict.txt, a bad cache is rebuilt, and block-reusing segmentation equals jieba.cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jieba")

GOLDEN = Path(__file__).resolve().parents[2].parent.parent / "shared" / "data" / "longbench" / "golden_pred" \
    / "llama2-7b-chat-4k"

CHECK = """
import json, sys, jieba
from evalsuite.tasks.longbench import _jieba as J
tok = J.jieba().dt
fresh, total = jieba.Tokenizer.gen_pfdict(jieba.dt.get_dict_file())
print(json.dumps({"equal": tok.FREQ == fresh and tok.total == total, "n": len(tok.FREQ),
                  "cache": str(J.cache_path(jieba))}))
"""


def _check(cache: Path) -> dict:
    env = {**os.environ, "EVALSUITE_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_dictionary_from_our_cache_equals_jiebas_own_and_bad_caches_are_rebuilt(tmp_path):
    first = _check(tmp_path)  # builds the cache from jieba's dict.txt
    cache = Path(first["cache"])
    assert first["equal"] and first["n"] > 300_000 and cache.is_file() and cache.parent.parent == tmp_path
    assert _check(tmp_path)["equal"]  # loaded from the cache
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # truncated
    assert _check(tmp_path)["equal"] and cache.stat().st_size > 1_000_000  # rebuilt
    cache.write_bytes(b"\x00garbage")
    assert _check(tmp_path)["equal"]
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert _check(blocked / "cache")["equal"]  # no cache can be written there: costs time, not correctness


def test_block_reusing_cut_equals_jieba_cut():
    import jieba

    from evalsuite.tasks.longbench import _jieba as J

    texts = ["", " ", "我爱北京天安门", "我爱北京天安门。我爱北京天安门！", "Hello, 世界 2024年3.5% a+b#c",
             "\n\t混合 English 和中文。。。", "重复重复重复，重复重复重复，重复重复重复", "🙂表情😀符号", "\x00\x1b[31m红"]
    for ds in ("dureader", "multifieldqa_zh"):
        if (GOLDEN / f"{ds}.jsonl").is_file():
            for line in (GOLDEN / f"{ds}.jsonl").read_text(encoding="utf-8").splitlines()[:60]:
                row = json.loads(line)
                texts += [row["pred"], *row["answers"]]
    J.jieba()
    for t in texts + texts:  # the second pass reuses every block
        assert J.cut(t) == list(jieba.cut(t, cut_all=False)), t
