"""LongBench v1 / LongBench-E tasks: registration, official configs, prompts, chat-template choice,
middle truncation on token ids, data loading, gold/echo runs through the CLI, official prediction files.

Data: synthetic rows in the official schema, tests/fixtures/longbench/data/ (see the README there).
Tokenizer: a byte-level one built here (one token per UTF-8 byte, a BOS added like Llama's, a Llama-2
style chat template that spells its own BOS), so token counts can be derived from the text by hand.
Expected scores are worked out by hand in the comments, never taken from our own output.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from evalsuite.errors import UserError
from evalsuite.registry import Registry
from evalsuite.task import TaskContext
from evalsuite.tokenizer import load_tokenizer
from evalsuite.types import Sample

import evalsuite.tasks.longbench as longbench
from evalsuite.tasks.longbench._config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[2].parent
FIXTURES = REPO / "tests" / "fixtures" / "longbench"
SHARED_CONFIG = REPO.parent / "shared" / "data" / "longbench" / "config"

V1 = ["narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa", "musique",
      "dureader", "gov_report", "qmsum", "multi_news", "vcsum", "trec", "triviaqa", "samsum", "lsht",
      "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc", "repobench-p"]
E = ["qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec", "triviaqa",
     "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p"]
RAW = {"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"}  # pred.py: no chat template

# sha256 of LongBench/config/*.json at THUDM/LongBench 2e00731f (`git show <commit>:<path> | sha256sum`)
UPSTREAM_SHA256 = {
    "dataset2prompt.json": "56d22ad4f382169c2b8a11ff4c982a4a1bea096c8152b0f0b85b64686b157c30",
    "dataset2maxlen.json": "72966b3c0933e214591637fb085798c5e687ebff4ddaab5d99bbc31120532022",
    "model2maxlen.json": "2405c0b85b215a504fb6a8f69c4982db7e2be2d53d177c69891cdcf0fe78f3ce",
}

# dataset2maxlen.json, typed from LongBench's README table
MAX_NEW = {"narrativeqa": 128, "qasper": 128, "multifieldqa_en": 64, "multifieldqa_zh": 64, "hotpotqa": 32,
           "2wikimqa": 32, "musique": 32, "dureader": 128, "gov_report": 512, "qmsum": 512,
           "multi_news": 512, "vcsum": 512, "trec": 64, "triviaqa": 32, "samsum": 128, "lsht": 64,
           "passage_count": 32, "passage_retrieval_en": 32, "passage_retrieval_zh": 32, "lcc": 64,
           "repobench-p": 64}

LLAMA2_TEMPLATE = ("{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}")


def _byte_tokenizer(folder: Path, max_len: int = 32768) -> Path:
    """One token per UTF-8 byte (no merges), BOS ``<s>`` added to every encoded text like Llama's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {"<s>": 0, "</s>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": LLAMA2_TEMPLATE, "bos_token": "<s>", "eos_token": "</s>", "model_max_length": max_len}))
    return folder


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    return _byte_tokenizer(tmp_path_factory.mktemp("bytetok"))


@pytest.fixture(scope="module")
def tok(tok_dir):
    return load_tokenizer(tok_dir)


@pytest.fixture(scope="module")
def registry():
    reg = Registry()
    longbench.register(reg)
    return reg


def make(registry, name, tok=None, max_model_len=None, **opts):
    task = registry.task(name).factory(**opts)
    task.prepare(TaskContext(tokenizer=tok, max_model_len=max_model_len))
    return task


def fixture_samples(registry, name, tok, **opts):
    task = make(registry, name, tok, 32768, data_dir=str(FIXTURES), **opts)
    return task, list(task.samples())


# -- registration and config files -------------------------------------------------------------------

def test_register_adds_34_tasks_and_four_groups_idempotently():
    reg = Registry()
    longbench.register(reg)
    longbench.register(reg)  # both entry points (longbench, longbench_e) call it
    assert sorted(reg.tasks) == sorted([f"longbench/{d}" for d in V1] + [f"longbench_e/{d}" for d in E])
    assert reg.groups["longbench"] == [f"longbench/{d}" for d in V1]
    assert reg.groups["longbench_e"] == [f"longbench_e/{d}" for d in E]
    zh = ["multifieldqa_zh", "dureader", "vcsum", "lsht", "passage_retrieval_zh", "lcc", "repobench-p"]
    assert reg.groups["longbench_zh"] == [f"longbench/{d}" for d in zh]
    assert reg.groups["longbench_en"] == [f"longbench/{d}" for d in V1 if d not in zh[:5]]
    assert len(reg.groups["longbench_en"]) == 16
    assert reg.task("longbench_e/lcc").factory.version == "1"


