"""RULER niah tasks: upstream-identical generation, length fitting, templates, requests, scoring, errors.

Offline and fast: the tokenizer is the small BPE in tasks/ruler/fixtures/toy_tokenizer (trained on ten
of the essays, ChatML chat template), read with the ``tokenizers`` library (no transformers).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

import pytest

from evalsuite.errors import UserError
from evalsuite.metrics.match import StringMatchAll
from evalsuite.registry import Registry
from evalsuite.task import TaskContext
from evalsuite.tokenizer import load_tokenizer, render_request, request_ids
from evalsuite.types import Generation, Record

import evalsuite.tasks.ruler as ruler
from evalsuite.tasks.ruler import niah
from evalsuite.tasks.ruler._resources import TEMPLATES_FILE
from evalsuite.tasks.ruler._words import AdjNounWords

REPO = Path(__file__).resolve().parents[2].parent
SHARED = REPO.parent / "shared"
FIXTURES = REPO / "tasks" / "ruler" / "fixtures"
TOY_TOKENIZER = FIXTURES / "toy_tokenizer"
ESSAY_DIR = SHARED / "data" / "ruler" / "essays" / "PaulGrahamEssays"
ESSAY_JSON = SHARED / "data" / "ruler" / "essays" / "PaulGrahamEssays.json"
needs_essays = pytest.mark.skipif(not ESSAY_JSON.is_file(), reason="shared/data/ruler essays not present")

SINGULAR_NUMBER = ("A special magic number is hidden within the following text. Make sure to memorize it. "
                   "I will quiz you about the number afterwards.\n")


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(TOY_TOKENIZER)


@pytest.fixture(scope="module")
def registry():
    reg = Registry()
    ruler.register(reg)
    return reg


@pytest.fixture(scope="module")
def essay_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """A synthetic essay corpus as a folder of .txt files and as RULER's {"text": ...} JSON."""
    rng = random.Random(0)
    vocab = ("the of to and a in is that it you for be are not as with they do have this startup people "
             "work time what can more will one about if your there").split()  # one toy token each
    d = tmp_path_factory.mktemp("essays")
    folder = d / "essays"
    folder.mkdir()
    texts = []
    for name in ("b.txt", "a.txt", "c.txt"):
        sents = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 14))).capitalize() + "."
                 for _ in range(400)]
        text = "Essay " + name[0] + "\n\n" + "  ".join(sents) + "\n"
        (folder / name).write_text(text)
        texts.append((name, text))
    combined = "".join(t for _, t in sorted(texts))
    js = d / "essays.json"
    js.write_text(json.dumps({"text": combined}))
    return folder, js


def make(registry, tok, name, **opts):
    task = registry.task(name).factory(**opts)
    task.prepare(TaskContext(tokenizer=tok))
    return task


def take(task, n):
    return list(itertools.islice(task.samples(), n))


# -- registration and data files ---------------------------------------------------------------------

def test_register_adds_the_niah_tasks_and_the_group(registry):
    singles = ["ruler/niah_single_1", "ruler/niah_single_2", "ruler/niah_single_3"]
    assert set(singles) <= set(registry.tasks)
    assert registry.groups["ruler"][:3] == singles
    assert registry.groups["ruler"] == ruler.task_names()
    assert "numbers" in registry.tasks["ruler/niah_single_1"].description


def test_templates_file_holds_rulers_strings_byte_exact():
    t = json.loads(TEMPLATES_FILE.read_text())
    fam = t["families"]["niah"]
    assert fam["template"] == (
        "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
        "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
        "{type_needle_v} for {query} mentioned in the provided text?")
    assert fam["answer_prefix"] == " The special magic {type_needle_v} for {query} mentioned in the provided text are"
    assert fam["tokens_to_generate"] == 128
    assert t["niah_needle"] == "One of the special magic {type_needle_v} for {key} is: {value}."
    assert t["noise_haystack"] == ("The grass is green. The sky is blue. The sun is yellow. Here we go. "
                                   "There and back again.")
    assert t["singular_replacements"] == [["Some", "A"], ["are all", "is"], ["are", "is"], ["answers", "answer"]]
    assert t["source"]["commit"] == "c3f5e3b4f87f97e048793bb510a3a6b19a46bf3a"


