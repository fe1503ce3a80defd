"""The control API (docs/control-api.md): tenants, seeds, sends, raw deliveries, clocks, waits, state, faults.

Why an HTTP API and not function calls: the scenario engine, the CLI, pytest fixtures and a vendor's own
tooling drive the same running gateway, in process or not. Every control action that changes what a
restarted gateway must know (tenants, seeds, clock moves, hours) is recorded in the trace as an ``event``
record, so a restart replays it. Everything needs the control token (``gateway.tokens.control``).

Beyond docs/control-api.md (additions, same token):
    GET  /control/tenants                          every tenant
    POST /control/tenants/{t}/hours      {"enforce": true, "maintenance": [{"start", "end", "actors"}]}
    PUT  /control/tenants/{t}/hours      hours enforcement is off unless a scenario turns it on; a given
                                         "maintenance" list (even []) replaces the tenant's windows
    POST /control/tenants/{t}/register   {"values": ["住民票コード", ...]} attribute identifiers
    POST /control/tenants/{t}/clock                also {"freeze": true|false}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from conformance.errors import Finding, HarnessError, fail
from conformance.xmlsafe import parse
from simulators.faults import add_fault_routes
from simulators.gateway.auth import control_only, simulated
from simulators.gateway.core import GATEWAY_KEY, Gateway
from simulators.gateway.values import Tenant

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WAIT_FILTERS = ("arrow", "type", "kind", "verdict", "since", "message_id", "correlation_id", "sender",
                "receiver")
MAX_WAIT_S = 600.0


def _dumps(o: Any) -> str:
    return json.dumps(o, ensure_ascii=False, default=str)


def _error(status: int, findings: list[Finding]) -> web.Response:
    return web.json_response({"findings": [f.to_json() for f in findings]}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HarnessError -> 400 with findings; a bad JSON body -> 400 GW-CONTROL-JSON."""
    try:
        return await handler(request)
    except HarnessError as err:
        return _error(404 if err.findings and err.findings[0].code == "GW-TENANT" else 400, err.findings)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        obj = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise fail("GW-CONTROL-JSON", "the body is not JSON") from None
    if not isinstance(obj, dict):
        raise fail("GW-CONTROL-JSON", "the body must be a JSON object")
    return obj


def _gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY_KEY]


def _tenant(request: web.Request) -> Tenant:
    tid = request.match_info["t"]
    t = _gw(request).tenants.get(tid)
    if t is None:
        raise fail("GW-TENANT", f"no tenant {tid!r}")
    return t


