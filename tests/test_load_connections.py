"""The load client never reuses a pooled connection idle long enough for the gateway to be closing it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from load import connections


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = str(self.client_address[1]).encode()  # the client's port: one per connection
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/counter"
    finally:
        server.shutdown()
        server.server_close()


def _ports(s: requests.Session, url: str, pause: float) -> tuple[str, str]:
    first = s.post(url, data=b"<a/>", timeout=5).text
    time.sleep(pause)
    return first, s.post(url, data=b"<a/>", timeout=5).text


def test_a_connection_is_reused_while_recently_used(url: str) -> None:
    first, second = _ports(connections.session(max_idle=5.0, maxsize=4), url, 0.05)
    assert first == second


@pytest.mark.parametrize("plain", [False, True], ids=["retiring", "plain-requests"])
def test_a_connection_idle_beyond_max_idle_is_not_reused(url: str, plain: bool) -> None:
    s = requests.Session() if plain else connections.session(max_idle=0.2, maxsize=4)
    first, second = _ports(s, url, 0.4)
    if plain:  # what the load client did before: the idle connection is taken again (the race with the gateway)
        assert first == second
    else:
        assert first != second
        adapter = s.get_adapter(url)
        assert isinstance(adapter, connections._RetiringAdapter) and adapter.retired == 1
