"""DeltaBench: the official critic parser and P/R/F1 (spec §3.4 vectors and more), the strict variant, the
trivial all-sections baseline, the byte-exact prompt, and a synthetic 20-record file in the official schema
run end to end through the CLI with ``--backend replay``. Expected numbers are worked out by hand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from evalsuite.errors import UserError
from evalsuite.tasks.deltabench import DeltaBenchTask, PROMPT_FILE, gold_sections, n_sections
from evalsuite.tasks.deltabench._metric import exclusion, parse_critic, sample_score

V0 = "Conclusion: yes\nError Section Number: 4\nExplanation: bad.\nError Section Number: 9\nExplanation: worse.\n"
V1 = "Conclusion: no error"
V2 = "Conclusion: yes\n" + "".join(f"Error Section Number: {n}\nExplanation: x\n" for n in range(1, 35))
V3 = "Conclusion: yes\nError Section Number: section 3 and 5\nExplanation: both wrong.\n"
V4 = "Conclusion: yes\nError Section Number: [2]\nExplanation: a\nError Section Number: [2]\nExplanation: again\n"

# spec §3.4: (critic, gold, n_sections, official (TP, FP, FN, P, R, F1), strict (P, R, F1))
VECTORS = [
    (V0, [4, 7], 10, (1, 0, 1, 1.0, 0.5, 2 / 3), (0.5, 0.5, 0.5)),
    (V1, [7], 10, (0, 0, 1, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    (V2, [7], 34, (1, 6, 0, 1 / 7, 1.0, 0.25), (1 / 34, 1.0, 2 / 35)),
    (V3, [3, 5], 10, (1, 0, 1, 1.0, 0.5, 2 / 3), (1.0, 0.5, 2 / 3)),
    (V4, [2], 10, (1, 0, 0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
]


@pytest.mark.parametrize("critic,gold,n,official,strict", VECTORS)
def test_spec_vectors_official_and_strict(critic, gold, n, official, strict):
    s = sample_score(critic, gold, n, "official")
    assert (s.tp, s.fp, s.fn) == official[:3]
    assert (s.precision, s.recall, s.f1) == pytest.approx(official[3:])
    t = sample_score(critic, gold, n, "strict")
    assert (t.precision, t.recall, t.f1) == pytest.approx(strict)


def test_parser_details():
    assert parse_critic(V2)[1] == list(range(1, 35))
    assert parse_critic(V3) == (True, [3])
    # no integer before the explanation -> -1, which the official rule keeps (a false positive)
    c = "Conclusion: yes\nError Section Number: none\nExplanation: the 3rd one\n"
    assert parse_critic(c) == (True, [-1])
    s = sample_score(c, [3], 5, "official")
    assert (s.tp, s.fp, s.fn) == (0, 1, 1)
    # "yes" is looked for case-insensitively between the last "Conclusion:" and the first section tag
    assert parse_critic("Conclusion: YES\nError Section Number: 2\nExplanation: e")[1] == [2]
    assert parse_critic("Draft. Conclusion: no error? Conclusion: Yes\nError Section Number: 2")[1] == [2]
    # ... and anywhere in that span when there is no "Conclusion:" (upstream's substring test)
    assert parse_critic("I think yes.\nError Section Number: 5\nExplanation: x")[1] == [5]
    # "no error" with section tags after it: no predictions
    assert parse_critic("Conclusion: no error\nError Section Number: 5\nExplanation: x") == (False, [])


def test_empty_output_official_excluded_strict_zero():
    assert sample_score("", [3], 5, "official") is None
    assert sample_score("  \n", [3], 5, "official") is None
    s = sample_score("", [3, 4], 5, "strict")
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 0, 2, 0.0)


def test_strict_counts_predictions_past_the_last_section():
    c = "Conclusion: yes\nError Section Number: 2\nExplanation: x\nError Section Number: 40\nExplanation: y\n"
    assert sample_score(c, [2, 6], 8, "official").precision == 1.0  # 40 > max(gold) dropped
    s = sample_score(c, [2, 6], 8, "strict")
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)


def test_trivial_baseline_flags_every_section():
    # all of 1..10 against gold [3]: official keeps 1..3 -> P 1/3, R 1, F1 1/2
    s = sample_score("ignored", [3], 10, "trivial")
    assert (s.precision, s.recall, s.f1) == pytest.approx((1 / 3, 1.0, 0.5))


def test_prompt_file_is_upstream_literal():
    # sha256 of the value of `critic_judge_prompt` in utils/prompt.py at OpenStellarTeam/DeltaBench@6b67c64
    # (blob d7d4ad86), read with ast.literal_eval; ends "- judge result: " (the literal's trailing "\\" joins
    # the closing quotes)
    data = PROMPT_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == "77376ad37bf70a8e633dbbeb2ada8564e6bf834847369aef8cc398215f856b6a"
    text = data.decode()
    assert text.count("{{question}}") == 1 and text.count("{{model_output}}") == 1
    assert text.endswith("- judge result: ")


# -- synthetic official-schema file ----------------------------------------------------------------

def _record(i: int, gold_err: list[int], gold_unuseful: list[int], n: int, domain: str) -> dict:
    secs = [{"start": k, "end": k, "description": f"step {k}", "content": f"text {k}",
             "section_type": "Computation or Derivation"} for k in range(1, n + 1)]
    return {
        "id": f"rec{i:02d}", "origin": "synthetic", "task_l1": domain, "task_l2": "Synthetic", "level": 1.0,
        "question": f"Question {i}?", "solution": "s", "answer": "a", "long_cot": "cot",
        "sections": secs, "sections_content": "".join(f"section{k}:\ntext {k}\n\n" for k in range(1, n + 1)),
        "sections_labeled_info": [{"section_number": 1, "reasoning_correctness": "1", "error_step": ""}],
        "final_correct": 0, "stragegy_shift_section_numbers": [], "reason_unuseful_section_numbers": gold_unuseful,
        "reason_error_section_numbers": gold_err, "reflection_section_numbers": [], "error_type": "Premise Error",
    }


GOLDS = [([4], [7]), ([7], []), ([7], []), ([3, 5], []), ([2], [])]
OUTPUTS = [V0, V1, V2, V3, V4]
THINK = "<think>Conclusion: no error. Error Section Number: 1\nExplanation: hmm</think>\n"


def _write_synthetic(tmp_path: Path) -> tuple[Path, Path]:
    data, replay = tmp_path / "Deltabench_v1.jsonl", tmp_path / "critic.jsonl"
    recs, outs = [], []
    for i in range(20):
        v = 3 if i == 18 else (1 if i == 19 else i % 5)
        err, unuseful = GOLDS[v]
        recs.append(_record(i, err, unuseful, 34 if v == 2 else 10, "math" if i < 10 else "code"))
        out = OUTPUTS[v]
        if i == 18:
            out = THINK + V3  # scored only if the think block is removed first
        if i == 19:
            out = ""  # empty output
        outs.append({"sample_id": f"rec{i:02d}", "output": out})
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    replay.write_text("".join(json.dumps(o) + "\n" for o in outs))
    return data, replay


def test_synthetic_file_end_to_end_with_replay(cli, tmp_path):
    data, replay = _write_synthetic(tmp_path)
    r = cli("run", "--tasks", "deltabench", "--backend", "replay", "-B", f"file={replay}",
            "-T", f"data_file={data}", "--run-id", "d", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["scores"]["deltabench"]
    m = {x["name"]: x for x in s["metrics"]}
    assert s["main"] == "macro_f1" and s["n"] == 20
    # official: record 19 (empty) excluded; per-sample F1 by vector: v0 2/3 x4, v1 0 x4, v2 1/4 x4,
    # v3 2/3 x4 (incl. record 18 after think removal), v4 1 x3
    f1 = m["macro_f1"]
    assert f1["value"] == pytest.approx(100 * (4 * 2 / 3 + 4 * 0.25 + 4 * 2 / 3 + 3) / 19)
    assert f1["details"]["n_scored"] == 19 and f1["details"]["n_excluded_empty"] == 1
    assert m["macro_precision"]["value"] == pytest.approx(100 * (4 + 4 / 7 + 4 + 3) / 19)
    assert m["macro_recall"]["value"] == pytest.approx(100 * (4 * 0.5 + 4 + 4 * 0.5 + 3) / 19)
    # micro: TP 15, FP 24 (v2: 6 x4), FN 12
    assert f1["details"]["micro_f1"] == pytest.approx(100 * 30 / 66)
    assert f1["details"]["micro_precision"] == pytest.approx(100 * 15 / 39)
    # per domain: math = records 0..9 -> (2 x 2/3 + 2 x 1/4 + 2 x 2/3 + 2 x 1) / 10
    assert f1["details"]["per_domain"]["math"]["macro_f1"] == pytest.approx(100 * (8 / 3 + 0.5 + 2) / 10)
    assert f1["details"]["per_domain"]["math"]["n"] == 10 and f1["details"]["per_domain"]["code"]["n"] == 9
    # strict: all 20; v0 1/2 x4, v2 2/35 x4, v3 2/3 x4, v4 1 x3, the empty output 0
    assert m["strict_macro_f1"]["value"] == pytest.approx(100 * (2 + 8 / 35 + 8 / 3 + 3) / 20)
    # trivial baseline: F1 = 2|G| / (|G| + max G) per record: v0 4/9, v1 1/4, v2 1/4, v3 4/7, v4 2/3
    trivial = (4 * 4 / 9 + 4 * 0.25 + 4 * 0.25 + 4 * 4 / 7 + 3 * 2 / 3 + 0.25) / 20
    assert m["trivial_all_sections_macro_f1"]["value"] == pytest.approx(100 * trivial)
    summ = {x["name"]: x["value"] for x in json.loads(r.stdout)["summaries"]}
    assert summ["deltabench math F1"] == round(100 * (8 / 3 + 0.5 + 2) / 10, 2) and "deltabench code strict F1" in summ
    per = [json.loads(x) for x in (tmp_path / "results" / "d" / "deltabench" / "per_sample.jsonl").read_text().splitlines()]
    assert "reasoning_removed" in per[18]["flags"]

    # the gold backend (a critic naming exactly the gold sections) reaches 100 on every variant but trivial
    r = cli("run", "--tasks", "deltabench", "--backend", "gold", "-T", f"data_file={data}", "--json", "--no-progress")
    m = {x["name"]: x["value"] for x in json.loads(r.stdout)["scores"]["deltabench"]["metrics"]}
    assert m["macro_f1"] == m["strict_macro_f1"] == m["macro_recall"] == m["macro_precision"] == 100.0


def test_prompt_and_request(tmp_path):
    data, _ = _write_synthetic(tmp_path)
    t = DeltaBenchTask(data_file=str(data), domains="code")
    samples = list(t.samples())
    assert [s.metadata["domain"] for s in samples] == ["code"] * 10
    s = samples[0]
    req = t.request(s)
    assert req.params.temperature == 0.0 and req.params.max_tokens == 8192 and req.use_chat_template
    assert req.prompt.endswith("- Question: Question 10?\n- Robot's Answer: section1:\ntext 1\n\nsection2:"
                               "\ntext 2\n\n" + "".join(f"section{k}:\ntext {k}\n\n" for k in range(3, 11))
                               + "\n- judge result: ")
    row = {"reason_error_section_numbers": [7, 4], "reason_unuseful_section_numbers": [4, 9],
           "sections_content": "section1:\na\n\nsection2:\nb"}
    assert gold_sections(row) == [4, 7, 9] and n_sections(row) == 2


def test_offline_hub_fails_fast_naming_local_option():
    with pytest.raises(UserError, match="data_dir|data_file"):
        list(DeltaBenchTask().samples())
    with pytest.raises(UserError, match="mode=critic"):
        DeltaBenchTask(mode="prm")


# -- parity with upstream evaluation.py on the corners that exclude a record ----------------------------

FIXTURE = Path(__file__).parents[2] / "fixtures" / "deltabench"

# Produced by upstream, not by us: OpenStellarTeam/DeltaBench@6b67c64 `evaluation.py` (unmodified, run
# from a scratch checkout outside this repository): `process_line` on each line of
# fixtures/deltabench/Deltabench_v1.jsonl with its critic from critic.jsonl pre-filled, then
# `get_metrics`; the CSV rows (fractions) are in fixtures/deltabench/README.md.
UPSTREAM_CSV = {
    "Overall": (0.5, 0.5178571428571428, 0.44791666666666663, 0.5384615384615384, 0.4666666666666667, 0.5),
    "Physics&Chemistry&Biology": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "code": (0.75, 1.0, 0.8333333333333333, 0.6666666666666666, 1.0, 0.8),
    "general": (0.5, 0.5, 0.5, 0.75, 0.75, 0.75),
    "math": (0.5, 0.38095238095238093, 0.3055555555555555, 0.5, 0.25, 0.3333333333333333),
}
_COLS = ("macro_recall", "macro_precision", "macro_f1", "micro_recall", "micro_precision", "micro_f1")


def test_empty_gold_is_excluded_by_official_and_trivial_counted_by_strict():
    assert sample_score("Conclusion: yes\nError Section Number: 1\nExplanation: a", [], 10, "official") is None
    assert sample_score("Conclusion: no error", [], 10, "official") is None
    assert sample_score("anything", [], 10, "trivial") is None
    s = sample_score("Conclusion: yes\nError Section Number: 1\nExplanation: a", [], 10, "strict")
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 1, 0, 0.0)
    assert exclusion("", [], "official") == "empty_output"  # upstream tests the empty output first
    assert exclusion("x", [], "official") == "empty_gold" and exclusion("x", [], "strict") is None


def test_official_variant_matches_upstream_evaluation(cli, tmp_path):
    r = cli("run", "--tasks", "deltabench", "--backend", "replay", "-B", f"file={FIXTURE / 'critic.jsonl'}",
            "-T", f"data_file={FIXTURE / 'Deltabench_v1.jsonl'}", "--run-id", "u", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    m = {x["name"]: x for x in json.loads(r.stdout)["scores"]["deltabench"]["metrics"]}
    d = m["macro_f1"]["details"]
    got = {"Overall": tuple(d[c] / 100 for c in _COLS)}
    got |= {dom: tuple(v[c] / 100 for c in _COLS) for dom, v in d["per_domain"].items()}
    assert set(got) == set(UPSTREAM_CSV)
    for dom, want in UPSTREAM_CSV.items():
        assert got[dom] == pytest.approx(want, abs=1e-12), dom
    assert m["macro_recall"]["value"] / 100 == pytest.approx(UPSTREAM_CSV["Overall"][0], abs=1e-12)
    assert m["macro_precision"]["value"] / 100 == pytest.approx(UPSTREAM_CSV["Overall"][1], abs=1e-12)
    # the excluded records are counted, by reason (g08 is empty on both counts: the output wins, as upstream
    # tests it first)
    assert (d["n_scored"], d["n_excluded_empty"], d["n_excluded_empty_gold"]) == (8, 2, 2)
    # strict keeps all 12 (the three empty-gold records score 0)
    st = m["strict_macro_f1"]["details"]
    assert (st["n_scored"], st["n_excluded_empty"], st["n_excluded_empty_gold"]) == (12, 0, 0)
    # the trivial baseline drops the three empty-gold records, as the official rules would
    assert m["trivial_all_sections_macro_f1"]["details"]["n_scored"] == 9
