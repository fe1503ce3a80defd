"""The load client's HTTP session: pooled connections are retired before the gateway would close them.

Why: the gateway closes a connection that has been idle for ``gateway.limits.idle_timeout`` (30 s by
default). urllib3's pool is last in, first out. When a lull ends, the connections that sat idle since the
previous peak are taken again. One taken at the moment the gateway closes it fails with a ConnectionError.
This happened to 1 action of the national peak day in s21. The contract does not make a counter request
idempotent, so the client must not retry one. Instead the client never reuses a connection that has been
idle for more than ``max_idle`` seconds. The runner sets ``max_idle`` to half the gateway's idle timeout.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class _RetiringPool(HTTPConnectionPool):
    """A pool that closes a connection taken from it if the connection was idle too long.

    urllib3 opens a closed connection again on its next request, as it does after ``is_connection_dropped``."""

    max_idle = 15.0
    adapter: _RetiringAdapter | None = None  # counts the connections retired

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle_since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        since = self._idle_since.pop(conn, None)
        if since is not None and time.monotonic() - since > self.max_idle:
            conn.close()
            if self.adapter is not None:
                self.adapter.retired += 1
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            self._idle_since[conn] = time.monotonic()
        super()._put_conn(conn)


class _RetiringHttpsPool(_RetiringPool, HTTPSConnectionPool):
    pass


class _RetiringAdapter(HTTPAdapter):
    def __init__(self, max_idle: float, **kwargs: Any) -> None:
        self.max_idle = max_idle
        self.retired = 0
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        mine = {"max_idle": self.max_idle, "adapter": self}
        classes = {"http": type("RetiringPool", (_RetiringPool,), mine),
                   "https": type("RetiringHttpsPool", (_RetiringHttpsPool,), mine)}
        self.poolmanager.pool_classes_by_scheme = classes


def session(max_idle: float, maxsize: int) -> requests.Session:
    """A session whose pooled connections (up to ``maxsize`` per host) are each reused only within ``max_idle``
    seconds of their last answer."""
    s = requests.Session()
    adapter = _RetiringAdapter(max_idle, pool_connections=4, pool_maxsize=maxsize)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
