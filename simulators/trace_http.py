"""The trace's read-only HTTP API (mounted by the gateway at ``/trace``).

Why apart from ``simulators.trace``: the store is used without HTTP (CLI, tests, benchmarks); this is the
web surface over it. Mount with ``app.add_subapp("/trace", trace_app(store))``.

    GET /trace  or  /trace/?tenant=&arrow=&type=&message_id=&correlation_id=&kind=&since=&limit=
        -> {"records": [...], "count": n, "last_seq": n, "next_since": seq | null}  (default limit 10000)
    GET /trace/verify -> VerifyResult as JSON
    GET /trace/stream?since=N (+ the same filters) -> application/x-ndjson, one record per line, kept open;
        it ends when the client goes away, when the application shuts down, or when the store closes — so a
        follower that left never holds up the server's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from conformance.errors import HarnessError, fail
from simulators.trace import DEFAULT_HTTP_LIMIT, KINDS, STORE_KEY, TraceStore, record_to_json

_STOPPING = web.AppKey("trace_stopping", list[bool])  # [True] once the application shuts down
ACTIVE_STREAMS = web.AppKey("trace_streams", set[asyncio.Task[Any]])  # handlers of open /stream requests


def _query_filters(q: Mapping[str, str]) -> dict[str, Any]:
    def num(name: str) -> int | None:
        v = q.get(name)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise fail("GW-TRACE-QUERY", f"query parameter {name}={v!r} is not an integer") from None

    kind = q.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise fail("GW-TRACE-QUERY", f"kind={kind!r} is not one of {sorted(KINDS)}")
    return {"tenant": q.get("tenant") or None, "arrow": num("arrow"), "message_type": q.get("type") or None,
            "message_id": q.get("message_id") or None, "correlation_id": q.get("correlation_id") or None,
            "kind": kind, "since_seq": num("since") or 0, "limit": num("limit")}


def _bad_request(err: HarnessError) -> web.Response:
    return web.json_response({"findings": [f.to_json() for f in err.findings]}, status=400)


async def _list(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    try:
        kw = _query_filters(request.query)
    except HarnessError as err:
        return _bad_request(err)
    limit = kw.pop("limit")
    limit = DEFAULT_HTTP_LIMIT if limit is None else limit
    recs = store.query(**kw, limit=limit + 1)
    next_since = recs[limit - 1].seq if len(recs) > limit and limit > 0 else None
    recs = recs[:limit]
    return web.json_response({"records": [record_to_json(r) for r in recs], "count": len(recs),
                              "last_seq": store.last_seq, "next_since": next_since},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _verify(request: web.Request) -> web.Response:
    return web.json_response((await request.app[STORE_KEY].verify()).to_json())


async def _stream(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    stopping = request.app[_STOPPING]
    try:
        kw = _query_filters(request.query)
    except HarnessError as err:
        return _bad_request(err)
    kw.pop("limit")
    since = kw.pop("since_seq")
    flt = {k: v for k, v in kw.items() if v is not None}
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson; charset=utf-8"})
    await resp.prepare(request)

    def gone() -> bool:
        transport = request.transport
        return stopping[0] or transport is None or transport.is_closing()

    active = request.app[ACTIVE_STREAMS]
    task = asyncio.current_task()
    assert task is not None
    active.add(task)
    try:
        async with contextlib.aclosing(store._follow_pages(flt, since, gone)) as pages:
            async for page in pages:  # one write per page: a busy trace is not a system call per record
                await resp.write("".join(json.dumps(record_to_json(rec), ensure_ascii=False) + "\n"
                                         for rec in page).encode("utf-8"))
        if not gone():
            await resp.write_eof()
    except ConnectionError:  # the follower went away mid-write
        pass
    finally:
        active.discard(task)
    return resp


def trace_app(store: TraceStore) -> web.Application:
    """The read-only trace API; mount with ``add_subapp("/trace", ...)`` (``/trace`` and ``/trace/`` both
    answer the list)."""
    app = web.Application()
    app[STORE_KEY] = store
    stopping = [False]
    app[_STOPPING] = stopping
    app[ACTIVE_STREAMS] = set()

    async def on_shutdown(_: web.Application) -> None:
        stopping[0] = True
        store._nudge()  # wake the followers now rather than at their next poll

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("", _list)  # with the prefix: "/trace"
    app.router.add_get("/", _list)
    app.router.add_get("/verify", _verify)
    app.router.add_get("/stream", _stream)
    return app