def _int(obj: dict[str, Any], key: str, default: int, lo: int = 0, hi: int = 10_000) -> int:
    v = obj.get(key, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise fail("GW-CONTROL-FIELD", f"{key} must be an integer in {lo}..{hi}, not {v!r}")
    return v


def _str(obj: dict[str, Any], key: str, default: str | None = None) -> str | None:
    v = obj.get(key, default)
    if v is not None and not isinstance(v, str):
        raise fail("GW-CONTROL-FIELD", f"{key} must be a string, not {v!r}")
    return v


# -------------------------------------------------------------------------------------------- tenants

async def create_tenant(request: web.Request) -> web.Response:
    gw = _gw(request)
    body = await _json(request)
    enforce = body.get("enforce_hours")
    if enforce is not None and not isinstance(enforce, bool):
        raise fail("GW-CONTROL-FIELD", "enforce_hours must be true or false")
    t = gw.create_tenant(_str(body, "name") or "", _int(body, "peers", 3, 0, 200),
                         _int(body, "seed", 0, 0, 2**31), enforce_hours=enforce)
    await gw.record_event("tenant.create", t.id, t.to_json())
    return web.json_response({**t.to_json(), "sut_lg": gw.sut_lg, "clock": gw.now(t.id).isoformat()},
                             status=201)


async def list_tenants(request: web.Request) -> web.Response:
    gw = _gw(request)
    return web.json_response({"tenants": [t.to_json() for t in gw.tenants.values()]})


async def delete_tenant(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    gw.delete_tenant(t.id)
    await gw.record_event("tenant.delete", t.id, {"tenant": t.id})
    return web.json_response({"ok": True})


async def seed(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    body = await _json(request)
    actor = _str(body, "actor")
    kind = _str(body, "kind")
    if not actor or not kind:
        raise fail("GW-CONTROL-FIELD", "seed needs actor and kind")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise fail("GW-CONTROL-FIELD", "data must be an object")
    args: dict[str, Any] = {**data}
    for k in ("xml", "lg_code"):
        if body.get(k) is not None:
            args[k] = _str(body, k)
    if body.get("data") is not None:
        args["data"] = data
    if actor == "peer" and "lg_code" not in args and t.peers:
        args["lg_code"] = t.peers[0].lg_code
    ids = gw.seed(t.id, actor, kind, args)
    await gw.record_event("seed", t.id, {"actor": actor, "kind": kind, "args": args})
    return web.json_response({"ok": True, "registered": len(ids)})


async def register(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    values = (await _json(request)).get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise fail("GW-CONTROL-FIELD", "values must be a list of strings")
    for v in values:
        gw.register(t.id, v)
    await gw.record_event("register", t.id, {"values": values})
    return web.json_response({"ok": True, "registered": len(values)})


def _default_lg(gw: Gateway, t: Tenant, actor: str) -> str:
    if actor == "peer" and t.peers:
        return t.peers[0].lg_code
    from simulators.toolbox import lg_of  # the simulators' own rule for non-municipal actors

    return lg_of(gw, actor)


async def send(request: web.Request) -> web.Response:
    """Make a simulated actor send a message through the gateway (``raw``: exact bytes, unchecked)."""
    gw = _gw(request)
    t = _tenant(request)
    body = await _json(request)
    actor = _str(body, "actor")
    if not actor:
        raise fail("GW-CONTROL-FIELD", "send needs the sending actor")
    if actor not in gw.sims:
        raise fail("GW-ACTOR", f"{actor!r} is not a simulated actor "
                   f"(simulated: {', '.join(sorted(gw.sims))})")
    raw = _str(body, "raw")
    if raw is not None:
        out = await gw.submit(raw.encode("utf-8"), principal=simulated(actor), tenant=t.id, origin="control")
    else:
        to, mtype, xml = _str(body, "to"), _str(body, "type"), _str(body, "body")
        if not to or not mtype or not xml:
            raise fail("GW-CONTROL-FIELD", "send needs to, type and body (or raw)")
        bd = _str(body, "business_date")
        try:
            business_date = date.fromisoformat(bd) if bd else None
        except ValueError:
            raise fail("GW-CONTROL-FIELD", f"business_date = {bd!r} is not an ISO date") from None
        out = await gw.send_outcome(
            sender=(actor, _str(body, "lg_code") or _default_lg(gw, t, actor)),
            receiver=(to, _str(body, "to_lg") or _default_lg(gw, t, to)), message_type=mtype, body=parse(xml),
            tenant=t.id, correlation_id=_str(body, "correlation_id"), business_date=business_date)
    status, mid, resp, findings = out.status, out.message_id, out.body, out.findings
    return web.json_response({"status": status, "message_id": mid,
                              "response": resp.decode("utf-8", "replace") if resp else None,
                              "findings": [f.to_json() for f in findings]})


async def deliver_raw(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    body = await _json(request)
    data = _str(body, "bytes")
    if data is None:
        raise fail("GW-CONTROL-FIELD", "deliver-raw needs bytes (the document as a string)")
    status, answer = await gw.deliver_raw(t.id, data.encode("utf-8"), _str(body, "token"))
    return web.json_response({"status": status, "body": answer.decode("utf-8", "replace")})


async def clock(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    c = gw.clocks.get(t.id)
    if request.method == "POST":
        body = await _json(request)
        if body.get("freeze") is True:  # first, so that a set time stays exactly as given
            c.freeze("control API")
        if "set" in body:
            try:
                c.set(datetime.fromisoformat(str(body["set"])), "control API")
            except ValueError:
                raise fail("GW-CONTROL-FIELD",
                           f"set = {body['set']!r} is not an ISO 8601 date-time") from None
        if "advance_seconds" in body:
            secs = body["advance_seconds"]
            if not isinstance(secs, int | float) or isinstance(secs, bool):
                raise fail("GW-CONTROL-FIELD", "advance_seconds must be a number")
            c.advance(timedelta(seconds=secs), "control API")
        if body.get("freeze") is False:
            c.unfreeze("control API")
        await gw.record_event("clock", t.id, {"now": c.now().isoformat(), "frozen": c.frozen})
    return web.json_response({"now": c.now().isoformat(), "frozen": c.frozen})


async def hours(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    body = await _json(request)
    enforce = body.get("enforce")
    if enforce is not None and not isinstance(enforce, bool):
        raise fail("GW-CONTROL-FIELD", "enforce must be true or false")
    maint = body.get("maintenance")
    if maint is not None and (not isinstance(maint, list) or not all(
            isinstance(m, dict) and "start" in m and "end" in m for m in maint)):
        raise fail("GW-CONTROL-FIELD", "maintenance must be a list of {start, end, actors?}")
    try:
        gw.set_hours(t.id, enforce=enforce, maintenance=maint)
    except (ValueError, KeyError) as e:
        raise fail("GW-CONTROL-FIELD", f"maintenance: {e}") from None
    await gw.record_event("hours", t.id, {"enforce": enforce, "maintenance": maint, "replace": True})
    return web.json_response({"enforce_hours": t.enforce_hours,
                              "maintenance": [{"start": m.start.isoformat(), "end": m.end.isoformat(),
                                               "actors": sorted(m.actors) if m.actors else None}
                                              for m in t.calendar.maintenance]})


async def wait(request: web.Request) -> web.Response:
    gw = _gw(request)
    body = await _json(request)
    tenant = _str(body, "tenant")
    if tenant is not None and tenant not in gw.tenants:
        raise fail("GW-TENANT", f"no tenant {tenant!r}")
    flt = body.get("filter") or {}
    if not isinstance(flt, dict):
        raise fail("GW-CONTROL-FIELD", "filter must be an object")
    unknown = sorted(set(flt) - set(WAIT_FILTERS))
    if unknown:
        raise fail("GW-CONTROL-FIELD", f"unknown filter key(s) {unknown}; known: {list(WAIT_FILTERS)}")
    count = _int(body, "count", 1, 1, 1_000_000)
    limit = _int(body, "limit", 0, 0, 1_000_000) or None  # a page of the records, not all of them
    timeout = body.get("timeout", 5)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 <= timeout <= MAX_WAIT_S:
        raise fail("GW-CONTROL-FIELD", f"timeout must be a number of seconds in 0..{MAX_WAIT_S:.0f}")
    kw: dict[str, Any] = {("message_type" if k == "type" else k): v for k, v in flt.items() if v is not None}
    if "arrow" in kw and not isinstance(kw["arrow"], int):
        raise fail("GW-CONTROL-FIELD", "filter.arrow must be an integer")
    if "since" in kw and not isinstance(kw["since"], int):
        raise fail("GW-CONTROL-FIELD", "filter.since must be an integer (a trace seq)")
    if limit is not None:
        kw["limit"] = limit
    ok, found = await gw.wait(tenant, count, float(timeout), **kw)
    out = {"records": [gw.record_json(r) for r in found], "count": len(found), "wanted": count,
           "last_seq": gw.store.last_seq}
    return web.json_response(out, status=200 if ok else 408, dumps=_dumps)


async def state(request: web.Request) -> web.Response:
    gw = _gw(request)
    t = _tenant(request)
    actor = request.match_info["actor"]
    sim = gw.sims.get(actor)
    if sim is None:
        raise fail("GW-TENANT", f"no simulated actor {actor!r}")
    return web.json_response(sim.snapshot(t.id), dumps=_dumps)


def control_app(gw: Gateway) -> web.Application:
    """Mounted by the gateway at ``/control``; faults at ``/control/faults`` (with or without a slash)."""
    app = web.Application(middlewares=[control_only(gw.control_credential), _errors])
    app[GATEWAY_KEY] = gw
    r = app.router
    r.add_post("/tenants", create_tenant)
    r.add_get("/tenants", list_tenants)
    r.add_delete("/tenants/{t}", delete_tenant)
    r.add_post("/tenants/{t}/seed", seed)
    r.add_post("/tenants/{t}/register", register)
    r.add_post("/tenants/{t}/send", send)
    r.add_post("/tenants/{t}/deliver-raw", deliver_raw)
    r.add_get("/tenants/{t}/clock", clock)
    r.add_post("/tenants/{t}/clock", clock)
    r.add_post("/tenants/{t}/hours", hours)
    r.add_put("/tenants/{t}/hours", hours)
    r.add_get("/tenants/{t}/state/{actor}", state)
    r.add_post("/wait", wait)
    add_fault_routes(app, gw.faults, "/faults")
    return app
