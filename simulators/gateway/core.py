"""``Gateway``: the one door every message goes through, and the host of every simulated actor.

Why one door: the judge trusts the trace only if *every* crossing (from the SUT, from a real actor, from an
in-process simulator, refused or accepted) takes the same path: authenticate the sender, parse with the
hardened parser, validate (XSD + rules), resolve the arrow, attribute the tenant, apply faults, record
durably, and only then acknowledge and deliver.

The class is its parts stacked (each a module of this package; each part may use those below it):
    intake   (``submit``/``send``/``counter``/``refuse``)   delivery (lanes, retries, sync answers)
    tenancy  (identifiers, tenants, ``records_for``/``wait``)  replay (state from the trace on start)
    base     (state, lifecycle, validation on/off the loop, error answers)
    and, apart, http (routes, sub-apps, the server's runner/site).
    Stack: base <- tenancy <- replay <- delivery <- intake <- Gateway.

Hours: operating hours and maintenance windows make a receiver "down" only for a tenant that enables
enforcement (``set_hours``; default off, from config ``gateway.enforce_hours``), so scenarios run at any
virtual time unless they test the calendar.
"""

from __future__ import annotations

from aiohttp import web

from simulators.gateway.intake import IntakeMixin


class Gateway(IntakeMixin):
    """Implements ``simulators.base.GatewayPort``; served over HTTP by ``simulators.gateway.http``."""


GATEWAY_KEY = web.AppKey("gateway", Gateway)
