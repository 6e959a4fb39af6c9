"""A test backend that answers with the request headers it received (a test double for engines).

`HeaderEcho` answers every GET and POST with 200 and a JSON object of the request's
headers (names lower-cased, a repeated header's last value), after reading any body
the request carries; `serving(host)` runs one on a free port in a daemon thread and
stops it on exit. Tests use it to see exactly what a gateway passed to its backend
(which headers it set, replaced or removed).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class HeaderEcho(http.server.BaseHTTPRequestHandler):
    """Answers GET and POST with the request headers it received (names lower-cased)."""

    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serving(host: str) -> Iterator[int]:
    """A `HeaderEcho` server on `host` at a free port (yielded) until the block ends."""
    server = http.server.ThreadingHTTPServer((host, 0), HeaderEcho)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