def test_config_files_are_upstreams_bytes():
    for name, sha in UPSTREAM_SHA256.items():
        data = (CONFIG_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, name
        if (SHARED_CONFIG / name).is_file():
            assert data == (SHARED_CONFIG / name).read_bytes()


def _require_entry_points() -> None:
    """The CLI finds the tasks through entry points; both prefixes must name ``register``."""
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="evalsuite.tasks")}
    for name in ("longbench", "longbench_e"):
        assert eps.get(name) == "evalsuite.tasks.longbench:register", \
            f"pyproject.toml needs the entry point {name} = \"evalsuite.tasks.longbench:register\" " \
            "(then reinstall: pip install -e .)"


def test_entry_points_name_both_prefixes():
    _require_entry_points()


# -- samples, prompts, requests -----------------------------------------------------------------------

def test_samples_keep_the_official_fields(registry, tok):
    task, samples = fixture_samples(registry, "longbench/trec", tok)
    first = json.loads((FIXTURES / "data" / "trec.jsonl").read_text().splitlines()[0])
    s = samples[0]
    assert (s.id, s.index, s.target) == (first["_id"], 0, first["answers"])
    assert s.metadata == {"all_classes": first["all_classes"], "length": first["length"], "language": "en",
                          "dataset": "trec"}
    assert [x.index for x in samples] == [0, 1, 2]
    _, e = fixture_samples(registry, "longbench_e/trec", tok)
    assert [x.metadata["length"] for x in e] == [1500, 5000, 9000] and e[0].metadata["dataset"] == "trec_e"


def test_prompts_are_the_official_templates_byte_exact(registry, tok):
    row = {"context": "CTX", "input": "INP", "answers": ["a"], "_id": "x", "length": 1, "all_classes": None}
    expected = {  # typed from LongBench/config/dataset2prompt.json, quirks included
        "narrativeqa": "You are given a story, which can be either a novel or a movie script, and a question. "
                       "Answer the question asconcisely as you can, using a single phrase if possible. Do not "
                       "provide any explanation.\n\nStory: CTX\n\nNow, answer the question based on the story "
                       "asconcisely as you can, using a single phrase if possible. Do not provide any "
                       "explanation.\n\nQuestion: INP\n\nAnswer:",
        "passage_count": "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. "
                         "Please carefully read these paragraphs and determine how many unique paragraphs there "
                         "are after removing duplicates. In other words, how many non-repeating paragraphs are "
                         "there in total?\n\nCTX\n\nPlease enter the final count of unique paragraphs after "
                         "removing duplicates. The output format should only contain the number, such as 1, 2, "
                         "3, and so on.\n\nThe final answer is: ",
        "trec": "Please determine the type of the question below. Here are some examples of questions.\n\nCTX\nINP",
        "triviaqa": "Answer the question based on the given passage. Only give me the answer and do not output "
                    "any other words. The following are some examples.\n\nCTX\n\nINP",
        "lcc": "Please complete the code given below. \nCTXNext line of code:\n",
        "repobench-p": "Please complete the code given below. \nCTXINPNext line of code:\n",
        "lsht": "请判断给定新闻的类别，下面是一些例子。\n\nCTX\nINP",
        "multi_news": "You are given several news passages. Write a one-page summary of all news. \n\nNews:\nCTX"
                      "\n\nNow, write a one-page summary of all the news.\n\nSummary:",
    }
    for ds, want in expected.items():
        task = make(registry, f"longbench/{ds}", tok, 32768)
        assert task.prompt(Sample("x", 0, row, ["a"])) == want, ds
    qasper = make(registry, "longbench/qasper", tok, 32768)
    text = qasper.prompt(Sample("x", 0, row, ["a"]))
    assert "Article: CTX\n\n Answer the question based on the above article" in text  # upstream's leading space
    retrieval = make(registry, "longbench/passage_retrieval_en", tok, 32768).prompt(Sample("x", 0, row, ["a"]))
    assert retrieval.endswith("\"Paragraph 2\", etc.\n\nThe answer is: ")


