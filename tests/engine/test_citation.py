"""Citation metric: parser modes, recall/precision/F1 with a scripted judge (hand-computed), the real NLI
classifier code path with a tiny random-weight model (one batched call), and `--backend gold` on fixtures
built from the copied ALCE/HELMET demo prompts (rule-based citation F1 100)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED
from evalsuite.judge import Judge, JudgeConfig
from evalsuite.backends import BaseBackend
from evalsuite.backends.nli import NLIClassifierBackend
from evalsuite.citation import (CitationConfig, analyse_output, attach_trailing_citations, parse_citations,
                                remove_citations_alce, rule_scores)
from evalsuite.metrics.citation import CitationNLI, CitationRule
from evalsuite.types import Generation, Record, Sample

PROMPTS = SHARED / "data" / "citation" / "helmet" / "prompts"


# -- parser ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sent,mode,ids,valid", [
    ("A claim [1][2].", "alce", (0, 1), True),
    ("A claim [1][2].", "strict", (0, 1), True),
    ("A claim [1, 2].", "alce", (0,), True),          # ALCE reads only the first id of a list
    ("A claim [1, 2].", "strict", (0, 1), True),
    ("A claim [1; 3].", "strict", (0, 2), True),
    ("A claim [1][6].", "alce", (0, 5), False),        # out of range (5 docs): the sentence is invalid
    ("A claim [1][6].", "strict", (0, 5), False),
    ("A claim [1][2][3][4].", "alce", (0, 1, 2), True),  # more than three: first three kept
    ("A claim [1][2][3][4].", "strict", (0, 1, 2), True),
    ("A claim [1][2][3][9].", "alce", (0, 1, 2, 8), False),  # ALCE checks the range before the cut
    ("A claim [1][2][3][9].", "strict", (0, 1, 2), True),    # strict checks the kept ids
    ("A claim [2][2][1].", "alce", (1, 1, 0), True),   # duplicates kept in ALCE mode
    ("A claim [2][2][1].", "strict", (1, 0), True),    # de-duplicated in strict mode
    ("A claim [0].", "strict", (-1,), False),          # 0 is not a document id
    ("No citation.", "strict", (), True),
])
def test_parse_modes(sent, mode, ids, valid):
    s = parse_citations(sent, 5, mode)
    assert s.ids == ids and s.valid is valid


def test_claim_text_without_citations():
    assert remove_citations_alce("Paris is big [1][2].") == "Paris is big."
    assert parse_citations("Paris is big [1, 2].", 5, "strict").claim == "Paris is big."
    # ALCE drops only "[n" and every "]": ", 2" stays in the claim
    assert parse_citations("Paris is big [1, 2].", 5, "alce").claim == "Paris is big, 2."


def test_citation_after_the_period_and_short_sentences():
    out = "Paris is the capital of France. [1] It has 2 million people [2]. 1."
    alce = analyse_output(out, 5, CitationConfig(mode="alce", min_chars=5))
    # punkt keeps "[1] It has ..." as the second sentence: ALCE gives [1] to the next sentence (ALCE#26);
    # the lone "1." (< 5 characters) is dropped as HELMET does
    assert [s.ids for s in alce] == [(), (0, 1)]
    assert len(analyse_output(out, 5, CitationConfig(mode="alce", min_chars=0))) == 3
    strict = analyse_output(out, 5, CitationConfig(mode="strict", attach_trailing=True))
    assert [s.ids for s in strict] == [(0,), (1,)]
    assert attach_trailing_citations(["A.", "[1][2]"]) == ["A. [1][2]"]
    with pytest.raises(ValueError):
        CitationConfig(mode="alce", attach_trailing=True)


def test_rule_scores_document_and_sentence_level():
    sents = analyse_output("A [1][2]. B [3]. C here.", 4, CitationConfig(mode="strict", min_chars=0))
    r = rule_scores(sents, {0, 3})
    assert r["cite_doc_prec"] == pytest.approx(1 / 3) and r["cite_doc_rec"] == pytest.approx(1 / 2)
    assert r["cite_doc_f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert r["cite_sent_rec"] == pytest.approx(1 / 3)
    # out-of-range ids count against precision
    assert rule_scores(analyse_output("A [1][9].", 4, CitationConfig(mode="strict", min_chars=0)), {0})[
        "cite_doc_prec"] == pytest.approx(0.5)


# -- scripted judge -------------------------------------------------------------------------------
DOCS = [{"title": f"T{i}", "text": f"fact{i}"} for i in range(1, 6)]


class ScriptedNLI(BaseBackend):
    """Entailment by rule: the claim "Cx" is entailed iff the premise holds every fact the table needs."""

    nli_pairs = True
    NEEDS = {"C1": [{"fact1"}], "C2": [{"fact2", "fact3"}], "C3": [{"fact4"}], "C4": [{"fact5"}],
             "C5": [{"fact1"}, {"fact2"}]}  # C5: either doc alone suffices

    def __init__(self):
        self.id = "scripted-nli:1"
        self.batch_size = 1 << 30
        self.calls = 0
        self.asked: list[tuple[str, str]] = []

    def generate(self, requests):
        self.calls += 1
        out = []
        for r in requests:
            premise, claim = r.prompt[0].text, r.prompt[1].text
            self.asked.append((premise, claim))
            key = claim.split()[0]
            ok = any(all(f + "\n" in premise + "\n" for f in need) for need in self.NEEDS.get(key, []))
            out.append(Generation("1" if ok else "0", "stop"))
        return out


def _rec(i, output):
    return Record(Sample(f"s{i}", i, {}, {"docs": DOCS, "question": "q"}), output, Generation(output, "stop"))


def test_scripted_judge_hand_computed(tmp_path):
    records = [
        # s0: C1 needs doc1 only, cites 1+4 (doc4 over-cited); C2 needs docs 2 and 3 jointly (both needed);
        #     C3 cites nothing.  R = 2/3; P = (1 useful of 2) + 2 of 2 = 3/4
        _rec(0, "C1 is true [1][4]. C2 is true [2][3]. C3 is uncited."),
        # s1: C4 cites a wrong doc (unsupported, single); C5 cites 1+2, each alone entails (both useful);
        #     C1 cites an out-of-range id (0 and not counted).  R = 1/3; P = (0 + 2) / 3 = 2/3
        _rec(1, "C4 is here [1]. C5 is true [1][2]. C1 is false [7]."),
        # s2: C2 cites 2,3,4,5 (first three kept: 2,3,4): joint entails; doc4 over-cited.  R = 1, P = 2/3
        _rec(2, "C2 holds here [2][3][4][5]."),
    ]
    be = ScriptedNLI()
    judge = Judge(be, JudgeConfig("scripted"), tmp_path / "judge.jsonl", "t")
    shared: dict = {}
    cfg = CitationConfig(mode="alce", min_chars=5)
    res = {n: CitationNLI(n, cfg, "alce", shared).score(records, judge=judge)
           for n in ("citation_rec", "citation_prec", "citation_f1_mean", "citation_f1_of_means")}
    R = [2 / 3, 1 / 3, 1.0]
    P = [3 / 4, 2 / 3, 2 / 3]
    F = [2 * p * r / (p + r) for p, r in zip(P, R)]
    assert res["citation_rec"].per_sample == pytest.approx(R)
    assert res["citation_prec"].per_sample == pytest.approx(P)
    assert res["citation_rec"].value == pytest.approx(100 * sum(R) / 3)
    assert res["citation_prec"].value == pytest.approx(100 * sum(P) / 3)
    assert res["citation_f1_mean"].value == pytest.approx(100 * sum(F) / 3)
    mr, mp = sum(R) / 3, sum(P) / 3
    assert res["citation_f1_of_means"].value == pytest.approx(100 * 2 * mr * mp / (mr + mp))
    assert res["citation_f1_of_means"].value != pytest.approx(res["citation_f1_mean"].value)
    # one judge call for all four metrics; every (premise, claim) pair asked once
    assert be.calls == 1 and len(be.asked) == len(set(be.asked))
    assert "judge:scripted-nli:1" in res["citation_rec"].signature
    # resumable: a fresh judge on the same log asks nothing
    be2 = ScriptedNLI()
    again = CitationNLI("citation_prec", cfg).score(records, judge=Judge(be2, JudgeConfig("scripted"),
                                                                        tmp_path / "judge.jsonl", "t"))
    assert be2.calls == 0 and again.value == pytest.approx(res["citation_prec"].value)


def test_rule_metric_skips_samples_without_gold():
    recs = [_rec(0, "C1 [1]."), Record(Sample("g", 1, {}, {"docs": DOCS, "gold_doc_ids": [0]}), "C1 [1][2].",
                                       Generation("", "stop"))]
    res = CitationRule("cite_doc_prec").score(recs)
    assert res.value == pytest.approx(50.0) and res.details["n_with_gold"] == 1 and res.per_sample is None


# -- tiny random NLI classifier --------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_nli_dir(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "Title:", "C1", "C2", "C3", "C4", "C5", "is", "true", "here"] + \
        [f"fact{i}" for i in range(1, 6)] + [f"T{i}" for i in range(1, 6)]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=2,
                     id2label={0: "entailment", 1: "not_entailment"},
                     label2id={"entailment": 0, "not_entailment": 1})
    d = tmp_path_factory.mktemp("tiny_nli")
    BertForSequenceClassification(cfg).save_pretrained(d)
    fast.save_pretrained(d)
    return d


def test_nli_classifier_path_one_batched_call(tiny_nli_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    be = NLIClassifierBackend(model=str(tiny_nli_dir), batch_size="64")
    forwards = []
    be._model.register_forward_hook(lambda m, i, o: forwards.append(1))
    calls = []
    orig = be.generate
    be.generate = lambda reqs: (calls.append(len(reqs)), orig(reqs))[1]
    records = [_rec(0, "C1 is true [1][4]. C2 is true [2][3]. C3 is here."),
               _rec(1, "C4 is here [1]. C5 is true [1][2]."), _rec(2, "C1 is true [1][4].")]
    judge = Judge(be, JudgeConfig("nli_classifier", str(tiny_nli_dir)), tmp_path / "judge.jsonl", "t")
    shared: dict = {}
    rec = CitationNLI("citation_rec", CitationConfig(), "alce", shared).score(records, judge=judge)
    prec = CitationNLI("citation_prec", CitationConfig(), "alce", shared).score(records, judge=judge)
    assert len(calls) == 1 and len(forwards) == 1 and calls[0] == rec.details["n_pairs_judged"]
    # the identical (passage, claim) pairs of samples 0 and 2 were asked once
    assert calls[0] < 2 * 7 + 1
    # verdicts equal the model's own argmax on the same pairs
    tok = AutoTokenizer.from_pretrained(tiny_nli_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_nli_dir).eval()
    enc = tok(["Title: T1\nfact1\nTitle: T4\nfact4"], ["C1 is true."], return_tensors="pt")
    with torch.no_grad():
        want = int(model(**enc).logits.argmax(-1)) == 0
    joint_entailed = rec.per_sample[2] == 1.0
    assert joint_entailed == want
    assert 0.0 <= prec.value <= 100.0 and be.id.startswith("nli_classifier:") and be.id in rec.signature


# -- tasks: gold backend on demo fixtures ---------------------------------------------------------
def _fixture(tmp_path: Path, ds: str) -> Path:
    demos = json.loads((PROMPTS / f"{ds}_revised.json").read_text())["demos"]
    rows = [{"question": d["question"], "answer": d["answer"], "docs": d["docs"]} for d in demos]
    p = tmp_path / f"{ds}_demo_fixture.json"
    p.write_text(json.dumps(rows))
    return p


@pytest.mark.parametrize("ds", ["asqa", "qampari"])
def test_gold_backend_rule_based_f1_is_100(cli, tmp_path, ds):
    data = _fixture(tmp_path, ds)
    r = cli("run", "--tasks", f"alce/{ds}", "--backend", "gold", "-T", f"data_file={data}", "--run-id", "r")
    assert r.returncode == 0, r.stderr
    scores = json.loads((tmp_path / "results" / "r" / "alce" / ds / "scores.json").read_text())
    vals = {m["name"]: m["value"] for m in scores["metrics"]}
    assert vals["cite_doc_f1"] == pytest.approx(100.0)
    assert vals["cite_doc_prec"] == pytest.approx(100.0) and vals["cite_doc_rec"] == pytest.approx(100.0)
    assert vals["cite_sent_rec"] == pytest.approx(100.0)
    assert {s["name"] for s in scores["skipped_metrics"]} >= {"citation_rec", "citation_prec"}


def test_alce_prompt_matches_helmet_layout():
    from evalsuite.tasks.alce import AlceTask, register
    from evalsuite.registry import Registry

    reg = Registry()
    register(reg)
    task = reg.task("alce/asqa").factory(data_file=str(PROMPTS / "asqa_revised.json"))
    p = json.loads((PROMPTS / "asqa_revised.json").read_text())
    out = task.render("", "Q?", [{"title": "A", "text": "x"}, {"title": "B", "text": "y"}])
    assert out == p["instruction"] + "\n\nQuestion: Q?\n\nDocument [1](Title: A): x\n\nDocument [2](Title: B): y"
    assert isinstance(task, AlceTask) and task.opts["n_docs"] == 700


def test_cli_alce_with_nli_classifier_judge_and_rescore(cli, tmp_path, tiny_nli_dir):
    data = _fixture(tmp_path, "asqa")
    r = cli("run", "--tasks", "alce/asqa", "--backend", "gold", "-T", f"data_file={data}", "--run-id", "r",
            "--judge-backend", "nli_classifier", "--judge-model", str(tiny_nli_dir), "-J", "batch_size=8")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "results" / "r" / "alce" / "asqa"
    scores = json.loads((run / "scores.json").read_text())
    vals = {m["name"]: m for m in scores["metrics"]}
    assert "nli_classifier:" in vals["citation_rec"]["signature"]
    assert 0 <= vals["citation_prec"]["value"] <= 100 and vals["cite_doc_f1"]["value"] == pytest.approx(100.0)
    (judge,) = scores["judge"]
    assert judge["calls"] > 0 and judge["calls"] == vals["citation_rec"]["details"]["n_pairs_judged"]
    n_rows = len((run / "judge.jsonl").read_text().splitlines())
    # re-score in-process (a second CLI start would cost the torch import again): nothing is asked twice
    from evalsuite.runner import rescore
    from evalsuite.store import ResultsStore

    rescore(ResultsStore.open_existing(tmp_path / "results" / "r"))
    again = json.loads((run / "scores.json").read_text())
    assert again["judge"][0]["calls"] == 0
    assert {m["name"]: m["value"] for m in again["metrics"]}["citation_rec"] == vals["citation_rec"]["value"]
    assert len((run / "judge.jsonl").read_text().splitlines()) == n_rows


def test_nli_seq2seq_path_runs_offline(tmp_path):
    """The T5-style backend on a tiny random model: one generate call, verdict "1" iff the decoded text is "1"."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from evalsuite.backends.nli import NLISeq2SeqBackend

    words = ["<pad>", "</s>", "<unk>", "premise:", "hypothesis:", "1", "0", "Title:", "C1", "is", "true."] + \
        [f"fact{i}" for i in range(1, 6)] + [f"T{i}" for i in range(1, 6)]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(words), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5ForConditionalGeneration(cfg).save_pretrained(tmp_path / "t5")
    fast.save_pretrained(tmp_path / "t5")
    be = NLISeq2SeqBackend(model=str(tmp_path / "t5"))
    records = [_rec(0, "C1 is true [1][2]."), _rec(1, "C1 is true [3].")]
    judge = Judge(be, JudgeConfig("nli_seq2seq", str(tmp_path / "t5")), tmp_path / "judge.jsonl", "t")
    res = CitationNLI("citation_rec", CitationConfig()).score(records, judge=judge)
    assert be.n_generate_calls == 1 and res.details["n_invalid_verdicts"] == 0
    rows = [json.loads(x) for x in (tmp_path / "judge.jsonl").read_text().splitlines()]
    assert len(rows) == res.details["n_pairs_judged"] and {r["generation"]["text"] for r in rows} <= {"0", "1"}
    # the verdicts are what the model decodes for "premise: ... hypothesis: ..." (random weights: not "1")
    assert res.value == pytest.approx(0.0)


