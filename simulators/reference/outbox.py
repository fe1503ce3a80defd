"""The durable outbox: everything the reference SUT sends leaves through it, in order, one at a time.

Why: the contract's outbox rule. Changes of one person must reach CS in the order they happened, a 503 or a
dead gateway must not lose anything, and a restart resumes where the process stopped. A message is written
to SQLite in the same transaction as the change that caused it; the worker POSTs the oldest pending one to
the gateway's ``/msg``. 200/202 → sent; 503, other 5xx or a connection error → kept, retried after a
doubling backoff with the **same MessageId** and a ``RetryReason``, never overtaken by a later message; any
other 4xx → logged and dropped (resending it unchanged cannot help). Sync types (arrow 13, 29) go through
the same queue; their caller awaits the answer with :meth:`Outbox.wait_answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

import aiohttp
from lxml import etree

from conformance.envelope import Header, body_of, build, new_id
from conformance.errors import HarnessError
from conformance.xmlsafe import parse, q
from simulators.reference import defects
from simulators.reference.config import RefConfig
from simulators.reference.store import Store

log = logging.getLogger("simulators.reference.outbox")

PENDING, SENT, REFUSED, DROPPED = "pending", "sent", "refused", "dropped"


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One outbox row as the worker and callbacks see it."""

    oid: int
    message_id: str
    message_type: str
    sync: bool
    header: Header
    body: etree._Element
    attempts: int
    retry_reason: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """The gateway's final word on a message: HTTP status and, for a sync type, the answer body."""

    status: int
    body: etree._Element | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 202)


AnswerHook = Callable[[OutMessage, etree._Element], None]


def _header_json(h: Header) -> str:
    return json.dumps(h.to_json(), ensure_ascii=False)


def _header_from(text: str) -> Header:
    d = json.loads(text)
    return Header(
        message_type=d["message_type"],
        sender_actor=d["sender_actor"],
        sender_lg=d["sender_lg"],
        receiver_actor=d["receiver_actor"],
        receiver_lg=d["receiver_lg"],
        sent_at=datetime.fromisoformat(d["sent_at"]),
        business_date=date.fromisoformat(d["business_date"]),
        message_id=d["message_id"],
        correlation_id=d.get("correlation_id"),
        retry_reason=d.get("retry_reason"),
    )


def _result_status(body: etree._Element | None) -> tuple[str, str]:
    if body is None:
        return "", ""
    res = body.find(q("Result"))
    if res is None:
        return "", ""
    return (res.findtext(q("Status")) or ""), (res.findtext(q("Code")) or "")


