"""The fast stub SUT (``juki-harness load --sut stub``): the contract's counter operations and inbound answers
with the right consequences, in memory, at as little CPU per operation as possible.

Why it exists: a load run against the reference SUT measures the reference SUT (SQLite, lxml trees, one
outbox). The stub shows the harness's own ceiling. It is a measuring device, not a second reference SUT:
no persistence and bounded state (every map capped, oldest forgotten first). It implements every operation
and inbound message of the contract and passes the whole conformance suite (``juki-harness certify --sut URL``
against ``python -m simulators.stub``). What it sends must be right — the gateway validates every message (XSD
and rules) and the load test's cascade checks read them — so the XML comes from prebuilt templates filled with
fragments cut out of the request (already escaped) or escaped text.

Outbound: one keep-alive aiohttp session and ``StubLimits.lanes`` lanes, each sending in order; a person's
messages always take the same lane (``Change/Seq`` order), a 503 or a lost connection is retried with the same
MessageId and a RetryReason after the Retry-After the gateway names (bounded attempts). CS-terminal requests
(sync) are sent inline while the counter operation waits.

Limits (by design): envelopes are read with regular expressions and must use the default namespace (what the
harness sends); only the rare inbound types (``VALIDATED``: 戸籍・附票, 法務省通知, 個別記載事項, 住民票コード
変更の結果) are checked against the schema before they are acted on, the load test's types are not (a 転入通知
only has its 個人番号 check digits checked); plain HTTP only on its own side; 職権修正 of 本籍/外国人 items is
not processed; nothing survives a restart.

Usage::

    async with start_stub_sut(RefConfig(gateway_url=..., port=0)) as sut:   # str(sut) is its base URL
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Generic, TypeVar

import aiohttp
from aiohttp import web

from conformance.errors import Finding
from conformance.identifiers import make_juminhyo_code
from conformance.validate import Validator
from simulators.reference.config import RefConfig
from simulators.reference.core import MY_NUMBER_TARGETS
from simulators.stub.record import (
    _ENV,
    DELETED,
    NUMBER_TARGET,
    REASONS,
    RECEIVER,
    TERMINAL,
    Answer,
    Ctx,
    Head,
    Person,
    Refusal,
    document,
    el,
    esc,
    fill_jdate,
    inner,
    item,
    read,
    squash,
    text,
    western,
)

__all__ = ["INBOUND", "OPERATIONS", "StubLimits", "StubSut", "start_stub_sut"]

log = logging.getLogger("simulators.stub")
_XML = "application/xml; charset=utf-8"
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class StubLimits:
    """Caps of the in-memory state (oldest entry forgotten first) and of the outbound lanes.

    ``persons``: a national peak day records ≈ 200 k persons (fixtures and movers-in), ≈ 2.2 KB each with
    their indexes (measured with tracemalloc), so the default holds the whole day in ≈ 0.55 GB at most.
    ``seen``: MessageIds remembered for duplicates (a counter answer is kept with it, ≈ 3 KB).
    """

    persons: int = 250_000
    seen: int = 20_000
    certs: int = 20_000
    eapps: int = 20_000
    lanes: int = 8
    lane_queue: int = 20_000
    attempts: int = 6


def _spaceless(xml: str) -> str:
    return "".join(xml.split())


class Capped(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its oldest entries beyond ``cap`` (every map of the stub is one)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.cap:
            self.popitem(last=False)


class StubSut:
    """One running stub SUT: in-memory register, outbound lanes, HTTP server on ``cfg.host:cfg.port``."""

    def __init__(self, cfg: RefConfig, limits: StubLimits | None = None) -> None:
        self.cfg, self.lg = cfg, cfg.lg_code
        self.limits = lim = limits or StubLimits()
        self.port = cfg.port
        self.persons: Capped[str, Person] = Capped(lim.persons)
        self.by_idno: Capped[str, str] = Capped(lim.persons)
        # 氏名+生年月日 -> 住民票コード of everyone recorded with them, the latest last
        self.by_name: Capped[tuple[str, str], tuple[str, ...]] = Capped(lim.persons)
        self.by_mn: Capped[str, str] = Capped(lim.persons)
        self.by_rescard: Capped[str, str] = Capped(lim.persons)  # 在留カード等の番号 -> 住民票コード (F11)
        self.households: Capped[str, list[str]] = Capped(lim.persons)
        self.head_at: Capped[str, tuple[str, str]] = Capped(lim.persons)
        self.seen: Capped[str, tuple[int, bytes]] = Capped(lim.seen)
        self.certs: Capped[str, tuple[str, str, bool]] = Capped(lim.certs)  # no -> (from lg, body, used)
        self.eapps: Capped[str, tuple[str, bool]] = Capped(lim.eapps)  # id -> (body, processed)
        self.inflight: dict[str, asyncio.Future[bytes]] = {}
        #: 個人番号 requests (F23, F21) sent: request no -> (住民票コード, 処理日, the counter request's id), and
        #: the operations waiting on them
        self.number_requests: Capped[str, tuple[str, str, str]] = Capped(lim.seen)
        self.number_done: dict[str, asyncio.Event] = {}
        #: 住民票コード変更 (F24) sent: request no -> (old code, new code, 処理日, cause, origin, codes tried);
        #: the outcome per originating request: the new code, or "" when CS refused every one tried
        self.code_requests: Capped[str, tuple[str, str, str, str, str, int]] = Capped(lim.seen)
        self.code_results: Capped[str, str] = Capped(lim.seen)
        #: 戸籍 entries made here as 本籍地 (F12, F14): "c:"住民票コード or "n:"氏名|生年月日 -> (住民票コード, Name,
        #: BirthDate, Sex, Honseki) fragments
        self.koseki: Capped[str, tuple[str | None, str, str, str | None, str | None]] = Capped(lim.certs)
        #: 法務省通知 slips (F11): NoticeNo -> (処理, kind, category, before/after items, 住民票コード, printed)
        self.slips: Capped[str, tuple[str, str, str, list[str], str | None, bool]] = Capped(lim.certs)
        self._boot = secrets.token_hex(3)
        self._ids = itertools.count(1)
        self._receipts = itertools.count(1)
        self._hh = itertools.count(1)
        self._lanes: list[asyncio.Queue[tuple[str, str, str]]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._msg_url = cfg.gateway_url.rstrip("/") + "/msg"
        self._auth = {"Authorization": f"Bearer {cfg.token}", "Content-Type": _XML}
        self._validator: Validator | None = None
        self.pending = 0  # messages queued or being sent
        self.counts = {"sent": 0, "retried": 0, "refused": 0, "lost": 0, "operations": 0}

    # --- lifecycle ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, ssl=self.cfg.client_ssl()),
            timeout=aiohttp.ClientTimeout(total=self.cfg.http_timeout))
        self._lanes = [asyncio.Queue(self.limits.lane_queue) for _ in range(self.limits.lanes)]
        self._workers = [asyncio.create_task(self._lane(q)) for q in self._lanes]
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/counter", self._counter)
        app.router.add_post("/inbound", self._inbound)
        app.router.add_get("/health", self._health)
        app.router.add_get("/contract", self._contract)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, backlog=1024)
        await site.start()
        for addr in self._runner.addresses:
            if isinstance(addr, tuple) and len(addr) >= 2:
                self.port = int(addr[1])
                break

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message has been sent (or given up)."""
        end = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._workers:
            await self.drain(5.0)
        for t in self._workers:
            t.cancel()
        for t in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- sending --------------------------------------------------------------------------------------------
    def new_id(self, prefix: str = "S") -> str:
        return f"{prefix}-{self._boot}-{next(self._ids):08d}"

    def envelope(self, ctx: Ctx, mtype: str, body: str, *, to_lg: str | None = None, corr: str | None = None,
                 mid: str | None = None) -> tuple[str, str]:
        """(MessageId, envelope text with a ``{retry}`` slot) of one message this SUT sends."""
        mid = mid or self.new_id()
        sender = "counter" if mtype in TERMINAL else "juki"
        if corr is None and mtype in TERMINAL:
            corr = ctx.cause
        env = _ENV.format(mid=mid, corr=el("CorrelationId", corr), mt=mtype, sa=sender, sl=self.lg,
                          ra=RECEIVER[mtype], rl=to_lg or self.lg, sent=ctx.sent_at, day=ctx.day,
                          retry="{retry}", body=body.replace("{", "{{").replace("}", "}}"))
        return mid, env

    async def emit(self, ctx: Ctx, mtype: str, body: str, key: str, *, to_lg: str | None = None,
                   corr: str | None = None) -> None:
        """Queue one asynchronous message on the lane of ``key`` (one person's messages stay in order)."""
        mid, env = self.envelope(ctx, mtype, body, to_lg=to_lg, corr=corr)
        self.pending += 1
        await self._lanes[hash(key) % len(self._lanes)].put((mid, mtype, env))

    async def _lane(self, q: asyncio.Queue[tuple[str, str, str]]) -> None:
        while True:
            mid, mtype, env = await q.get()
            try:
                await self.post(mid, mtype, env)
            except Exception:  # a lane never dies: the message is counted lost and logged
                self.counts["lost"] += 1
                log.exception("stub: %s %s could not be sent", mtype, mid)
            finally:
                self.pending -= 1

    async def post(self, mid: str, mtype: str, env: str) -> tuple[int, str]:
        """POST to the gateway; 503 and connection errors retried (Retry-After honoured) with the same
        MessageId and a RetryReason, up to ``limits.attempts``, and a MunicipalNotice the agency answered
        with anything but accepted up to ``cfg.result_retries`` times; returns (status, answer text)."""
        assert self._session is not None
        reason = ""
        delay = self.cfg.retry_initial
        for attempt in range(self.limits.attempts):
            data = env.format(retry=el("RetryReason", reason or None)).encode("utf-8")
            try:
                async with self._session.post(self._msg_url, data=data, headers=self._auth) as resp:
                    answer = await resp.text()
                    agency = _refused_by_agency(mtype, resp.status, answer)
                    if agency and attempt < min(self.cfg.result_retries, self.limits.attempts - 1):  # F10
                        reason, wait = agency, delay
                    elif resp.status != 503:
                        if resp.status >= 400:
                            self.counts["refused"] += 1
                            log.warning("stub: the gateway refused %s %s: %s %s", mtype, mid, resp.status,
                                        " | ".join(re.findall(r"<Message>(.*?)</Message>", answer))[:600])
                        else:
                            self.counts["sent"] += 1
                        return resp.status, answer
                    else:
                        reason = "503 from gateway"
                        after = resp.headers.get("Retry-After", "")
                        wait = float(after) if re.fullmatch(r"\d+(\.\d+)?", after) else delay
            except (aiohttp.ClientError, TimeoutError) as e:
                reason, wait = f"no answer from gateway ({type(e).__name__})", delay
            if attempt + 1 < self.limits.attempts:
                self.counts["retried"] += 1
                await asyncio.sleep(min(wait, self.cfg.retry_max))
                delay = min(delay * 2, self.cfg.retry_max)
        self.counts["lost"] += 1
        log.warning("stub: %s %s given up after %d attempts (%s)", mtype, mid, self.limits.attempts, reason)
        return 503, ""

    async def ask(self, ctx: Ctx, mtype: str, body: str) -> tuple[str, str | None, str | None, str] | Answer:
        """A CS-terminal request (sync, arrow 13): (status, code, detail, answer body) or a held/refused one."""
        mid, env = self.envelope(ctx, mtype, body)
        status, answer = await self.post(mid, mtype, env)
        if status == 503:
            return Answer("held", "CS-NO-ANSWER", "CSからの応答を待っています")
        if status != 200:
            return Answer("refused", "CS-REFUSED", f"the gateway answered {status}")
        res = inner(answer, "Result") or ""
        return text(res, "Status") or "refused", text(res, "Code"), text(res, "Detail"), answer

    # --- the register -----------------------------------------------------------------------------------------
    def save(self, p: Person) -> None:
        old = self.persons.get(p.code)
        self.persons.put(p.code, p)
        if old is not None and old.hh != p.hh:
            with contextlib.suppress(KeyError, ValueError):
                self.households[old.hh].remove(p.code)
        members = self.households.get(p.hh)
        if members is None:
            self.households.put(p.hh, [p.code])
        elif p.code not in members:
            members.append(p.code)
        self.by_idno.put(p.idno, p.code)
        if p.mn:
            self.by_mn.put(p.mn, p.code)
        if p.foreign is not None:
            self.by_rescard.put(text(p.foreign, "ResidenceCardNo") or "", p.code)
        born = western(p.birth)
        key = (squash(p.name), born.isoformat() if born else p.birth)
        self.by_name.put(key, (*(c for c in self.by_name.get(key, ()) if c != p.code), p.code))
        if p.rel == "世帯主":
            self.head_at.put(p.addr, (p.hh, p.head))

    def household(self, p: Person) -> list[Person]:
        codes = self.households.get(p.hh) or [p.code]
        return [m for m in (self.persons.get(c) for c in codes) if m is not None and m.status != DELETED]

    def find(self, subject: str, at: str | None = None) -> Person | None:
        """The person a SubjectType/ApplicantType names: 住民票コード, else 個人番号, else 氏名+生年月日 (the
        latest recorded; with ``at``, an address's contents, the latest not deleted living there first)."""
        code = text(subject, "JuminhyoCode")
        if code:
            return self.persons.get(code)
        mn = text(subject, "MyNumber")
        if mn:
            code = self.by_mn.get(mn)
            return self.persons.get(code) if code else None
        name, birth = inner(subject, "Name"), western(inner(subject, "BirthDate"))
        if name is None or birth is None:
            return None
        codes = self.by_name.get((squash(name), birth.isoformat()), ())
        if at is not None and len(codes) > 1:
            where = _spaceless(at)
            for c in reversed(codes):
                p = self.persons.get(c)
                if p is not None and p.status != DELETED and _spaceless(p.addr) == where:
                    return p
        return self.persons.get(codes[-1]) if codes else None

    def alive(self, code: str | None, prefix: str, *, deleted_ok: bool = False) -> Person:
        p = self.persons.get(code or "")
        if p is None:
            raise Refusal(f"{prefix}-NOT-FOUND", f"no person with 住民票コード {code} is recorded here")
        if p.status == DELETED and not deleted_ok:
            raise Refusal(f"{prefix}-DELETED", f"住民票コード {code}: the record is deleted (消除)")
        return p

    def new_code(self) -> str:
        while True:
            code = make_juminhyo_code("".join(secrets.choice(string.digits) for _ in range(10)))
            if code not in self.persons:
                return code

    def new_idno(self) -> str:
        alphabet = string.digits + string.ascii_uppercase
        return "ID" + "".join(secrets.choice(alphabet) for _ in range(14))

    def new_household(self) -> str:
        return str(next(self._hh))

    def from_counter(self, raw: str, *, addr: str, event: str, hh: tuple[str, str, str],
                     code: str | None = None) -> Person:
        """A person being recorded, from a CounterPersonType (or ResidentType) cut out of the request."""
        name, birth, sex = inner(raw, "Name"), inner(raw, "BirthDate"), text(raw, "Sex")
        if name is None or birth is None or not sex:
            raise Refusal("MOVE-PERSON", "氏名, 生年月日 and 性別 are required for a person being recorded")
        return Person(code=code or text(raw, "JuminhyoCode") or self.new_code(), mn=text(raw, "MyNumber"),
                      name=name, birth=fill_jdate(birth), sex=sex, hh=hh[0], head=hh[1], rel=hh[2], addr=addr,
                      since=event, addr_since=event, honseki=inner(raw, "Honseki"), foreign=inner(raw, "Foreign"),
                      card=text(raw, "CardNo"), idno=self.new_idno())

    def rekey(self, old: str, new: str) -> None:
        """The record of ``old`` forgotten under that 住民票コード (F24: it is saved again under ``new``)."""
        p = self.persons.pop(old, None)
        members = self.households.get(p.hh) if p is not None else None
        if members is not None and old in members:
            members[members.index(old)] = new

    def recordable(self, code: str | None) -> None:
        old = self.persons.get(code or "")
        if old is not None and old.status != DELETED:
            raise Refusal("ALREADY-RECORDED", f"住民票コード {code} is already recorded here")

    # --- the consequences of a change (contract §6) ---------------------------------------------------------
    async def change(self, ctx: Ctx, before: Person | None, p: Person, code: str, event: str, notified: str, *,
                     card: bool = True, targets: tuple[str, ...] = (), previous: str | None = None) -> None:
        """Save ``p`` and send what the change causes, in the contract's order, on the person's lane.

        ``targets``: business systems besides 税務 that get a ResidentTransfer (the 個別記載事項 just recorded,
        F16); ``previous``: the 住民票コード before an M04 (IdentityNotice/PreviousJuminhyoCode, F24)."""
        addr_changed = before is None or before.addr != p.addr
        identity = code[0] in "AD" or before is None or addr_changed or before.name != p.name \
            or before.birth != p.birth or before.sex != p.sex or before.mn != p.mn or before.code != p.code
        identity = identity and code != "M10"  # an individual entry is no 本人確認情報 item
        if before is not None and before.seq and p.seq == 0:
            p.seq = before.seq
        if identity:
            p.seq += 1
        if code[0] == "A" and before is None:
            old = self.persons.get(p.code)  # re-recorded after a 消除: the sequence continues
            if old is not None:
                p.seq = old.seq + 1
                p.idno = old.idno
        reason = REASONS.get(code, code)
        ch = (f'<Reason code="{code}">{esc(reason)}</Reason><EventDate>{event}</EventDate>'
              f"<NotifiedDate>{notified}</NotifiedDate><Seq>{max(p.seq, 1)}</Seq>")
        p.last = ch
        self.save(p)
        k = p.code
        if identity:
            await self.emit(ctx, "IdentityNotice",
                            f"<IdentityNotice><Identity>{p.identity()}</Identity><Change>{ch}</Change>"
                            f"{el('PreviousJuminhyoCode', previous)}</IdentityNotice>", k)
        for target in (NUMBER_TARGET, *(t for t in dict.fromkeys(targets) if t != NUMBER_TARGET)):
            await self.emit(ctx, "ResidentTransfer",
                            f"<ResidentTransfer><TransferNo>{self.new_id('T')}</TransferNo><Target>{esc(target)}"
                            f"</Target><Resident>{p.resident(target in MY_NUMBER_TARGETS)}</Resident><Change>{ch}"
                            "</Change></ResidentTransfer>", k)
        await self.emit(ctx, "AddresseeRecord",
                        f"<AddresseeRecord><RecordNo>{self.new_id('R')}</RecordNo><Resident>{p.resident()}"
                        f"</Resident><Change>{ch}</Change></AddresseeRecord>", k)
        if p.foreign is not None:
            kind = {"A": "記載", "D": "消除"}.get(code[0], "修正")
            person = (f"<Name>{p.name}</Name><BirthDate>{p.birth}</BirthDate><Sex>{p.sex}</Sex>"
                      f"<Nationality>{inner(p.foreign, 'Nationality')}</Nationality>"
                      f"<ResidenceCardNo>{text(p.foreign, 'ResidenceCardNo')}</ResidenceCardNo>"
                      f"<Address>{p.addr}</Address>")
            await self.emit(ctx, "MunicipalNotice",
                            f"<MunicipalNotice><NoticeNo>{self.new_id('N')}</NoticeNo><LgCode>{self.lg}</LgCode>"
                            f"<Kind>{kind}</Kind><Person>{person}</Person><Change>{ch}</Change></MunicipalNotice>", k)
        h_lg = text(p.honseki, "LgCode") if p.honseki else None
        if p.foreign is None and h_lg and h_lg != self.lg and (code[0] == "A" or (code[0] == "M" and addr_changed)):
            person = (f"<JuminhyoCode>{p.code}</JuminhyoCode><Name>{p.name}</Name><BirthDate>{p.birth}</BirthDate>"
                      f"<Sex>{p.sex}</Sex><Honseki>{p.honseki}</Honseki>")
            await self.emit(ctx, "FuhyoNotice",
                            f"<FuhyoNotice><NoticeNo>{self.new_id('F')}</NoticeNo><AddressLgCode>{self.lg}"
                            f"</AddressLgCode><Person>{person}</Person><Address>{p.addr}</Address><AddressSince>"
                            f"{p.addr_since or event}</AddressSince><Change>{ch}</Change></FuhyoNotice>",
                            k, to_lg=h_lg)
        if card and p.card:
            day = (western(event) or date.fromisoformat(ctx.day)).isoformat()
            if code == "D03":
                await self.card_info(ctx, p, "失効", day)
            elif code == "D01" and p.planned is not None:
                _to, when, paddr, _ = p.planned
                deadline = ((western(when) or date.fromisoformat(ctx.day)) + timedelta(days=30)).isoformat()
                await self.card_info(ctx, p, "転出", day, paddr if paddr and "<Overseas>" not in paddr else None,
                                     deadline)
            elif code[0] == "M" and before is not None and (addr_changed or before.name != p.name):
                await self.card_info(ctx, p, "券面記載事項変更", day, p.addr)

    async def request_number(self, ctx: Ctx, p: Person, purpose: str = "新規指定") -> str:
        """NumberGenerationRequest (8→3): 新規指定 for a person new to Juki-Net (F23), 変更 (F21);
        NumberToDesignate answers it."""
        req = self.new_id("G")
        self.number_requests.put(req, (p.code, ctx.day, ctx.cause))
        self.number_done[req] = asyncio.Event()
        await self.emit(ctx, "NumberGenerationRequest",
                        f"<NumberGenerationRequest><RequestNo>{req}</RequestNo><Purpose>{purpose}</Purpose>"
                        f"<Identity>{p.identity()}</Identity></NumberGenerationRequest>", p.code)
        return req

    async def wait_numbers(self, requests: list[str]) -> bool:
        """Staff wait at the terminal (up to ``answer_timeout``) until every 個人番号 has been designated."""
        try:
            await asyncio.wait_for(asyncio.gather(*(self.number_done[r].wait() for r in requests)),
                                   self.cfg.answer_timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for r in requests:
                self.number_done.pop(r, None)

    async def card_info(self, ctx: Ctx, p: Person, event: str, day: str, addr: str | None = None,
                        deadline: str | None = None) -> None:
        await self.emit(ctx, "CardManagementInfo",
                        f"<CardManagementInfo><InfoNo>{self.new_id('K')}</InfoNo><CardNo>{p.card}</CardNo>"
                        f"<JuminhyoCode>{p.code}</JuminhyoCode><Event>{event}</Event><EventDate>{day}</EventDate>"
                        f"{el('Address', addr)}{el('ContinuedUseDeadline', deadline)}</CardManagementInfo>", p.code)

    def receipt(self, ctx: Ctx, title: str, persons: list[Person], items: list[str], kind: str = "受付票") -> str:
        members = [p.member(mn=True, code=True, honseki=True, state=True, card=True) for p in persons]
        return document(kind, title, ctx.day, self.lg, members, items)

    def idno_items(self, persons: list[Person]) -> list[str]:
        return [item(f"識別番号:{p.code}", p.idno) for p in persons]

    def here(self, addr: str | None, code: str, what: str) -> str:
        if addr is None or text(addr, "LgCode") != self.lg:
            raise Refusal(code, f"{what} must be an address in this municipality ({self.lg})")
        return addr

    def validator(self) -> Validator:
        """The conformance validator (schema + rules), built on first use: only ``VALIDATED`` types need it."""
        if self._validator is None:
            self._validator = Validator()
        return self._validator

    # --- HTTP surfaces ------------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.cfg.inbound_token}"

    def error(self, status: int, f: Finding, refused: Head | None = None) -> web.Response:
        """An ErrorReport envelope (not on the hot path: built from the same template)."""
        to = refused.sender if refused is not None else ("cs", self.lg)
        body = (f"<ErrorReport>{el('RefusedMessageId', esc(refused.mid) if refused else None)}<Finding>"
                f"<Code>{esc(f.code)}</Code><Message>{esc(f.message)}</Message></Finding></ErrorReport>")
        env = _ENV.format(mid=self.new_id("E"), corr=el("CorrelationId", esc(refused.mid) if refused else None),
                          mt="ErrorReport", sa="juki", sl=self.lg, ra=esc(to[0]), rl=esc(to[1]),
                          sent=refused.sent_at if refused else _now(), day=refused.day if refused else _today(),
                          retry="", body=body)
        return web.Response(status=status, body=env.encode("utf-8"), content_type="application/xml",
                            charset="utf-8")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "lg_code": self.lg, "stub": True,
                                  "outbox_pending": self.pending, **self.counts})

    async def _contract(self, request: web.Request) -> web.Response:
        from simulators.reference.app import CONTRACT_VERSION

        return web.json_response({"contract": CONTRACT_VERSION, "operations": list(OPERATIONS),
                                  "lg_code": self.lg, "implementation": "juki-harness stub SUT (load test)"})

    async def _envelope(self, request: web.Request) -> tuple[Head, str] | web.Response:
        """The header and body of an authorised, readable request, or the ErrorReport refusing it (401/400)."""
        if not self._authorised(request):
            return self.error(401, Finding("SUT-AUTH", "missing or wrong credential (Authorization: Bearer)"))
        got = read(await request.read())
        return self.error(400, got) if isinstance(got, Finding) else got

    async def _counter(self, request: web.Request) -> web.Response:
        got = await self._envelope(request)
        if isinstance(got, web.Response):
            return got
        h, body = got
        if h.mtype != "CounterRequest":
            return self.error(400, Finding("ENV-TYPE", f"the counter adapter takes CounterRequest, not {h.mtype}"),
                              h)
        seen = self.seen.get(h.mid)
        if seen is not None:
            return web.Response(status=seen[0], body=seen[1], content_type="application/xml", charset="utf-8")
        running = self.inflight.get(h.mid)
        if running is not None:  # the same request again while staff wait: one operation, one answer
            payload = await asyncio.shield(running)
            return web.Response(status=200, body=payload, content_type="application/xml", charset="utf-8")
        req = inner(body, "CounterRequest") or ""
        found = operation_of(req)
        day = text(req, "OperationDate")
        if found is None or not day:
            return self.error(400, Finding("COUNTER-NO-OP", "the CounterRequest needs OperationDate and one "
                                           "operation element"), h)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.inflight[h.mid] = fut
        try:
            payload = await self._operate(h, day, *found)
            fut.set_result(payload)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()
            raise
        finally:
            self.inflight.pop(h.mid, None)
        return web.Response(status=200, body=payload, content_type="application/xml", charset="utf-8")

    async def _operate(self, h: Head, day: str, op: str, body: str) -> bytes:
        ctx = Ctx(h.sent_at, day, h.mid)
        handler = OPERATIONS.get(op)
        self.counts["operations"] += 1
        if handler is None:
            res = Answer("refused", "COUNTER-UNKNOWN-OP", f"operation {op} is not implemented by the stub SUT")
        else:
            try:
                res = await handler(self, ctx, body)
            except Refusal as r:
                res = Answer("refused", r.code, r.detail)
            except Exception as e:  # a stub bug or an input it cannot read: an answer with a code, not a 500
                log.exception("stub: %s failed", op)
                res = Answer("refused", "STUB-INTERNAL", f"the stub SUT failed on {op}: {type(e).__name__}: {e}")
        result = (f"<Result><Status>{res.status}</Status>{el('Code', esc(res.code) if res.code else None)}"
                  f"{el('Detail', esc(res.detail) if res.detail else None)}</Result>")
        out = (f"<CounterResult>{result}<ReceiptNo>U{next(self._receipts):010d}</ReceiptNo>{res.documents}"
               "</CounterResult>")
        env = _ENV.format(mid=self.new_id(), corr=f"<CorrelationId>{h.mid}</CorrelationId>", mt="CounterResult",
                          sa="juki", sl=self.lg, ra=h.sender[0], rl=h.sender[1], sent=h.sent_at, day=day,
                          retry="", body=out.replace("{", "{{").replace("}", "}}")).format()
        payload = env.encode("utf-8")
        self.seen.put(h.mid, (200, payload))
        return payload

    async def _inbound(self, request: web.Request) -> web.Response:
        got = await self._envelope(request)
        if isinstance(got, web.Response):
            return got
        h, body = got
        actor, lg = h.receiver
        if lg != self.lg or not (actor == "juki" or (actor == "counter" and h.mtype == "EApplication")):
            return self.error(400, Finding("ENV-RECEIVER", f"this is the existing system of {self.lg}; the "
                                           f"message is addressed to {actor}/{lg}"), h)
        seen = self.seen.get(h.mid)
        if seen is not None:
            return web.Response(status=seen[0], body=seen[1] or None, content_type="application/xml",
                                charset="utf-8")
        handler = INBOUND.get(h.mtype)
        if handler is None and h.mtype not in ACCEPTED_UNPROCESSED:
            return self.error(400, Finding("ENV-TYPE", f"the existing system does not take {h.mtype}"), h)
        if h.mtype in VALIDATED:  # rare types off the load test's path: the real XSD and rules first
            checked = self.validator().check(await request.read())
            if not checked.ok:
                return self.error(400, checked.findings[0] if checked.findings else
                                  Finding("ENV-INVALID", f"the {h.mtype} is not valid"), h)
        try:
            answer = await handler(self, h, body) if handler is not None else None
        except Refusal as r:  # an inbound message the SUT cannot act on: refused, nothing done
            return self.error(400, Finding(r.code, r.detail), h)
        except Exception as e:
            log.exception("stub: inbound %s failed", h.mtype)
            return self.error(500, Finding("STUB-INTERNAL", f"the stub SUT failed on {h.mtype}: {e}"), h)
        if answer is None:
            self.seen.put(h.mid, (202, b""))
            return web.Response(status=202)
        self.seen.put(h.mid, (200, answer))
        return web.Response(status=200, body=answer, content_type="application/xml", charset="utf-8")


