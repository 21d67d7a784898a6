"""Peak memory of the openai backend against a server that answers 200 with an endless body (issue 16 §5).

Each case runs in its own subprocess (so ru_maxrss is that case's peak): the default response cap
(64 MiB), a small cap (4 MiB), and the cap effectively off (what evalsuite did before the cap: read
until the overall timeout). Every case has a 3 s overall timeout and no retries.

    python benchmarks/hostile_server_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CASE = r"""
import json, resource, sys, time
from evalsuite.backends.openai import OpenAIBackend
from evalsuite.types import GenParams, Request
url, cap = sys.argv[1], sys.argv[2]
b = OpenAIBackend(model="m", base_url=url, max_retries="0", timeout="3", max_response_bytes=cap)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
(g,) = b.generate([Request(task="t", sample_id="s", index=0, prompt="hi", params=GenParams(max_tokens=4))])
print(json.dumps({"seconds": round(time.perf_counter() - t0, 2), "error": g.error[:90],
                  "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)}))
"""


class _Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        data = json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()
        chunk = b"x" * (1 << 20)
        try:
            while True:
                self.wfile.write(chunk)
        except OSError:
            pass


def main() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    for name, cap in (("default cap (64 MiB)", "67108864"), ("cap 4 MiB", "4194304"), ("no cap", str(10 ** 15))):
        out = subprocess.run([sys.executable, "-c", CASE, url, cap], capture_output=True, text=True, timeout=120)
        print(f"{name:22s} {out.stdout.strip() or out.stderr[-300:]}")
    httpd.shutdown()


if __name__ == "__main__":
    main()