class Outbox:
    """The SQLite-backed queue and its single sending worker."""

    def __init__(self, store: Store, cfg: RefConfig, on_answer: AnswerHook | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.on_answer = on_answer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._waiters: dict[int, list[asyncio.Future[Answer]]] = {}

    # --- enqueueing (inside the caller's transaction) -----------------------------------------------------
    def enqueue(self, h: Header, body: etree._Element, *, sync: bool = False) -> int:
        """Write a message to the outbox; it is sent once the enclosing transaction commits."""
        h = replace(h, message_id=h.message_id or new_id(), retry_reason=None)
        with self.store.tx() as c:
            cur = c.execute(
                "INSERT INTO outbox(message_id, message_type, sync, header, body, state)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    h.message_id,
                    h.message_type,
                    int(sync),
                    _header_json(h),
                    etree.tostring(body, encoding="unicode"),
                    PENDING,
                ),
            )
            oid = int(cur.lastrowid or 0)
        self._wake.set()
        return oid

    def kick(self) -> None:
        self._wake.set()

    # --- reading ------------------------------------------------------------------------------------------
    def _row(self, where: str, args: tuple[object, ...] = ()) -> OutMessage | None:
        row = self.store.conn.execute(
            f"SELECT oid, message_id, message_type, sync, header, body, attempts, retry_reason FROM outbox "
            f"WHERE {where}",
            args,
        ).fetchone()
        if row is None:
            return None
        return OutMessage(
            oid=row[0],
            message_id=row[1],
            message_type=row[2],
            sync=bool(row[3]),
            header=_header_from(row[4]),
            body=parse(row[5]),
            attempts=row[6],
            retry_reason=row[7],
        )

    def _next(self) -> OutMessage | None:
        order = "DESC" if defects.on(self.cfg, "reverse-order") else "ASC"
        return self._row(f"state='{PENDING}' ORDER BY oid {order} LIMIT 1")

    def pending_count(self) -> int:
        row = self.store.conn.execute("SELECT count(*) FROM outbox WHERE state=?", (PENDING,)).fetchone()
        return int(row[0])

    def rows(self) -> list[dict[str, object]]:
        """Every outbox row (for tests and the health page): id, type, state, attempts, status."""
        cur = self.store.conn.execute(
            "SELECT oid, message_id, message_type, state, attempts, retry_reason, status"
            " FROM outbox ORDER BY oid"
        )
        keys = ("oid", "message_id", "message_type", "state", "attempts", "retry_reason", "status")
        return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]

    def _stored_answer(self, oid: int) -> Answer | None:
        row = self.store.conn.execute(
            "SELECT state, status, response FROM outbox WHERE oid=?", (oid,)
        ).fetchone()
        if row is None or row[0] == PENDING:
            return None
        body = None
        if row[2]:
            with contextlib.suppress(HarnessError, ValueError):
                body = body_of(parse(row[2]))
        return Answer(int(row[1] or 0), body)

    async def wait_answer(self, oid: int, timeout: float) -> Answer | None:
        """The final answer to message ``oid``, or None if none came within ``timeout`` seconds."""
        done = self._stored_answer(oid)
        if done is not None:
            return done
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(oid, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            lst = self._waiters.get(oid, [])
            if fut in lst:
                lst.remove(fut)
            if not lst:
                self._waiters.pop(oid, None)

    def _resolve(self, oid: int, answer: Answer) -> None:
        for fut in self._waiters.pop(oid, []):
            if not fut.done():
                fut.set_result(answer)

    # --- the worker ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.http_timeout),
                                              connector=aiohttp.TCPConnector(ssl=self.cfg.client_ssl()))
        self._task = asyncio.create_task(self._run(), name="reference-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        for oid in list(self._waiters):
            for fut in self._waiters.pop(oid):
                fut.cancel()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending (tests); False on timeout."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.pending_count():
            if loop.time() > end:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _run(self) -> None:
        while True:
            msg = self._next()
            if msg is None:
                self._wake.clear()
                if self._next() is None:
                    await self._wake.wait()
                continue
            try:
                delay = await self._attempt(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker: keep the message, slow down
                log.exception("outbox: unexpected error sending %s %s", msg.message_type, msg.message_id)
                delay = self.cfg.retry_max
            if delay:
                await asyncio.sleep(delay)

    def _backoff(self, attempts: int) -> float:
        delay: float = self.cfg.retry_initial * 2.0 ** max(attempts - 1, 0)
        return min(delay, self.cfg.retry_max)

    def _envelope(self, msg: OutMessage) -> bytes:
        h = msg.header
        if msg.attempts > 0:
            reason = msg.retry_reason or "resent after restart"
            if defects.on(self.cfg, "retry-new-id"):
                h = replace(h, message_id=new_id())
                self.store.conn.execute(
                    "UPDATE outbox SET message_id=?, header=? WHERE oid=?",
                    (h.message_id, _header_json(h), msg.oid),
                )
            if not defects.on(self.cfg, "retry-no-reason"):
                h = replace(h, retry_reason=reason[:200])
        return defects.rewrite(self.cfg, msg.message_type, build(h, msg.body))

    async def _attempt(self, msg: OutMessage) -> float:
        """Send one message once; returns the delay before the next attempt (0 = go on at once)."""
        assert self._session is not None
        data = self._envelope(msg)
        # Count the attempt before sending: a crash mid-POST means the next attempt is a resend.
        self.store.conn.execute("UPDATE outbox SET attempts=attempts+1 WHERE oid=?", (msg.oid,))
        attempts = msg.attempts + 1
        try:
            async with self._session.post(
                f"{self.cfg.gateway_url.rstrip('/')}/msg",
                data=data,
                headers={"Authorization": f"Bearer {self.cfg.token}", "Content-Type": "application/xml"},
            ) as resp:
                status, payload = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return self._retry(msg, attempts, f"connection error ({type(e).__name__})")
        if status in (200, 202):
            body = None
            if msg.sync and payload:
                try:
                    body = body_of(parse(payload))
                except (HarnessError, ValueError):
                    body = None
            if msg.message_type == "MunicipalNotice" and body is not None:
                st, code = _result_status(body)
                if (
                    st not in ("accepted", "")
                    and attempts <= self.cfg.result_retries
                    and not defects.on(self.cfg, "municipal-notice-no-resend")
                ):
                    return self._retry(msg, attempts, f"agency answered {st} {code}".strip())
            self._finish(msg, SENT, status, payload if msg.sync else None)
            if body is not None and self.on_answer is not None:
                try:
                    self.on_answer(msg, body)
                except Exception:
                    log.exception("outbox: answer hook failed for %s", msg.message_id)
            self._resolve(msg.oid, Answer(status, body))
            return 0.0
        if status >= 500:
            if defects.on(self.cfg, "no-retry"):
                self._finish(msg, DROPPED, status, payload)
                self._resolve(msg.oid, Answer(status))
                return 0.0
            return self._retry(msg, attempts, f"HTTP {status} from the gateway")
        log.warning(
            "outbox: gateway refused %s %s with HTTP %s: %s",
            msg.message_type,
            msg.message_id,
            status,
            payload[:500].decode("utf-8", "replace"),
        )
        self._finish(msg, REFUSED, status, payload)
        self._resolve(msg.oid, Answer(status))
        return 0.0

    def _retry(self, msg: OutMessage, attempts: int, reason: str) -> float:
        if defects.on(self.cfg, "no-retry"):
            self._finish(msg, DROPPED, 0, None)
            self._resolve(msg.oid, Answer(503))
            return 0.0
        self.store.conn.execute("UPDATE outbox SET retry_reason=? WHERE oid=?", (reason, msg.oid))
        delay = self._backoff(attempts)
        log.info(
            "outbox: %s %s not delivered (%s); retry in %.2fs",
            msg.message_type,
            msg.message_id,
            reason,
            delay,
        )
        return delay

    def _finish(self, msg: OutMessage, state: str, status: int, response: bytes | None) -> None:
        self.store.conn.execute(
            "UPDATE outbox SET state=?, status=?, response=? WHERE oid=?", (state, status, response, msg.oid)
        )
