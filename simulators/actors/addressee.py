"""団体内統合宛名システム: takes the SUT's resident records (18), gives each person a 団体内統合宛名番号,
provisions the intermediate server (16), and turns the intermediate's 符号 requests into 符号取得要求通知
to Juki-Net (7).

Why the number is derived from (tenant, 住民票コード): the same person always gets the same 宛名番号, whatever
order records arrive or are replayed in. The provision to the intermediate server carries no 個人番号 (the
platform links persons by 宛名番号 and 符号). Route 16→7→3: a ``SymbolRequest`` (16, from the intermediate)
is mapped 宛名番号 → 住民票コード, sent as ``SymbolAcquisitionNotice`` on 7 (sync; the CS asks national on 3),
and the answer goes back to the intermediate as ``SymbolAcquisitionResult`` on 16 — in the HTTP answer when
the catalogue makes ``SymbolRequest`` sync, else as a message of its own. An unknown 宛名番号 is answered
not-found (``ADR-UNKNOWN``) without asking Juki-Net.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformance.envelope import new_id
from simulators.base import Message
from simulators.toolbox import (
    E,
    SimBase,
    child,
    corr,
    deep,
    result_el,
    stable_token,
    to_xml,
    txt,
)

DIGITS = "0123456789"


class AddresseeSimulator(SimBase, actor="addressee"):
    """団体内統合宛名システム."""

    def new_state(self) -> dict[str, Any]:
        return {
            "records": {},  # 住民票コード -> {"resident", "change", "addressee_no", "message_id", "reason"}
            "by_no": {},  # 宛名番号 -> 住民票コード
            "_no_by_code": {},  # 住民票コード -> 宛名番号 (the index of by_no)
            "symbols": {},  # 宛名番号 -> 符号
            "symbol_requests": {},  # RequestNo -> {"addressee_no", "status", "symbol"}
            "provisions_sent": 0,
        }

    def addressee_no(self, tenant: str | None, jc: str) -> str:
        """The person's 団体内統合宛名番号 (assigned on first sight, stable)."""
        st = self.state(tenant)
        rec = st["records"].get(jc)
        if rec is not None:
            return str(rec["addressee_no"])
        no = st["_no_by_code"].get(jc)
        if no is not None and st["by_no"].get(no) == jc:
            return str(no)
        attempt = 0
        while True:
            no = "AD" + stable_token("addressee", tenant or "", jc, str(attempt), n=10, alphabet=DIGITS)
            attempt += 1
            if no not in st["by_no"]:
                st["by_no"][no] = jc
                st["_no_by_code"][jc] = no
                return no

    def _record(self, tenant: str | None, msg: Message) -> dict[str, Any] | None:
        st = self.state(tenant)
        resident = child(msg.body, "Resident")
        if resident is None:
            return None
        jc = txt(resident, "JuminhyoCode") or ""
        rec = st["records"].get(jc)
        if rec is not None and rec["message_id"] == msg.header.message_id:
            return rec  # type: ignore[no-any-return]
        no = self.addressee_no(tenant, jc)
        change = child(msg.body, "Change")
        reason = child(change, "Reason") if change is not None else None
        rec = st["records"][jc] = {
            "resident": to_xml(resident), "change": to_xml(change) if change is not None else None,
            "addressee_no": no, "message_id": msg.header.message_id,
            "reason": reason.get("code") if reason is not None else None,
        }
        return rec

    def apply(self, msg: Message, direction: str) -> None:
        st = self.state(msg.tenant)
        typ, body = msg.header.message_type, msg.body
        if direction == "in" and typ == "AddresseeRecord":
            self._record(msg.tenant, msg)
        elif direction == "in" and typ == "SymbolRequest":
            st["symbol_requests"].setdefault(txt(body, "RequestNo") or "", {
                "addressee_no": txt(body, "AddresseeNo"), "status": None, "symbol": None})
        elif direction == "out" and typ == "SymbolAcquisitionResult":
            req = st["symbol_requests"].setdefault(txt(body, "RequestNo") or "", {
                "addressee_no": txt(body, "AddresseeNo"), "status": None, "symbol": None})
            req["status"] = txt(body, "Result/Status")
            sym = txt(body, "Symbol")
            if sym:
                req["symbol"] = sym
                st["symbols"][txt(body, "AddresseeNo") or req["addressee_no"] or ""] = sym
        elif direction == "out" and typ == "IntermediateProvision":
            st["provisions_sent"] += 1

    async def react(self, msg: Message) -> etree._Element | None:
        self.apply(msg, "in")
        typ = msg.header.message_type
        if typ == "AddresseeRecord":
            await self._provision(msg)
        elif typ == "SymbolRequest":
            answer = await self._symbol(msg)
            mt = self.port.catalogue.message_types.get("SymbolRequest")
            if mt is not None and mt.mode == "sync":
                return answer
            await self.send(msg.tenant, self.to("intermediate"), "SymbolAcquisitionResult", answer,
                            correlation_id=corr(msg))
        return None

    async def _provision(self, msg: Message) -> None:
        t = msg.tenant
        rec = self._record(t, msg)
        resident = child(msg.body, "Resident")
        if rec is None or resident is None:
            return
        st = self.state(t)
        self.register(t, txt(resident, "JuminhyoCode"), rec["addressee_no"])
        prov = E.IntermediateProvision(E.ProvisionNo(new_id("PRV")), E.AddresseeNo(rec["addressee_no"]))
        sym = st["symbols"].get(rec["addressee_no"])
        if sym:
            prov.append(E.Symbol(sym))
        for name in ("Name", "BirthDate", "Sex", "Address", "Household"):
            c = child(resident, name)
            if c is not None:
                prov.append(deep(c))
        change = child(msg.body, "Change")
        if change is not None:
            prov.append(deep(change))
        await self.send(t, self.to("intermediate"), "IntermediateProvision", prov, correlation_id=corr(msg))

    async def _symbol(self, msg: Message) -> etree._Element:
        """The answer to a SymbolRequest (asks Juki-Net on 7 when the 宛名番号 is known)."""
        t, body = msg.tenant, msg.body
        st = self.state(t)
        request_no = txt(body, "RequestNo") or new_id("SR")
        no = txt(body, "AddresseeNo") or ""
        jc = st["by_no"].get(no)
        if jc is None:
            answer = E.SymbolAcquisitionResult(
                E.RequestNo(request_no),
                result_el("not-found", "ADR-UNKNOWN", f"宛名番号 {no} は登録されていません"),
                E.AddresseeNo(no))
        else:
            notice = E.SymbolAcquisitionNotice(E.RequestNo(request_no), E.JuminhyoCode(jc), E.AddresseeNo(no),
                                               E.Requestor("情報提供ネットワークシステム"))
            res = await self.ask(t, self.to("cs"), "SymbolAcquisitionNotice", notice,
                                  correlation_id=corr(msg))
            got = res.response.body if res.ok and res.response is not None else None
            if got is not None and etree.QName(got).localname == "SymbolAcquisitionResult":
                answer = E.SymbolAcquisitionResult(E.RequestNo(request_no))
                r = child(got, "Result")
                answer.append(deep(r) if r is not None else result_el("refused", "ADR-UPSTREAM"))
                answer.append(E.AddresseeNo(no))
                sym = txt(got, "Symbol")
                if sym:
                    answer.append(E.Symbol(sym))
                    st["symbols"][no] = sym
            else:
                status = "held" if res.status == 503 else "refused"
                answer = E.SymbolAcquisitionResult(
                    E.RequestNo(request_no),
                    result_el(status, f"ADR-UPSTREAM-{res.status}", "住基ネットから回答がありません"),
                    E.AddresseeNo(no))
        req = st["symbol_requests"].setdefault(request_no,
                                               {"addressee_no": no, "status": None, "symbol": None})
        req["status"] = txt(answer, "Result/Status")
        req["symbol"] = txt(answer, "Symbol")
        return answer
