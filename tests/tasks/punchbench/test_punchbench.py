"""PunchBench: loader validation, gold runs, SC-CoQ chains and resume, caption-only ablation, image
parts reaching an OpenAI-compatible server, answer parsing. The fixture data is ours (schema assumed,
see tasks/punchbench/README.md), built with locally generated PNG images."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from evalsuite.backends import BaseBackend
from evalsuite.errors import UserError
from evalsuite.multimodal import image_parts, image_sha256, resolve_image
from evalsuite.registry import default_registry
from evalsuite.runner import RunConfig, run
from evalsuite.store import ResultsStore
from evalsuite.types import Generation
from punchbench_fixture import FORMAT_FILES, build

from evalsuite.tasks.punchbench._parse import parse_letter, parse_yes_no  # noqa: E402

CLOSED = [f for f in FORMAT_FILES if f != "reasoning_generation"]


@pytest.fixture
def data(tmp_path) -> Path:
    return build(tmp_path / "pb")


def _metrics(out_dir: Path, task: str) -> dict:
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    return {m["name"]: m for m in json.loads((run_dir / task / "scores.json").read_text())["metrics"]}


def test_gold_reaches_100_on_every_closed_format_and_judge_scores_generation(cli, data, tmp_path):
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text("".join(json.dumps({"sample_id": f"p{k}/explanation", "output": "yes" if k else "no"}) + "\n"
                                for k in range(4)))
    r = cli("run", "--tasks", "punchbench", "--backend", "gold", "-T", f"data_dir={data}", "--output", "out",
            "--judge-backend", "replay", "-J", f"file={verdicts}")
    assert r.returncode == 0, r.stderr
    for f in CLOSED:
        for v in ("original", "synonymous", "antonymous"):
            ms = _metrics(tmp_path / "out", f"punchbench/{f}/{v}")
            assert ms["accuracy"]["value"] == 100.0 and ms["parse_failure_rate"]["value"] == 0.0, (f, v)
    gen = _metrics(tmp_path / "out", "punchbench/reasoning_generation/original")["judged_accuracy"]
    assert gen["value"] == 75.0  # the replayed judge said no for p0
    assert "judge:replay" in gen["signature"]


def test_malformed_records_give_one_clear_error_and_field_map_fixes_renames(cli, data, tmp_path):
    path = data / "dev0610" / "Perception" / "Yes_No.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    del rows[1]["answer"]
    del rows[4]["image"]
    rows[5]["caption_type"] = "ironic"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = cli("run", "--tasks", "punchbench/perception_yes_no/original", "--backend", "gold", "-T", f"data_dir={data}")
    assert r.returncode == 2
    err = r.stderr
    assert len(err.strip().splitlines()) == 1
    assert "missing field 'answer'" in err and "record(s) 2" in err
    assert "missing field 'image'" in err and "record(s) 5" in err
    assert "record 6: caption_type 'ironic'" in err
    assert "field_map" in err and "Traceback" not in err

    # a release that names fields differently runs once mapped
    for f, rel in FORMAT_FILES.items():
        p = data / "dev0610" / rel
        good = build(tmp_path / "fresh") / "dev0610" / rel
        rows = [json.loads(x) for x in good.read_text().splitlines()]
        p.write_text("".join(json.dumps({("img_path" if k == "image" else "label" if k == "answer" else k): v
                                         for k, v in row.items()}) + "\n" for row in rows))
    r = cli("run", "--tasks", "punchbench/perception_yes_no/original", "--backend", "gold", "-T", f"data_dir={data}")
    assert r.returncode != 0 and "missing field 'image'" in r.stderr
    r = cli("run", "--tasks", "punchbench/perception_yes_no/original", "--backend", "gold", "-T", f"data_dir={data}",
            "-T", "field_map=image=img_path,answer=label", "--output", "mapped")
    assert r.returncode == 0, r.stderr


class Recorder(BaseBackend):
    """Answers each turn with a numbered text and records every request."""

    def __init__(self):
        self.id = "recorder"
        self.requests = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.requests.append(r)
            turn = sum(1 for m in r.prompt if m.role == "user")
            out.append(Generation(f"Answer: {'yes' if turn == 1 else 'A'} (reply {r.sample_id}.{turn})", "stop"))
        return out


def _cfg(tmp_path, task, data, **opts):
    return RunConfig(tasks=[task], backend="recorder", run_id="r", output=str(tmp_path / "res"), progress=False,
                     task_options={"data_dir": str(data), **opts})


def test_sc_coq_final_turn_holds_earlier_questions_and_own_answers(tmp_path, data):
    reg = default_registry()
    be = Recorder()
    task = "punchbench/perception_multi_option/original"
    out = run(_cfg(tmp_path, task, data, prompting="sc_coq_intra"), registry=reg, backend=be)
    assert out.n_generated == 12  # 4 samples x 3 turns
    final = [r for r in be.requests if r.sample_id == "p1" and len(r.prompt) == 5]
    assert len(final) == 1
    msgs = final[0].prompt
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert "Does this image-caption pair contain a punchline?" in msgs[0].text
    assert "Which caption forms a punchline with the image?" in msgs[2].text
    assert "What is the punchline?" in msgs[4].text and "D. Option D for pair 1" in msgs[4].text
    assert msgs[1].text == "Answer: yes (reply p1.1)" and msgs[3].text == "Answer: A (reply p1.2)"
    imgs = image_parts(msgs)
    assert len(imgs) == 1 and imgs[0] is msgs[0].content[0]  # the image is sent once, in turn 1
    assert Path(imgs[0].image) == (data / "images" / "pair1.png").resolve()
    # scored from the last turn: the recorder always says A; p0's answer is A
    ms = {m["name"]: m["value"] for m in out.scores[task]["metrics"]} if "metrics" in out.scores[task] else None
    assert out.scores[task]["value"] == 25.0, (out.scores[task], ms)

    # inter-task chain: the reasoning yes/no question comes before the perception yes/no target
    be2 = Recorder()
    run(RunConfig(tasks=["punchbench/perception_yes_no/original"], backend="recorder", run_id="i",
                  output=str(tmp_path / "res"), progress=False,
                  task_options={"data_dir": str(data), "prompting": "sc_coq_inter"}), registry=reg, backend=be2)
    last = [r for r in be2.requests if len(r.prompt) == 3][0].prompt
    assert "Does this explanation fit" in last[0].text and "contain a punchline" in last[2].text


def test_sc_coq_resume_after_kill_does_not_reask_finished_turns(tmp_path, data):
    class Kill(Exception):
        pass

    seen = []

    def kill_after_seven(item, gen):
        seen.append(item)
        if len(seen) == 7:
            raise Kill()

    reg = default_registry()
    task = "punchbench/reasoning_generation/original"
    with pytest.raises(Kill):
        run(_cfg(tmp_path, task, data, prompting="sc_coq_intra"), registry=reg, backend=Recorder(),
            on_generation=kill_after_seven)
    done = {(r["sample_id"], r["stage"]) for r in ResultsStore(tmp_path / "res", "r").rows(task)}
    assert len(done) == 7
    be = Recorder()
    out = run(_cfg(tmp_path, task, data, prompting="sc_coq_intra"), registry=reg, backend=be)
    asked = [(r.sample_id, sum(1 for m in r.prompt if m.role == "user") - 1) for r in be.requests]
    assert not set(asked) & done  # no finished turn asked again
    assert len(asked) == 12 - 7 and out.n_reused == 7
    rows = list(ResultsStore(tmp_path / "res", "r").rows(task))
    assert len({r["key"] for r in rows}) == len(rows) == 12


def test_caption_only_ablation_runs_on_a_text_model(tmp_path, data, tiny_llama_dir):
    from evalsuite.backends.hf import HFBackend

    be = HFBackend(str(tiny_llama_dir), threads="1")
    reg = default_registry()
    task = "punchbench/perception_yes_no/original"
    # with images, a text-only model fails each request with a clear error (and the run says so)
    out = run(_cfg(tmp_path, task, data, limit="2", max_tokens="2"), registry=reg, backend=be)
    assert out.scores[task]["n_errors"] == 2
    rows = list(ResultsStore(tmp_path / "res", "r").rows(task))
    assert all("image inputs are not supported by this text-only backend" in r["generation"]["error"] for r in rows)
    # the caption-only ablation sends text only, and the same model answers it
    out = run(RunConfig(tasks=[task], backend="hf", run_id="cap", output=str(tmp_path / "res"), progress=False,
                        task_options={"data_dir": str(data), "limit": "2", "max_tokens": "2",
                                      "caption_only": "true"}), registry=reg, backend=be)
    s = out.scores[task]
    assert s["n_errors"] == 0 and s["n"] == 2
    rows = list(ResultsStore(tmp_path / "res", "cap").rows(task))
    assert all(r["generation"]["finish_reason"] != "error" for r in rows)
    assert all(r["sample"]["metadata"]["caption_only"] is True for r in rows)


def test_openai_server_receives_the_image_once_as_a_data_url(tmp_path, data, fake_openai):
    from evalsuite.backends.openai import OpenAIBackend

    server = fake_openai()
    be = OpenAIBackend(model="test-model", base_url=server.url)
    task = "punchbench/perception_matching/synonymous"
    cfg = _cfg(tmp_path, task, data, prompting="sc_coq_intra", limit="1")
    cfg.log_prompts = True
    run(cfg, registry=default_registry(), backend=be)
    posts = server.posts()
    assert len(posts) == 2
    png = (data / "images" / "pair0.png").read_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    first, second = (p.body["messages"] for p in posts)
    assert first[0]["content"][0] == {"type": "image_url", "image_url": {"url": url}}
    assert first[0]["content"][1]["type"] == "text" and "Caption: My eating plan" in first[0]["content"][1]["text"]
    assert second[0] == first[0] and second[1]["role"] == "assistant"
    assert isinstance(second[2]["content"], str) and "Which caption forms a punchline" in second[2]["content"]
    assert json.dumps(second).count('"type": "image_url"') == 1
    assert posts[0].body["max_tokens"] == 16
    # the results logs keep the image's hash and reference, never its bytes
    logs = {p.name: p.read_text() for p in (tmp_path / "res" / "r" / task).glob("*.jsonl")}
    assert len(logs) >= 2, sorted(logs)  # samples + logged prompts
    for text in logs.values():
        assert base64.b64encode(png).decode()[:40] not in text
    assert image_sha256(str(data / "images" / "pair0.png")) in logs["samples.jsonl"]
    assert any(str((data / "images" / "pair0.png").resolve()) in t for n, t in logs.items() if n != "samples.jsonl")


def test_parsers():
    assert parse_yes_no("Yes, it does.") == "yes" and parse_yes_no("No.") == "no"
    assert parse_yes_no("I think... Answer: no") == "no" and parse_yes_no("eyes nope") == ""
    assert parse_yes_no("Step 1: yes the cake talks. Answer: no") == "no"
    assert parse_letter("(C) the cake", 4) == "C" and parse_letter("B.", 4) == "B" and parse_letter("d", 4) == "D"
    assert parse_letter("The answer is A", 4) == "A" and parse_letter("Answer: (b)", 2) == "B"
    assert parse_letter("The second caption", 2) == "B" and parse_letter("Caption 1", 2) == "A"
    assert parse_letter("Answer: B because the cake", 4) == "B" and parse_letter("A dog barks", 4) == ""
    assert parse_letter("C", 2) == "" and parse_letter("no idea", 4) == ""


def test_image_helpers(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\nabc")
    import hashlib
    want = hashlib.sha256(p.read_bytes()).hexdigest()
    assert image_sha256(str(p)) == want
    assert image_sha256("data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()) == want
    assert image_sha256("https://example.org/a.png") is None
    assert resolve_image("x.png", tmp_path) == str(p.resolve())
    assert resolve_image("https://example.org/a.png", tmp_path) == "https://example.org/a.png"
    with pytest.raises(UserError, match="not found"):
        resolve_image("missing.png", tmp_path)


def test_few_shot_cot_and_missing_chain_records(tmp_path, data):
    reg = default_registry()
    cls = reg.task("punchbench/reasoning_matching/antonymous").factory
    t = cls(data_dir=str(data), prompting="few_shot", n_shots="2")
    samples = list(t.samples())
    msgs = t.request(samples[1]).prompt
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert len(image_parts(msgs)) == 3  # each shot with its own image, then the sample's
    assert "Explanation one for 1" in msgs[4].text and "for 1" not in msgs[0].text + msgs[2].text
    assert msgs[1].text == "Answer: A" and t.extract(samples[1], Generation("Answer: B", "stop")) == "B"
    cot = cls(data_dir=str(data), prompting="cot")
    s0 = list(cot.samples())[0]
    req = cot.request(s0)
    assert req.prompt[-1].text.endswith('last line as "Answer: <answer>".') and req.params.max_tokens == 512
    # SC-CoQ joins formats by id: a pair missing from an earlier format is named in the error
    path = data / "dev0610" / "Reasoning" / "Yes_No.jsonl"
    path.write_text("".join(x + "\n" for x in path.read_text().splitlines() if '"p3"' not in x))
    chain = cls(data_dir=str(data), prompting="sc_coq_intra")
    with pytest.raises(UserError, match="reasoning_yes_no record with id 'p3'"):
        list(chain.samples())
