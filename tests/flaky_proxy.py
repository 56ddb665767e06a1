"""A reverse proxy in front of a real server that fails some requests (HTTP 503s, dropped
connections) or refuses those without the right headers (HTTP 401, as a gateway would)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length",
               "proxy-authenticate", "proxy-authorization", "te", "trailers", "upgrade", "host"}


class FlakyProxy:
    """Forwards to ``upstream``; request number n fails with 503 when ``n % fail_every == 1`` and
    has its connection dropped when ``n % drop_every == 3`` (0 turns either off). With ``allow``,
    a request whose headers ``allow`` refuses gets a 401. Counts what it injected and saw."""

    def __init__(self, upstream: str, fail_every: int = 3, drop_every: int = 7,
                 allow: Callable[[Mapping[str, str]], bool] | None = None):
        self.upstream = upstream.rstrip("/")
        self.fail_every = fail_every
        self.drop_every = drop_every
        self.allow = allow
        self.requests = 0
        self.injected_503 = 0
        self.dropped = 0
        self.refused = 0
        self.seen_headers: list[dict[str, str]] = []
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.requests += 1
                    n = proxy.requests
                    proxy.seen_headers.append(dict(self.headers.items()))
                    proxy.seen.append((self.command, self.path))
                if proxy.allow is not None and not proxy.allow(self.headers):
                    with proxy._lock:
                        proxy.refused += 1
                    self._reply(401, b'{"error_code": "UNAUTHENTICATED", "message": "no valid token"}')
                    return
                if proxy.drop_every and n % proxy.drop_every == 3:
                    with proxy._lock:
                        proxy.dropped += 1
                    self.close_connection = True
                    self.connection.close()
                    return
                if proxy.fail_every and n % proxy.fail_every == 1:
                    with proxy._lock:
                        proxy.injected_503 += 1
                    self._reply(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected 503"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = requests.request(self.command, proxy.upstream + self.path, data=body,
                                            headers=headers, timeout=60)
                content = upstream.content
                self.send_response(upstream.status_code)
                for k, v in upstream.headers.items():
                    if k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
