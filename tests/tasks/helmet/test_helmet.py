"""HELMET tasks through the CLI: registration, ``--backend gold`` at each task's maximum at 8K and 32K on the
synthetic fixture (judged metrics with scripted judges), HELMET's table summaries, data errors, RULER-generated
recall rows, NDCG@10 against trec_eval. Parity with HELMET's own code: tests/tasks/helmet/test_helmet_parity.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helmet_fixture import LONG, SHORT, judge_verdicts as _verdicts  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[2]))

FIXTURES = Path(__file__).parents[2] / "fixtures" / "helmet"


def _scores(tmp_path: Path, run: str) -> dict[str, dict]:
    out = {}
    for p in (tmp_path / "results" / run).glob("helmet/*/scores.json"):
        s = json.loads(p.read_text())
        out[s["task"]] = s
    return out


def test_list_tasks_shows_the_helmet_group(cli):
    r = cli("list", "tasks")
    assert r.returncode == 0, r.stderr
    from evalsuite.tasks.helmet import task_names

    names = task_names()
    assert len(names) == 21
    for n in names:
        assert n in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("helmet ") and "group" in ln)
    assert all(n in line for n in names)
    for group in ("helmet/recall", "helmet/rag", "helmet/rerank", "helmet/cite", "helmet/longqa", "helmet/summ",
                  "helmet/icl"):
        assert group in r.stdout


def test_gold_reaches_the_maximum_short_contexts(cli, tmp_path, helmet_data, smollm2_tokenizer_dir):
    """Recall, RAG, re-rank, ICL, cite at 8K and 32K with SmolLM2's tokenizer (HELMET's truncation runs), cite's
    NLI judge an echo backend that always says yes."""
    r = cli("run", "--tasks", ",".join(SHORT), "--backend", "gold", "--model", str(smollm2_tokenizer_dir),
            "-T", f"data_dir={helmet_data}", "-T", "lengths=8k,32k", "-T", "max_test_samples=1",
            "--judge-backend", "echo", "-J", "text=yes", "--run-id", "short", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    scores = _scores(tmp_path, "short")
    assert len(scores) == 16
    for name, s in scores.items():
        assert s["n"] > 0 and s["n_errors"] == 0 and not s.get("skipped_metrics"), name
        for m in s["metrics"]:
            assert m["value"] == pytest.approx(100.0), (name, m["name"])
            assert set(m["details"]["by_length"]) == {"8192", "32768"}, (name, m["name"])
    # HELMET's table: per length, the category averages and their average
    show = cli("show", str(tmp_path / "results" / "short"), "--json")
    summ = {row["name"]: row for row in json.loads(show.stdout)["summaries"]}
    for L in (8192, 32768):
        for cat, n in (("Recall", 4), ("RAG", 4), ("ICL", 5), ("Cite", 6), ("Re-rank", 1)):
            assert summ[f"helmet {L} {cat}"]["value"] == 100.0 and summ[f"helmet {L} {cat}"]["n_tasks"] == n
        assert summ[f"helmet {L} Average"]["n_categories"] == 5
    # the run records HELMET's settings per task
    manifest = json.loads((tmp_path / "results" / "short" / "manifest.json").read_text())
    d = manifest["tasks"]["helmet/kilt_nq"]["describe"]
    assert d["generation"] == {"greedy": True, "temperature": 0.0, "top_p": 1.0, "stop": ["\n", "\n\n"]}
    assert d["helmet_datasets"] == {"8192": "kilt_nq", "32768": "kilt_nq"} and d["data"]["sha256"]
    assert manifest["tasks"]["helmet/ruler_niah_mk_2"]["describe"]["n_context_truncated"] == 1


def test_requests_carry_the_token_count_the_fit_made(helmet_data, smollm2_tokenizer_dir):
    """HELMET's fit encodes every prompt; the request carries that count (Request.token_count), which must be
    what a backend would count itself, truncated prompts included."""
    import itertools

    from evalsuite.registry import default_registry
    from evalsuite.task import TaskContext
    from evalsuite.tokenizer import load_tokenizer, request_ids

    tok = load_tokenizer(smollm2_tokenizer_dir)
    reg = default_registry()
    names = reg.expand_tasks(SHORT)
    n_checked = n_cut = 0
    for name in names:
        task = reg.task(name).factory(data_dir=str(helmet_data), lengths="8k,32k",
                                                     max_test_samples="1")
        task.prepare(TaskContext(tokenizer=tok))
        for sample in itertools.islice(task.samples(), 4):
            req = task.request(sample)
            assert req.token_count == len(request_ids(tok, req)), (name, sample.id)
            n_checked += 1
            n_cut += bool(sample.input.get("truncated"))
    assert n_checked >= len(names) and n_cut >= 1


def test_gold_reaches_the_maximum_long_documents(cli, tmp_path, helmet_data, helmet_word_tokenizer):
    """LongQA and Summ at 8K and 32K (the word-level test tokenizer as model and document tokenizer), the judged
    scores through a replayed judge."""
    verdicts = _verdicts(helmet_data, tmp_path / "verdicts.jsonl")
    r = cli("run", "--tasks", ",".join(LONG), "--backend", "gold", "--model", str(helmet_word_tokenizer),
            "-T", f"data_dir={helmet_data}", "-T", "lengths=8k,32k",
            "--judge-backend", "replay", "-J", f"file={verdicts}", "--run-id", "long", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    scores = _scores(tmp_path, "long")
    assert set(scores) == {"helmet/narrativeqa", "helmet/infbench_qa_eng", "helmet/infbench_choice_eng",
                           "helmet/infbench_sum_eng", "helmet/multi_lexsum"}
    primary = {"helmet/narrativeqa": "judge_score", "helmet/infbench_qa_eng": "rougeL_f1",
               "helmet/infbench_choice_eng": "exact_match", "helmet/infbench_sum_eng": "judge_f1",
               "helmet/multi_lexsum": "judge_f1"}
    for name, s in scores.items():
        vals = {m["name"]: m for m in s["metrics"]}
        assert s["n"] > 0 and s["n_errors"] == 0 and not s.get("skipped_metrics"), name
        assert vals[primary[name]]["value"] == pytest.approx(100.0), name
        assert set(vals[primary[name]]["details"]["by_length"]) == {"8192", "32768"}
        if "judge_f1" in vals:
            assert all(vals[k]["value"] == pytest.approx(100.0) for k in ("judge_recall", "judge_precision",
                                                                          "judge_fluency"))
    show = cli("show", str(tmp_path / "results" / "long"), "--json")
    summ = {row["name"]: row["value"] for row in json.loads(show.stdout)["summaries"]}
    assert summ["helmet 8192 LongQA"] == summ["helmet 32768 Summ"] == 100.0
    assert (tmp_path / "results" / "long" / "helmet" / "multi_lexsum" / "judge.jsonl").exists()
    # scored again without a judge, the judged numbers are skipped and said so; the rest stay
    from evalsuite.registry import default_registry
    from evalsuite.runner import score_task
    from evalsuite.store import ResultsStore

    store = ResultsStore.open_existing(str(tmp_path / "results" / "long"))
    task = default_registry().task("helmet/multi_lexsum").factory(data_dir=str(helmet_data))
    s = score_task(store, "helmet/multi_lexsum", task, judge=None)
    assert {m["name"] for m in s["skipped_metrics"]} == {"judge_f1", "judge_recall", "judge_precision", "judge_fluency"}
    assert {m["name"]: m["value"] for m in s["metrics"]}["rougeL_f1"] == pytest.approx(100.0)


def test_summary_is_helmets_table():
    from evalsuite.tasks.helmet import summarize

    def entry(metric: str, by: dict[str, float]) -> dict:
        return {"metrics": [{"name": metric, "value": 0.0, "details": {"by_length": by}}]}

    scores = {"helmet/json_kv": entry("substring_exact_match", {"8192": 90.0, "131072": 50.0}),
              "helmet/ruler_niah_mk_2": entry("ruler_recall", {"8192": 70.0}),
              "helmet/narrativeqa": entry("judge_score", {"131072": 40.0}),
              "helmet/infbench_qa_eng": entry("rougeL_f1", {"131072": 20.0}),
              "helmet/infbench_choice_eng": entry("exact_match", {"131072": 60.0}),
              "ruler/niah_single_1": entry("string_match_all", {"8192": 1.0})}
    rows = {r["name"]: r for r in summarize(scores)}
    assert rows["helmet 8192 Recall"]["value"] == 80.0 and rows["helmet 8192 Recall"]["n_tasks"] == 2
    assert rows["helmet 8192 Recall"]["n_expected"] == 4
    assert rows["helmet 131072 LongQA"]["value"] == 40.0 and rows["helmet 131072 LongQA"]["n_tasks"] == 3
    assert rows["helmet 131072 Average"]["value"] == 45.0 and rows["helmet 131072 Average"]["n_categories"] == 2
    assert list(rows["helmet 131072 Average"]["table_row"].items()) == [
        ("Recall", 50.0), ("RAG", None), ("ICL", None), ("Cite", None), ("Re-rank", None), ("LongQA", 40.0),
        ("Summ", None), ("Average", 45.0)]
    order = [r["name"] for r in summarize(scores)]
    assert order.index("helmet 8192 Average") < order.index("helmet 131072 Recall")


def test_ndcg_equals_trec_eval():
    """``ndcg_cut`` against pytrec_eval (trec_eval) on 300 random queries: graded labels, unjudged documents,
    tied scores (broken by document id as trec_eval does)."""
    from evalsuite.tasks.helmet._metrics import ndcg_cut

    cases = json.loads((FIXTURES / "pytrec_ndcg.json").read_text())["cases"]
    for c in cases:
        for k in (1, 5, 10):
            assert ndcg_cut(c["run"], c["qrel"], k) == pytest.approx(c[f"ndcg_cut_{k}"], abs=1e-12)


def test_parse_rankings_as_helmet():
    from evalsuite.tasks.helmet._metrics import parse_rankings

    assert parse_rankings("Ranking: [ID: 3] > [ID: 1] > 2") == {"3": 3, "1": 2, "2": 1}
    assert parse_rankings("1 > 2. Then 7 > 5 > 7 > 6") == {"7": 4, "5": 3, "6": 1}  # longest run, first kept
    assert parse_rankings("no idea") == {"no ea": 1}  # "id" removed everywhere, as upstream does


@pytest.mark.parametrize("opts, message", [
    ((), "-T data_dir="),
    (("-T", "data_dir=/nonexistent/helmet"), "does not exist"),
    (("-T", "lengths=4k"), "HELMET's lengths"),
])
def test_bad_data_is_one_line_exit_2(cli, tmp_path, opts, message):
    r = cli("run", "--tasks", "helmet/json_kv", "--backend", "gold", "-T", "truncate=false", *opts,
            "--run-id", "bad", "--no-progress")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_missing_file_names_the_layout(cli, tmp_path):
    (tmp_path / "data" / "kilt").mkdir(parents=True)
    r = cli("run", "--tasks", "helmet/kilt_nq", "--backend", "gold", "-T", f"data_dir={tmp_path / 'data'}",
            "-T", "truncate=false", "--run-id", "missing", "--no-progress")
    assert r.returncode == 2 and "kilt/nq-dev-multikilt_1000_k1000_dep6.jsonl" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("row, code", [
    ('{"question": "q", "ctxs": []}', 2),                                   # no answers
    ('{"question": "q", "answers": ["a"], "ctxs": [7]}', 2),                # a passage that is not an object
    ('[1, 2]', 2),                                                           # not an object
    ('{"question": "q", "answers": "a", "ctxs": [{"title": "t", "text": {"x": 1}}]}', 0),  # formats as HELMET's would
])
def test_rows_not_in_helmets_format_are_one_line(cli, tmp_path, row, code):
    kilt = tmp_path / "data" / "kilt"
    kilt.mkdir(parents=True)
    (kilt / "nq-dev-multikilt_1000_k50_dep6.jsonl").write_text(row + "\n")
    (kilt / "nq-train-multikilt_1000_k3_dep6.jsonl").write_text(
        '{"question": "d", "answers": ["x"], "ctxs": []}\n{"question": "e", "answers": ["y"], "ctxs": []}\n')
    r = cli("run", "--tasks", "helmet/kilt_nq", "--backend", "gold", "-T", f"data_dir={tmp_path / 'data'}",
            "-T", "lengths=8k", "-T", "truncate=false", "--run-id", "badrow", "--no-progress")
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
    if code == 2:
        assert len(r.stderr.strip().splitlines()) == 1 and "helmet/kilt_nq" in r.stderr


def test_truncation_needs_a_tokenizer(cli, tmp_path, helmet_data):
    r = cli("run", "--tasks", "helmet/json_kv", "--backend", "gold", "-T", f"data_dir={helmet_data}",
            "--run-id", "notok", "--no-progress")
    assert r.returncode == 2 and "truncate=false" in r.stderr, r.stderr


def test_recall_rows_generated_with_the_ruler_generator(cli, tmp_path, smollm2_tokenizer_dir):
    """``-T source=generate``: MK needle rows from tasks/ruler's generator, sized to 8K with the model's tokenizer
    and laid out as HELMET lays out its RULER prompts; gold scores 100."""
    r = cli("run", "--tasks", "helmet/ruler_niah_mk_2", "--backend", "gold", "--model", str(smollm2_tokenizer_dir),
            "-T", "source=generate", "-T", "lengths=8k", "-T", "max_test_samples=2", "-T", "data_dir=.",
            "--run-id", "gen", "--no-progress", "--json")
    assert r.returncode == 0, r.stderr
    s = _scores(tmp_path, "gen")["helmet/ruler_niah_mk_2"]
    assert s["n"] == 2 and s["metrics"][0]["value"] == pytest.approx(100.0)
    rows = [json.loads(ln) for ln in (tmp_path / "results" / "gen" / "helmet" / "ruler_niah_mk_2" / "samples.jsonl")
            .read_text().splitlines()]
    assert all(r["prompt_tokens"] <= 8192 - 50 + 1 for r in rows if "prompt_tokens" in r)
