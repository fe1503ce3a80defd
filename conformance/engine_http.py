"""The gateway's HTTP surface as the scenario engine uses it: control API, counter proxy, trace API.

Split from ``conformance.engine`` (which re-exports ``Harness`` and ``HarnessHTTPError``) so the engine
module stays readable; anything that drives a gateway (load runs, checks) can use it alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

__all__ = ["Harness", "HarnessHTTPError"]


class HarnessHTTPError(Exception):
    """The gateway answered a control call with an unexpected status: a harness problem, not the SUT's."""


# ------------------------------------------------------------------------------------------- HTTP client

class Harness:
    """The gateway's HTTP surface as the engine uses it (control API, counter proxy, trace API)."""

    def __init__(self, session: aiohttp.ClientSession, gateway_url: str,
                 control_token: str = "control-secret",
                 timeout: float = 30.0) -> None:
        self.session = session
        self.url = gateway_url.rstrip("/")
        self.token = control_token
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def _json(self, method: str, path: str, body: Any = None, ok: Iterable[int] = (200, 201, 202),
                    params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body, headers=self._auth,
                                        params=params, timeout=self.timeout) as resp:
            text = await resp.text()
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = {"text": text}
            if resp.status not in ok:
                raise HarnessHTTPError(f"{method} {path}: HTTP {resp.status}: {text[:500]}")
            return resp.status, data

    async def create_tenant(self, name: str, peers: int, seed: int) -> dict[str, Any]:
        _, data = await self._json("POST", "/control/tenants", {"name": name, "peers": peers, "seed": seed})
        return dict(data)

    async def delete_tenant(self, tenant: str) -> None:
        await self._json("DELETE", f"/control/tenants/{tenant}", ok=(200, 202, 204, 404))

    async def seed(self, tenant: str, body: Mapping[str, Any]) -> Any:
        return (await self._json("POST", f"/control/tenants/{tenant}/seed", dict(body)))[1]

    async def register(self, tenant: str, values: list[str]) -> None:
        """Identifiers whose messages belong to ``tenant`` for as long as it lives (``POST …/register``)."""
        await self._json("POST", f"/control/tenants/{tenant}/register", {"values": values})

    async def send(self, tenant: str, body: Mapping[str, Any]) -> dict[str, Any]:
        _, data = await self._json("POST", f"/control/tenants/{tenant}/send", dict(body),
                                   ok=range(200, 600))
        return dict(data or {})

    async def deliver_raw(self, tenant: str, raw: str, token: str | None) -> dict[str, Any]:
        _, data = await self._json("POST", f"/control/tenants/{tenant}/deliver-raw",
                                   {"bytes": raw, "token": token}, ok=range(200, 600))
        return dict(data or {})

    async def clock(self, tenant: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if body is None:
            _, data = await self._json("GET", f"/control/tenants/{tenant}/clock")
        else:
            _, data = await self._json("POST", f"/control/tenants/{tenant}/clock", dict(body))
        return dict(data or {})

    async def hours(self, tenant: str, body: Mapping[str, Any]) -> dict[str, Any]:
        _, data = await self._json("POST", f"/control/tenants/{tenant}/hours", dict(body))
        return dict(data or {})

    async def add_fault(self, rule: Mapping[str, Any]) -> str:
        _, data = await self._json("POST", "/control/faults/", dict(rule))
        data = data or {}
        fid = data.get("id") or (data.get("rule") or {}).get("id")
        if fid is None:
            raise HarnessHTTPError(f"POST /control/faults answered no id: {data}")
        return str(fid)

    async def delete_fault(self, fault_id: str) -> None:
        await self._json("DELETE", f"/control/faults/{fault_id}", ok=(200, 202, 204, 404))

    async def counter(self, tenant: str, envelope: bytes) -> tuple[int, bytes]:
        headers = {**self._auth, "X-Juki-Tenant": tenant, "Content-Type": "application/xml; charset=utf-8"}
        # longer than the gateway's counter time limit (30 s), itself longer than the SUT's 15 s wait
        async with self.session.post(self.url + "/counter", data=envelope, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=45.0)) as resp:
            return resp.status, await resp.read()

    async def records(self, tenant: str, since: int = 0, *, have: int = 0, block: float = 0.0,
                      limit: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Records of ``tenant`` with seq > since, late-attributed ones included, and the trace's last seq.

        With ``block`` > 0 the call returns as soon as there are more than ``have`` such records (a long
        poll through ``POST /control/wait``), or after ``block`` seconds. ``limit`` > 0: only the first
        ``limit`` records (a page; fewer means there are no more).
        """
        count = max(1, have + 1) if block else 1_000_000
        body: dict[str, Any] = {"tenant": tenant, "filter": {"since": since}, "count": count, "timeout": block}
        if limit:
            body["limit"] = limit
        _, data = await self._json("POST", "/control/wait", body, ok=(200, 408))
        return list(data.get("records", [])), int(data.get("last_seq") or 0)

    async def last_seq(self, tenant: str) -> int:
        """The trace's last seq now (a step's mark)."""
        body = {"tenant": tenant, "filter": {"since": 2**62}, "count": 1, "timeout": 0}
        _, data = await self._json("POST", "/control/wait", body, ok=(200, 408))
        return int(data.get("last_seq") or 0)
