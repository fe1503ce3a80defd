"""The stub SUT's inbound handlers (gateway → SUT, contract §2): answers to other municipalities, J-LIS and the
certificate server, and what the counter operations wait for (転出証明書情報, e-applications, 個人番号).

Why apart from :mod:`simulators.stub.ops`: a handler here has no counter request behind it; its messages take
the ``SentAt`` and ``BusinessDate`` of the inbound envelope that caused them (contract §3).
"""

from __future__ import annotations

from dataclasses import replace

from conformance.identifiers import is_valid_my_number
from simulators.stub.core import INBOUND, StubSut
from simulators.stub.ops import _PERSON, _cert_info, _flag
from simulators.stub.record import (
    _ENV,
    DELETED,
    MOVING_OUT,
    REASONS,
    Ctx,
    Head,
    Refusal,
    all_inner,
    el,
    esc,
    fill_jdate,
    inner,
    text,
)


async def on_number(s: StubSut, h: Head, body: str) -> bytes | None:
    """NumberToDesignate (F23, M11): designate, the consequences, NoticeDestination; the waiting operation ends."""
    req, code, number = text(body, "RequestNo") or "", text(body, "JuminhyoCode") or "", text(body, "MyNumber")
    asked = s.number_requests.get(req)
    p = s.persons.get(code or (asked[0] if asked else ""))
    if p is not None and p.status != DELETED and number and p.mn != number:
        ctx = Ctx(h.sent_at, asked[1] if asked else h.day, asked[2] if asked else h.mid)
        old_card = p.card if p.mn is not None else None
        after = replace(p, mn=number, card=None if old_card else p.card)
        await s.change(ctx, p, after, "M11" if p.mn is None else "M03", jdate_of(ctx.day), ctx.day)
        await s.emit(ctx, "NoticeDestination",
                     f"<NoticeDestination><RequestNo>{s.new_id('D')}</RequestNo><JuminhyoCode>{after.code}"
                     f"</JuminhyoCode><MyNumber>{number}</MyNumber><Name>{after.name}</Name><BirthDate>{after.birth}"
                     f"</BirthDate><Destination>{after.addr}</Destination><HeadName>{after.head}</HeadName>"
                     "</NoticeDestination>", after.code)
        if old_card:  # the card of the old number is abolished (CS terminal, arrow 13)
            await s.emit(ctx, "CardStatusChange",
                         f"<CardStatusChange><ChangeNo>{s.new_id('S')}</ChangeNo><CardNo>{old_card}</CardNo>"
                         f"<JuminhyoCode>{after.code}</JuminhyoCode><NewStatus>廃止</NewStatus>"
                         "<ReasonText>個人番号の変更</ReasonText></CardStatusChange>", after.code)
    ev = s.number_done.get(req)
    if ev is not None:
        ev.set()
    return None


def jdate_of(day: str) -> str:
    return fill_jdate(f"<Western>{day}</Western>")


def _result(status: str, code: str, detail: str) -> str:
    return f"<Status>{status}</Status><Code>{code}</Code><Detail>{esc(detail)}</Detail>"


def _ictx(h: Head) -> Ctx:
    return Ctx(h.sent_at, h.day, h.mid)


async def on_moveout_request(s: StubSut, h: Head, body: str) -> bytes | None:
    """MoveOutCertRequest (F08): answered for the subjects 転出予定 to the requesting municipality."""
    move_in_lg = text(body, "MoveInLgCode") or h.sender[1]
    persons = [p for p in (s.find(x) for x in all_inner(body, "Subject"))
               if p is not None and p.status == MOVING_OUT and p.planned is not None and p.planned[0] == move_in_lg]
    if persons:
        await s.emit(_ictx(h), "MoveOutCertInfo", _cert_info(s, persons, move_in_lg, text(body, "RequestNo")),
                     persons[0].code, to_lg=move_in_lg, corr=h.mid)
    return None


async def on_moveout_info(s: StubSut, h: Head, body: str) -> bytes | None:
    """MoveOutCertInfo (F09): kept for the 特例転入 at the counter."""
    no = text(body, "CertificateNo")
    if no:
        s.certs.put(no, (text(body, "MoveOutLgCode") or h.sender[1], body, False))
    return None


async def on_eapplication(s: StubSut, h: Head, body: str) -> bytes | None:
    """EApplication (F30): kept for EApplicationProcessOp."""
    app = text(body, "ApplicationId")
    if app:
        s.eapps.put(app, (body, False))
    return None


