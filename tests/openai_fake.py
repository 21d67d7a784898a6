"""A fake OpenAI-compatible server for the openai backend tests (fixture ``fake_openai``).

Re-exported by ``conftest.py``; test modules may also import it directly. Standard library only: the
server listens on 127.0.0.1, port 0, in a thread, and every wait in it is bounded by a stop event.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeReply:
    """What the fake server answers to one call: status, JSON (or raw bytes/str) body, headers, delay."""

    def __init__(self, status: int = 200, body=None, headers: dict | None = None, delay: float = 0.0):
        self.status, self.body, self.headers, self.delay = status, body, dict(headers or {}), delay


class FakeCall:
    """One HTTP request the fake server saw (headers with lower-case names, JSON body parsed)."""

    def __init__(self, method: str, path: str, headers: dict, body):
        # the query string is kept apart so that routes match whatever parameters a base_url carries
        path, _, self.query = path.partition("?")
        self.method, self.path, self.headers, self.body = method, path, headers, body

    @property
    def prompt_text(self) -> str:
        """The last message's text (chat) or the prompt (completions), to key scripted behaviour on."""
        b = self.body or {}
        if "messages" in b:
            c = b["messages"][-1]["content"]
            return c if isinstance(c, str) else "".join(p.get("text", "") for p in c if p.get("type") == "text")
        return b.get("prompt") if isinstance(b.get("prompt"), str) else json.dumps(b.get("prompt"))


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 (port 0) in a thread, answering from a script.

    ``responder(call) -> FakeReply | None`` decides each answer; None gives the default: a valid
    completion whose text is ``echo:<prompt_text>``. ``GET /v1/models`` lists ``models``. Delays wait
    on a stop event, so shutting the server down never waits out a "hanging" answer.
    """

    def __init__(self, responder=None, models=("test-model",)):
        self.responder = responder
        self.models = list(models)
        self.calls: list[FakeCall] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            timeout = 5  # an idle keep-alive connection frees its thread after this
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                call = FakeCall(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.calls.append(call)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    reply = (fake.responder(call) if fake.responder else None) or fake.default_reply(call)
                    if reply.delay:
                        fake.stopping.wait(reply.delay)
                    payload = reply.body
                    if not isinstance(payload, (bytes, str)):
                        payload = json.dumps(payload)
                    data = payload.encode() if isinstance(payload, str) else payload
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="fake-openai", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def default_reply(self, call: FakeCall) -> FakeReply:
        if call.method == "GET" and call.path.endswith("/models"):
            return FakeReply(body={"object": "list", "data": [
                {"id": m, "object": "model", "created": int(time.time()), "owned_by": "fake",
                 "root": m, "max_model_len": 4096} for m in self.models]})
        text = f"echo:{call.prompt_text}"
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if call.path.endswith("/chat/completions"):
            return FakeReply(body={"object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        if call.path.endswith("/completions"):
            return FakeReply(body={"object": "text_completion", "usage": usage, "choices": [
                {"index": 0, "text": text, "finish_reason": "stop"}]})
        return FakeReply(status=404, body={"error": {"message": f"no route {call.path}"}})

    def posts(self) -> list[FakeCall]:
        with self.lock:
            return [c for c in self.calls if c.method == "POST"]

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake_openai(monkeypatch):
    """Factory: ``fake_openai(responder=None, models=("test-model",)) -> FakeOpenAIServer``, shut down
    after the test. Proxy and OPENAI_* variables are cleared so requests go straight to 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    servers: list[FakeOpenAIServer] = []

    def start(responder=None, models=("test-model",)) -> FakeOpenAIServer:
        s = FakeOpenAIServer(responder, models)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
