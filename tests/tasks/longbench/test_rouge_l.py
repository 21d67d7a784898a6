"""Our iterative ROUGE-L (tasks/longbench/_rouge_l.py) against pltrdy's rouge 1.0.1 itself, run in this
process: the same tables, the same back-trace (kept words and recursion depth), the same F bit for bit,
and the same failing pairs at the recursion boundary of the official eval.py."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from evalsuite.tasks.longbench import _rouge_l as rl
from evalsuite.tasks.longbench._metric import LongBench, _jieba_join, records_from_official
from evalsuite.types import Generation, Record, Sample

rouge_score_mod = pytest.importorskip("rouge.rouge_score")

GOLDEN = Path(__file__).resolve().parents[2].parent.parent / "shared" / "data" / "longbench" / "golden_pred" \
    / "llama2-7b-chat-4k"


def _rec(pred: str, answers, i: int = 0) -> Record:
    return Record(Sample(id=f"s{i}", index=i, input=None, target=answers, metadata={}), pred,
                  Generation(pred, "stop"))


def _random_text(rnd: random.Random, vocab: int, sentences: int, words: int) -> str:
    return ". ".join(" ".join(f"w{rnd.randint(0, vocab)}" for _ in range(rnd.randint(1, words)))
                     for _ in range(rnd.randint(1, sentences)))


def _recon_depth(x: list[str], y: list[str]) -> tuple[set[str], int]:
    """rouge's own _recon_lcs on x, y: its word set and the deepest nesting of its recursive _recon."""
    depth = best = 0

    def prof(frame, event, arg):
        nonlocal depth, best
        if frame.f_code.co_name == "_recon":
            if event == "call":
                depth += 1
                best = max(best, depth)
            elif event == "return":
                depth -= 1

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 5000))
    sys.setprofile(prof)
    try:
        words = rouge_score_mod._recon_lcs(x, y)
    finally:
        sys.setprofile(None)
        sys.setrecursionlimit(old)
    return set(words._ngrams), best


def test_rows_equal_rouges_table_for_every_sentence_at_once():
    rnd = random.Random(7)
    for _ in range(300):
        vocab = rnd.randint(1, 6)  # small vocabularies: many matches and ties
        hyp = rl.prepare(_random_text(rnd, vocab, 4, 20))
        x = [f"w{rnd.randint(0, vocab)}" for _ in range(rnd.randint(1, 20))]
        rows = rl._rows(x, hyp)
        for y, off in zip(hyp.words, hyp.offsets):
            want = rouge_score_mod._lcs(x, y)
            for i in range(len(x) + 1):
                for j in range(len(y) + 1):
                    assert j - ((rows[i] >> off) & ((1 << j) - 1)).bit_count() == want[i, j], (x, y, i, j)


def test_walk_keeps_rouges_words_and_takes_its_steps():
    # The walk's step count is the recursion rouge needs (depth = steps + 1): what decides RecursionError.
    rnd = random.Random(11)
    for _ in range(400):
        vocab = rnd.randint(1, 8)
        x = [f"w{rnd.randint(0, vocab)}" for _ in range(rnd.randint(1, 40))]
        hyp = rl.prepare(" ".join(f"w{rnd.randint(0, vocab)}" for _ in range(rnd.randint(1, 40))))
        y = hyp.words[0]
        kept, steps = rl.walk(x, y, rl._rows(x, hyp), hyp.masks, 0)
        want_words, want_depth = _recon_depth(x, y)
        assert set(kept) == want_words and steps + 1 == want_depth, (x, y)


@pytest.mark.skipif(not GOLDEN.is_dir(), reason="shared/data/longbench golden predictions not found")
def test_f_is_rouges_bit_for_bit_on_random_and_golden_texts():
    rnd = random.Random(3)
    pairs = [(_random_text(rnd, rnd.randint(1, 30), 5, 30), _random_text(rnd, rnd.randint(1, 30), 5, 30))
             for _ in range(300)]
    pairs += [("", "a"), ("a", ""), (". .", "a"), ("a .  . b", "b . a"), ("x", "x"), ("a  b", "a b")]
    for ds, seg in (("gov_report", str), ("dureader", _jieba_join)):
        for line in (GOLDEN / f"{ds}.jsonl").read_text(encoding="utf-8").splitlines()[:25]:
            row = json.loads(line)
            pairs += [(seg(row["pred"]), seg(a)) for a in row["answers"]]
    for hyp, ref in pairs:
        try:
            want = (rouge_score_mod.rouge_l_summary_level(rl.sentences(hyp), rl.sentences(ref))["f"], None)
        except ValueError:
            want = (0.0, "ValueError")
        assert rl.rouge_l(hyp, ref, 10 ** 9) == want, (hyp, ref)


