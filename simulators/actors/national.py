"""全国サーバ (J-LIS): 本人確認情報 for queries, 個人番号とすべき番号, 住民票コード changes, 符号, and the
delivery of another municipality's 転出証明書情報 on arrow 4.

What it knows (a read-through view, so it survives a replay): its own seeded persons, the peers' residents
(other municipalities report to Juki-Net too), and the prefectural server's accepted notices, which win —
they are the latest word on the SUT's residents. Accepted 住民票コード changes re-key a person.

Numbers: a 個人番号 is handed out once, ever, per tenant. Candidates are derived from (tenant, RequestNo,
JuminhyoCode, attempt), checked against every number handed out or known, and recorded; the record is
rebuilt from the trace by ``apply`` (``NumberToDesignate`` sent). The same request again (a resend) gets the
same number. Answers carry CorrelationId = the request's CorrelationId (the SUT's original MessageId, kept by
the CS relay), else its MessageId.

符号 (情報提供用個人識別符号): ``S`` + 23 alphanumerics, stable per person (derived), not-found for an unknown
住民票コード.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from lxml import etree

from conformance.identifiers import make_my_number
from conformance.xmlsafe import parse
from simulators.base import Message, SendResult
from simulators.toolbox import (
    E,
    SimBase,
    child,
    corr,
    deep,
    identity_from_resident,
    identity_keys,
    jdate_key,
    kana_key,
    residents_in,
    result_el,
    seed_fields,
    sibling,
    stable_token,
    to_xml,
    txt,
)

DIGITS = "0123456789"


@lru_cache(maxsize=8192)
def _el(xml: str) -> etree._Element:
    """Parsed, shared, read-only: callers copy before emitting."""
    return parse(xml)


def _recoded(entry: dict[str, Any], new: str) -> dict[str, Any]:
    """An entry moved to its new 住民票コード (ResidentCodeChange): the identity carries the new code."""
    ident = deep(_el(entry["identity"]))
    jc_el = child(ident, "JuminhyoCode")
    if jc_el is not None:
        jc_el.text = new
    return {**entry, "identity": to_xml(ident), **identity_keys(ident)}


def _keys(entry: dict[str, Any]) -> dict[str, Any]:
    """The search keys of a store entry (computed from its XML when a store did not keep them)."""
    if "my_number" in entry and "kana" in entry:
        return entry
    return identity_keys(_el(entry["identity"]))


class NationalSimulator(SimBase, actor="national"):
    """全国サーバ."""

    def new_state(self) -> dict[str, Any]:
        return {
            "identities": {},  # seeded: 住民票コード -> {"identity": xml, and its search keys}
            "issued": {},  # 個人番号 handed out -> request key
            "requests": {},  # "RequestNo|JuminhyoCode" -> {"juminhyo_code", "purpose", "my_number"}
            "code_requests": {},  # RequestNo -> {"old", "new", "status"}
            "code_changes": {},  # old 住民票コード -> new
            "symbols": {},  # 住民票コード -> 符号
            "moveouts": {},  # CertificateNo -> {"from", "to", "request_no"}
            "queries": 0,
        }

    # --- the view ------------------------------------------------------------------------------------------
    def _sources(self, tenant: str | None) -> list[dict[str, dict[str, Any]]]:
        """Stores from the weakest to the strongest: seeds, peers, prefecture."""
        st = self.state(tenant)
        seeded = {jc: {"change": None, "deleted": False, **e} for jc, e in st["identities"].items()}
        out: list[dict[str, dict[str, Any]]] = [seeded]
        for actor in ("peer", "pref"):
            sim = sibling(self.port, actor)
            if sim is not None and hasattr(sim, "identities"):
                out.append(sim.identities(tenant))
        return out

    def _lookups(self, tenant: str | None) -> list[Callable[[str], dict[str, Any] | None]]:
        """``_sources`` one code at a time, from the strongest to the weakest."""
        st = self.state(tenant)

        def seeded(jc: str) -> dict[str, Any] | None:
            e = st["identities"].get(jc)
            return None if e is None else {"change": None, "deleted": False, **e}

        out: list[Callable[[str], dict[str, Any] | None]] = []
        for actor in ("pref", "peer"):
            sim = sibling(self.port, actor)
            if sim is not None and hasattr(sim, "identity"):
                out.append(lambda jc, sim=sim: sim.identity(tenant, jc))  # type: ignore[misc]
        return [*out, seeded]

    def view(self, tenant: str | None) -> dict[str, dict[str, Any]]:
        """住民票コード -> {"identity": xml, "change": xml | None, "deleted": bool}, code changes applied.
        Builds every person's entry: for one person, ``entry``."""
        merged: dict[str, dict[str, Any]] = {}
        for src in self._sources(tenant):
            merged.update(src)
        for old, new in self.state(tenant)["code_changes"].items():
            entry = merged.get(old)
            if entry is not None and new not in merged:
                merged[new] = _recoded(entry, new)
            merged.pop(old, None)
        return merged

    def entry(self, tenant: str | None, code: str) -> dict[str, Any] | None:
        """``view(tenant).get(code)``, reading only the codes involved: a national day's queries and 附票
        symbols must not cost a pass over every person (they did: quadratic over a long run)."""
        lookups = self._lookups(tenant)
        known: dict[str, dict[str, Any] | None] = {}

        def get(jc: str) -> dict[str, Any] | None:
            if jc not in known:
                known[jc] = next((e for e in (f(jc) for f in lookups) if e is not None), None)
            return known[jc]

        for old, new in self.state(tenant)["code_changes"].items():  # as view() applies them, in order
            e = get(old)
            if e is not None and get(new) is None:
                known[new] = _recoded(e, new)
            known[old] = None
        return get(code)

    def _current_code(self, tenant: str | None, jc: str) -> str:
        changes = self.state(tenant)["code_changes"]
        seen = set()
        while jc in changes and jc not in seen:
            seen.add(jc)
            jc = changes[jc]
        return jc

    def known_numbers(self, tenant: str | None) -> set[str]:
        st = self.state(tenant)
        out = set(st["issued"])
        for entry in self.view(tenant).values():
            n = _keys(entry)["my_number"]
            if n:
                out.add(n)
        return out

    def known_codes(self, tenant: str | None) -> set[str]:
        st = self.state(tenant)
        out = set(self.view(tenant))
        out.update(st["code_changes"])
        out.update(st["code_changes"].values())
        return out

    # --- queries -------------------------------------------------------------------------------------------
    def query(self, tenant: str | None, body: etree._Element) -> etree._Element:
        """IdentityQuery -> IdentityQueryResult (by 住民票コード, 個人番号, or kana + birth date [+ sex])."""
        hits: list[dict[str, Any]] = []
        jc = txt(body, "JuminhyoCode")
        number = txt(body, "MyNumber")
        attrs = child(body, "Attributes")
        if jc:
            entry = self.entry(tenant, self._current_code(tenant, jc))
            hits = [entry] if entry else []
        elif number:
            hits = [e for e in self.view(tenant).values() if _keys(e)["my_number"] == number]
        elif attrs is not None:
            kana = kana_key(txt(attrs, "NameKana"))
            birth = jdate_key(child(attrs, "BirthDate"))
            sex = txt(attrs, "Sex")
            for e in self.view(tenant).values():
                k = _keys(e)
                if kana and kana in k["kana"] and k["birth"] == birth and (not sex or k["sex"] == sex):
                    hits.append(e)
        self.state(tenant)["queries"] += 1
        out = E.IdentityQueryResult(E.QueryNo(txt(body, "QueryNo") or "Q"))
        if not hits:
            out.append(result_el("not-found", "NAT-NOT-FOUND", "該当する本人確認情報はありません"))
            return out
        out.append(result_el("accepted"))
        for e in hits:
            out.append(identity_from_resident(_el(e["identity"])))
        if len(hits) == 1 and hits[0].get("change"):
            last = deep(_el(hits[0]["change"]))
            last.tag = last.tag.rsplit("}", 1)[0] + "}LastChange"
            out.append(last)
        return out

    # --- numbers -------------------------------------------------------------------------------------------
    def _pick_number(self, tenant: str | None, key: str, current: str | None) -> str:
        st = self.state(tenant)
        prior = st["requests"].get(key)
        if prior and prior.get("my_number"):
            return str(prior["my_number"])
        taken = self.known_numbers(tenant)
        if current:
            taken.add(current)
        attempt = 0
        while True:
            first11 = stable_token("my-number", tenant or "", key, str(attempt), n=11, alphabet=DIGITS)
            attempt += 1
            if first11[0] == "0":
                continue
            n = make_my_number(first11)
            if n not in taken:
                return n

    @staticmethod
    def _request_key(body: etree._Element) -> str:
        jc = txt(body, "Identity/JuminhyoCode") or txt(body, "JuminhyoCode") or ""
        return f"{txt(body, 'RequestNo') or ''}|{jc}"

    def _record_number(self, st: dict[str, Any], key: str, jc: str, number: str) -> None:
        st["issued"][number] = key
        req = st["requests"].setdefault(key, {"juminhyo_code": jc, "purpose": None, "my_number": None})
        req["my_number"] = number

    # --- Simulator ----------------------------------------------------------------------------------------
    def apply(self, msg: Message, direction: str) -> None:
        st = self.state(msg.tenant)
        typ, body = msg.header.message_type, msg.body
        if direction == "in" and typ == "NumberGenerationRequest":
            key = self._request_key(body)
            st["requests"].setdefault(key, {"juminhyo_code": txt(body, "Identity/JuminhyoCode"),
                                            "purpose": txt(body, "Purpose"), "my_number": None})
        elif direction == "in" and typ == "ResidentCodeChange":
            st["code_requests"].setdefault(txt(body, "RequestNo") or "", {
                "old": txt(body, "OldJuminhyoCode"), "new": txt(body, "NewJuminhyoCode"), "status": None})
        elif direction == "out" and typ == "NumberToDesignate":
            number = txt(body, "MyNumber")
            if number:
                self._record_number(st, self._request_key(body), txt(body, "JuminhyoCode") or "", number)
        elif direction == "out" and typ == "ResidentCodeChangeResult":
            req = st["code_requests"].get(txt(body, "RequestNo") or "")
            status = txt(body, "Result/Status")
            if req is not None:
                req["status"] = status
                if status == "accepted" and req["old"] and req["new"]:
                    st["code_changes"][req["old"]] = req["new"]
        elif direction == "out" and typ == "MoveOutCertInfo":
            st["moveouts"][txt(body, "CertificateNo") or ""] = {
                "from": txt(body, "MoveOutLgCode"), "to": txt(body, "MoveInLgCode"),
                "request_no": txt(body, "RequestNo")}

    async def react(self, msg: Message) -> etree._Element | None:
        self.apply(msg, "in")
        t, typ, body = msg.tenant, msg.header.message_type, msg.body
        if typ == "IdentityQuery":
            return self.query(t, body)
        if typ == "SymbolAcquisitionNotice":
            return self.symbol(t, body)
        if typ == "NumberGenerationRequest":
            await self._designate(msg)
        elif typ == "ResidentCodeChange":
            await self._code_change(msg)
        return None

    async def _designate(self, msg: Message) -> None:
        t, body = msg.tenant, msg.body
        st = self.state(t)
        key = self._request_key(body)
        jc = txt(body, "Identity/JuminhyoCode") or ""
        number = self._pick_number(t, key, txt(body, "Identity/MyNumber"))
        self._record_number(st, key, jc, number)
        self.register(t, number, jc)
        answer = E.NumberToDesignate(E.RequestNo(txt(body, "RequestNo") or "R"), E.JuminhyoCode(jc),
                                     E.MyNumber(number))
        await self.send(t, self.to("cs"), "NumberToDesignate", answer, correlation_id=corr(msg))

    async def _code_change(self, msg: Message) -> None:
        t, body = msg.tenant, msg.body
        st = self.state(t)
        request_no = txt(body, "RequestNo") or "R"
        old, new = txt(body, "OldJuminhyoCode") or "", txt(body, "NewJuminhyoCode") or ""
        req = st["code_requests"].setdefault(request_no, {"old": old, "new": new, "status": None})
        if req["status"] is None:
            codes = self.known_codes(t)
            if old not in codes:
                req["status"], req["code"] = "not-found", "NAT-UNKNOWN-CODE"
            elif new in codes or new == old:
                req["status"], req["code"] = "refused", "NAT-CODE-IN-USE"
            else:
                req["status"], req["code"] = "accepted", None
                st["code_changes"][old] = new
        detail = {"NAT-UNKNOWN-CODE": f"住民票コード {old} は記録されていません",
                  "NAT-CODE-IN-USE": f"住民票コード {new} は既に使用されています"}.get(req.get("code") or "")
        self.register(t, old, new)
        answer = E.ResidentCodeChangeResult(E.RequestNo(request_no),
                                            result_el(req["status"], req.get("code"), detail),
                                            E.NewJuminhyoCode(new))
        await self.send(t, self.to("cs"), "ResidentCodeChangeResult", answer, correlation_id=corr(msg))

    def symbol(self, tenant: str | None, body: etree._Element) -> etree._Element:
        """SymbolAcquisitionNotice -> SymbolAcquisitionResult."""
        jc = self._current_code(tenant, txt(body, "JuminhyoCode") or "")
        out = E.SymbolAcquisitionResult(E.RequestNo(txt(body, "RequestNo") or "R"))
        addressee_no = txt(body, "AddresseeNo")
        if self.entry(tenant, jc) is None:
            out.append(result_el("not-found", "NAT-NOT-FOUND", f"住民票コード {jc} は記録されていません"))
            if addressee_no:
                out.append(E.AddresseeNo(addressee_no))
            return out
        sym = "S" + stable_token("symbol", tenant or "", jc, n=23)
        self.state(tenant)["symbols"][jc] = sym
        out.append(result_el("accepted"))
        if addressee_no:
            out.append(E.AddresseeNo(addressee_no))
        out.append(E.Symbol(sym))
        return out

    async def deliver_moveout(self, tenant: str | None, body: etree._Element,
                              correlation_id: str | None = None) -> SendResult:
        """Deliver another municipality's 転出証明書情報 to the SUT's CS on arrow 4 (used by the peers)."""
        res = await self.send(tenant, self.to("cs"), "MoveOutCertInfo", body, correlation_id=correlation_id)
        st = self.state(tenant)
        st["moveouts"][txt(body, "CertificateNo") or ""] = {
            "from": txt(body, "MoveOutLgCode"), "to": txt(body, "MoveInLgCode"),
            "request_no": txt(body, "RequestNo")}
        return res

    def seed(self, tenant: str | None, kind: str, data: dict[str, Any]) -> None:
        """kind "residents": persons Juki-Net knows (xml); "issued": {"numbers": [...]} not to reissue."""
        st = self.state(tenant)
        fields = seed_fields(data)
        for r in residents_in(data):
            jc = txt(r, "JuminhyoCode") or ""
            ident = identity_from_resident(r)
            st["identities"][jc] = {"identity": to_xml(ident), **identity_keys(ident)}
            self.register(tenant, jc, txt(r, "MyNumber"))
        for n in fields.get("numbers", []) if kind == "issued" else []:
            st["issued"][str(n)] = "seeded"