def test_requests_chat_template_choice_and_generation_params(registry, tok):
    for ds in V1:
        task, samples = fixture_samples(registry, f"longbench/{ds}", tok)
        req = task.request(samples[0])
        assert isinstance(req.prompt, str) and req.use_chat_template is (ds not in RAW), ds
        assert (req.params.max_tokens, req.params.temperature, req.params.top_p) == (MAX_NEW[ds], 0.0, 1.0)
        assert req.params.stop == ()
        assert req.prompt_ids is None and not req.truncated
    # samsum: pred.py's "\n" stop is a token stop with the first new token forbidden to be it; a stop
    # string would end a generation that starts with "\n" empty, so it is opt-in
    task, samples = fixture_samples(registry, "longbench/samsum", tok, newline_stop="true")
    assert task.request(samples[0]).params.stop == ("\n",) and task.describe()["stop"] == ["\n"]
    with pytest.raises(UserError, match="newline_stop"):
        registry.task("longbench/qasper").factory(newline_stop="true")
    for ds, forced in (("hotpotqa", "false"), ("trec", "true")):
        task, samples = fixture_samples(registry, f"longbench/{ds}", tok, chat_template=forced)
        assert task.request(samples[0]).use_chat_template is (forced == "true")
        assert task.describe()["chat_template"] is (forced == "true")


def test_gold_is_the_first_answer(registry, tok):
    golds = {}
    for ds in ("trec", "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc", "narrativeqa"):
        task, samples = fixture_samples(registry, f"longbench/{ds}", tok)
        golds[ds] = task.gold(samples[0])
    assert golds == {"trec": "Definition of something", "passage_count": "2",
                     "passage_retrieval_en": "Paragraph 2", "passage_retrieval_zh": "段落2", "lcc": "        }",
                     "narrativeqa": "Captain Ahab"}


# -- truncation ---------------------------------------------------------------------------------------

HOTPOT_HEAD = "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\nThe following are given passages.\n"