def _refused_by_agency(mtype: str, status: int, answer: str) -> str:
    """Why a MunicipalNotice must be sent again: the agency's answer (sync, through the gateway) did not
    accept it ("" when it did, or for any other type)."""
    if mtype != "MunicipalNotice" or status != 200:
        return ""
    res = inner(answer, "Result") or ""
    st = text(res, "Status") or ""
    return "" if st in ("accepted", "") else f"agency answered {st} {text(res, 'Code') or ''}".strip()


_OPEN = re.compile(r"<([A-Za-z]+)(?:\s[^>]*?)?(/?)>")


def operation_of(req: str) -> tuple[str, str] | None:
    """(operation element name, its content) of a CounterRequest's content, in linear time."""
    pos = 0
    for tag in ("OperationDate", "Staff"):
        end = req.find(f"</{tag}>", pos)
        if end >= 0:
            pos = end + len(tag) + 3
    m = _OPEN.search(req, pos)
    if m is None:
        return None
    if m.group(2):  # <SpecialMoveInPending/>
        return m.group(1), ""
    close = req.rfind(f"</{m.group(1)}>")
    return (m.group(1), req[m.end():close]) if close >= m.end() else None


def _now() -> str:
    from datetime import datetime

    from simulators.clock import JST

    return datetime.now(JST).replace(microsecond=0).isoformat()


