"""Secrets never reach a results folder or a leaderboard site, by any route (issue 16 §2).

The end-to-end test puts a different secret into each route a user can take: URL userinfo in
``-B base_url``, a query parameter in the same URL, a credential field of ``-B extra_body``, the API key
variable (echoed back by the server's 400 bodies whole, upper-cased, lower-cased and in part), and a judge
URL with userinfo. Then every file of the run folder and of a leaderboard site built from it is searched
for each secret in any letter case, and for any 10-character piece of the API key.
"""

from __future__ import annotations

import json
import secrets as _secrets
import threading
from pathlib import Path

import pytest

from evalsuite import redact
from evalsuite.redact import is_secret_name, redact_argv, redact_obj, redact_text
from openai_fake import FakeReply


@pytest.fixture(autouse=True)
def _own_secret_registry(monkeypatch):
    """Secrets registered by earlier tests in this process (lm-eval, openai) must not decide these."""
    monkeypatch.setattr(redact, "_REGISTERED", {})


def _hits(root: Path, needles: dict[str, str]) -> list[str]:
    from leaderboard_site import site_texts  # a site's sample data is compressed: searched decoded

    found = []
    texts = site_texts(root) if (root / ".evalsuite-site").is_file() else {
        f.relative_to(root).as_posix(): f.read_bytes().decode("utf-8", errors="replace")
        for f in sorted(root.rglob("*")) if f.is_file()}
    for rel, data in texts.items():
        low = data.lower()
        for what, s in needles.items():
            if s.lower() in low:
                found.append(f"{what} in {rel}")
    return found


def test_a_secret_through_every_route_reaches_no_file(cli, tmp_path, fake_openai):
    tok = lambda p: p + _secrets.token_hex(12)  # noqa: E731 - no key shape: only the mechanism can catch them
    key, userinfo, query, body, judge = tok("Kq"), tok("Pw"), tok("Qs"), tok("Eb"), tok("Jd")
    partial_prefix = key[:12]
    partial_suffix = key[-10:]
    echo = [f"Incorrect API key provided: {key}", f"INVALID KEY {key.upper()}", f"invalid key {key.lower()}",
            f"Incorrect API key provided: {partial_prefix}**********", f"key ending in ...{partial_suffix} was revoked",
            f"bad request body: {{'api_key': '{body}'}} with key={key}"]
    lock = threading.Lock()
    n_post = [0]

    def responder(call):
        if call.method != "POST":
            return None
        with lock:
            i = n_post[0]
            n_post[0] += 1
        if i < len(echo):  # the first six requests: a 400 echoing the key (and the body) back
            return FakeReply(status=400, body={"error": {"message": echo[i], "type": "auth"}})
        return None

    server = fake_openai(responder)
    host = server.url.split("://", 1)[1]
    base_url = f"http://admin:{userinfo}@{host}?api_key={query}"
    extra = json.dumps({"api_key": body, "top_k": 1})
    r = cli("run", "--tasks", "toy/addition", "-T", "n=12", "--backend", "openai", "--model", "test-model",
            "-B", f"base_url={base_url}", "-B", f"extra_body={extra}", "-B", "max_retries=0",
            "--judge-backend", "openai", "--judge-model", "j", "-J", f"base_url=http://u:{judge}@{host}",
            "--run-id", "leak", "--no-progress", env={"OPENAI_API_KEY": key})
    assert r.returncode == 3, r.stderr[-3000:]  # partial: six requests failed (the 400s above)
    # every request reached the server with the key, the query and the extra field intact
    posts = server.posts()
    assert len(posts) == 12 and all(c.headers["authorization"] == f"Bearer {key}" for c in posts)
    assert all(c.body["api_key"] == body and c.query == f"api_key={query}" for c in posts)
    run_dir = tmp_path / "results" / "leak"
    rows = [json.loads(x) for x in (run_dir / "toy/addition/samples.jsonl").read_text().splitlines()]
    errors = [x["generation"]["error"] for x in rows if x["generation"]["error"]]
    assert len(errors) == 6 and all("HTTP 400" in e and "***" in e for e in errors), errors

    lb = cli("leaderboard", "build", str(run_dir), "-o", str(tmp_path / "site"))
    assert lb.returncode == 0, lb.stderr[-2000:]
    needles = {"api key": key, "userinfo": userinfo, "query": query, "extra_body": body, "judge": judge}
    needles.update({f"api key piece {i}": key[i:i + 10] for i in range(0, len(key) - 9)})
    assert _hits(run_dir, needles) == []
    assert _hits(tmp_path / "site", needles) == []
    from leaderboard_site import site_texts

    # the search saw the sample data (the failed requests' errors, redacted), not only compressed bytes
    assert any("HTTP 400" in t and "***" in t for rel, t in site_texts(tmp_path / "site").items() if rel.endswith(".js"))
    for out in (r.stdout, r.stderr, lb.stdout, lb.stderr):
        assert not any(s.lower() in out.lower() for s in needles.values())
    # what was recorded is still useful: the redacted URL and options, the command line, the variable name
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["backend"]["describe"]["base_url"] == f"http://{host}?api_key=***"
    assert man["backend"]["describe"]["extra_body"] == {"api_key": "***", "top_k": 1}
    assert man["backend"]["describe"]["api_key_env"] == "OPENAI_API_KEY"
    assert f"base_url=http://***@{host}?api_key=***" in man["invocations"][0]["command"]
    assert man["judge"]["options"]["base_url"] == f"http://***@{host}"