def _long_row(n_bytes: int, question: str = "Where was the treaty signed?") -> dict:
    """An English (ASCII) context of about ``n_bytes`` bytes = tokens of the byte tokenizer."""
    sent = "The committee met again and discussed the old treaty at length. "
    ctx = "Passage 1:\n" + sent * (n_bytes // len(sent))
    return {"input": question, "context": ctx, "answers": ["Paris"], "length": len(ctx.split()),
            "dataset": "hotpotqa", "language": "en", "all_classes": None, "_id": "long-1"}


def test_truncation_keeps_first_and_last_half_of_the_bos_including_raw_ids(registry, tok):
    row = _long_row(20000)
    # raw dataset (trec): the ids sent are exactly [BOS] + first 3999 bytes, then the last 4000 bytes
    trec = make(registry, "longbench/trec", tok, max_length="8000")
    prompt = "Please determine the type of the question below. Here are some examples of questions.\n\n" \
        + row["context"] + "\n" + row["input"]
    b = prompt.encode()
    assert len(b) + 1 > 20000  # a 20k-token prompt (one token per byte, plus BOS)
    req = trec.truncation().apply(trec.request(Sample("s", 0, row, ["x"])), tok)
    assert req.truncated and len(req.prompt_ids) == 8000 and req.prompt_ids[0] == 0
    assert tok.decode(req.prompt_ids) == "<s>" + b[:3999].decode() + b[-4000:].decode()
    # chat dataset (hotpotqa): the template wraps the same cut, its own BOS replacing the tokenizer's
    hotpot = make(registry, "longbench/hotpotqa", tok, max_length="8000")
    prompt = HOTPOT_HEAD + row["context"] + "\n\n" + HOTPOT_HEAD.split("\n\n")[0] + "\n\nQuestion: " \
        + row["input"] + "\nAnswer:"
    b = prompt.encode()
    req = hotpot.truncation().apply(hotpot.request(Sample("s", 0, row, ["x"])), tok)
    text = tok.decode(req.prompt_ids)
    assert text == "<s>[INST] " + b[:3999].decode() + b[-4000:].decode() + " [/INST]"
    assert len(req.prompt_ids) == 8 + 7999 + 8  # "<s>[INST] " and " [/INST]": 8 tokens each
    assert text.count("<s>") == 1
    assert HOTPOT_HEAD in text and text.endswith("Question: Where was the treaty signed?\nAnswer: [/INST]")
    # an odd budget keeps int(L/2) at each end, as pred.py
    odd = make(registry, "longbench/trec", tok, max_length="8001")
    assert len(odd.truncation().apply(odd.request(Sample("s", 0, row, ["x"])), tok).prompt_ids) == 8000
    # at the budget nothing is cut (BOS counted): len(bytes) + 1 == L
    short = dict(row, context="Passage 1:\nshort", input="q")
    req = trec.request(Sample("s", 0, short, ["x"]))
    exact = make(registry, "longbench/trec", tok, max_length=str(len(req.prompt.encode()) + 1))
    assert exact.truncation().apply(req, tok) is req
    less = make(registry, "longbench/trec", tok, max_length=str(len(req.prompt.encode())))
    assert less.truncation().apply(req, tok).truncated


def test_default_budget_is_context_minus_max_tokens_minus_template(registry, tok):
    row = _long_row(20000)
    trec = make(registry, "longbench/trec", tok, max_model_len=4096)
    assert trec.truncation().max_tokens == 4096 - 64  # raw: BOS + text
    hotpot = make(registry, "longbench/hotpotqa", tok, max_model_len=4096)
    # template: "<s>[INST] " (8 tokens) + " [/INST]" (8), minus the tokenizer BOS it replaces
    assert hotpot.truncation().max_tokens == 4096 - 32 - (8 + 8 - 1)
    for task in (trec, hotpot):
        req = task.truncation().apply(task.request(Sample("s", 0, row, ["x"])), tok)
        assert len(req.prompt_ids) + req.params.max_tokens <= 4096
    policy = trec.truncation()
    assert (policy.side, policy.budget, policy.equal_halves) == ("middle", "content", True)


def test_budget_errors_and_no_truncation(registry, tok):
    with pytest.raises(UserError, match="max_length"):
        make(registry, "longbench/qasper", tok, max_model_len=None)
    with pytest.raises(UserError, match="tokenizer"):
        make(registry, "longbench/qasper", None, max_model_len=8192)
    with pytest.raises(UserError, match="max_length"):
        make(registry, "longbench/gov_report", tok, max_model_len=500)  # 512 new tokens do not fit
    with pytest.raises(UserError, match="max_length"):
        registry.task("longbench/qasper").factory(max_length="1")
    assert make(registry, "longbench/qasper", None, max_length="0").truncation() is None
    assert make(registry, "longbench/qasper", tok, max_model_len=None, max_length="3500").truncation().max_tokens == 3500


def test_real_smollm2_tokenizer_truncation(registry, request):
    """SmolLM2's tokenizer adds no BOS and its ChatML template has a default system prompt."""
    from evalsuite.truncation import template_parts

    real = load_tokenizer(request.getfixturevalue("smollm2_tokenizer_dir"))
    row = _long_row(120_000)
    for ds in ("trec", "hotpotqa"):
        task = make(registry, f"longbench/{ds}", real, max_length="8000")
        req = task.request(Sample("s", 0, row, ["x"]))
        ids = real.encode(req.prompt, add_special_tokens=True)
        assert len(ids) > 20000
        out = task.truncation().apply(req, real)
        kept = ids[:4000] + ids[-4000:]
        if ds == "trec":
            assert list(out.prompt_ids) == kept
        else:
            pre, suf = template_parts(real, req)
            assert real.decode(pre).startswith("<|im_start|>system\n") and real.decode(pre).endswith("user\n")
            assert list(out.prompt_ids) == pre + kept + suf


# -- data sources -------------------------------------------------------------------------------------

def test_data_dir_layouts_and_data_file(registry, tok, tmp_path):
    src = FIXTURES / "data" / "qasper.jsonl"
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(src, flat / "qasper.jsonl")
    ids = [s.id for s in make(registry, "longbench/qasper", tok, 32768, data_dir=str(flat)).samples()]
    assert ids == [s.id for s in make(registry, "longbench/qasper", tok, 32768, data_file=str(src)).samples()]
    assert len(ids) == 3
    task = make(registry, "longbench/qasper", tok, 32768, data_file=str(src))
    list(task.samples())
    d = task.describe()["data"]
    assert d["kind"] == "file" and d["sha256"] and d["path"].endswith("qasper.jsonl")
    with pytest.raises(UserError, match="qasper_e.jsonl"):  # LongBench-E reads <dataset>_e.jsonl
        list(make(registry, "longbench_e/qasper", tok, 32768, data_dir=str(flat)).samples())
    with pytest.raises(UserError, match="belongs to dataset 'trec'"):
        list(make(registry, "longbench/qasper", tok, 32768,
                  data_file=str(FIXTURES / "data" / "trec.jsonl")).samples())
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input": "q", "context": "c", "answers": "not a list"}) + "\n")
    with pytest.raises(UserError, match="answers"):
        list(make(registry, "longbench/qasper", tok, 32768, data_file=str(bad)).samples())


def test_parquet_data_file(registry, tok, tmp_path):
    rows = [json.loads(x) for x in (FIXTURES / "data" / "qasper.jsonl").read_text().splitlines()]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        f = tmp_path / "qasper.parquet"
        f.write_bytes(b"PAR1")
        with pytest.raises(UserError, match="pyarrow"):
            list(make(registry, "longbench/qasper", tok, 32768, data_file=str(f)).samples())
        return
    f = tmp_path / "qasper.parquet"
    pq.write_table(pa.Table.from_pylist(rows), f)
    got = list(make(registry, "longbench/qasper", tok, 32768, data_file=str(f)).samples())
    assert [s.id for s in got] == [r["_id"] for r in rows] and got[2].target == rows[2]["answers"]


def test_offline_hub_id_is_a_user_error_naming_data_dir(registry, tok):
    with pytest.raises(UserError, match="data_dir"):
        list(make(registry, "longbench/qasper", tok, 32768).samples())


def test_offline_hub_id_cli_exit_2(cli, tok_dir):
    _require_entry_points()
    r = cli("run", "--tasks", "longbench/qasper", "--backend", "gold", "--model", str(tok_dir), "--no-progress")
    assert r.returncode == 2 and "data_dir" in r.stderr and "Traceback" not in r.stderr


# -- end to end through the CLI -----------------------------------------------------------------------

def _scores(stdout: str) -> dict:
    return json.loads(stdout)["scores"]


def test_gold_scores_100_on_every_dataset(cli, tok_dir, tmp_path):
    _require_entry_points()
    r = cli("run", "--tasks", "longbench,longbench_e", "--backend", "gold", "--model", str(tok_dir),
            "-T", f"data_dir={FIXTURES}", "--run-id", "gold", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    scores = _scores(r.stdout)
    assert set(scores) == {f"longbench/{d}" for d in V1} | {f"longbench_e/{d}" for d in E}
    for name, s in scores.items():
        assert s["value"] == pytest.approx(100.0, abs=1e-6), name
        assert (s["n"], s["n_errors"], s["n_truncated"]) == (3, 0, 0), name
    manifest = json.loads((tmp_path / "results" / "gold" / "manifest.json").read_text())
    entry = manifest["tasks"]["longbench/hotpotqa"]
    assert entry["truncation"] == {"max_tokens": 32768 - 32 - 15, "side": "middle", "budget": "content",
                                   "equal_halves": True}
    assert entry["describe"]["config_sha256"]["dataset2prompt"] == UPSTREAM_SHA256["dataset2prompt.json"]
    assert entry["chat_template"] is True and manifest["tasks"]["longbench/lcc"]["chat_template"] is False


# Echo answers "Paragraph 2" everywhere. Per row, by hand (fixture answers in tests/fixtures/longbench):
# * qa F1: normalized tokens {paragraph, 2}. hotpotqa row 1 "2": P=1/2, R=1, F1=2/3; musique row 1
#   "Second Paragraph": P=R=1/2, F1=1/2; no other QA answer shares a token.
# * passage_count: numbers in "Paragraph 2" = ["2"]; rows "2", "5", "12" -> 1, 0, 0.
# * retrieval (en / zh): rows Paragraph 2 / 段落2 first -> 1, 0, 0.
# * code_sim: fuzz.ratio = round(100 * 2M/T): lcc row 1 "        }" shares one space: 2*1/(11+9) -> 10;
#   every other code answer shares no character with "Paragraph 2" -> 0.
# * classification: no class label is a substring of "Paragraph 2" -> 0; ROUGE: no shared token -> 0.
ECHO_V1 = {d: 0.0 for d in V1}
ECHO_V1.update({"hotpotqa": 100 * (2 / 3) / 3, "musique": 100 * 0.5 / 3, "passage_count": 100 / 3,
                "passage_retrieval_en": 100 / 3, "passage_retrieval_zh": 100 / 3, "lcc": 100 * 0.10 / 3})
# LongBench-E rows are the v1 rows with lengths 1500 / 5000 / 9000: one row per bucket
ECHO_E_FIRST_ROW = {"hotpotqa": 100 * 2 / 3, "passage_count": 100.0, "passage_retrieval_en": 100.0,
                    "lcc": 10.0}


def test_echo_scores_match_hand_computed_values(cli, tok_dir, tmp_path):
    _require_entry_points()
    r = cli("run", "--tasks", "longbench,longbench_e", "--backend", "echo", "-B", "text=Paragraph 2",
            "--model", str(tok_dir), "-T", f"data_dir={FIXTURES}", "--run-id", "echo", "--json",
            "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    scores = _scores(r.stdout)
    for d in V1:
        assert scores[f"longbench/{d}"]["value"] == pytest.approx(ECHO_V1[d], abs=0.006), d
    for d in E:
        first = ECHO_E_FIRST_ROW.get(d, 0.0)
        assert scores[f"longbench_e/{d}"]["value"] == pytest.approx(first / 3, abs=0.006), d
        details = json.loads((tmp_path / "results" / "echo" / "longbench_e" / d / "scores.json").read_text())
        buckets = _buckets(details)
        assert buckets["0-4k"] == pytest.approx(first, abs=0.006), d
        assert buckets["4-8k"] == pytest.approx(0.0, abs=0.006) and buckets["8k+"] == pytest.approx(0.0, abs=0.006)


def _buckets(scores_json: dict) -> dict:
    """The LongBench-E length buckets from a task's scores.json (metric details)."""
    for m in scores_json["metrics"]:
        for key in ("buckets", "length_buckets", "longbench_e"):
            if isinstance(m.get("details", {}).get(key), dict):
                return m["details"][key]
    raise AssertionError(f"no LongBench-E buckets in {scores_json['metrics']}")


def test_truncated_run_counts_n_truncated_and_sends_cut_ids(cli, tok_dir, tmp_path):
    _require_entry_points()
    long_row = _long_row(20000)
    short_row = dict(_long_row(200), _id="short-1")
    hot = tmp_path / "hotpotqa.jsonl"
    hot.write_text("".join(json.dumps(r) + "\n" for r in (long_row, short_row)))
    trec = tmp_path / "trec.jsonl"
    trec.write_text(json.dumps(dict(long_row, dataset="trec", answers=["City"], all_classes=["City"])) + "\n")
    r = cli("run", "--tasks", "longbench/hotpotqa,longbench/trec", "--backend", "gold", "--model", str(tok_dir),
            "-T", f"longbench/hotpotqa.data_file={hot}", "-T", f"longbench/trec.data_file={trec}",
            "-T", "max_length=8000", "--log-prompts", "--run-id", "t", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    scores = _scores(r.stdout)
    assert scores["longbench/hotpotqa"]["n_truncated"] == 1 and scores["longbench/trec"]["n_truncated"] == 1
    assert scores["longbench/hotpotqa"]["value"] == pytest.approx(100.0)
    run = tmp_path / "results" / "t"
    tok = load_tokenizer(tok_dir)
    rows = [json.loads(x) for x in (run / "longbench" / "trec" / "prompts.jsonl").read_text().splitlines()]
    raw = "Please determine the type of the question below. Here are some examples of questions.\n\n" \
        + long_row["context"] + "\n" + long_row["input"]
    full = tok.encode(raw, add_special_tokens=True)  # BOS + one id per byte
    assert len(full) > 20000 and full[0] == 0
    assert rows[0]["prompt_ids"] == full[:4000] + full[-4000:]
    rows = {json.loads(x)["sample_id"]: json.loads(x)
            for x in (run / "longbench" / "hotpotqa" / "prompts.jsonl").read_text().splitlines()}
    assert len(rows["long-1"]["prompt_ids"]) == 8 + 7999 + 8 and rows["short-1"]["prompt_ids"] is None
    text = tok.decode(rows["long-1"]["prompt_ids"])
    assert text.startswith("<s>[INST] " + HOTPOT_HEAD) and text.count("<s>") == 1  # instruction kept
    assert text.endswith("\n\nQuestion: Where was the treaty signed?\nAnswer: [/INST]")  # question kept
    samples = [json.loads(x) for x in (run / "longbench" / "hotpotqa" / "samples.jsonl").read_text().splitlines()]
    assert {s["sample_id"]: s["truncated"] for s in samples} == {"long-1": True, "short-1": False}


def test_score_file_reads_pred_py_output(cli, tmp_path):
    _require_entry_points()
    classes = ["City", "Country", "Date", "Individual"]
    rows = [  # eval.py: first line after lstrip("\n"), then classification_score
        {"pred": "Individual\nQuestion: next", "answers": ["Individual"], "all_classes": classes, "length": 10},  # 1
        {"pred": "City or Country", "answers": ["Country"], "all_classes": classes, "length": 10},  # m=[City, Country] -> 1/2
        {"pred": "\n\nDate", "answers": ["Date"], "all_classes": classes, "length": 10},  # 1
    ]
    f = tmp_path / "trec.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = cli("score-file", str(f), "--task", "longbench/trec")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["score"] == pytest.approx(100 * 2.5 / 3, abs=0.006)


# -- samsum's token stop and minimum length (pred.py) ------------------------------------------------

def test_samsum_stops_on_the_newline_token_with_min_tokens_one(registry, tok):
    # pred.py: eos_token_id=[eos, tokenizer.encode("\n", add_special_tokens=False)[-1]], min_length=len+1
    nl = tok.encode("\n", add_special_tokens=False)[-1]
    task, samples = fixture_samples(registry, "longbench/samsum", tok)
    p = task.request(samples[0]).params
    assert (p.stop_token_ids, p.min_tokens, p.stop) == ((nl,), 1, ())
    assert task.version == "2" and task.describe()["stop_token_ids"] == [nl] and task.describe()["min_tokens"] == 1
    # recorded with the request: the key differs from the same request without them
    assert "stop_token_ids" in task.request(samples[0]).to_dict()["params"]
    # only samsum; the others keep the stable defaults (their keys and rows unchanged)
    trec, ts = fixture_samples(registry, "longbench/trec", tok)
    assert (trec.request(ts[0]).params.stop_token_ids, trec.request(ts[0]).params.min_tokens) == ((), 0)
    assert "stop_token_ids" not in trec.request(ts[0]).to_dict()["params"] and trec.version == "1"
    # opt out; and without a tokenizer (max_length=0) there is no id to stop on
    off, s2 = fixture_samples(registry, "longbench/samsum", tok, token_stop="false")
    assert (off.request(s2[0]).params.stop_token_ids, off.request(s2[0]).params.min_tokens) == ((), 0)
    bare = make(registry, "longbench/samsum", None, None, data_dir=str(FIXTURES), max_length="0")
    assert bare.request(next(iter(bare.samples()))).params.stop_token_ids == ()


def test_samsum_newline_id_of_a_bpe_tokenizer(registry, smollm2_tokenizer_dir):
    smol = load_tokenizer(smollm2_tokenizer_dir)
    task = make(registry, "longbench/samsum", smol, 8192, data_dir=str(FIXTURES))
    assert task.request(next(iter(task.samples()))).params.stop_token_ids == (198,)  # "Ċ"


# -- -T max_length=official (pred.py's config/model2maxlen.json) --------------------------------------

def test_model2path_is_upstreams_bytes():
    # `git show 2e00731f:LongBench/config/model2path.json | sha256sum` (blob f554c8b2)
    assert hashlib.sha256((CONFIG_DIR / "model2path.json").read_bytes()).hexdigest() == \
        "d36ac172d89e71404eae0f9a94e6d7ac50a4e15924ac03c73e6a406d1b828082"


@pytest.mark.parametrize("model, spec, want, key, how", [
    ("llama2-7b-chat-4k", "official", 3500, "llama2-7b-chat-4k", "name"),                  # upstream's name
    ("meta-llama/Llama-2-7b-chat-hf", "official", 3500, "llama2-7b-chat-4k", "hub_id"),    # model2path.json
    ("/models/vicuna-7b-v1.5-16k", "official", 15500, "vicuna-v1.5-7b-16k", "folder_name"),
    ("THUDM/chatglm3-6b-32k", "official", 31500, "chatglm3-6b-32k", "hub_id"),
    ("anything", "official:xgen-7b-8k", 7500, "xgen-7b-8k", "explicit"),                   # named explicitly
])
def test_max_length_official_looks_the_model_up(registry, tok, model, spec, want, key, how):
    task = registry.task("longbench/qasper").factory(max_length=spec)
    task.prepare(TaskContext(tokenizer=tok, max_model_len=32768, model=model))
    assert task.truncation().max_tokens == want  # model2maxlen.json's value, not context - 128 - template
    assert task.describe()["max_length"] == want
    assert task.describe()["max_length_official"] == {"model2maxlen": key, "matched_by": how, "model": model}


def test_max_length_official_fails_clearly_for_an_unknown_model(registry, tok, cli, tok_dir, tmp_path):
    task = registry.task("longbench/qasper").factory(max_length="official")
    with pytest.raises(UserError, match=r"model 'Qwen/Qwen2.5-7B' is not in LongBench's config/model2maxlen.json "
                                        r"\(chatglm2-6b, .*, xgen-7b-8k\).*official:<name>"):
        task.prepare(TaskContext(tokenizer=tok, max_model_len=32768, model="Qwen/Qwen2.5-7B"))
    with pytest.raises(UserError, match="entry 'nope'"):
        registry.task("longbench/qasper").factory(max_length="official:nope").prepare(
            TaskContext(tokenizer=tok, max_model_len=32768, model="x"))
    with pytest.raises(UserError, match="max_length"):
        registry.task("longbench/qasper").factory(max_length="offcial")
    # through the CLI: one line, exit 2, before anything is generated
    r = cli("run", "--tasks", "longbench/qasper", "--backend", "echo", "--model", str(tok_dir),
            "-T", f"data_dir={FIXTURES}", "-T", "max_length=official", "--no-progress")
    assert r.returncode == 2 and "model2maxlen.json" in r.stderr and "Traceback" not in r.stderr
    # a folder named like an entry's hub id is found, and the budget is recorded in the manifest
    named = shutil.copytree(tok_dir, tmp_path / "Llama-2-7b-chat-hf")
    r = cli("run", "--tasks", "longbench/qasper", "--backend", "echo", "--model", str(named),
            "-T", f"data_dir={FIXTURES}", "-T", "max_length=official", "--run-id", "o", "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    entry = json.loads((tmp_path / "results" / "o" / "manifest.json").read_text())["tasks"]["longbench/qasper"]
    assert entry["truncation"]["max_tokens"] == 3500
    assert entry["describe"]["max_length_official"]["model2maxlen"] == "llama2-7b-chat-4k"


@pytest.mark.slow
def test_samsum_on_the_embedded_model_never_starts_with_and_stops_at_the_newline_token(tmp_path, monkeypatch):
    """SmolLM2-135M-Instruct (the embedded backend) through `evalsuite run`: every generated row is captured
    at the token level (the hf backend's finish_row sees each row's new ids). SmolLM2 opens these three
    samsum rows with the "\\n" token when nothing forbids it (checked first, with a 1-token budget and the
    token stop off); with pred.py's setting the first token is never "\\n" (id 198), the row ends at its
    first "\\n" token, and samples.jsonl records the parameters."""
    from evalsuite import cli
    import evalsuite.backends.hf as hf

    seen: list[list[int]] = []
    real = hf.finish_row

    def spy(tokens, **kw):
        seen.append(list(tokens))
        return real(tokens, **kw)

    monkeypatch.setattr(hf, "finish_row", spy)
    common = ["run", "--tasks", "longbench/samsum", "--backend", "embedded", "-B", "threads=1",
              "-T", f"data_dir={FIXTURES}", "--output", str(tmp_path), "--no-progress"]
    assert cli.main(common + ["--run-id", "free", "--max-tokens", "1", "-T", "token_stop=false"]) == 0
    assert len(seen) == 3 and any(row[0] == 198 for row in seen)  # the constraint below really binds
    seen.clear()

    assert cli.main(common + ["--run-id", "pred"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "pred" / "longbench" / "samsum" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and len(seen) == 3
    for r in rows:
        assert r["params"]["stop_token_ids"] == [198] and r["params"]["min_tokens"] == 1
        assert r["generation"]["finish_reason"] == "stop"
    ends = {0, 2}  # SmolLM2's <|endoftext|> and <|im_end|> (EOS, padding)
    for row in seen:
        assert row[0] != 198  # min_tokens=1: the newline token may not come first
        first_nl = row.index(198)  # and the row ended on a newline token, not on EOS or the budget
        assert first_nl > 0 and not ends & set(row[:first_nl])
    # what was recorded is the row up to, not including, its first newline token
    # each row ends at its first newline token, which counts as generated (like EOS)
    assert sorted(row.index(198) + 1 for row in seen) == sorted(r["generation"]["completion_tokens"] for r in rows)