def test_synthetic_yaml_is_rulers_file(registry):
    task = registry.task("ruler/niah_single_3").factory()
    assert task.config == {"type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "uuids",
                           "num_needle_k": 1, "num_needle_v": 1, "num_needle_q": 1}
    assert task.opts["tokens_to_generate"] == 128 and task.opts["num_samples"] == 500
    assert task.opts["length"] == 4096 and task.opts["seed"] == 42 and task.opts["chat_template"] is True


def test_depths_match_numpy_linspace():
    # np.round(np.linspace(0, 100, num=40)).astype(int), as printed by numpy
    assert niah.DEPTHS == [0, 3, 5, 8, 10, 13, 15, 18, 21, 23, 26, 28, 31, 33, 36, 38, 41, 44, 46, 49, 51, 54,
                           56, 59, 62, 64, 67, 69, 72, 74, 77, 79, 82, 85, 87, 90, 92, 95, 97, 100]


# -- identical to upstream RULER ---------------------------------------------------------------------

def _golden_rows():
    lines = (FIXTURES / "upstream_niah.jsonl").read_text().splitlines()
    meta = json.loads(lines[0])["_meta"]
    return meta, [json.loads(line) for line in lines[1:]]


def test_matches_upstream_ruler_output(registry, tok):
    """Rows written by NVIDIA/RULER's own niah.py (base template, same tokenizer, seed 42): our samples
    with chat_template=false must be byte-identical, including RULER's length and token_position_answer."""
    meta, rows = _golden_rows()
    from importlib.metadata import version
    if version("wonderwords") != meta["wonderwords"]:
        pytest.skip("golden rows were made with another wonderwords word list")
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["max_seq_length"]), []).append(r)
    checked = 0
    for (name, length), want in groups.items():
        spec = registry.task(f"ruler/{name}").factory().config
        opts = dict(length=length, seed=42, chat_template=False)
        if spec["type_haystack"] == "essay":
            if not ESSAY_JSON.is_file():
                continue
            opts["data_file"] = str(ESSAY_JSON)
        got = take(make(registry, tok, f"ruler/{name}", **opts), len(want))
        for w, s in zip(want, got):
            assert s.input["input"] == w["input"], (name, length, w["sample"])
            assert s.input["answer_prefix"] == w["answer_prefix"]
            assert s.target == w["outputs"]
            assert s.metadata["length"] == w["length"]
            assert s.metadata["token_position_answer"] == w["token_position_answer"]
            checked += 1
    assert checked >= 8


# -- determinism and laziness -------------------------------------------------------------------------

def test_same_seed_tokenizer_and_length_give_identical_samples(registry, tok, essay_corpus):
    folder, _ = essay_corpus
    a = take(make(registry, tok, "ruler/niah_single_2", length=2048, data_dir=str(folder)), 6)
    b = take(make(registry, tok, "ruler/niah_single_2", length=2048, data_dir=str(folder)), 6)
    assert [(s.id, s.index, s.input, s.target, s.metadata) for s in a] == \
           [(s.id, s.index, s.input, s.target, s.metadata) for s in b]
    assert [s.id for s in a] == ["0", "1", "2", "3", "4", "5"] and [s.index for s in a] == list(range(6))
    c = take(make(registry, tok, "ruler/niah_single_2", length=2048, seed=7, data_dir=str(folder)), 6)
    assert [s.target for s in c] != [s.target for s in a]


