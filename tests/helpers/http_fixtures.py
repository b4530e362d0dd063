"""A loopback HTTP file server with scriptable failures, for offline download tests."""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ArchiveServer:
    """Serve `files` ({"/facades.tar.gz": bytes}) on 127.0.0.1 and record every request.

    fail_first: the first n requests get HTTP 500.
    cut_after, cut_times: the first `cut_times` bodies announce their full Content-Length
        but the connection closes after `cut_after` bytes of body.
    ignore_range: answer Range requests with the whole file (200), as some servers do.
    no_length: send no Content-Length (the body ends when the connection closes).
    """

    def __init__(self, files: dict[str, bytes], fail_first: int = 0, cut_after: int | None = None,
                 cut_times: int = 0, ignore_range: bool = False, no_length: bool = False):
        self.files, self.fail_first = files, fail_first
        self.cut_after, self.cut_times, self.ignore_range = cut_after, cut_times, ignore_range
        self.no_length = no_length
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.authorization: list[str | None] = []  # each request's Authorization header
        self._cuts = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}/"

    def __enter__(self) -> "ArchiveServer":
        threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Range")))
                server.authorization.append(self.headers.get("Authorization"))
                server.respond(self)

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler

    def respond(self, h: BaseHTTPRequestHandler) -> None:
        data = self.files.get(h.path)
        if data is None:
            return h.send_error(404)
        if len(self.requests) <= self.fail_first:
            return h.send_error(500)
        start = self._range_start(h, len(data))
        if start is None:
            return
        body = data[start:]
        if self.cut_after is not None and self._cuts < self.cut_times:
            self._cuts += 1
            body = body[:self.cut_after]  # the Content-Length sent still says the full size
        h.wfile.write(body)  # HTTP/1.0: the connection closes after the handler returns

    def _range_start(self, h: BaseHTTPRequestHandler, size: int) -> int | None:
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if m is None or self.ignore_range:
            h.send_response(200)
            if not self.no_length:
                h.send_header("Content-Length", str(size))
            h.end_headers()
            return 0
        start = int(m[1])
        if start >= size:
            h.send_response(416)
            h.send_header("Content-Range", f"bytes */{size}")
            h.end_headers()
            return None
        h.send_response(206)
        h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        h.send_header("Content-Length", str(size - start))
        h.end_headers()
        return start


def closed_port_url() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
