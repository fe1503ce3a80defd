"""証明書交付サーバ (the SUT municipality's convenience-store issuance server): asks the SUT for certificate
data by 識別番号 (19, sync) and renders the certificate as a small real PDF for the centre (20).

Why a real PDF: the kiosk prints what it gets, and a test should be able to open it. It is hand-written PDF
1.4 with the non-embedded CJK font HeiseiMin-W3 (Adobe-Japan1, UniJIS-UTF16-H: text is UTF-16BE, so
characters beyond the BMP and variation sequences survive as code units), one page per copy (more when the
members do not fit), an exact xref table, and the SHA-256 of the bytes. No 個人番号 or 住民票コード is on
this route; the server serves its own municipality only (another LgCode is refused ``CERT-LG``). The SUT's
not-found or refusal is passed on as the IssuedCertificate's Result, so the centre can refuse the kiosk.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from lxml import etree

from conformance.errors import HarnessError
from conformance.residents import municipality_for
from conformance.xmlsafe import q
from simulators.base import Message
from simulators.toolbox import E, SimBase, child, corr, deep, result_el, txt

SEX = {"1": "男", "2": "女"}
LINES_PER_PAGE = 52
WRAP = 44


def _pdf_text(s: str) -> bytes:
    """A PDF hex string in UTF-16BE for the UniJIS-UTF16-H CMap."""
    return b"<" + s.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def _wrap(line: str) -> list[str]:
    if len(line) <= WRAP:
        return [line]
    return [line[i:i + WRAP] for i in range(0, len(line), WRAP)]


def build_pdf(pages: list[list[str]], *, title: str = "", created: datetime | None = None) -> bytes:
    """A minimal, valid PDF 1.4: one text page per entry of ``pages``."""
    objs: dict[int, bytes] = {}
    n_pages = max(1, len(pages))
    first_page = 6
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(n_pages))
    info_id = first_page + 2 * n_pages
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode("ascii")
    objs[3] = (b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiMin-W3 /Encoding /UniJIS-UTF16-H "
               b"/DescendantFonts [4 0 R] >>")
    objs[4] = (b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiMin-W3 "
               b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 5 >> "
               b"/FontDescriptor 5 0 R /DW 1000 >>")
    objs[5] = (b"<< /Type /FontDescriptor /FontName /HeiseiMin-W3 /Flags 6 /FontBBox [-123 -257 1001 910] "
               b"/ItalicAngle 0 /Ascent 723 /Descent -241 /CapHeight 709 /StemV 69 >>")
    for i in range(n_pages):
        lines = pages[i] if i < len(pages) else []
        ops = [b"BT", b"/F1 10 Tf", b"14 TL", b"50 800 Td"]
        for line in lines:
            ops.append(_pdf_text(line) + b" Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        page_id, content_id = first_page + 2 * i, first_page + 2 * i + 1
        objs[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
                         f"<< /F1 3 0 R >> >> /Contents {content_id} 0 R >>").encode("ascii")
        objs[content_id] = f"<< /Length {len(stream)} >>\nstream\n".encode("ascii") + stream + b"\nendstream"
    stamp = (created or datetime(2000, 1, 1)).strftime("D:%Y%m%d%H%M%S")
    objs[info_id] = (b"<< /Producer (juki-harness certserver) /Title " + _pdf_text(title or "証明書")
                     + f" /CreationDate ({stamp}) >>".encode("ascii"))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for oid in sorted(objs):
        offsets[oid] = len(out)
        out += f"{oid} 0 obj\n".encode("ascii") + objs[oid] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += f"xref\n0 {size}\n".encode("ascii") + b"0000000000 65535 f \n"
    for oid in range(1, size):
        out += f"{offsets[oid]:010d} 00000 n \n".encode("ascii")
    out += (f"trailer\n<< /Size {size} /Root 1 0 R /Info {info_id} 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode("ascii"))
    return bytes(out)


def _date_text(el: etree._Element | None) -> str:
    if el is None:
        return ""
    return txt(el, "Wareki") or txt(el, "Western") or txt(el, "Uncertain") or ""


def _address_text(el: etree._Element | None) -> str:
    if el is None:
        return ""
    overseas = txt(el, "Overseas")
    if overseas:
        return overseas
    head = "".join(txt(el, p) or "" for p in ("Prefecture", "City", "Town", "Block"))
    building = txt(el, "Building")
    return f"{head}\u3000{building}" if building else head


def _name_text(el: etree._Element | None) -> str:
    if el is None:
        return ""
    main = txt(el, "Kanji") or txt(el, "Latin") or txt(el, "Kana") or ""
    tsusho = txt(el, "Tsusho")
    former = txt(el, "FormerSurname")
    extra = "".join(f"（{label}：{v}）" for label, v in (("通称", tsusho), ("旧氏", former)) if v)
    return main + extra


def certificate_lines(data: etree._Element, kind: str, issued: datetime) -> list[str]:
    """The printed content of one copy of the certificate."""
    issuer = txt(data, "IssuerLgCode") or ""
    try:
        muni = municipality_for(issuer)
        mayor = f"{muni.prefecture}{muni.city}長"
    except HarnessError:
        mayor = f"地方公共団体コード {issuer} の長"
    lines = [kind, ""]
    for m in data.findall(q("Member")):
        rows = [f"氏名　{_name_text(child(m, 'Name'))}",
                f"生年月日　{_date_text(child(m, 'BirthDate'))}　性別　{SEX.get(txt(m, 'Sex') or '', '')}",
                f"住所　{_address_text(child(m, 'Address'))}"]
        if child(m, "Household") is not None:
            rows.append(f"世帯主　{txt(m, 'Household/HeadName')}　続柄　{txt(m, 'Household/Relationship')}")
        if child(m, "ResidentSince") is not None:
            rows.append(f"住民となった年月日　{_date_text(child(m, 'ResidentSince'))}")
        if child(m, "AddressSince") is not None:
            rows.append(f"住所を定めた年月日　{_date_text(child(m, 'AddressSince'))}")
        if child(m, "PreviousAddress") is not None:
            rows.append(f"前住所　{_address_text(child(m, 'PreviousAddress'))}")
        if child(m, "Honseki") is not None:
            rows.append(f"本籍　{txt(m, 'Honseki/Place')}　筆頭者　{txt(m, 'Honseki/HeadOfFamily')}")
        f = child(m, "Foreign")
        if f is not None:
            rows.append(f"国籍・地域　{txt(f, 'Nationality')}　区分　{txt(f, 'Category')}")
            if txt(f, "ResidenceStatus"):
                rows.append(f"在留資格　{txt(f, 'ResidenceStatus')}　在留期間　{txt(f, 'PeriodOfStay') or ''}"
                            f"　満了日　{txt(f, 'PeriodEnd') or ''}")
            rows.append(f"在留カード等の番号　{txt(f, 'ResidenceCardNo')}")
        if txt(m, "Remarks"):
            rows.append(f"備考　{txt(m, 'Remarks')}")
        for r in rows:
            lines.extend(_wrap(r))
        lines.append("")
    lines.append("この写しは、住民票の原本と相違ないことを証明する。")
    lines.append(f"{issued.date().isoformat()}　{mayor}")
    return lines


def render(data: etree._Element, kind: str, copies: int, issued: datetime) -> tuple[bytes, int]:
    """(PDF bytes, page count): each copy on its own page(s)."""
    lines = certificate_lines(data, kind, issued)
    per_copy = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    pages = [p for _ in range(max(1, copies)) for p in per_copy]
    return build_pdf(pages, title=kind, created=issued), len(pages)


class CertServerSimulator(SimBase, actor="certserver"):
    """証明書交付サーバ."""

    def new_state(self) -> dict[str, Any]:
        return {"issued": {}}  # RequestNo -> {"status", "code", "identification_no", "sha256", "pages"}

    def apply(self, msg: Message, direction: str) -> None:
        if direction == "in" and msg.header.message_type == "RelayedCertificateRequest":
            self.state(msg.tenant)["issued"].setdefault(txt(msg.body, "RequestNo") or "", {
                "status": None, "code": None, "identification_no": txt(msg.body, "IdentificationNo"),
                "sha256": None, "pages": None})

    async def react(self, msg: Message) -> etree._Element | None:
        if msg.header.message_type != "RelayedCertificateRequest":
            return None
        self.apply(msg, "in")
        t, body = msg.tenant, msg.body
        request_no = txt(body, "RequestNo") or "R"
        idno = txt(body, "IdentificationNo") or ""
        self.register(t, idno)
        rec = self.state(t)["issued"][request_no]
        out = E.IssuedCertificate(E.RequestNo(request_no))

        def refuse(status: str, code: str, detail: str) -> etree._Element:
            rec["status"], rec["code"] = status, code
            out.append(result_el(status, code, detail))
            return out

        if txt(body, "LgCode") != self.port.sut_lg:
            return refuse("refused", "CERT-LG",
                          f"この証明書交付サーバは {self.port.sut_lg} の証明書のみ交付します")
        request = child(body, "Request")
        ask = E.CertificateDataRequest(E.RequestNo(request_no), E.IdentificationNo(idno))
        if request is not None:
            ask.append(deep(request))
        res = await self.ask(t, ("juki", self.port.sut_lg), "CertificateDataRequest", ask,
                              correlation_id=corr(msg))
        data = res.response.body if res.ok and res.response is not None else None
        if data is None or etree.QName(data).localname != "CertificateData":
            return refuse("held" if res.status == 503 else "refused", f"CERT-UPSTREAM-{res.status}",
                          "既存住基システムから証明書データを取得できません")
        status = txt(data, "Result/Status") or "refused"
        if status != "accepted":
            code = txt(data, "Result/Code") or ("CERT-NOT-FOUND" if status == "not-found" else "CERT-REFUSED")
            return refuse(status, code, txt(data, "Result/Detail") or "証明書データがありません")
        if not data.findall(q("Member")):
            return refuse("refused", "CERT-EMPTY", "証明書に記載する者がいません")
        kind = txt(body, "Request/CertificateKind") or "住民票の写し"
        try:
            copies = int(txt(body, "Request/Copies") or "1")
        except ValueError:
            copies = 1
        pdf, pages = render(data, kind, copies, self.now(t))
        digest = hashlib.sha256(pdf).hexdigest()
        rec.update(status="accepted", code=None, sha256=digest, pages=pages)
        out.append(result_el("accepted"))
        out.append(E.Document(base64.b64encode(pdf).decode("ascii")))
        out.append(E.Sha256(digest))
        out.append(E.Pages(str(pages)))
        return out