def test_essays_are_read_once_for_every_length(registry, tok, essay_corpus, monkeypatch):
    from evalsuite.tasks.ruler import _essays

    folder, _ = essay_corpus
    calls = []
    real = _essays.load_essays
    monkeypatch.setattr(_essays, "load_essays", lambda *a, **k: calls.append(a) or real(*a, **k))
    for name in ("ruler/niah_single_2", "ruler/niah_multikey_1"):  # essay haystacks
        calls.clear()
        task = make(registry, tok, name, lengths="1024,2048", num_samples=2, data_dir=str(folder))
        got = list(task.samples())
        assert [s.metadata["max_seq_length"] for s in got] == [1024, 1024, 2048, 2048]
        assert len(calls) == 1, name
        # the same samples as a task that read the essays afresh for its one length
        alone = list(make(registry, tok, name, length=2048, num_samples=2, data_dir=str(folder)).samples())
        assert [s.input for s in got[2:]] == [s.input for s in alone]


def test_samples_are_lazy_and_cached(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=1024, num_samples=50)
    first = take(task, 3)
    assert len(task._samples) == 3
    again = take(task, 5)
    assert again[:3] == first and len(task._samples) == 5
    assert len(list(task.samples())) == 50


# -- length fitting -----------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1024, 2048, 4096])
@pytest.mark.parametrize("name", ["ruler/niah_single_1", "ruler/niah_single_2"])
def test_prompts_fit_the_length_and_fill_it(registry, tok, essay_corpus, name, length):
    folder, _ = essay_corpus
    task = make(registry, tok, name, length=length, data_dir=str(folder))
    samples = take(task, 8)
    search = task.fit_info()
    # tokens of one haystack unit (500 essay words / 5 or 25 noise lines), from the size probes
    (n0, t0), (n1, t1) = search["probes"][0], max(search["probes"][1:])
    unit = task._incremental() * (t1 - t0) / (n1 - n0)
    for s in samples:
        req = task.request(s)
        n = len(tok.encode(render_request(tok, req), add_special_tokens=False))
        assert n == s.metadata["prompt_tokens"] == len(request_ids(tok, req))
        assert s.metadata["length"] == n + 128 <= length
        if s.metadata["num_haystack"] == search["num_haystack"]:
            assert length - s.metadata["length"] < unit + 16
    assert max(s.metadata["length"] for s in samples) > length - unit


def test_length_too_small_is_a_user_error(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=200)
    with pytest.raises(UserError, match="too small"):
        take(task, 1)
    with pytest.raises(UserError, match="must exceed"):
        registry.task("ruler/niah_single_1").factory(length=128)


# -- templates and requests ---------------------------------------------------------------------------

def test_singular_template_text_and_answer_prefix(registry, tok, essay_corpus):
    folder, _ = essay_corpus
    for name, typ in [("ruler/niah_single_1", "number"), ("ruler/niah_single_2", "number"),
                      ("ruler/niah_single_3", "uuid")]:
        s = take(make(registry, tok, name, length=1024, data_dir=str(folder)), 1)[0]
        q = s.metadata["query"]
        text = s.input["input"]
        assert text.startswith(SINGULAR_NUMBER.replace("number", typ))
        assert text.endswith(f"\nWhat is the special magic {typ} for {q} mentioned in the provided text?")
        assert s.input["answer_prefix"] == f" The special magic {typ} for {q} mentioned in the provided text is"
        needle = f"One of the special magic {typ}s for {q} is: {s.target[0]}."
        assert text.count(needle) == 1


def test_plural_template_for_multivalue(registry, tok, essay_corpus):
    folder, _ = essay_corpus
    s = take(make(registry, tok, "ruler/niah_multivalue", length=2048, data_dir=str(folder)), 1)[0]
    assert s.input["input"].startswith("Some special magic numbers are hidden within the following text. Make "
                                       "sure to memorize it. I will quiz you about the numbers afterwards.\n")
    assert s.input["answer_prefix"].endswith("mentioned in the provided text are")
    assert len(s.target) == 4


