"""市町村CS, 都道府県サーバ, 全国サーバ: relays, order of 本人確認情報通知, queries, numbers, codes, 符号."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree
from test_simulators_support import SUT, FakePort, change, identity_notice, replay, residents_xml

from conformance.codec import jdate_el, person_identity_el
from conformance.identifiers import is_valid_my_number, make_juminhyo_code
from conformance.model import Resident
from conformance.residents import ResidentFactory
from simulators.actors.card import CardSimulator
from simulators.actors.cs import CsSimulator
from simulators.actors.national import NationalSimulator
from simulators.actors.peer import PeerSimulator
from simulators.actors.pref import PrefSimulator
from simulators.toolbox import E, txt

T = "T1"
JUKI = ("juki", SUT)
CS = ("cs", SUT)
COUNTER = ("counter", SUT)


@pytest.fixture
def port() -> FakePort:
    p = FakePort()
    for cls in (CsSimulator, PrefSimulator, NationalSimulator, PeerSimulator, CardSimulator):
        p.add(cls)
    return p


@pytest.fixture
def people() -> list[Resident]:
    f = ResidentFactory(11, SUT)
    return [f.resident() for _ in range(4)]


async def notify(port: FakePort, r: Resident, seq: int, code: str = "A04", prev: str | None = None) -> str:
    res = await port.inject(JUKI, CS, "IdentityNotice", identity_notice(r, seq, code, prev), T)
    assert res.status == 202
    return res.message_id


# --- CS relay and the prefecture's order check ----------------------------------------------------------
async def test_identity_notice_is_relayed_on_5_with_the_original_id(port: FakePort,
                                                                     people: list[Resident]) -> None:
    mid = await notify(port, people[0], 1)
    relayed = port.last("IdentityNotice")
    assert relayed.arrow == 5
    assert relayed.header.receiver_actor == "pref"
    assert relayed.header.correlation_id == mid
    persons = port.sims["pref"].snapshot(T)["persons"]
    assert persons[people[0].juminhyo_code]["last_seq"] == 1


@pytest.mark.parametrize(("seqs", "refused", "last"), [
    ([1, 2, 3], [], 3),
    ([1, 3], [3], 1),
    ([2], [2], 0),
    ([1, 2, 2], [2], 2),
    ([1, 1], [1], 1),
    ([1, 3, 2, 3], [3], 3),
])
async def test_pref_refuses_notices_out_of_order(port: FakePort, people: list[Resident], seqs: list[int],
                                                 refused: list[int], last: int) -> None:
    for s in seqs:
        await notify(port, people[0], s, "A04" if s == 1 else "M01")
    got = [int(txt(m.body, "Change/Seq") or 0) for m, r in port.refused if r.code == "PREF-ORDER"]
    assert got == refused
    persons = port.sims["pref"].snapshot(T)["persons"]
    assert persons.get(people[0].juminhyo_code, {"last_seq": 0})["last_seq"] == last


async def test_pref_accepts_the_same_message_again_and_a_restart_after_deletion(port: FakePort,
                                                                             people: list[Resident]) -> None:
    pref = port.sims["pref"]
    r = people[0]
    await notify(port, r, 1)
    first = port.last("IdentityNotice")
    pref.apply(first, "in")  # the gateway's apply and a replay: nothing happens twice
    assert await pref.react(first) is None
    await notify(port, r, 2, "D01")
    await notify(port, r, 1, "A01")  # moved back in: a new record starts at 1
    assert not port.refused
    p = pref.snapshot(T)["persons"][r.juminhyo_code]
    assert (p["last_seq"], p["deleted"]) == (1, False)
    assert [h["reason"] for h in p["history"]] == ["A04", "D01", "A01"]


async def test_pref_follows_a_change_of_juminhyo_code(port: FakePort, people: list[Resident]) -> None:
    r = people[0]
    await notify(port, r, 1)
    await notify(port, r, 2, "M01")
    new_code = make_juminhyo_code("9876543210")
    moved = replace(r, juminhyo_code=new_code)
    await notify(port, moved, 3, "M04", prev=r.juminhyo_code)
    assert not port.refused
    ids = port.sims["pref"].identities(T)
    assert new_code in ids and r.juminhyo_code not in ids


# --- 本人確認情報照会 (13 → 3 → 4 → 14) --------------------------------------------------------------------
def query(**key: str) -> etree._Element:
    q = E.IdentityQuery(E.QueryNo("Q-1"), E.Purpose("本人確認"))
    if "jc" in key:
        q.append(E.JuminhyoCode(key["jc"]))
    elif "my" in key:
        q.append(E.MyNumber(key["my"]))
    else:
        q.append(E.Attributes(E.NameKana(key["kana"]), key["birth"]))
    return q


@pytest.mark.parametrize("by", ["jc", "my", "attributes"])
async def test_identity_query_by_each_key(port: FakePort, people: list[Resident], by: str) -> None:
    r = people[1]
    await notify(port, r, 1)
    assert r.my_number is not None and r.name.kana is not None
    key = {"jc": {"jc": r.juminhyo_code}, "my": {"my": r.my_number},
           "attributes": {"kana": r.name.kana.replace("\u3000", " "),
                          "birth": jdate_el("BirthDate", r.birth_date)}}[by]
    res = await port.inject(COUNTER, CS, "IdentityQuery", query(**key), T)  # type: ignore[arg-type]
    assert res.status == 200 and res.response is not None
    assert port.last("IdentityQuery").arrow == 3  # the CS asked the national server
    body = res.response.body
    assert txt(body, "Result/Status") == "accepted"
    assert [txt(i, "JuminhyoCode") for i in body.iter("{*}Identity")] == [r.juminhyo_code]
    assert txt(body, "LastChange/Seq") == "1"


async def test_identity_query_finds_seeded_and_peer_persons_and_reports_not_found(
        port: FakePort, people: list[Resident]) -> None:
    port.sims["national"].seed(T, "residents", {"xml": residents_xml(people[2])})
    peer_lg = "012238"
    port.sims["peer"].seed(T, "residents", {"xml": residents_xml(people[3]), "lg_code": peer_lg})
    for r in (people[2], people[3]):
        res = await port.inject(COUNTER, CS, "IdentityQuery", query(jc=r.juminhyo_code), T)
        assert res.response is not None and txt(res.response.body, "Result/Status") == "accepted"
    res = await port.inject(COUNTER, CS, "IdentityQuery", query(jc=people[0].juminhyo_code), T)
    assert res.response is not None
    assert txt(res.response.body, "Result/Status") == "not-found"
    assert res.response.body.find("{*}Identity") is None


async def test_cs_terminal_shows_held_when_the_national_server_is_down(port: FakePort,
                                                                        people: list[Resident]) -> None:
    port.down.add("national")
    res = await port.inject(COUNTER, CS, "IdentityQuery", query(jc=people[0].juminhyo_code), T)
    assert res.response is not None
    assert (txt(res.response.body, "Result/Status"), txt(res.response.body, "Result/Code")) == \
        ("held", "CS-UPSTREAM-503")


# --- 個人番号とすべき番号 (8 → 3 → 4 → 9) ------------------------------------------------------------------
def generation_request(r: Resident, request_no: str, purpose: str = "新規指定") -> etree._Element:
    ident = person_identity_el("Identity", replace(r, my_number=None) if purpose == "新規指定" else r)
    return E.NumberGenerationRequest(E.RequestNo(request_no), E.Purpose(purpose), ident)


async def test_number_to_designate_is_new_valid_and_correlated(port: FakePort,
                                                                people: list[Resident]) -> None:
    r = people[0]
    res = await port.inject(JUKI, CS, "NumberGenerationRequest", generation_request(r, "R-1"), T)
    assert port.last("NumberGenerationRequest").arrow == 3
    ntd = port.last("NumberToDesignate")
    assert ntd.arrow == 9 and ntd.header.receiver_actor == "juki"
    assert ntd.header.correlation_id == res.message_id
    number = txt(ntd.body, "MyNumber") or ""
    assert is_valid_my_number(number)
    assert number != r.my_number
    assert txt(ntd.body, "JuminhyoCode") == r.juminhyo_code
    assert number in port.registered[T]


async def test_numbers_are_never_repeated_also_after_replay(port: FakePort, people: list[Resident]) -> None:
    for r in people:
        await notify(port, r, 1)  # national knows their current numbers
    for i in range(20):
        await port.inject(JUKI, CS, "NumberGenerationRequest", generation_request(people[i % 4], f"R-{i}"), T)
    first = [txt(m.body, "MyNumber") for m in port.of_type("NumberToDesignate") if m.arrow == 4]
    assert len(first) == len(set(first)) == 20
    assert not set(first) & {r.my_number for r in people}
    # a restarted national server (state from the trace through apply only) never hands them out again
    fresh = replay(port, NationalSimulator)
    assert set(fresh.snapshot(T)["issued"]) == set(first)
    fresh.port.sims["national"] = fresh
    fresh.port.add(CsSimulator)
    for i in range(20, 40):
        await fresh.port.inject(JUKI, CS, "NumberGenerationRequest",
                                generation_request(people[i % 4], f"R-{i}"), T)
    second = [txt(m.body, "MyNumber") for m in fresh.port.of_type("NumberToDesignate") if m.arrow == 4]
    assert len(second) == 20 and not set(second) & set(first) and len(set(second)) == 20


async def test_the_same_request_again_gets_the_same_number(port: FakePort, people: list[Resident]) -> None:
    for _ in range(2):
        await port.inject(JUKI, CS, "NumberGenerationRequest", generation_request(people[0], "R-same"), T)
    a, b = (txt(m.body, "MyNumber") for m in port.of_type("NumberToDesignate") if m.arrow == 4)
    assert a == b


async def test_number_change_never_returns_the_current_number(port: FakePort, people: list[Resident]) -> None:
    r = people[0]
    await port.inject(JUKI, CS, "NumberGenerationRequest", generation_request(r, "R-chg", "変更"), T)
    assert txt(port.last("NumberToDesignate").body, "MyNumber") not in (None, r.my_number)


# --- 住民票コード変更 -------------------------------------------------------------------------------------
def code_change(old: str, new: str, request_no: str = "RC-1") -> etree._Element:
    return E.ResidentCodeChange(E.RequestNo(request_no), E.OldJuminhyoCode(old), E.NewJuminhyoCode(new),
                                change("M04", 2))


@pytest.mark.parametrize(("case", "status", "code"), [
    ("free", "accepted", None),
    ("in-use", "refused", "NAT-CODE-IN-USE"),
    ("unknown-old", "not-found", "NAT-UNKNOWN-CODE"),
])
async def test_resident_code_change(port: FakePort, people: list[Resident], case: str, status: str,
                                    code: str | None) -> None:
    a, b = people[0], people[1]
    await notify(port, a, 1)
    await notify(port, b, 1)
    free = make_juminhyo_code("1234509876")
    old, new = {"free": (a.juminhyo_code, free), "in-use": (a.juminhyo_code, b.juminhyo_code),
                "unknown-old": (people[2].juminhyo_code, free)}[case]
    res = await port.inject(JUKI, CS, "ResidentCodeChange", code_change(old, new), T)
    answer = port.last("ResidentCodeChangeResult")
    assert answer.arrow == 9 and answer.header.correlation_id == res.message_id
    assert (txt(answer.body, "Result/Status"), txt(answer.body, "Result/Code")) == (status, code)
    found = await port.inject(COUNTER, CS, "IdentityQuery", query(jc=free), T)
    assert found.response is not None
    assert txt(found.response.body, "Result/Status") == ("accepted" if case == "free" else "not-found")


async def test_one_persons_entry_is_what_the_whole_view_says_without_building_it(
        port: FakePort, people: list[Resident]) -> None:
    """Queries by 住民票コード and 符号 requests read one person (``NationalSimulator.entry``); across seeds,
    peers, the prefecture and chained code changes that must equal the whole view's entry, and it must not
    build every person's entry (that made a national day's run quadratic)."""
    national = port.sims["national"]
    assert isinstance(national, NationalSimulator)
    national.seed(T, "residents", {"xml": residents_xml(people[2])})
    port.sims["peer"].seed(T, "residents", {"xml": residents_xml(people[3]), "lg_code": "012238"})
    await notify(port, people[0], 1)
    await notify(port, people[1], 1)
    first, second = make_juminhyo_code("1234509876"), make_juminhyo_code("2234509876")
    for i, (old, new) in enumerate([(people[0].juminhyo_code, first), (first, second),
                                    (people[2].juminhyo_code, people[1].juminhyo_code)]):
        await port.inject(JUKI, CS, "ResidentCodeChange", code_change(old, new, f"RC-{i}"), T)
    view = national.view(T)
    codes = national.known_codes(T) | {r.juminhyo_code for r in people} | {make_juminhyo_code("3234509876")}
    assert second in view and first not in view and people[0].juminhyo_code not in view
    for sim in ("pref", "peer"):  # from here on, building every person's entry fails the test
        port.sims[sim].identities = None
    for code in sorted(codes):
        assert national.entry(T, code) == view.get(code), code
    res = await port.inject(COUNTER, CS, "IdentityQuery", query(jc=people[0].juminhyo_code), T)
    assert res.response is not None and txt(res.response.body, "Result/Status") == "accepted"
    assert [txt(i, "JuminhyoCode") for i in res.response.body.iter("{*}Identity")] == [second]


# --- 符号 ------------------------------------------------------------------------------------------------
async def test_symbol_for_a_known_person_is_stable_and_unknown_is_not_found(port: FakePort,
                                                                             people: list[Resident]) -> None:
    await notify(port, people[0], 1)
    answers = []
    for jc in (people[0].juminhyo_code, people[0].juminhyo_code, people[1].juminhyo_code):
        body = E.SymbolAcquisitionNotice(E.RequestNo("S-1"), E.JuminhyoCode(jc), E.AddresseeNo("AD1"))
        res = await port.inject(("addressee", SUT), CS, "SymbolAcquisitionNotice", body, T)
        assert res.response is not None
        answers.append(res.response.body)
    assert txt(answers[0], "Symbol") == txt(answers[1], "Symbol")
    assert len(txt(answers[0], "Symbol") or "") == 24
    assert txt(answers[2], "Result/Status") == "not-found" and txt(answers[2], "Symbol") is None


# --- relays to peers and J-LIS card ------------------------------------------------------------------------
def fuhyo(r: Resident, honseki_lg: str) -> etree._Element:
    assert r.honseki is not None
    person = E.Person(E.JuminhyoCode(r.juminhyo_code))
    person.extend(person_identity_el("X", r).findall("{*}Name"))
    person.append(jdate_el("BirthDate", r.birth_date))
    person.append(E.Sex(r.sex))
    person.append(E.Honseki(E.Place(r.honseki.place), E.LgCode(honseki_lg), E.HeadOfFamily("甲野　太郎")))
    addr = person_identity_el("X", r).find("{*}Address")
    assert addr is not None
    return E.FuhyoNotice(E.NoticeNo("F-1"), E.AddressLgCode(SUT), person, addr,
                         jdate_el("AddressSince", r.birth_date), change("A04", 1))


@pytest.mark.parametrize("addressed", ["receiver", "body"])
async def test_fuhyo_notice_reaches_the_honseki_peer(port: FakePort, people: list[Resident],
                                                     addressed: str) -> None:
    peer_lg = "325236"
    receiver = ("cs", peer_lg) if addressed == "receiver" else CS
    res = await port.inject(JUKI, receiver, "FuhyoNotice", fuhyo(people[0], peer_lg), T)
    relayed = port.last("FuhyoNotice")
    assert (relayed.arrow, relayed.header.receiver_actor, relayed.header.receiver_lg) == (1, "peer", peer_lg)
    assert relayed.header.correlation_id == res.message_id
    assert people[0].juminhyo_code in port.sims["peer"].muni(T, peer_lg)["fuhyo"]


async def test_cs_refuses_a_notice_it_cannot_address(port: FakePort, people: list[Resident]) -> None:
    await port.inject(JUKI, CS, "FuhyoNotice", fuhyo(people[0], SUT), T)
    assert [r.code for _, r in port.refused] == ["CS-DEST"]


async def test_card_traffic_goes_to_jlis_on_6(port: FakePort, people: list[Resident]) -> None:
    r = people[0]
    ident = person_identity_el("X", r)
    addr = ident.find("{*}Address")
    assert addr is not None
    addr.tag = "{urn:juki-harness:1}Destination"
    dest = E.NoticeDestination(E.RequestNo("N-1"), E.JuminhyoCode(r.juminhyo_code), E.MyNumber(r.my_number),
                               ident.find("{*}Name"), jdate_el("BirthDate", r.birth_date), addr)
    await port.inject(JUKI, CS, "NoticeDestination", dest, T)
    assert port.last("NoticeDestination").arrow == 6
    assert r.juminhyo_code in port.sims["card"].snapshot(T)["destinations"]
