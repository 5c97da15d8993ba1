"""The webhooks tests' receiving end: a real HTTP server on 127.0.0.1 (allow-listed in the
config of the tests that expect a delivery)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Hook:
    """What the server received; answers with ``statuses`` in turn, then ``default``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.changed = threading.Condition()
        self.statuses: list[int] = []
        self.default = 200
        self.hold: threading.Event | None = None
        self.url = ""

    def received(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"server got {len(self.requests)} requests, wanted {count}")
            return list(self.requests)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        hook: Hook = self.server.hook  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with hook.changed:
            hook.requests.append((dict(self.headers.items()), body))
            status = hook.statuses.pop(0) if hook.statuses else hook.default
            hook.changed.notify_all()
        if hook.hold is not None:
            hook.hold.wait(10)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def hook() -> Iterator[Hook]:
    hook = Hook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.hook = hook  # type: ignore[attr-defined]
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook?kind=test"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-hook-server", daemon=True
    )
    thread.start()
    yield hook
    if hook.hold is not None:
        hook.hold.set()
    server.shutdown()
    server.server_close()
    thread.join(5)
