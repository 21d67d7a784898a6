"""Issue 18: leaderboard pages publish nothing local, and runs of scripted backends are labelled as such and
kept out of the rankings by default (partial runs: test_run_identity.py)."""

from __future__ import annotations

import json
import re

from evalsuite.leaderboard.local_paths import publishable, publishable_text


def test_local_paths_are_rewritten_and_urls_kept():
    roots = [("/home/u/.cache/evalsuite", "<evalsuite cache>"), ("/home/u/.cache/huggingface", "<hf cache>")]
    cases = {
        "hf:/home/u/.cache/evalsuite/models/smollm2-q4@fp-1:float32": "hf:<evalsuite cache>/models/smollm2-q4@fp-1:float32",
        "/home/u/.cache/huggingface/hub/models--x/snapshots/ab": "<hf cache>/hub/models--x/snapshots/ab",
        "data_dir=/home/u/RULER/scripts/data/json": "data_dir=<local>/json",
        "/tmp/pytest-of-u/pytest-1/answers.jsonl": "<local>/answers.jsonl",
        "see ~/private/notes.txt": "see <local>/notes.txt",
        "file:///srv/images/a.png": "file://<local>/a.png",
        "http://127.0.0.1:8000/v1": "http://127.0.0.1:8000/v1",
        "HTTP 400 from /chat/completions: too long": "HTTP 400 from /chat/completions: too long",
        "2026/01/02 and 3/4": "2026/01/02 and 3/4",
    }
    for raw, want in cases.items():
        assert publishable_text(raw, roots) == want, raw
    doc = publishable({"command": ["evalsuite", "run", "--model", "/srv/models/Qwen2.5-7B"], "n": 3,
                       "nested": [{"path": "/data/x/y.json", "sha256": "ab"}]}, roots)
    assert doc == {"command": ["evalsuite", "run", "--model", "<local>/Qwen2.5-7B"], "n": 3,
                   "nested": [{"path": "<local>/y.json", "sha256": "ab"}]}


def test_run_pages_carry_no_local_path_and_scripted_runs_are_labelled_and_unranked(cli, tmp_path, fake_openai,
                                                                                  word_tokenizer_dir):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"EVALSUITE_CACHE": str(cache)}
    answers = cache / "answers.jsonl"
    answers.write_text("\n".join(json.dumps({"task": "toy/upper", "index": i, "output": w})
                                 for i, w in enumerate(["ALPHA", "BETA", "GAMMA", "DELTA"])) + "\n")
    server = fake_openai()
    assert cli("run", "--tasks", "toy/upper", "--backend", "openai", "--model", "test-model", "-B",
               f"base_url={server.url}", "--run-id", "served", env=env).returncode == 0
    assert cli("run", "--tasks", "toy/upper", "--backend", "replay", "-B", f"file={answers}", "--model",
               str(word_tokenizer_dir), "--run-id", "replayed", env=env).returncode == 0
    assert cli("run", "--tasks", "toy/upper", "--backend", "gold", "--run-id", "golden", env=env).returncode == 0

    site = tmp_path / "site"
    r = cli("leaderboard", "build", "results", "-o", str(site), env=env)
    assert r.returncode == 0, r.stderr
    assert "2 not ranked (partial or scripted)" in r.stdout
    index = (site / "index.html").read_text()
    overview, _, unranked = index.partition('id="unranked"')
    assert 'href="runs/served.html"' in overview
    for key in ("replayed", "golden"):
        assert f'href="runs/{key}.html"' not in overview and f'href="runs/{key}.html"' in unranked
    assert "replay (scripted backend)" in unranked and "gold (scripted backend)" in unranked
    assert word_tokenizer_dir.name not in index  # a tokenizer folder is not a model name
    replay_page = (site / "runs" / "replayed.html").read_text()
    assert "<evalsuite cache>/answers.jsonl".replace("<", "&lt;").replace(">", "&gt;") in replay_page
    assert 'class="badge scripted"' in replay_page

    from leaderboard_site import site_texts

    texts = site_texts(site)  # every page, and the sample data decoded
    assert any(rel.endswith(".js") and "ALPHA" in t for rel, t in texts.items())
    leaks = {str(tmp_path), str(cache), str(word_tokenizer_dir), "/tmp/pytest-of"}
    for rel, text in texts.items():
        for leak in leaks:
            assert leak not in text, (rel, leak)
    assert not re.search(r"/root/|/home/\w", "".join(texts.values()))

    # ranked on request
    r = cli("leaderboard", "build", "results", "-o", str(site), "--include-scripted", env=env)
    overview = (site / "index.html").read_text().partition('id="unranked"')[0]
    assert all(f'href="runs/{k}.html"' in overview for k in ("served", "replayed", "golden"))
