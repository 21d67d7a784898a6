"""BLEU / chrF (sacrebleu) against sacrebleu's own CLI, and the DRT and RAGtrans tasks.

Goldens come from the `sacrebleu` command run on the same files (never from our own output). DRT runs on
the real 2,000-pair test set; RAGtrans data needs network, so its tests use small *synthetic* files in the
official format (tasks/ragtrans/fixtures/, made by hand for these tests).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED

pytest.importorskip("sacrebleu")

from evalsuite.errors import UserError  # noqa: E402
from evalsuite.metrics.sacrebleu_metrics import (BLEU, CHRF, paired_bootstrap, records_for,  # noqa: E402
                                                 reference_streams, tokenizer_for)

DRT = SHARED / "data" / "drt-o1" / "data" / "test.jsonl"
RAG_FIX = REPO / "tasks" / "ragtrans" / "fixtures"
SACREBLEU = Path(sys.executable).with_name("sacrebleu")


def _rows(n: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in DRT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:n] if n else rows


def _perturb(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(max(1, len(chars) // 8)):
        i = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            del chars[i]
        elif op < 0.7:
            chars[i] = rng.choice(chars)
        else:
            chars.insert(i, rng.choice(chars))
    return "".join(chars)


def _line(s: str) -> str:
    return s.replace("\n", " ")  # one segment per line for the CLI (14 DRT rows hold a newline)


def _sacrebleu_cli(ref: Path, hyp: Path, *args: str) -> list[dict]:
    out = subprocess.run([str(SACREBLEU), str(ref), "-i", str(hyp), "-m", "bleu", "chrf", "-w", "4",
                          "--confidence", "-f", "json", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_bleu_chrf_equal_sacrebleu_cli(tmp_path, cli, lang):
    """Our plugin via `evalsuite score-file` equals the `sacrebleu` CLI (tok zh for Chinese, 13a for
    English) to the printed precision, signature and bootstrap CI included."""
    rng = random.Random(7)
    rows = _rows(300)
    refs = [_line(r[lang]) for r in rows]
    hyps = [_line(_perturb(r, rng)) for r in refs]
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    tok = tokenizer_for(lang)
    golden = {d["name"]: d for d in _sacrebleu_cli(tmp_path / "ref.txt", tmp_path / "hyp.txt", "-tok", tok)}
    lines = [json.dumps({"prediction": h, "references": [r], "target_lang": lang}, ensure_ascii=False)
             for h, r in zip(hyps, refs)]
    (tmp_path / "preds.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for ours_name, cli_name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        r = cli("score-file", "preds.jsonl", "--metric", ours_name)
        assert r.returncode == 0, r.stderr
        m = json.loads(r.stdout)["metrics"][0]
        g = golden[cli_name]
        assert f"{m['value']:.4f}" == f"{g['score']:.4f}"
        assert f"{m['value']:.1f}" == f"{round(g['score'], 1):.1f}"  # sacrebleu's default width
        assert m["details"]["sacrebleu_signature"] == g["signature"]
        assert m["signature"].startswith(f"{ours_name}|{g['signature']}")
        assert f"{m['details']['bootstrap_mean']:.4f}" == f"{g['confidence_mean']:.4f}"
        assert f"{m['details']['bootstrap_half_width']:.4f}" == f"{g['confidence_var']:.4f}"
    if lang == "zh":
        assert "tok:zh" in golden["BLEU"]["signature"]
    else:
        assert "tok:13a" in golden["BLEU"]["signature"]


def test_paired_bootstrap_equals_sacrebleu_paired_bs(tmp_path):
    rng = random.Random(3)
    rows = _rows(200)
    refs = [_line(r["zh"]) for r in rows]
    base = [_line(_perturb(r, rng)) for r in refs]
    system = [h if i % 3 else _line(_perturb(r, rng)) for i, (h, r) in enumerate(zip(refs, refs))]
    for name, data in (("ref", refs), ("base", base), ("sys", system)):
        (tmp_path / f"{name}.txt").write_text("\n".join(data) + "\n", encoding="utf-8")
    out = subprocess.run([str(SACREBLEU), str(tmp_path / "ref.txt"), "-i", str(tmp_path / "base.txt"),
                          str(tmp_path / "sys.txt"), "-m", "bleu", "-tok", "zh", "--paired-bs", "-f", "json"],
                         capture_output=True, text=True, check=True)
    golden = json.loads(out.stdout)[1]["BLEU"]
    ours = paired_bootstrap(BLEU(target_lang="zh"), records_for(base, refs), records_for(system, refs))
    assert ours["system"] == pytest.approx(golden["score"], abs=1e-9)
    assert ours["p_value"] == pytest.approx(golden["p_value"], abs=1e-12)
    assert ours["system_mean"] == pytest.approx(golden["mean"], abs=1e-6)
    assert ours["system_half_width"] == pytest.approx(golden["ci"], abs=1e-6)


def test_reference_orientation_and_shape_checks():
    import sacrebleu

    hyps = ["the cat sat on the mat", "a dog barked loudly"]
    per_seg = [["the cat sat on a mat", "a cat sat on the mat"], ["the dog barked loudly", "a dog was barking"]]
    recs = records_for(hyps, per_seg)
    streams = reference_streams(recs)
    assert streams == [["the cat sat on a mat", "the dog barked loudly"], ["a cat sat on the mat", "a dog was barking"]]
    expected = sacrebleu.corpus_bleu(hyps, streams, tokenize="13a").score
    assert BLEU().score(recs).value == pytest.approx(expected, abs=1e-12)
    # the classic mistake (per-segment lists passed as streams) gives another number: we never do that
    assert sacrebleu.corpus_bleu(hyps, per_seg, tokenize="13a").score != pytest.approx(expected)
    with pytest.raises(UserError, match="different numbers of references"):
        BLEU().score(records_for(hyps, [["a"], ["b", "c"]]))
    assert BLEU(variable_refs=True).score(records_for(hyps, [["a cat"], ["a dog", "the dog"]])).value >= 0
    with pytest.raises(UserError, match="string or a list"):
        BLEU().score(records_for(hyps, [1, 2]))
    mixed = records_for(hyps, ["x", "y"])
    object.__setattr__(mixed[0].sample, "metadata", {"target_lang": "zh"})
    object.__setattr__(mixed[1].sample, "metadata", {"target_lang": "de"})
    with pytest.raises(UserError, match="several target languages"):
        BLEU().score(mixed)


def test_tokenizer_choice_and_signature():
    recs = records_for(["他是个贼。"], ["他是个小偷。"], {"target_lang": "zh"})
    r = BLEU(n_bootstrap=1).score(recs)
    assert "tok:zh" in r.signature and "bs:" not in r.signature
    assert "tok:13a" in BLEU(n_bootstrap=1).score(records_for(["a b"], ["a b"])).signature
    assert "tok:char" in BLEU(tokenize="char", n_bootstrap=1).score(recs).signature
    with pytest.raises(UserError):
        CHRF(tokenize="zh").score(recs)


# -- DRT ----------------------------------------------------------------------------------------------

def test_drt_extraction_rule():
    from evalsuite.tasks.drt import extract_translation

    assert extract_translation("<thought>\nhmm\n</thought>\n<output>\n译文。\n</output>") == ("译文。", "output")
    assert extract_translation("<output>a</output> then <output>b</output>") == ("b", "output")
    assert extract_translation("  直接的译文。\n") == ("直接的译文。", "untagged")
    assert extract_translation("<thought>\nlong reasoning cut by max_tokens") == ("", "failed")
    assert extract_translation("<thought>x</thought>\n<output>\n被截断的") == ("", "failed")


@pytest.mark.slow
def test_drt_gold_gives_bleu_and_chrf_100(cli):
    """Acceptance: `--backend gold` on the 2,000-pair DRT test set scores BLEU 100 and chrF 100 (the gold
    reply uses the released <thought>/<output> format, so extraction is exercised)."""
    r = cli("run", "--tasks", "drt/long_thought", "--backend", "gold", "-T", f"data_file={DRT}",
            "--run-id", "gold", "--output", "res", "--json", "--no-progress", timeout=600)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["drt/long_thought"]
    m = {x["name"]: x for x in s["metrics"]}
    assert s["n"] == 2000
    assert m["bleu"]["value"] == pytest.approx(100.0)
    assert m["chrf"]["value"] == pytest.approx(100.0)
    assert "tok:zh" in m["bleu"]["signature"]
    assert m["extraction_failed"]["value"] == 0.0
    assert m["extraction_failed"]["details"]["outcomes"]["output"] == 2000


def test_drt_replay_counts_extraction_failures(cli, tmp_path):
    rows = _rows(5)
    outs = [
        f"<thought>\nok\n</thought>\n<output>\n{rows[0]['zh']}\n</output>",
        "<thought>\nthinking until the token budget ran out",  # failure
        rows[2]["zh"],  # a plain reply (non-DRT model)
        f"<thought>x</thought>\n<output>\n{rows[3]['zh'][:5]}",  # unclosed output: failure
        f"<output>{rows[4]['zh']}</output>",
    ]
    lines = [json.dumps({"task": "drt/long_thought", "index": i, "output": o}, ensure_ascii=False)
             for i, o in enumerate(outs)]
    (tmp_path / "replay.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("run", "--tasks", "drt/long_thought", "--backend", "replay", "-B", "file=replay.jsonl",
            "-T", f"data_file={DRT}", "--limit", "5", "--run-id", "rp", "--output", "res", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["drt/long_thought"]
    m = {x["name"]: x for x in s["metrics"]}
    assert m["extraction_failed"]["value"] == pytest.approx(40.0)
    assert m["extraction_failed"]["details"]["outcomes"] == {"output": 2, "untagged": 1, "failed": 2, "error": 0}
    per = [json.loads(x) for x in (tmp_path / "res" / "rp").rglob("per_sample.jsonl").__next__().read_text().splitlines()]
    assert [p["prediction"] for p in per] == [rows[0]["zh"], "", rows[2]["zh"], "", rows[4]["zh"]]
    # the same outputs scored by sacrebleu directly (failures as empty hypotheses)
    import sacrebleu

    expected = sacrebleu.corpus_bleu([p["prediction"] for p in per], [[r["zh"] for r in rows]], tokenize="zh")
    assert m["bleu"]["value"] == pytest.approx(expected.score, abs=1e-9)


def test_drt_requests_follow_the_readme():
    from evalsuite.tasks.drt import DRTDirect, DRTLongThought

    t = DRTLongThought(data_file=str(DRT))
    s = next(iter(t.samples()))
    req = t.request(s)
    assert req.prompt[0].role == "system" and req.prompt[0].content.startswith("You are a philosopher")
    assert req.prompt[1].content == "Please translate the following text from English to Chinese:\n" + s.input["en"]
    assert (req.params.max_tokens, req.params.temperature, req.params.top_p) == (2048, 0.1, 0.8)
    d = DRTDirect(data_file=str(DRT)).request(s)
    assert len(d.prompt) == 1 and d.params.temperature == 0.0
    with pytest.raises(UserError, match="data_file"):
        next(iter(DRTDirect().samples()))


# -- RAGtrans (synthetic files in the official format) --------------------------------------------------

def test_ragtrans_fixture_files_follow_the_official_schema():
    test = [json.loads(x) for x in (RAG_FIX / "RAGtrans_test.synthetic.jsonl").read_text().splitlines()]
    dev = [json.loads(x) for x in (RAG_FIX / "RAGtrans_dev.synthetic.jsonl").read_text().splitlines()]
    assert all(set(r) == {"src", "tgt", "en_doc", "zh_doc", "de_doc"} for r in test)
    assert all(set(r) == {"src", "tgt", "doc", "tag"} for r in dev)


@pytest.mark.parametrize("docs,expect", [("none", []), ("en", ["en_doc"]), ("all", ["en_doc", "zh_doc", "de_doc"])])
def test_ragtrans_document_settings(docs, expect):
    from evalsuite.tasks.ragtrans import RAGtransTest

    t = RAGtransTest(data_file=str(RAG_FIX / "RAGtrans_test.synthetic.jsonl"), docs=docs, doc_tokens="0")
    s = next(iter(t.samples()))
    text = t.request(s).prompt[-1].content
    assert text.endswith(s.input["src"])
    for key in ("en_doc", "zh_doc", "de_doc"):
        assert (s.input[key] in text) == (key in expect)
    if docs == "all":
        assert text.index(s.input["en_doc"]) < text.index(s.input["zh_doc"]) < text.index(s.input["de_doc"])


def test_ragtrans_document_budget_cuts_token_ids(word_tokenizer_dir):
    from evalsuite.task import TaskContext
    from evalsuite.tasks.ragtrans import RAGtransTest
    from evalsuite.tokenizer import load_tokenizer
    from evalsuite.truncation import template_parts

    tok = load_tokenizer(word_tokenizer_dir)
    t = RAGtransTest(data_file=str(RAG_FIX / "RAGtrans_test.synthetic.jsonl"), docs="en", doc_tokens="6")
    t.prepare(TaskContext(tokenizer=tok))
    policy = t.truncation()
    for s in t.samples():
        req = t.request(s)
        out = policy.apply(req, tok)
        doc_ids = tok.encode(s.input["en_doc"])
        assert out.truncated == (len(doc_ids) > 6)
        if out.truncated:
            pre, suf = template_parts(tok, req)
            p = "Document(s):\n"
            tail = "\n\nPlease translate the following text from English to Chinese, using the documents above if helpful:\n" + s.input["src"]
            assert list(out.prompt_ids) == pre + tok.encode(p) + doc_ids[:6] + tok.encode(tail) + suf
    with pytest.raises(UserError, match="doc_tokens=0"):
        RAGtransTest(data_file=str(RAG_FIX / "RAGtrans_test.synthetic.jsonl")).prepare(TaskContext())


def test_ragtrans_cli_gold_and_truncation_counted(cli, word_tokenizer_dir):
    r = cli("run", "--tasks", "ragtrans/test", "--backend", "gold", "--model", str(word_tokenizer_dir),
            "-T", f"data_file={RAG_FIX / 'RAGtrans_test.synthetic.jsonl'}", "-T", "doc_tokens=20",
            "--run-id", "t", "--output", "res", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["ragtrans/test"]
    m = {x["name"]: x for x in s["metrics"]}
    assert m["bleu"]["value"] == pytest.approx(100.0) and m["chrf"]["value"] == pytest.approx(100.0)
    tok_counts = []
    from evalsuite.tokenizer import load_tokenizer

    tok = load_tokenizer(word_tokenizer_dir)
    for line in (RAG_FIX / "RAGtrans_test.synthetic.jsonl").read_text().splitlines():
        row = json.loads(line)
        tok_counts.append(any(len(tok.encode(row[k])) > 20 for k in ("en_doc", "zh_doc", "de_doc")))
    assert s["n_truncated"] == sum(tok_counts) > 0
    assert sum(tok_counts) < len(tok_counts)  # some samples fit the budget and are sent whole


def test_ragtrans_dev_tags_and_breakdown(cli, tmp_path):
    fix = RAG_FIX / "RAGtrans_dev.synthetic.jsonl"
    rows = [json.loads(x) for x in fix.read_text().splitlines()]
    outs = [r["tgt"] if r["tag"].startswith("clean") else "完全不同的句子。" for r in rows]
    (tmp_path / "replay.jsonl").write_text("\n".join(
        json.dumps({"task": "ragtrans/dev", "index": i, "output": "译文：" + o}, ensure_ascii=False)
        for i, o in enumerate(outs)) + "\n", encoding="utf-8")
    r = cli("run", "--tasks", "ragtrans/dev", "--backend", "replay", "-B", "file=replay.jsonl", "-T",
            f"data_file={fix}", "-T", "doc_tokens=0", "--run-id", "d", "--output", "res", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["ragtrans/dev"]
    bleu = s["metrics"][0]
    assert bleu["details"]["by_doc_kind"]["clean"] == pytest.approx(100.0)
    assert bleu["details"]["by_doc_kind"]["noisy"] < 50
    assert set(bleu["details"]["by_tag"]) == {r["tag"] for r in rows}
    r2 = cli("run", "--tasks", "ragtrans/dev", "--backend", "replay", "-B", "file=replay.jsonl", "-T",
             f"data_file={fix}", "-T", "doc_tokens=0", "-T", "tags=clean", "--run-id", "c", "--output", "res",
             "--json", "--no-progress")
    s2 = json.loads(r2.stdout)["scores"]["ragtrans/dev"]
    assert s2["n"] == sum(r["tag"].startswith("clean") for r in rows)
    assert s2["metrics"][0]["value"] == pytest.approx(100.0)


def test_ragtrans_clean_translation():
    from evalsuite.tasks.ragtrans import clean_translation

    assert clean_translation("Translation: “他来了。”") == "他来了。"
    assert clean_translation("译文：他来了。\n\n解释：……") == "他来了。"
    assert clean_translation("“他说”和“她说”") == "“他说”和“她说”"


def test_compare_bootstraps_bleu_and_chrf_over_paired_segments(cli, tmp_path):
    """BLEU/chrF have no per-sample values; their per-segment statistics are kept in per_sample.jsonl and
    `evalsuite compare` bootstraps the corpus score over the shared samples."""
    rows = _rows(8)
    outs = [r["zh"] if i % 2 else r["zh"][: len(r["zh"]) // 2] for i, r in enumerate(rows)]
    lines = [json.dumps({"task": "drt/direct", "index": i, "output": o}, ensure_ascii=False) for i, o in enumerate(outs)]
    (tmp_path / "replay.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = ["--tasks", "drt/direct", "-T", f"data_file={DRT}", "--limit", "8", "--output", "res", "--no-progress"]
    assert cli("run", *common, "--backend", "gold", "--run-id", "a").returncode == 0
    r = cli("run", *common, "--backend", "replay", "-B", "file=replay.jsonl", "--run-id", "b")
    assert r.returncode == 0, r.stderr
    per = [json.loads(x) for x in (tmp_path / "res" / "b" / "drt" / "direct" / "per_sample.jsonl").read_text().splitlines()]
    assert all(len(p["stats"]["bleu"]) == 10 for p in per)  # sacrebleu BLEU: lengths + 4 x (correct, total)
    import sacrebleu

    from evalsuite.metrics.sacrebleu_metrics import BLEU

    expected = sacrebleu.corpus_bleu(outs, [[r["zh"] for r in rows]], tokenize="zh").score
    assert BLEU.corpus_from_stats([p["stats"]["bleu"] for p in per]) == pytest.approx(expected, abs=1e-9)
    r = cli("compare", "res/a", "res/b", "--json", "--allow-mismatch")
    assert r.returncode == 0, r.stderr
    rows_out = {x["metric"]: x for x in json.loads(r.stdout)["rows"]} if "rows" in json.loads(r.stdout) else None
    assert rows_out is not None, r.stdout[:500]
    for name in ("bleu", "chrf"):
        row = rows_out[name]
        assert row["test"] == "corpus_bootstrap" and row["n_shared"] == 8
        assert row["delta"] < 0 and row["ci_low"] <= row["delta"] <= row["ci_high"]
    assert rows_out["bleu"]["candidate"] == pytest.approx(expected, abs=1e-9)


def test_compare_rebuilds_corpus_scores_with_the_options_the_run_recorded():
    """A run scored with non-default BLEU/chrF options keeps them in its metric signature; `compare` rebuilds
    each corpus score from the per-segment statistics with those options, so its baseline/candidate values
    equal the runs' own. Golden values: sacrebleu itself on the same segments."""
    import sacrebleu

    from evalsuite.compare import CompareOptions, TaskRun, compare_task
    from evalsuite.metrics.sacrebleu_metrics import BLEU, CHRF, records_for

    refs = ["the cat sat on the mat today", "a dog barked at the moon", "rain fell all night long"]
    hyp_a = ["the cat sat", "a dog barked", "rain"]            # short: zero 4-gram matches, smoothing matters
    hyp_b = ["the cat sat on the mat", "a dog barked at it", "rain fell all night"]
    cases = [
        (BLEU(smooth_method="floor", smooth_value="0.5", effective_order="true"),
         lambda h: sacrebleu.corpus_bleu(h, [refs], smooth_method="floor", smooth_value=0.5, use_effective_order=True).score),
        (BLEU(max_ngram_order="2"), lambda h: sacrebleu.metrics.BLEU(max_ngram_order=2).corpus_score(h, [refs]).score),
        (CHRF(word_order="2", beta="1", eps_smoothing="true"),
         lambda h: sacrebleu.metrics.CHRF(word_order=2, beta=1, eps_smoothing=True).corpus_score(h, [refs]).score),
        (CHRF(char_order="4"), lambda h: sacrebleu.metrics.CHRF(char_order=4).corpus_score(h, [refs]).score),
    ]
    for metric, official in cases:
        runs = []
        for hyps in (hyp_a, hyp_b):
            res = metric.score(records_for(hyps, refs))
            assert res.value == pytest.approx(official(hyps), abs=1e-9)
            runs.append(TaskRun(name="t", scores={"metrics": [{"name": metric.name, "value": res.value,
                                                               "signature": res.signature}], "main": metric.name},
                                manifest_entry={}, prompt_hashes={},
                                per_sample={str(i): {"sample_id": str(i), "index": i, "metrics": {metric.name: None},
                                                     "stats": {metric.name: list(st)}}
                                            for i, st in enumerate(res.per_sample_stats)}))
        (row,) = compare_task(runs[0], runs[1], CompareOptions(iterations=50))
        assert row["test"] == "corpus_bootstrap", metric.signature()
        assert row["baseline"] == pytest.approx(official(hyp_a), abs=1e-9), metric.signature()
        assert row["candidate"] == pytest.approx(official(hyp_b), abs=1e-9), metric.signature()
    # the signature says what sacrebleu's leaves out (chrF's beta), and only when it is not the default
    assert "|beta:1|" in CHRF(beta="1").score(records_for(hyp_a, refs)).signature
    assert "beta" not in CHRF().score(records_for(hyp_a, refs)).signature