def test_a_secret_in_a_bad_option_is_not_echoed_by_the_one_line_error(cli, tmp_path):
    pw = "Zx" + _secrets.token_hex(12)
    r = cli("run", "--tasks", "toy/addition", "-T", "n=2", "--backend", "openai", "--model", "m",
            "-B", f"base_url=ftp://user:{pw}@127.0.0.1:9/v1", "--run-id", "x", "--no-progress")
    assert r.returncode == 2 and "base_url must be an http(s) URL" in r.stderr and "Traceback" not in r.stderr
    assert pw.lower() not in (r.stdout + r.stderr).lower()


# -- the redaction function itself ------------------------------------------------------------------

def test_names_that_hold_credentials():
    for name in ("api_key", "apiKey", "x-api-key", "auth_token", "OPENAI_API_KEY", "HF_TOKEN", "password",
                 "Authorization", "client_secret", "headers", "key", "AWS_SECRET_ACCESS_KEY", "access_token",
                 "authtoken", "xapikey", "SECRETKEY", "oauth_token"):
        assert is_secret_name(name), name
    for name in ("api_key_env", "max_tokens", "tokenizer", "add_bos_token", "stop_token_ids", "keys", "PWD",
                 "SSH_AUTH_SOCK", "api_key_set", "author", "signature", "base_url", "prompt_tokens",
                 "token_budget", "think_end_token", "HF_TOKEN_PATH"):
        assert not is_secret_name(name), name


@pytest.mark.parametrize("text, hidden", [
    ("http://user:Pa55word@host:8/v1", "Pa55word"),
    ("https://h/v1?api-version=2&api_key=QQQQQQQQ&x=1", "QQQQQQQQ"),
    ("base_url=http://h/v1?key=AAAAAAAAA", "AAAAAAAAA"),
    ('extra_body={"api_key": "zzzzzzzzz", "top_k": 1}', "zzzzzzzzz"),
    ("{'password': 'hunter2222'}", "hunter2222"),
    ('{\\"client_secret\\": \\"escapedsecret\\"}', "escapedsecret"),
    ("x-api-key: headerval99", "headerval99"),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ("model_args=pretrained=m,api_key=literal77,base_url=x", "literal77"),
    ("key sk-proj-ABCDEFGHIJKLMNOPQRSTUV here", "ABCDEFGHIJKLMNOPQRSTUV"),
    ("token hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "abcdefghijklmnopqrstuvwxyz"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
    ("password=12345678", "12345678"),
    ('"token": 987654321', "987654321"),
])
def test_redact_text_routes(text, hidden):
    out = redact_text(text)
    assert hidden not in out and "***" in out, out


def test_registered_and_environment_secrets_in_any_case_and_in_part(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "Envsecret-0123456789")
    monkeypatch.setenv("MY_KEY_VAR", "Reg1stered-abcdefgh")
    redact.register_env_refs({"api_key_env": "MY_KEY_VAR"})
    for s in ("Envsecret-0123456789", "Reg1stered-abcdefgh"):
        for form in (s, s.upper(), s.lower(), s[:8], s[-9:], f"<{s[3:14]}>"):
            out = redact_text(f"server said: {form} is wrong")
            assert form not in out and "***" in out, (form, out)
    # ordinary text is left alone
    assert redact_text("no regression, 12 samples, http://127.0.0.1:8000/v1") == \
        "no regression, 12 samples, http://127.0.0.1:8000/v1"


def test_redact_obj_and_argv():
    obj = {"extra_body": {"api_key": "sekrit-value", "top_k": 1}, "api_key_env": "OPENAI_API_KEY",
           "api_key_set": True, "auth_token": "env:MY_TOKEN", "urls": ("http://a:b@h/",)}
    assert redact_obj(obj) == {"extra_body": {"api_key": "***", "top_k": 1}, "api_key_env": "OPENAI_API_KEY",
                               "api_key_set": True, "auth_token": "env:MY_TOKEN", "urls": ["http://***@h/"]}
    assert redact_argv(["evalsuite", "run", "--api-key", "XYZXYZ", "--token=abc", "-B",
                        "base_url=http://u:p@h/v1?key=AAAA"]) == \
        ["evalsuite", "run", "--api-key", "***", "--token=***", "-B", "base_url=http://***@h/v1?key=***"]