def test_answer_prefix_is_an_assistant_prefill_with_chat_template(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=1024)
    s = take(task, 1)[0]
    req = task.request(s)
    assert req.is_chat and [m.role for m in req.prompt] == ["user", "assistant"]
    assert req.prompt[1].content == s.input["answer_prefix"]
    rendered = render_request(tok, req)
    assert rendered.startswith("<|im_start|>user\n" + SINGULAR_NUMBER)
    assert rendered.endswith("?<|im_end|>\n<|im_start|>assistant\n" + s.input["answer_prefix"])
    assert req.params.max_tokens == 128 and req.params.temperature == 0.0 and req.params.top_p == 1.0
    # the identity is the runner's to stamp (tasks build requests with Request.new)
    from evalsuite.runner import stamp

    assert (req.task, req.sample_id, req.index) == ("", "", -1)
    req = stamp(req, task.name, s)
    assert req.task == "ruler/niah_single_1" and req.sample_id == "0" and req.index == 0


def test_raw_prompt_without_chat_template(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=1024, chat_template="false")
    s = take(task, 1)[0]
    req = task.request(s)
    assert not req.is_chat and req.use_chat_template is False
    assert req.prompt == s.input["input"] + s.input["answer_prefix"]
    assert render_request(tok, req) == req.prompt
    assert s.metadata["input_tokens"] == s.metadata["prompt_tokens"]


def test_tokenizer_added_bos_is_not_counted_but_recorded(registry, tmp_path):
    """RULER counts tokenizer.tokenize(prompt) (no BOS); the model also sees the BOS a tokenizer adds."""
    d = tmp_path / "bos"
    d.mkdir()
    spec = json.loads((TOY_TOKENIZER / "tokenizer.json").read_text())
    bos_id = next(t["id"] for t in spec["added_tokens"] if t["content"] == "<|endoftext|>")
    spec["post_processor"] = {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [bos_id],
                                                                   "tokens": ["<|endoftext|>"]}}}
    (d / "tokenizer.json").write_text(json.dumps(spec))
    (d / "tokenizer_config.json").write_text((TOY_TOKENIZER / "tokenizer_config.json").read_text())
    bos_tok = load_tokenizer(d)
    task = make(registry, bos_tok, "ruler/niah_single_1", length=1024, chat_template=False)
    s = take(task, 1)[0]
    ids = request_ids(bos_tok, task.request(s))
    assert ids[0] == bos_id and len(ids) == s.metadata["prompt_tokens"] + 1 == s.metadata["input_tokens"]


# -- metadata -----------------------------------------------------------------------------------------

def test_noise_needle_position_and_depth_are_recorded(registry, tok):
    task = make(registry, tok, "ruler/niah_single_1", length=2048)
    for s in take(task, 5):
        m = s.metadata
        lines = s.input["input"].split("\n")[1:-1]  # between the template's first and last line
        assert len(lines) == m["num_haystack"] + 1
        (pos,) = m["positions"]
        assert lines[pos].startswith("One of the special magic numbers for ")
        assert m["depths"] == [round(100 * pos / m["num_haystack"], 2)]
        assert m["haystack"] == "noise" and m["type_needle_k"] == "words" and m["type_needle_v"] == "numbers"
        assert m["max_seq_length"] == 2048 and m["tokens_to_generate"] == 128
        rendered = render_request(tok, task.request(s))
        at = rendered.find(s.target[0])
        assert m["token_position_answer"] == len(tok.encode(rendered[:at]))


def test_essay_needle_depths_are_rulers_depths(registry, tok, essay_corpus):
    folder, _ = essay_corpus
    task = make(registry, tok, "ruler/niah_multikey_1", length=2048, data_dir=str(folder))
    for s in take(task, 4):
        m = s.metadata
        assert len(m["depths"]) == 4 and m["depths"] == sorted(m["depths"])
        assert set(m["depths"]) <= set(niah.DEPTHS) and len(set(m["depths"])) == 4
        assert m["positions"] == [int(m["haystack_sentences"] * d / 100) for d in m["depths"]]
        assert s.input["input"].count("One of the special magic numbers for ") == 4