def test_official_walk_limit_rule():
    # 1000 frames; eval.py's stack holds 9 frames (10 for rouge_zh_score) when the walk starts, and a
    # walk of P steps nests P + 1 calls; CPython 3.10 fails one step earlier.
    assert rl.official_max_steps("rouge_score", (3, 11)) == 990
    assert rl.official_max_steps("rouge_zh_score", (3, 13)) == 989
    assert rl.official_max_steps("rouge_score", (3, 10)) == 989
    assert rl.official_max_steps("rouge_zh_score", (3, 10)) == 988


def _walk_of(hyp: str, ref: str) -> int:
    return rl.longest_walk(hyp, ref)


def _boundary_pairs(limit: int, rnd: random.Random) -> list[tuple[str, str, int]]:
    """(hyp, ref, longest walk) with walks from limit - 2 to limit + 2, in shapes whose tables stay small
    enough for rouge's own dict table: a run up one column, a run left along one row (with and without a
    match at its end), the long walk in a second sentence; and random text at limit and limit + 1."""
    out = []
    for n in range(limit - 2, limit + 3):
        w = [f"w{i}" for i in range(1, n)]
        out.append(("z", " ".join(["z"] + w), n))  # up n - 1, one match
        out.append((" ".join(["z"] + w), "z", n))  # left n - 1, one match
        out.append((" ".join(["q"] + w), "z", n))  # nothing in common: left n, scores 0 anyway
        out.append(("a b. z", "a c d. " + " ".join(["z"] + w), n))  # the long walk in the 2nd sentence
    # Both sentences longer than the limit (no common word: the walk runs along the last row): decided
    # without tables.
    out.append((" ".join(f"a{i}" for i in range(limit + 1)), " ".join(f"b{i}" for i in range(limit + 1)),
                limit + 1))
    vocab = [f"v{i}" for i in range(40)]
    for n in (limit, limit + 1):
        while True:
            x, y = [rnd.choice(vocab) for _ in range(n // 2)], [rnd.choice(vocab) for _ in range(n // 3)]
            while _walk_of(" ".join(y), " ".join(x)) < n:
                (x if rnd.random() < 0.5 else y).append(rnd.choice(vocab))
            if _walk_of(" ".join(y), " ".join(x)) == n:
                out.append((" ".join(y), " ".join(x), n))
                break
    return out


def _nest(depth: int, fn):
    return _nest(depth - 1, fn) if depth else fn()


@pytest.mark.parametrize("dataset, fn, depth", [("gov_report", "rouge_score", 0), ("gov_report", "rouge_score", 400),
                                                ("vcsum", "rouge_zh_score", 100)])
def test_failing_pairs_at_the_boundary_equal_rouge_run_in_this_process(dataset, fn, depth):
    limit = rl.official_max_steps(fn)
    pairs = _boundary_pairs(limit, random.Random(5))
    recs = [_rec(h, [r], i) for i, (h, r, _) in enumerate(pairs)]
    ours = _nest(depth, lambda: LongBench(dataset=dataset).score(recs))
    theirs = _nest(depth, lambda: LongBench(dataset=dataset, fast_lcs=False).score(recs))
    assert ours.per_sample == theirs.per_sample and ours.details == theirs.details
    seg = _jieba_join if fn == "rouge_zh_score" else str
    assert all(_walk_of(seg(h), seg(r)) == steps for h, r, steps in pairs)  # segmenting moves no walk
    failing = {f"s{i}" for i, (_, _, steps) in enumerate(pairs) if steps > limit}
    assert set(ours.details["rouge_error_samples"]) == failing and len(failing) == 10
    assert all(ours.per_sample[i] > 0 for i, (h, _, steps) in enumerate(pairs)
               if steps <= limit and not h.startswith("q"))


@pytest.mark.skipif(not GOLDEN.is_dir(), reason="shared/data/longbench golden predictions not found")
def test_golden_summaries_equal_rouge_run_in_this_process():
    rows = [json.loads(x) for x in (GOLDEN / "gov_report.jsonl").read_text(encoding="utf-8").splitlines()[:12]]
    recs = records_from_official("gov_report", rows)
    ours, theirs = LongBench(dataset="qmsum").score(recs), LongBench(dataset="qmsum", fast_lcs=False).score(recs)
    assert ours.per_sample == theirs.per_sample and ours.details == theirs.details