class ScriptedLLM(BaseBackend):
    """An LLM judge (no ``nli_pairs``): "yes" iff the passage holds the fact the claim names (C1 -> fact1)."""

    def __init__(self):
        self.id = "scripted-llm:1"
        self.batch_size = 1 << 30
        self.calls = 0

    def generate(self, requests):
        self.calls += 1
        out = []
        for r in requests:
            text = r.prompt
            assert isinstance(text, str) and r.params.max_tokens == 1
            passage = text.split("Passage:\n", 1)[1].split("\n\nClaim:", 1)[0]
            claim = text.split("Claim: ", 1)[1]
            out.append(Generation("Yes" if f"fact{claim[1]}" in passage else "no", "stop"))
        return out


def test_llm_judge_path(tmp_path):
    records = [_rec(0, "C1 is true [1][2]. C3 is true [1].")]
    be = ScriptedLLM()
    judge = Judge(be, JudgeConfig("scripted"), tmp_path / "judge.jsonl", "t")
    shared: dict = {}
    rec = CitationNLI("citation_rec", CitationConfig(), "alce", shared).score(records, judge=judge)
    prec = CitationNLI("citation_prec", CitationConfig(), "alce", shared).score(records, judge=judge)
    # C1: joint entails, doc1 alone entails (useful), doc2 neither alone nor needed (over-cited); C3: not
    assert rec.per_sample == pytest.approx([0.5]) and prec.per_sample == pytest.approx([1 / 3])
    assert be.calls == 1 and "judge_kind:llm" in rec.signature