# -- scoring ------------------------------------------------------------------------------------------

def _score(samples, outputs):
    recs = [Record(sample=s, prediction=o, generation=Generation(o, "stop")) for s, o in zip(samples, outputs)]
    return StringMatchAll().score(recs)


@pytest.mark.parametrize("name", ["ruler/niah_single_1", "ruler/niah_single_3", "ruler/niah_multiquery"])
def test_gold_scores_100_and_wrong_answers_0(registry, tok, essay_corpus, name):
    folder, _ = essay_corpus
    task = make(registry, tok, name, length=2048, data_dir=str(folder))
    samples = take(task, 4)
    assert [task.gold(s) for s in samples][0].startswith(" ")
    assert _score(samples, [task.gold(s) for s in samples]).value == 100.0
    assert _score(samples, [" " + task.gold(samples[(i + 1) % 4]) for i, s in enumerate(samples)]).value == 0.0
    assert task.metrics()[0].name == "string_match_all"


# -- data and errors ----------------------------------------------------------------------------------

def test_data_file_and_data_dir_give_the_same_haystack(registry, tok, essay_corpus):
    folder, js = essay_corpus
    a = take(make(registry, tok, "ruler/niah_single_2", length=4096, data_dir=str(folder)), 3)
    b = take(make(registry, tok, "ruler/niah_single_2", length=4096, data_file=str(js)), 3)
    assert [(s.input, s.target) for s in a] == [(s.input, s.target) for s in b]
    assert a[0].input["input"].startswith(SINGULAR_NUMBER + "Essay a ")  # sorted file order
    single = take(make(registry, tok, "ruler/niah_single_2", length=1024, data_file=str(folder / "b.txt")), 1)
    assert "Essay b" in single[0].input["input"]


@needs_essays
def test_rulers_essay_folder_is_a_prefix_of_its_json(registry, tok):
    a = take(make(registry, tok, "ruler/niah_single_3", length=2048, data_dir=str(ESSAY_DIR)), 2)
    b = take(make(registry, tok, "ruler/niah_single_3", length=2048, data_file=str(ESSAY_JSON)), 2)
    assert [(s.input, s.target) for s in a] == [(s.input, s.target) for s in b]


