"""The load client's HTTP: one keep-alive pool per Locust process, whose connections retire before the gateway
would close them.

Why urllib3's pool and not a ``requests.Session``: at 200 actions/s the Locust process spent about half of its
CPU in requests' layers around each call (preparing the request, merging the environment's proxy settings,
cookies, hooks, adapters), more than in sending and reading. The pool underneath does the HTTP; this module
keeps only what the load test needs from a client: a POST, a streamed GET read line by line, no retries.

Why connections retire: the gateway closes a connection that has been idle for
``gateway.limits.idle_timeout`` (30 s by default). urllib3's pool is last in, first out. When a lull ends, the
connections that sat idle since the previous peak are taken again. One taken at the moment the gateway closes
it fails. This happened to 1 action of the national peak day in s21. The contract does not make a counter
request idempotent, so the client must not retry one (``retries=False`` on every call). Instead the client
never reuses a connection that has been idle for more than ``max_idle`` seconds. The runner sets ``max_idle``
to half the gateway's idle timeout.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

from urllib3 import HTTPConnectionPool, Timeout
from urllib3.exceptions import HTTPError
from urllib3.util import parse_url

ClientError = (HTTPError, OSError)  # what a call can raise: refused, reset, timed out, a broken answer


class _RetiringPool(HTTPConnectionPool):
    """A pool that closes a connection taken from it if the connection was idle too long.

    urllib3 opens a closed connection again on its next request, as it does after ``is_connection_dropped``."""

    def __init__(self, host: str, port: int, max_idle: float, maxsize: int) -> None:
        super().__init__(host, port, maxsize=maxsize, block=False, retries=False)
        self.max_idle = max_idle
        self.retired = 0
        self._idle_since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        since = self._idle_since.pop(conn, None)
        if since is not None and time.monotonic() - since > self.max_idle:
            conn.close()
            self.retired += 1
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            self._idle_since[conn] = time.monotonic()
        super()._put_conn(conn)


class Answer(NamedTuple):
    status: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.data)


class Client:
    """POSTs and a streamed GET to one plain-HTTP base URL (the gateway: the load test refuses a TLS config).

    Each call raises one of ``ClientError`` when no answer came; it is never retried."""

    def __init__(self, base: str, max_idle: float, maxsize: int) -> None:
        url = parse_url(base)
        if url.scheme != "http" or not url.host:
            raise ValueError(f"the load client speaks plain HTTP to the gateway, not {base!r}")
        self.prefix = (url.path or "").rstrip("/")
        self.pool = _RetiringPool(url.host, url.port or 80, max_idle, maxsize)

    @property
    def retired(self) -> int:
        """Connections closed instead of reused because they had been idle too long."""
        return self.pool.retired

    def post(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float = 45.0) -> Answer:
        r = self.pool.urlopen("POST", self.prefix + path, body=body, headers=dict(headers), retries=False,
                              timeout=Timeout(connect=5.0, read=timeout), assert_same_host=False)
        return Answer(r.status, r.data)

    def post_json(self, path: str, value: Any, headers: Mapping[str, str], timeout: float = 45.0) -> Answer:
        return self.post(path, json.dumps(value, ensure_ascii=False).encode("utf-8"),
                         {**headers, "Content-Type": "application/json"}, timeout)

    def lines(self, path: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Iterator[bytes]:
        """The non-empty lines of a streamed answer as they arrive (a non-200 answer raises HTTPError)."""
        r = self.pool.urlopen(
            "GET", f"{self.prefix}{path}?{urlencode(params)}", headers=dict(headers), retries=False,
            timeout=Timeout(connect=5.0, read=None), preload_content=False, assert_same_host=False)
        try:
            if r.status != 200:
                raise HTTPError(f"GET {path}: HTTP {r.status}")
            rest = b""
            for chunk in r.stream(65536):
                parts = (rest + chunk).split(b"\n")
                rest = parts.pop()
                yield from (p for p in parts if p)
        finally:  # the stream ends when the server or the caller ends it: its connection is not reused as is
            r.close()
            r.release_conn()
