"""The load client never reuses a pooled connection idle long enough for the gateway to be closing it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from load import connections


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    posts = 0

    def do_GET(self) -> None:
        if not self.path.startswith("/stream?since=3"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in (b'{"seq": 4}\n{"se', b'q": 5}\n\n', b'{"seq": 6}\n'):  # lines split across chunks
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self) -> None:
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/drop":
            self.close_connection = True
            return
        body = str(self.client_address[1]).encode()  # the client's port: one per connection
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _ports(post: Callable[[], str], pause: float) -> tuple[str, str]:
    first = post()
    time.sleep(pause)
    return first, post()


def _client_post(c: connections.Client) -> Callable[[], str]:
    return lambda: c.post("/counter", b"<a/>", {}, timeout=5).text


def test_a_connection_is_reused_while_recently_used(base: str) -> None:
    c = connections.Client(base, max_idle=5.0, maxsize=4)
    first, second = _ports(_client_post(c), 0.05)
    assert first == second and c.retired == 0


@pytest.mark.parametrize("plain", [False, True], ids=["retiring", "plain-pool"])
def test_a_connection_idle_beyond_max_idle_is_not_reused(base: str, plain: bool) -> None:
    if plain:  # what a plain keep-alive pool does: the idle connection is taken again (the race with the gateway)
        pool = urllib3.HTTPConnectionPool("127.0.0.1", int(base.rsplit(":", 1)[1]), maxsize=4)
        first, second = _ports(lambda: pool.request("POST", "/counter", body=b"<a/>").data.decode(), 0.4)
        assert first == second
    else:
        c = connections.Client(base, max_idle=0.2, maxsize=4)
        first, second = _ports(_client_post(c), 0.4)
        assert first != second and c.retired == 1


def test_a_lost_or_refused_connection_raises_a_client_error_and_is_not_retried(base: str) -> None:
    _Handler.posts = 0
    c = connections.Client(base, max_idle=5.0, maxsize=4)
    with pytest.raises(connections.ClientError):
        c.post("/drop", b"<a/>", {}, timeout=5)  # the server closes without answering
    assert _Handler.posts == 1, "a counter request must not be sent twice"
    closed = connections.Client(f"http://127.0.0.1:{_free_port()}", max_idle=5.0, maxsize=4)
    with pytest.raises(connections.ClientError):
        closed.post("/counter", b"<a/>", {}, timeout=5)


def test_lines_arrive_one_by_one_and_a_non_200_stream_raises(base: str) -> None:
    c = connections.Client(base, max_idle=5.0, maxsize=4)
    assert list(c.lines("/stream", {"since": "3"}, {})) == [b'{"seq": 4}', b'{"seq": 5}', b'{"seq": 6}']
    with pytest.raises(connections.ClientError):
        list(c.lines("/missing", {}, {}))
    assert c.post("/counter", b"<a/>", {}).status == 200  # the pool still serves after a stream


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        connections.Client("https://127.0.0.1:1", max_idle=5.0, maxsize=4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
