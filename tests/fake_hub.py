"""A local fake of the Hugging Face Hub and of raw.githubusercontent.com, on 127.0.0.1, for the data tests.

It answers the requests ``huggingface_hub.hf_hub_download`` really makes:

* ``HEAD /<type>s/<repo>/resolve/<revision>/<path>``: for a regular (git) file ``200`` with ``ETag`` (the git
  blob id), ``X-Repo-Commit`` and ``Content-Length``; for an LFS file a ``302`` to a CDN URL on another origin
  (``localhost`` instead of ``127.0.0.1``, so the client treats it as off-Hub as it does the real CDN) with
  ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``X-Repo-Commit``;
* ``GET`` of the same URL (the content, or the same redirect) and of the CDN URL;
* an unknown revision or path: ``404`` with ``X-Error-Code: RevisionNotFound`` / ``EntryNotFound``.

and ``GET /gh/<owner>/<name>/<commit>/<path>`` as raw.githubusercontent.com does
(``EVALSUITE_GITHUB_ENDPOINT=<url>/gh``). Every request is logged in ``requests``.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self) -> None:
        self.hf: dict[tuple[str, str, str, str], tuple[bytes, bool]] = {}
        self.gh: dict[tuple[str, str, str], bytes] = {}
        self.cdn: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.server: ThreadingHTTPServer | None = None

    # -- content -------------------------------------------------------------------------------------
    def add_hf(self, repo: str, revision: str, path: str, data: bytes, *, lfs: bool | None = None,
               repo_type: str = "dataset") -> None:
        lfs = len(data) > 1024 or path.endswith((".zip", ".parquet")) if lfs is None else lfs
        self.hf[(repo_type, repo, revision, path)] = (data, lfs)
        if lfs:
            self.cdn[hashlib.sha256(data).hexdigest()] = data

    def add_github(self, repo: str, revision: str, path: str, data: bytes) -> None:
        self.gh[(repo, revision, path)] = data

    # -- server --------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def github_endpoint(self) -> str:
        return f"{self.endpoint}/gh"

    def env(self) -> dict[str, str]:
        return {"HF_ENDPOINT": self.endpoint, "EVALSUITE_GITHUB_ENDPOINT": self.github_endpoint,
                "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DISABLE_TELEMETRY": "1"}

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, body=False)

            def do_GET(self) -> None:
                hub._handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _send(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data) if status == 200 else 0))
        h.end_headers()
        if body and status == 200:
            h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        url = urlparse(h.path)
        path = unquote(url.path)
        self.requests.append((h.command, path))
        parts = path.strip("/").split("/")
        if parts[0] == "cdn" and len(parts) == 2 and parts[1] in self.cdn:
            self._send(h, 200, {"Content-Type": "application/octet-stream"}, self.cdn[parts[1]], body)
            return
        if parts[0] == "gh" and len(parts) >= 5:
            repo, rev, rel = "/".join(parts[1:3]), parts[3], "/".join(parts[4:])
            data = self.gh.get((repo, rev, rel))
            if data is None:
                self._send(h, 404, {}, b"", body)
            else:
                self._send(h, 200, {"Content-Type": "text/plain; charset=utf-8"}, data, body)
            return
        # /<type>s/<owner>/<name>/resolve/<revision>/<path...>
        if len(parts) >= 6 and parts[0] in ("datasets", "models", "spaces") and parts[3] == "resolve":
            repo_type = parts[0][:-1]
            repo, rev, rel = "/".join(parts[1:3]), parts[4], "/".join(parts[5:])
            known_rev = any(k[0] == repo_type and k[1] == repo and k[2] == rev for k in self.hf)
            if not known_rev:
                self._send(h, 404, {"X-Error-Code": "RevisionNotFound",
                                    "X-Error-Message": f"Invalid rev id: {rev}"}, b"", body)
                return
            entry = self.hf.get((repo_type, repo, rev, rel))
            if entry is None:
                self._send(h, 404, {"X-Error-Code": "EntryNotFound",
                                    "X-Error-Message": f"{rel} does not exist on {rev}", "X-Repo-Commit": rev},
                           b"", body)
                return
            data, lfs = entry
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            if lfs:
                sha = hashlib.sha256(data).hexdigest()
                self._send(h, 302, {"Location": f"http://localhost:{self.port}/cdn/{sha}", "ETag": f'"{blob}"',
                                    "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                                    "X-Repo-Commit": rev}, b"", body)
            else:
                self._send(h, 200, {"ETag": f'"{blob}"', "X-Repo-Commit": rev,
                                    "Content-Type": "application/octet-stream"}, data, body)
            return
        self._send(h, 404, {}, b"", body)
