"""The gateway's HTTP composition: the route table, the app keys, the sub-apps, and the server itself.

Why apart from the gateway: the message path (``core``) does not know it is served over HTTP; this module
maps requests onto it (as aiohttp recommends: routes in a table, ``web.AppKey`` for shared objects,
sub-apps for /trace, /control and /sim/{actor}). ``start_server`` is the ONE place where the aiohttp runner
and site are configured (timeouts, connection limits, TLS belong there).

    POST /msg               an envelope from the SUT or a real actor (credential -> ``Principal``)
    POST /counter           the counter proxy (control token)
    GET  /health            liveness; answered at once, whatever intake is doing
    POST /direct/{actor}    benchmark baseline (control token or an actor's credential)
    /trace/...              the trace API (control token)
    /control/...            the control API (control token; ``simulators.control``)
    /sim/{actor}/...        a simulator's own HTTP surface, if it has one
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from conformance.errors import HarnessError
from conformance.xmlsafe import MAX_BYTES
from simulators.config import GatewayConfig, server_ssl_context
from simulators.control import control_app
from simulators.edge import REQUEST_BODY, REQUEST_SOURCE, GuardedRunner, digest_body, source_of
from simulators.gateway.auth import CredentialMismatch, control_only
from simulators.gateway.core import GATEWAY_KEY, Gateway
from simulators.gateway.values import Outcome, finding
from simulators.trace_http import trace_app

routes = web.RouteTableDef()
#: the largest request body the gateway reads (the hardened parser refuses beyond MAX_BYTES anyway)
CLIENT_MAX_SIZE = 4 * 1024 * 1024


def _xml(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/xml", charset="utf-8") \
        if body else web.Response(status=status)


def _answer(out: Outcome) -> web.Response:
    resp = _xml(out.status, out.body)
    if out.retry_after is not None:
        resp.headers["Retry-After"] = str(out.retry_after)
    return resp


@routes.post("/msg")
async def _msg(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    REQUEST_SOURCE.set(source_of(request))
    try:
        principal = gw.credentials.principal(request)
    except CredentialMismatch as e:
        return _answer(await gw.refuse(403, [e.finding], await request.read(), None))
    if principal is None:  # no credential: the body is hashed on the way through, never kept (issue 13)
        REQUEST_BODY.set(await digest_body(request, CLIENT_MAX_SIZE))
        fs = [finding("GW-AUTH", "missing or unknown credential (Authorization: Bearer <token>)")]
        return _answer(await gw.refuse(401, fs, b"", None))
    data = await request.read()
    return _answer(await gw.submit(data, principal=principal))


@routes.post("/counter")
async def _counter(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    if not gw.credentials.is_control(request):  # refused like /msg without a credential: no payload kept
        REQUEST_SOURCE.set(source_of(request))
        REQUEST_BODY.set(await digest_body(request, CLIENT_MAX_SIZE))
        fs = [finding("GW-AUTH", "the counter proxy takes the control token (Authorization: Bearer <token>)")]
        return _answer(await gw.refuse(401, fs, b"", None))
    data = await request.read()
    tenant = request.headers.get("X-Juki-Tenant") or None
    if tenant is not None and tenant not in gw.tenants:
        return web.json_response({"findings": [{"code": "GW-TENANT", "message": f"no tenant {tenant!r}"}]},
                                 status=404)
    return _answer(await gw.counter(data, tenant))


@routes.get("/health")
async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@routes.post("/direct/{actor}")
async def _direct(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY_KEY]
    if not gw.credentials.is_control(request):  # the control token only (docs; issue 13)
        return web.Response(status=401)
    data = await request.read()
    try:
        status, body = await gw.direct(request.match_info["actor"], data)
    except HarnessError:
        status, body = 400, b""
    return _xml(status, body)


@web.middleware
async def _too_large(request: web.Request, handler: Any) -> web.StreamResponse:
    """413 as an ErrorReport with XML-SIZE (not aiohttp's plain text); a declared size over the parser's
    limit is refused before the body is read. A slow body the edge cut off is answered with nothing."""
    gw = request.app[GATEWAY_KEY]
    size = request.content_length
    if size is not None and size > MAX_BYTES and request.path in ("/msg", "/counter") \
            and request.headers.get("Authorization"):
        fs = [finding("XML-SIZE", f"the document is {size} bytes; the limit is {MAX_BYTES} bytes")]
        resp = _xml(413, gw.error_envelope(fs, None, None))
        resp.force_close()
        return resp
    try:
        out: web.StreamResponse = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        fs = [finding("XML-SIZE", f"the document is over {CLIENT_MAX_SIZE} bytes; the limit is {MAX_BYTES} bytes")]
        resp = _xml(413, gw.error_envelope(fs, None, None))
        resp.force_close()
        return resp
    except ConnectionResetError:
        return web.Response(status=408)
    return out


def build_app(gw: Gateway) -> web.Application:
    """The gateway's whole HTTP surface (see the module docstring)."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[_too_large])
    app[GATEWAY_KEY] = gw
    app.router.add_routes(routes)
    tapp = trace_app(gw.store)
    tapp.middlewares.append(control_only(gw.control_credential))
    app.add_subapp("/trace", tapp)
    app.add_subapp("/control", control_app(gw))
    for actor, sim in gw.sims.items():
        sub = sim.app()
        if sub is not None:
            app.add_subapp(f"/sim/{actor}", sub)
    return app


async def start_server(app: web.Application, cfg: GatewayConfig) -> tuple[web.AppRunner, int]:
    """THE place the gateway's runner and site are configured; returns the runner (``cleanup`` it) and the
    port actually bound (``cfg.port`` 0 = any free port)."""
    runner = GuardedRunner(app, limits=cfg.limits, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port, ssl_context=server_ssl_context(cfg), backlog=1024)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, _bound_port(runner, cfg.port)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return configured