def test_missing_or_bad_essay_data_is_a_user_error(registry, tok, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))  # the default essay source is not cached
    with pytest.raises(UserError, match="evalsuite data fetch ruler/niah_single_2.*-T data_dir="):
        make(registry, tok, "ruler/niah_single_2")
    with pytest.raises(UserError, match="does not exist"):
        make(registry, tok, "ruler/niah_single_2", data_dir=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no files"):
        make(registry, tok, "ruler/niah_single_3", data_dir=str(tmp_path / "empty"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"essays": []}')
    with pytest.raises(UserError, match="essay JSON"):
        make(registry, tok, "ruler/niah_single_2", data_file=str(bad))
    make(registry, tok, "ruler/niah_single_1")  # the noise haystack needs no data


def test_tokenizer_without_chat_template_needs_chat_template_false(registry, tmp_path):
    (tmp_path / "tokenizer.json").write_text((TOY_TOKENIZER / "tokenizer.json").read_text())
    plain = load_tokenizer(tmp_path)
    with pytest.raises(UserError, match="chat_template=false"):
        make(registry, plain, "ruler/niah_single_1")
    assert take(make(registry, plain, "ruler/niah_single_1", length=1024, chat_template=False), 1)


def test_no_tokenizer_is_a_user_error(registry):
    task = registry.task("ruler/niah_single_1").factory()
    with pytest.raises(UserError, match="--model"):
        task.prepare(TaskContext(tokenizer=None))


def test_bad_option_is_a_user_error(registry):
    with pytest.raises(UserError, match="length"):
        registry.task("ruler/niah_single_1").factory(length="-5")
    with pytest.raises(UserError, match="unknown option"):
        registry.task("ruler/niah_single_1").factory(lenght="5")


def test_describe_records_version_options_and_hashes(registry, tok, essay_corpus):
    _, js = essay_corpus
    d = make(registry, tok, "ruler/niah_single_2", length=2048, data_file=str(js)).describe()
    assert d["name"] == "ruler/niah_single_2" and d["version"] == "1"
    assert d["options"]["length"] == 2048 and d["options"]["seed"] == 42
    assert d["templates_sha256"] == hashlib.sha256(TEMPLATES_FILE.read_bytes()).hexdigest()
    assert d["haystack_data"]["sha256"] and d["haystack_data"]["kind"] == "file"
    assert d["sentence_splitter"]["nltk"] and d["key_words"]["wonderwords"]
    json.dumps(d)


# -- building blocks ----------------------------------------------------------------------------------

def test_adj_noun_words_equal_rulers_sorted_set():
    from wonderwords import random_word
    nouns = random_word._get_words_from_text_file("nounlist.txt")
    adjs = random_word._get_words_from_text_file("adjectivelist.txt")
    # every adjective that is another's prefix ("blue" / "blue-eyed"), plus neighbours and duplicates
    sub = [a for a in adjs if a.split("-")[0] in {"blue", "high", "old", "teeny", "wide", "bluest", "x"}]
    sub += adjs[:40] + adjs[:5]
    for a, n in [(sub, nouns[:300] + ["eyed-x", "pitched", "fashioned-y", "tiny"]), (adjs[:30], nouns)]:
        want = sorted(set(f"{x}-{y}" for x in a for y in n))
        got = AdjNounWords(a, n)
        assert len(got) == len(want) and list(got) == want
        r1, r2 = random.Random(3), random.Random(3)
        assert [r1.choice(got) for _ in range(50)] == [r2.choice(want) for _ in range(50)]


def test_nltk_punkt_english_split_offline():
    from evalsuite.text import english_sentence_splitter
    split = english_sentence_splitter()
    # nltk's documented example (nltk/tokenize/punkt.py module docstring)
    text = ("Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.  "
            "And sometimes sentences\ncan start with non-capitalized words.  i is a good variable\nname.")
    assert split(text) == ["Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence "
                           "boundaries.", "And sometimes sentences\ncan start with non-capitalized words.",
                           "i is a good variable\nname."]
    # nltk's own algorithm, not the package's: it keeps an ellipsis after a sentence end apart
    assert split("It was bad. ... But then it was fine.") == ["It was bad.", "...", "But then it was fine."]


def test_real_smollm2_tokenizer_with_its_chat_template(registry, essay_corpus, request):
    """The real SmolLM2 tokenizer (hf helper's fixture, when available): default system prompt counted,
    answer prefix after the assistant header, every prompt within the length."""
    try:
        tok_dir = request.getfixturevalue("smollm2_tokenizer_dir")
    except pytest.FixtureLookupError:
        pytest.skip("no smollm2_tokenizer_dir fixture")
    real = load_tokenizer(tok_dir)
    folder, _ = essay_corpus
    task = make(registry, real, "ruler/niah_single_2", length=4096, data_dir=str(folder))
    for s in take(task, 3):
        req = task.request(s)
        rendered = render_request(real, req)
        assert rendered.startswith("<|im_start|>system\n")
        assert rendered.endswith("<|im_start|>assistant\n" + s.input["answer_prefix"])
        assert len(request_ids(real, req)) == s.metadata["prompt_tokens"] <= 4096 - 128
        assert s.metadata["prompt_tokens"] > 4096 - 128 - 700  # within one 500-word unit