def test_alce_truncation_removes_documents_from_the_end(tmp_path, word_tokenizer_dir):
    from evalsuite.registry import Registry
    from evalsuite.task import TaskContext
    from evalsuite.tasks.alce import register
    from evalsuite.tokenizer import LocalTokenizer, request_ids

    reg = Registry()
    register(reg)
    data = _fixture(tmp_path, "asqa")
    tok = LocalTokenizer(word_tokenizer_dir)
    full = reg.task("alce/asqa").factory(data_file=str(data), shots="0")
    (s_full, *_) = list(full.samples())
    n_full = len(request_ids(tok, full.request(s_full)))
    task = reg.task("alce/asqa").factory(data_file=str(data), shots="0", max_length=str(n_full - 1 + 300))
    task.prepare(TaskContext(tokenizer=tok))
    (s, *_) = list(task.samples())
    assert len(s.target["docs"]) == 4 and s.target["docs"] == s_full.target["docs"][:4]
    assert len(request_ids(tok, task.request(s))) <= n_full - 1


def test_correctness_metrics():
    from evalsuite.tasks.alce import QampariRecTop5, StrEM, helmet_output

    def rec(target, out):
        return Record(Sample("x", 0, {}, target), out, Generation(out, "stop"))

    asqa = {"qa_pairs": [{"short_answers": ["The Beatles", "Beatles"]}, {"short_answers": ["1962"]},
                         {"short_answers": ["Liverpool"]}]}
    r = StrEM().score([rec(asqa, "beatles [1] formed in Liverpool[2].")])
    assert r.value == pytest.approx(100 * 2 / 3)
    qam = {"answers": [["Ann"], ["Bo", "Bee"], ["Cy"], ["Dee"], ["Eve"], ["Fay"], ["Guy"]]}
    r = QampariRecTop5().score([rec(qam, "ann [1], bee [2], cy, x, y."),
                                rec({"answers": [["Ann"], ["Bo"]]}, "Ann, Bo."),
                                rec({"answers": [["Ann"], ["Bo"]]}, "Ann Bo")])   # items are exact matches
    assert r.per_sample == pytest.approx([3 / 5, 1.0, 0.0])
    assert helmet_output("a\n\nb<|im_end|>") == "a b"


@pytest.mark.parametrize("opts, message", [({"batch_size": "x"}, "bad value for batch_size='x'"),
                                           ({"max_length": "0"}, "bad value for max_length='0'"),
                                           ({"bsize": "4"}, "did you mean 'batch_size'")])
def test_bad_nli_options_are_one_line_before_a_model_loads(opts, message):
    from evalsuite.backends.nli import NLISeq2SeqBackend
    from evalsuite.errors import UserError

    with pytest.raises(UserError, match=message):
        NLIClassifierBackend(model="/nonexistent-model", **opts)
    with pytest.raises(UserError, match=message):
        NLISeq2SeqBackend(model="/nonexistent-model", **opts)

