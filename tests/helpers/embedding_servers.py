"""A fault-injecting HTTP proxy (a real TCP server on 127.0.0.1) in front of a real
embedding server (scripts/llama_server.py). It answers with the errors real servers give:
429/5xx bursts, 401, wrong dimensions, NaN, missing vectors, slowness, or another model
behind the same URL."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    """Forwards /v1/* to ``upstream`` and breaks answers as told:

    * ``fail(n, status)``: the next n embedding requests get HTTP ``status``;
    * ``mode``: None, "nan", "dims" (vectors cut short), "short" (one vector missing),
      "per-token" (a list of vectors per text), "garbage" (not JSON);
    * ``delay``: seconds to wait before answering;
    * ``upstream``: may be switched at any time (another model behind the same URL), or
      by ``switch_after = (n, url)`` once n embedding requests have been answered;
    * ``require_key``: answer 401 unless this bearer key is sent.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode: str | None = None
        self.delay = 0.0
        self.require_key: str | None = None
        self.switch_after: tuple[int, str] | None = None
        self.requests = 0  # embedding requests answered
        self.inputs = 0  # texts embedded through this proxy
        self.batches: list[list[str]] = []  # the texts of each embedding request
        self.in_flight = self.most_in_flight = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                proxy._forward(self, None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._forward(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, n: int, status: int) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _reply(self, handler, status: int, payload: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _forward(self, handler, body: bytes | None) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self._answer(handler, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, handler, body: bytes | None) -> None:
        time.sleep(self.delay)
        path = handler.path.removeprefix("/v1")
        if self.require_key and handler.headers.get("Authorization") != (
            f"Bearer {self.require_key}"
        ):
            self._reply(handler, 401, b'{"error": {"message": "invalid api key"}}')
            return
        embedding = body is not None and path == "/embeddings"
        if embedding:
            with self._lock:
                if self.switch_after and self.requests >= self.switch_after[0]:
                    self.upstream = self.switch_after[1]
                status = self._failures.pop(0) if self._failures else None
            if status is not None:
                headers = {"Retry-After": "0.1"} if status == 429 else None
                self._reply(handler, status, b'{"error": "injected"}', headers)
                return
        request = urllib.request.Request(
            self.upstream + path, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                payload, status = answer.read(), answer.status
        except urllib.error.HTTPError as exc:
            payload, status = exc.read(), exc.code
        if embedding and status == 200:
            payload = self._break(json.loads(payload))
            with self._lock:
                self.requests += 1
                self.batches.append(json.loads(body)["input"])
                self.inputs += len(self.batches[-1])
        self._reply(handler, status, payload)

    def _break(self, answer: dict) -> bytes:
        data = answer["data"]
        if self.mode == "garbage":
            return b"<html>502 Bad Gateway</html>"
        if self.mode == "nan":
            data[0]["embedding"][0] = float("nan")
            return json.dumps(answer).encode()  # NaN, as Python's json writes it
        if self.mode == "dims":
            for d in data:
                d["embedding"] = d["embedding"][:128]
        if self.mode == "short":
            answer["data"] = data[:-1]
        if self.mode == "per-token":
            for d in data:
                d["embedding"] = [d["embedding"], d["embedding"]]
        return json.dumps(answer).encode()
