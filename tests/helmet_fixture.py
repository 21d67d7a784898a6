"""A synthetic HELMET data folder in the official formats, made by us from the field names HELMET's loaders
read (princeton-nlp/HELMET@4526dfb data.py, eval_alce.py, scripts/eval_gpt4_summ.py): the files of its
``data/`` release (ruler, json_kv, kilt, msmarco, alce, key points) and the Hub rows it loads at run time
(narrativeqa, InfiniteBench, Multi-LexSum, TREC, BANKING77, CLINC150, NLU) as JSON lines. Every text is
generated here from a seeded word list: none of it is the released data.

Long documents are made so that HELMET's length filters keep most of them with the SmolLM2 tokenizer
(NarrativeQA > 131072 tokens, InfiniteBench / Multi-LexSum >= 65536) and one row of each is too short.
Only the 8K (8192) and 32K (32768) files are written. ``build(root)`` is deterministic: the upstream
prompt hashes in tests/fixtures/helmet/ were computed from exactly these files.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from pathlib import Path
from typing import Any

WORDS = ("the river house quiet light stone garden window morning letter journey silver harbor market "
         "winter summer forest mountain village teacher doctor captain sister brother mother father friend "
         "stranger evening shadow bridge castle kingdom soldier farmer merchant sailor painter writer singer "
         "orchard meadow valley island desert ocean tower palace temple library school station road street "
         "candle lantern mirror clock basket bottle blanket carriage wagon horse dog cat bird wolf bear deer "
         "apple bread cheese honey salt wine tea coffee sugar paper ink book song story dream memory promise "
         "secret answer question reason moment season history future silence thunder storm rain snow wind "
         "fire water earth cloud star moon sun sky green blue red golden old young small great long short "
         "bright dark warm cold gentle brave clever quiet careful sudden slow quick walked spoke found lost "
         "carried opened closed watched remembered wondered laughed waited returned followed gave took").split()
LENGTHS = (8192, 32768)
KILT_K = {8192: 50, 32768: 220}
KILT_PASSAGES = {8192: 8, 32768: 14}
"""Passages per fixture row (the files are named for HELMET's k, the rows are kept small)."""
JSON_KV_K = {8192: 105, 32768: 440}
MSMARCO_K = {8192: 50, 32768: 285}


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def _text(rng: random.Random, n_words: int) -> str:
    out, total = [], 0
    while total < n_words:
        k = rng.randint(6, 18)
        out.append(_sentence(rng, k))
        total += k
    return " ".join(out)


def _novel(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    paras = []
    total = 0
    while total < n_words:
        k = rng.randint(80, 200)
        paras.append(_text(rng, k))
        total += k
    return "\n\n".join(paras)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ruler(root: Path, rng: random.Random) -> None:
    for folder, kind in (("niah_multikey_2", "mk2"), ("niah_multikey_3", "mk3"), ("niah_multivalue", "mv")):
        for L in LENGTHS:
            rows = []
            for i in range(3):
                if kind == "mk3":
                    key, vals, tv = _uuid(rng), [_uuid(rng)], "uuid"
                else:
                    key = rng.choice(WORDS) + "-" + rng.choice(WORDS)
                    vals = [str(rng.randint(10**6, 10**7 - 1)) for _ in range(4 if kind == "mv" else 1)]
                    tv = "numbers" if kind == "mv" else "number"
                lines = []
                n_lines = 40 if i < 2 else (L // 10 if L == 8192 else 120)  # row 2 runs over 8K
                for _ in range(n_lines):
                    other = _uuid(rng) if kind == "mk3" else rng.choice(WORDS) + "-" + rng.choice(WORDS)
                    ov = _uuid(rng) if kind == "mk3" else str(rng.randint(10**6, 10**7 - 1))
                    lines.append(f"One of the special magic {tv} for {other} is: {ov}.")
                for v in vals:
                    lines.insert(rng.randrange(len(lines)), f"One of the special magic {tv} for {key} is: {v}.")
                context = "\n".join(lines)
                rows.append({"index": i, "input": "", "outputs": vals, "length": L, "answer": vals,
                             "type_needle_v": tv, "query": key, "context": context})
            _write_jsonl(root / "ruler" / folder / f"validation_{L}.jsonl", rows)


def _json_kv(root: Path, rng: random.Random) -> None:
    for L in LENGTHS:
        k = JSON_KV_K[L]
        rows = []
        for i in range(3):
            kv = {_uuid(rng): _uuid(rng) for _ in range(12 + 4 * i)}
            key = rng.choice(list(kv))
            rows.append({"context": "JSON data:\n" + json.dumps(kv, indent=1), "demos": [[_uuid(rng), _uuid(rng)] for _ in range(3)],
                         "question": key, "answer": kv[key], "depth": round(i / 2, 2), "num_kvs": len(kv)})
        _write_jsonl(root / "json_kv" / f"test_k{k}_dep6.jsonl", rows)


def _passage(rng: random.Random, answer: str | None = None) -> dict[str, Any]:
    text = _text(rng, rng.randint(30, 60))
    if answer:
        text += f" It was {answer}."
    return {"title": " ".join(rng.choice(WORDS) for _ in range(2)).title(), "text": text,
            "has_answer": bool(answer), "id": str(rng.randint(1, 10**7))}


def _kilt(root: Path, rng: random.Random) -> None:
    sets = (("nq-dev-multikilt_1000_k{k}_dep6.jsonl", "nq-train-multikilt_1000_k3_dep6.jsonl", False),
            ("triviaqa-dev-multikilt_1000_k{k}_dep6.jsonl", "triviaqa-train-multikilt_1000_k3_dep6.jsonl", True),
            ("hotpotqa-dev-multikilt_1000_k{k}_dep3.jsonl", "hotpotqa-train-multikilt_1000_k3_dep3.jsonl", True),
            ("popqa_test_1000_k{k}_dep6.jsonl", "popqa_test_1000_k3_dep6.jsonl", False))
    for test_name, demo_name, with_id in sets:
        popqa = test_name.startswith("popqa")
        questions = []
        for q in range(4 if popqa else 2):
            ans = [rng.choice(WORDS).title() + " " + rng.choice(WORDS).title(), rng.choice(WORDS)]
            row: dict[str, Any] = {"question": f"who {rng.choice(WORDS)} the {rng.choice(WORDS)} {q}", "answers": ans}
            if with_id:
                row["id"] = f"q{q}-{rng.randint(0, 10**6)}"
            if popqa:
                row["s_pop"] = [120, 5400, 30, 77][q]  # 5400 is over the popularity threshold (log10 >= 3)
                row["subj_id"] = rng.randint(1, 10**6)
            questions.append(row)
        for L in LENGTHS:
            rows = []
            for row in questions:
                for depth in ((0.0, 0.5) if not popqa else (0.0, 0.2)):
                    ctxs = [_passage(rng) for _ in range(KILT_PASSAGES[L] - 1)]
                    gold = _passage(rng, row["answers"][0])
                    ctxs.insert(int(depth * len(ctxs)), gold)
                    r = {**row, "ctxs": ctxs, "positive_ctxs": [gold], "hard_negative_ctxs": ctxs[:2]}
                    if not test_name.startswith("hotpotqa"):
                        r["depth"] = depth
                    rows.append(r)
            _write_jsonl(root / "kilt" / test_name.format(k=KILT_K[L]), rows)
        demos = []
        source = questions if popqa else [{"question": f"what {rng.choice(WORDS)} {j}", "answers": [rng.choice(WORDS)],
                                           **({"id": f"d{j}"} if with_id else {})} for j in range(4)]
        for row in source:
            demos.append({**row, "ctxs": [_passage(rng, row["answers"][0])] + [_passage(rng) for _ in range(2)]})
        if not popqa:
            demos.append(dict(demos[0]))  # a repeated question: HELMET drops repeats among the demos
        _write_jsonl(root / "kilt" / demo_name, demos)


def _msmarco(root: Path, rng: random.Random) -> None:
    def query(qid: str, k: int) -> dict[str, Any]:
        ctxs = []
        for j in range(k):
            ctxs.append({"id": str(1000 + j), "title": rng.choice(WORDS).title(), "text": _text(rng, rng.randint(10, 25)),
                         "label": rng.choice((0, 0, 0, 1, 2, 3))})
        rng.shuffle(ctxs)
        return {"qid": qid, "query": f"what is {rng.choice(WORDS)} {rng.choice(WORDS)}", "ctxs": ctxs}

    for L in LENGTHS:
        _write_jsonl(root / "msmarco" / f"test_reranking_data_k{MSMARCO_K[L]}_dep3.jsonl",
                     [query(str(100 + i), 12 if L == 8192 else 20) for i in range(3)])
    _write_jsonl(root / "msmarco" / "test_reranking_data_k10_dep3.jsonl", [query(str(200 + i), 10) for i in range(4)])


def _alce(root: Path, rng: random.Random) -> None:
    (root / "alce").mkdir(parents=True, exist_ok=True)
    asqa, qampari = [], []
    for i in range(3):
        docs = [{"id": str(rng.randint(1, 10**7)), "title": rng.choice(WORDS).title(),
                 "text": _text(rng, rng.randint(12, 25)), "score": round(rng.random() * 100, 3)} for _ in range(200)]
        shorts = [rng.choice(WORDS) + " " + rng.choice(WORDS), str(rng.randint(1800, 2020))]
        asqa.append({"question": f"When did the {rng.choice(WORDS)} {i} happen?", "docs": docs, "sample_id": f"asqa{i}",
                     "qa_pairs": [{"question": "q", "short_answers": [shorts[0]], "context": "", "wikipage": None},
                                  {"question": "q2", "short_answers": [shorts[1], "x" + shorts[1]], "context": "", "wikipage": None}],
                     "answer": f"It was {shorts[0]} [1][2]. Some say {shorts[1]} [3].",
                     "wikipages": [], "annotations": []})
        answers = [[rng.choice(WORDS) + " " + rng.choice(WORDS)] for _ in range(rng.randint(3, 7))]
        qampari.append({"question": f"Which {rng.choice(WORDS)} are {i}?", "docs": docs,
                        "answers": answers, "answer": ", ".join(f"{a[0]} [{j % 5 + 1}]" for j, a in enumerate(answers)) + ".",
                        "id": f"qampari{i}"})
    (root / "alce" / "asqa_eval_gtr_top2000.json").write_text(json.dumps(asqa), encoding="utf-8")
    (root / "alce" / "qampari_eval_gtr_top2000.json").write_text(json.dumps(qampari), encoding="utf-8")


NOVEL_WORDS = 133_000
"""Words of a long fixture document: over NarrativeQA's 131072-token bar with the word tokenizer below
(and with SmolLM2's, about 150K tokens)."""


def _novels() -> list[str]:
    return [_novel(100 + i, NOVEL_WORDS) for i in range(2)]


def _narrativeqa(root: Path, rng: random.Random, novels: list[str]) -> None:
    docs = [("doc0", novels[0]), ("doc1", novels[1]), ("doc0", novels[0]), ("doc9", _novel(200, 3000))]
    test = [{"document": {"id": did, "kind": "gutenberg", "text": doc},  # doc9 is too short for HELMET's filter
             "question": {"text": f"Who {rng.choice(WORDS)} the {rng.choice(WORDS)}?"},
             "answers": [{"text": rng.choice(WORDS) + " " + rng.choice(WORDS)}, {"text": rng.choice(WORDS)}]}
            for did, doc in docs]
    train = [{"question": {"text": f"Where is the {rng.choice(WORDS)} {j}?"},
              "answers": [{"text": rng.choice(WORDS)}, {"text": rng.choice(WORDS)}]} for j in range(12)]
    _write_jsonl(root / "narrativeqa" / "test.jsonl", test)
    _write_jsonl(root / "narrativeqa" / "train.jsonl", train)


def _infbench(root: Path, rng: random.Random, novels: list[str]) -> None:
    contexts = [novels[0], novels[1], _novel(300, 2000)]  # the last is too short (< 65536 tokens)
    qa = [{"id": i, "context": c, "input": f"What did the {rng.choice(WORDS)} find?",
           "answer": [rng.choice(WORDS) + " " + rng.choice(WORDS)], "options": []} for i, c in enumerate(contexts)]
    choice = []
    for i, c in enumerate(contexts):
        opts = [rng.choice(WORDS).title() + " " + string.ascii_uppercase[j] for j in range(4)]
        choice.append({"id": i, "context": c, "input": f"Which {rng.choice(WORDS)} left first?",
                       "answer": [opts[rng.randrange(4)]], "options": opts})
    summ = [{"id": i, "context": c, "input": "", "answer": [" " + _text(rng, 120) + " "], "options": []}
            for i, c in enumerate(contexts)]
    _write_jsonl(root / "infbench" / "longbook_qa_eng.jsonl", qa)
    _write_jsonl(root / "infbench" / "longbook_choice_eng.jsonl", choice)
    _write_jsonl(root / "infbench" / "longbook_sum_eng.jsonl", summ)
    _write_jsonl(root / "infbench" / "longbook_sum_eng_keypoints.jsonl",
                 [{"id": r["id"], "keypoints": [_sentence(rng, 8) for _ in range(3 + r["id"] % 2)]} for r in summ])


def _multi_lexsum(root: Path, rng: random.Random, novels: list[str]) -> None:
    def sources(text: str) -> list[str]:
        cut = text.index("\n\n", len(text) // 3)  # joined by a blank line, the sources give the text back
        return [text[:cut], text[cut + 2:]]

    def row(i: int, split: str, src: list[str]) -> dict[str, Any]:
        return {"id": f"{split}-{i}", "sources": src, "summary/long": _text(rng, 90),
                "summary/short": None if (split, i) == ("train", 1) else _text(rng, 40),
                "summary/tiny": None, "case_metadata": {}}

    train = [row(i, "train", []) for i in range(9)]
    val = [row(0, "validation", sources(novels[0])), row(1, "validation", [_text(rng, 200), _text(rng, 150)]),
           row(2, "validation", sources(novels[1]))]
    test = [row(i, "test", [_text(rng, 100)]) for i in range(2)]
    _write_jsonl(root / "multi_lexsum" / "train.jsonl", train)
    _write_jsonl(root / "multi_lexsum" / "validation.jsonl", val)
    _write_jsonl(root / "multi_lexsum" / "test.jsonl", test)
    _write_jsonl(root / "multi_lexsum" / "multi_lexsum_val.jsonl",
                 [{"id": r["id"], "summary/short_keypoints": [_sentence(rng, 7) for _ in range(3 + i % 2)]}
                  for i, r in enumerate(val)])


def build_word_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer over the fixture vocabulary (whitespace split, ChatML template): fast enough
    to count and cut the 130K-word fixture documents in tests. Deterministic."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    words = ["<unk>", "<|im_start|>", "<|im_end|>"] + sorted(set(WORDS) | {w.title() for w in WORDS})
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tok.save(str(folder / "tokenizer.json"))
    template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template, "bos_token": None,
        "eos_token": "<|im_end|>", "unk_token": "<unk>", "model_max_length": 1000000}, indent=1), encoding="utf-8")
    return folder


def _icl(root: Path, rng: random.Random) -> None:
    def rows(n: int, fields: dict[str, int]) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            r: dict[str, Any] = {"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) + " ?"}
            for f, k in fields.items():
                r[f] = rng.randrange(k)
            out.append(r)
        return out

    trec = {"coarse_label": 6, "fine_label": 50}
    _write_jsonl(root / "icl" / "trec" / "train.jsonl", rows(90, trec))
    _write_jsonl(root / "icl" / "trec" / "test.jsonl", rows(4, trec))
    _write_jsonl(root / "icl" / "banking77" / "train.jsonl", rows(160, {"label": 77}))
    _write_jsonl(root / "icl" / "banking77" / "test.jsonl", rows(14, {"label": 77}))
    _write_jsonl(root / "icl" / "clinic150" / "train.jsonl", rows(300, {"intent": 151}))
    _write_jsonl(root / "icl" / "clinic150" / "validation.jsonl", rows(14, {"intent": 151}))
    _write_jsonl(root / "icl" / "nlu" / "train.jsonl", rows(40, {"label": 68}))


def build(root: Path) -> Path:
    """Write the fixture data folder at ``root`` (laid out like HELMET's ``data/``); returns ``root``."""
    rng = random.Random(21)
    root.mkdir(parents=True, exist_ok=True)
    _ruler(root, rng)
    _json_kv(root, rng)
    _kilt(root, rng)
    _msmarco(root, rng)
    _alce(root, rng)
    novels = _novels()
    _narrativeqa(root, rng, novels)
    _infbench(root, rng, novels)
    _multi_lexsum(root, rng, novels)
    _icl(root, rng)
    (root / "README.md").write_text("Synthetic HELMET data in the official formats, generated by "
                                    "tests/helmet_fixture.py; not the released data.\n", encoding="utf-8")
    return root


if __name__ == "__main__":
    import sys

    print(build(Path(sys.argv[1])))


# Task groups the gold tests run: short contexts, and long documents with a judge.
SHORT = ("helmet/recall", "helmet/rag", "helmet/rerank", "helmet/icl", "helmet/cite")
LONG = ("helmet/longqa", "helmet/summ")


def judge_verdicts(data: Path, path: Path) -> Path:
    """Replay answers at the judges' maximum: fluency 1 x correctness 3 for NarrativeQA; every key point found
    and every sentence supported for the summaries."""
    rows = []
    for L in (8192, 32768):
        for i in (0, 1, 2):
            rows.append({"sample_id": f"{L}-{i}/judge", "output": 'Correct. {"fluency": 1, "correctness": 3}'})
        for kp_file, field, ids in (("infbench/longbook_sum_eng_keypoints.jsonl", "keypoints", None),
                                    ("multi_lexsum/multi_lexsum_val.jsonl", "summary/short_keypoints", None)):
            for ln in (data / kp_file).read_text().splitlines():
                r = json.loads(ln)
                sid = f"{L}-{r['id']}"
                rows += [{"sample_id": f"{sid}/fluency", "output": '{"fluency": 1}'},
                         {"sample_id": f"{sid}/recall", "output": json.dumps({"recall": len(r[field])})},
                         {"sample_id": f"{sid}/precision", "output": '{"precision": 6, "sentence_count": 6}'}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