async def on_movein_notice(s: StubSut, h: Head, body: str) -> bytes | None:
    """MoveInNotice (F13 as moving-out municipality): the move confirmed beside the planned one, 消除 (D05,
    no message); a second notice replaces the confirmed move."""
    when, addr = fill_jdate(inner(body, "MoveInDate") or ""), inner(body, "NewAddress") or ""
    persons = _PERSON.findall(body)
    for pe in persons:  # the one check that matters here: a wrong 個人番号 must not delete anybody
        mn = text(pe, "MyNumber")
        if mn and not is_valid_my_number(mn):
            raise Refusal("ID-MYNUMBER", "個人番号 check digit: a 個人番号 of the 転入通知 is not valid")
    for pe in persons:
        p = s.persons.get(text(pe, "JuminhyoCode") or "")
        if p is not None and p.planned is not None and p.status in (MOVING_OUT, DELETED):
            p.status, p.confirmed = DELETED, (when, addr)
            p.last = (f'<Reason code="D05">{esc(REASONS.get("D05", "D05"))}</Reason><EventDate>{when}</EventDate>'
                      f"<NotifiedDate>{h.day}</NotifiedDate><Seq>{max(p.seq, 1)}</Seq>")
    return None


async def on_wide_area(s: StubSut, h: Head, body: str) -> bytes | None:
    """WideAreaCopyRequest (F18): WideAreaCopyInfo to the issuing municipality; never 本籍・筆頭者."""
    issuing = text(body, "IssuingLgCode") or h.sender[1]
    req = text(body, "RequestNo") or s.new_id("W")
    p = s.find(inner(body, "Subject") or "")
    key = p.code if p is not None else req
    if p is None:
        result, members = _result("not-found", "WIDE-NOT-FOUND", "該当者なし"), ""
    elif p.status == DELETED:
        result, members = _result("refused", "WIDE-DELETED", "住民票は消除されています"), ""
    else:
        opts = inner(body, "Options") or ""
        rel, mn, code = (_flag(opts, t) for t in ("Relationship", "IncludeMyNumber", "IncludeJuminhyoCode"))
        chosen = s.household(p) if text(body, "Scope") == "世帯全員" else [p]
        result = "<Status>accepted</Status>"
        members = "".join(
            "<Member>" + (f"<JuminhyoCode>{m.code}</JuminhyoCode>" if code else "")
            + (el("MyNumber", m.mn) if mn else "")
            + f"<Name>{m.name}</Name><BirthDate>{m.birth}</BirthDate><Sex>{m.sex}</Sex>"
            + (m.household() if rel else "") + f"<Address>{m.addr}</Address>" + el("ResidentSince", m.since)
            + el("AddressSince", m.addr_since) + el("Foreign", m.foreign) + "</Member>" for m in chosen)
    await s.emit(_ictx(h), "WideAreaCopyInfo",
                 f"<WideAreaCopyInfo><RequestNo>{req}</RequestNo><Result>{result}</Result>{members}"
                 "</WideAreaCopyInfo>", key, to_lg=issuing, corr=h.mid)
    return None


async def on_certificate_data(s: StubSut, h: Head, body: str) -> bytes | None:
    """CertificateDataRequest (F27, F05; sync, 19): by 識別番号; never 個人番号 or 住民票コード."""
    req = text(body, "RequestNo") or s.new_id("Q")
    code = s.by_idno.get(text(body, "IdentificationNo") or "")
    p = s.persons.get(code or "")
    if p is None:
        out = f"<Result>{_result('not-found', 'CERT-NOT-FOUND', '識別番号に該当する住民なし')}</Result>"
    elif p.status == DELETED:
        out = f"<Result>{_result('refused', 'CERT-DELETED', '住民票は消除されています')}</Result>"
    else:
        request = inner(body, "Request") or ""
        opts = inner(request, "Options") or ""
        rel, honseki = _flag(opts, "Relationship"), _flag(opts, "Honseki")
        chosen = s.household(p) if text(request, "Scope") == "世帯全員" else [p]
        out = f"<Result><Status>accepted</Status></Result><IssuerLgCode>{s.lg}</IssuerLgCode>" + "".join(
            f"<Member><Name>{m.name}</Name><BirthDate>{m.birth}</BirthDate><Sex>{m.sex}</Sex><Address>{m.addr}"
            f"</Address>{m.household() if rel else ''}{m.history(honseki=honseki)}</Member>" for m in chosen)
    answer = (f"<CertificateData><RequestNo>{req}</RequestNo>{out}</CertificateData>")
    env = _ENV.format(mid=s.new_id(), corr=f"<CorrelationId>{h.mid}</CorrelationId>", mt="CertificateData",
                      sa="juki", sl=s.lg, ra=h.sender[0], rl=h.sender[1], sent=h.sent_at, day=h.day, retry="",
                      body=answer)
    return env.encode("utf-8")


INBOUND.update({
    "MoveOutCertRequest": on_moveout_request,
    "MoveOutCertInfo": on_moveout_info,
    "MoveInNotice": on_movein_notice,
    "WideAreaCopyRequest": on_wide_area,
    "EApplication": on_eapplication,
    "CertificateDataRequest": on_certificate_data,
    "NumberToDesignate": on_number,
})