def _today() -> str:
    return _now()[:10]


Operation = Callable[[StubSut, Ctx, str], Awaitable[Answer]]
Inbound = Callable[[StubSut, Head, str], Awaitable[bytes | None]]

#: CounterRequest operation element -> handler, inbound MessageType -> handler (filled by simulators.stub.ops)
OPERATIONS: dict[str, Operation] = {}
INBOUND: dict[str, Inbound] = {}
#: inbound types an existing system takes that the load test does not drive: answered 202, not processed
ACCEPTED_UNPROCESSED: frozenset[str] = frozenset()
#: inbound types checked against the schema and rules before they are acted on (a malformed one is refused 400
#: and changes nothing): rare, so the cost of a tree does not matter; the load test's types are read by regex
VALIDATED = frozenset({"FuhyoNotice", "KosekiEntryNotice", "IndividualEntryNotice", "MojNotice",
                       "ResidentCodeChangeResult"})


@asynccontextmanager
async def start_stub_sut(cfg: RefConfig, limits: StubLimits | None = None) -> AsyncIterator[StubSut]:
    """Run a stub SUT for the duration of the block (``str(sut)`` is its base URL)."""
    sut = StubSut(cfg, limits)
    try:
        await sut.start()
        yield sut
    finally:
        await sut.stop()
