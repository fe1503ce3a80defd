"""Turn a schedule into requests: what each action sends, which residents must exist first, and which messages
its route requires before the cascade counts as done.

Why built on demand: a national peak day is ≈ 525,000 actions. Prepared ahead as one file (≈ 1.3 KB an
action) it took minutes to build and gigabytes in every Locust process. A ``Planner`` instead builds one
action's requests from the action alone — its function and its seed — by the same builders the conformance
scenarios use (``conformance.residents``, ``conformance.scenario`` XML helpers, ``conformance.envelope``), so
every process (the runner for the fixtures, each Locust process for its share) builds the same person for the
same action, and a run with workers sends what one process sends for the same seed.

API::

    Tenant(tenant, sut_lg, peers)                          from POST /control/tenants
    planner = Planner(tenant, day, compress)
    planner.fixtures(action) -> list[Step]   in order, before the clock starts: the person the action finds
                                             recorded (職権記載), and a 転出 for a 転出証明書情報 request
    planner.pool_fixtures(actions) -> list[Step]   the pooled persons (copy, kiosk) those actions use
    planner.centre_cards(actions) -> [(住民票コード, cert serial)]   kiosk users' cards, to register with the
                                             centre once the SUT has given their persons a 識別番号
    planner.action(action) -> {"i", "t" (run seconds), "fn", "role", "steps", "require", "jcode"}
    planner.ids(action) -> (住民票コード, 個人番号)   of its person, registered with the tenant before the run
    Step = {"kind": "counter", "body": envelope text} | {"kind": "send", "body": control /send JSON}
         | {"kind": "wait", "arrow": n, "type": T, "key": K}   until the message of type T on arrow n whose body
                                   holds K has been delivered to the SUT (its delivery record is in the trace)
    require = [[arrow, MessageType, key], ...]   messages the route requires; key = 住民票コード, or the KioskId
                                   (kiosk) or RequestNo (広域交付) when the route's messages carry no 住民票コード
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from conformance.envelope import build, header, new_id
from conformance.identifiers import make_juminhyo_code, make_my_number
from conformance.model import Resident
from conformance.residents import FakerSeat, ResidentFactory, municipality_for
from conformance.scenario import address_xml, counter_person_xml, jdate_xml, name_xml, resident_xml, subject_xml
from conformance.xmlsafe import NS, parse
from load.model import FUNCTIONS, Action

JST = timezone(timedelta(hours=9))
Step = dict[str, Any]

#: the SUT's own messages each function's route requires, per person (arrow, type); see docs/sut-contract.md §3
CHANGE = [(8, "IdentityNotice"), (21, "ResidentTransfer"), (18, "AddresseeRecord")]
REQUIRED: dict[str, list[tuple[int, str]]] = {
    "move_in": [*CHANGE, (8, "MoveInNotice")],
    "move_out": CHANGE,
    "tenkyo": CHANGE,
    "copy": [],
    "card_issue": [(13, "CardIssuanceRequest"), (10, "CardManagementInfo")],
    "identity_query": [(13, "IdentityQuery")],
    "wide_area_copy": [(8, "WideAreaCopyInfo")],
    "peer_moveout_cert": [(8, "MoveOutCertInfo")],
    "special_move_in": [*CHANGE, (8, "MoveInNotice"), (10, "CardManagementInfo")],
    "e_application": [(8, "IdentityNotice"), (8, "MoveOutCertInfo")],
    "kiosk": [(32, "PrintedCertificate")],  # keyed by KioskId: the kiosk route never carries a 住民票コード
}
#: the deliveries a step waits for (arrow, type): the 転出証明書情報 J-LIS relays before a 特例転入, the
#: e-application My Naportal passes before an online 転出 is processed
WAITED = frozenset({(9, "MoveOutCertInfo"), (35, "EApplication")})
#: functions this version drives; the others are in the model and the report but not sent (docs/load.md)
DRIVEN = frozenset(REQUIRED)
#: functions whose persons may serve several actions (nothing they wait for is keyed by the person), so the
#: fixtures stay bounded: action i uses pooled person i mod POOL_SIZE (``Planner.pooled``)
POOLED = frozenset({"copy", "kiosk"})
POOL_SIZE = 64


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant: str
    sut_lg: str
    peers: tuple[str, ...]


def _element(text: str) -> Any:
    root = parse(f'<_w xmlns="{NS}">{text}</_w>')
    return next(c for c in root if isinstance(c.tag, str))


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Builder:
    def __init__(self, tenant: Tenant, day: date) -> None:
        self.t = tenant
        self.day = day
        self.sent_at = datetime.combine(day, datetime.min.time(), JST).replace(hour=9)
        # one Faker each for residents and for addresses, reseeded per action (a new one costs ~1.5 ms)
        self.people = FakerSeat()
        self._places = FakerSeat()

    def counter(self, op: str, inner: str) -> Step:
        el = _element(f"<CounterRequest><OperationDate>{self.day.isoformat()}</OperationDate>"
                      f"<Staff>負荷試験</Staff><{op}>{inner}</{op}></CounterRequest>")
        h = header("CounterRequest", ("counter", self.t.sut_lg), ("juki", self.t.sut_lg),
                   sent_at=self.sent_at, business_date=self.day)
        return {"kind": "counter", "op": op, "body": build(h, el).decode("utf-8")}

    def send(self, mtype: str, body: str, frm: tuple[str, str], to: str = "cs") -> Step:
        xml = body.replace(f"<{mtype}>", f'<{mtype} xmlns="{NS}">', 1)
        return {"kind": "send", "op": mtype, "body": {
            "actor": frm[0], "lg_code": frm[1], "to": to, "to_lg": self.t.sut_lg, "type": mtype,
            "body": xml, "correlation_id": None, "business_date": self.day.isoformat(), "raw": None}}

    def record(self, r: Resident) -> Step:
        """職権記載 of a fixture person (how conformance scenarios load residents into the SUT)."""
        since = r.resident_since or r.birth_date
        body = (f"<Action>記載</Action><Basis>負荷試験の住民（試験用）</Basis>{jdate_xml(since, 'EventDate')}"
                f"{counter_person_xml(r)}{address_xml(r.address, 'NewAddress')}")
        return self.counter("OfficialCorrection", body)

    def address(self, lg: str, seed: int) -> str:
        fake = self._places.take(f"load:{seed}:{lg}")[0]
        return str(address_xml(fake.address_in(municipality_for(lg)), "NewAddress"))

    def move_out(self, r: Resident, to_lg: str, seed: int) -> Step:
        return self.counter("MovingNotification", (
            f"<Kind>国内転出</Kind>{jdate_xml(self.day + timedelta(days=7), 'EventDate')}"
            f"<ToLgCode>{to_lg}</ToLgCode>{self.address(to_lg, seed)}"
            f"<Person><JuminhyoCode>{r.juminhyo_code}</JuminhyoCode></Person>"))


class Planner:
    """The requests of any action of one run, built when asked (see the module docstring)."""

    def __init__(self, tenant: Tenant, day: date, compress: float) -> None:
        self.t = tenant
        self.day = day
        self.compress = compress
        self.b = _Builder(tenant, day)
        self.peer0 = tenant.peers[0] if tenant.peers else municipality_for("011002").lg_code
        self._pools: dict[tuple[str, int], Resident] = {}

    def _peer(self, a: Action) -> str:
        return self.t.peers[a.seed % len(self.t.peers)] if self.t.peers else self.peer0

    def _person(self, a: Action) -> tuple[Resident, ResidentFactory]:
        home = self._peer(a) if a.function == "special_move_in" else self.t.sut_lg
        f = ResidentFactory(_seed(a), home, hard_share=0.0, today=self.day, seat=self.b.people)
        return _numbered(f.resident(), a.index), f

    def pooled(self, fn: str, k: int) -> Resident:
        """Pooled person ``k`` of ``fn`` (copy, kiosk): nothing their cascades wait for is keyed by the person,
        so POOL_SIZE of them serve every such action (action i uses person i mod POOL_SIZE)."""
        r = self._pools.get((fn, k))
        if r is None:
            # negative seeds: never an action's (``_seed``)
            f = ResidentFactory(-1 - POOL_SIZE * sorted(POOLED).index(fn) - k, self.t.sut_lg,
                                hard_share=0.0, today=self.day, seat=self.b.people)
            r = _numbered(f.resident(), _pool_number(fn, k))
            if fn == "kiosk":
                r = replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial())
            self._pools[(fn, k)] = r
        return r

    def ids(self, a: Action) -> tuple[str, str]:
        """The 住民票コード and 個人番号 of ``a``'s person, without building it (persons are numbered)."""
        if a.function in POOLED:
            return _ids(_pool_number(a.function, a.index % POOL_SIZE))
        return _ids(a.index)

    def _pool_keys(self, actions: Iterable[Action]) -> list[tuple[str, int]]:
        return sorted({(a.function, a.index % POOL_SIZE) for a in actions if a.function in POOLED})

    def pool_fixtures(self, actions: Iterable[Action]) -> list[Step]:
        """職権記載 of the pooled persons ``actions`` use."""
        return [self.b.record(self.pooled(fn, k)) for fn, k in self._pool_keys(actions)]

    def centre_cards(self, actions: Iterable[Action]) -> list[tuple[str, str]]:
        """(住民票コード, certificate serial) of the kiosk users ``actions`` need registered with the centre."""
        return [(r.juminhyo_code, str(r.card_serial)) for r in
                (self.pooled(fn, k) for fn, k in self._pool_keys(actions) if fn == "kiosk")]

    def fixtures(self, a: Action) -> list[Step]:
        """What must be recorded in the SUT before ``a`` starts, in order (pooled persons apart)."""
        if a.function not in DRIVEN or a.function in POOLED or a.function in ("move_in", "special_move_in"):
            return []
        r, f = self._person(a)
        if a.function == "e_application":
            return [self.b.record(replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial()))]
        if a.function == "peer_moveout_cert":
            card = replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial())
            return [self.b.record(card), self.b.move_out(card, self._peer(a), a.seed)]
        return [self.b.record(r)]

    def action(self, a: Action) -> dict[str, Any]:
        """The requests of ``a``, what its cascade requires, its intended run time (``a.t / compress``)."""
        if a.function not in DRIVEN:
            raise ValueError(f"no requests for {a.function}")
        b, t, day = self.b, self.t, self.day
        peer = self._peer(a)
        steps: list[Step]
        if a.function in POOLED:
            r = self.pooled(a.function, a.index % POOL_SIZE)
        else:
            r, f = self._person(a)
        key = r.juminhyo_code
        if a.function == "kiosk":
            steps, key = _card_holder(b, a, r, peer)
        elif a.function in ("special_move_in", "e_application"):
            steps, key = _card_holder(b, a, replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial()),
                                      peer)
        elif a.function == "move_in":
            steps = [b.counter("MovingNotification", (
                f"<Kind>国内転入</Kind>{jdate_xml(day - timedelta(days=3), 'EventDate')}"
                f"<FromLgCode>{peer}</FromLgCode>{b.address(t.sut_lg, a.seed)}"
                f"<MoveOutCertificateNo>MOC-{r.juminhyo_code}</MoveOutCertificateNo>"
                f"{counter_person_xml(r)}"))]
        elif a.function == "peer_moveout_cert":
            card = replace(r, card_no=f.p.card_no(), card_serial=f.p.cert_serial())
            steps = [b.send("MoveOutCertRequest", (
                f"<MoveOutCertRequest><RequestNo>{new_id('REQ')}</RequestNo><MoveInLgCode>{peer}</MoveInLgCode>"
                f"<MoveOutLgCode>{t.sut_lg}</MoveOutLgCode>{subject_xml(card)}"
                f"<CardNo>{card.card_no}</CardNo></MoveOutCertRequest>"), ("peer", peer))]
        else:
            steps = [_existing(b, a, r, peer)]
            if a.function == "wide_area_copy":
                key = steps[0]["request_no"]
        require = [[arrow, mtype, key] for arrow, mtype in REQUIRED[a.function]]
        return {"i": a.index, "t": a.t / self.compress, "fn": a.function, "role": FUNCTIONS[a.function][0],
                "steps": steps, "require": require, "jcode": r.juminhyo_code}


#: actions a plan numbers persons for (a season of national days is ≈ 12 million)
MAX_ACTIONS = 900_000_000


def _pool_number(fn: str, k: int) -> int:
    """The person number of pooled person ``k`` of ``fn``: above every action's."""
    return MAX_ACTIONS + POOL_SIZE * sorted(POOLED).index(fn) + k


def _ids(n: int) -> tuple[str, str]:
    return make_juminhyo_code(f"9{n:09d}"), make_my_number(f"9{n:010d}")


def _numbered(r: Resident, n: int) -> Resident:
    """``r`` with the 住民票コード and 個人番号 of person ``n`` of the run (valid check digits, one person
    each): drawn at random, 140,000 fixture persons share a 住民票コード about once a national day, and the
    SUT rightly refuses the second 職権記載 (ALREADY-RECORDED)."""
    jcode, number = _ids(n)
    return replace(r, juminhyo_code=jcode, my_number=number, honseki=None, card_no=None, card_serial=None)


def _seed(a: Action) -> int:
    """The seed of an action's person: its index in the high bits, so two actions never share a person (the
    schedule's 31-bit seeds repeat about 60 times in a national day's 525,000 actions)."""
    return (a.index << 31) | a.seed


def _card_holder(b: _Builder, a: Action, r: Resident, peer: str) -> tuple[list[Step], str]:
    """特例転入, online 転出 and kiosk issuance: the flows of a card holder (F09, F30, F05 scenarios)."""
    if a.function == "special_move_in":
        cert = new_id("MOC")
        info = b.send("MoveOutCertInfo", (
            f"<MoveOutCertInfo><CertificateNo>{cert}</CertificateNo><MoveOutLgCode>{peer}</MoveOutLgCode>"
            f"<MoveInLgCode>{b.t.sut_lg}</MoveInLgCode>{jdate_xml(b.day - timedelta(days=2), 'PlannedMoveOutDate')}"
            f"<NotifiedDate>{(b.day - timedelta(days=10)).isoformat()}</NotifiedDate>"
            f"{b.address(b.t.sut_lg, a.seed).replace('NewAddress', 'PlannedAddress')}"
            f"<Member>{resident_xml(r)}<CardNo>{r.card_no}</CardNo></Member></MoveOutCertInfo>"),
            ("national", b.t.sut_lg))
        confirm = b.counter("SpecialMoveInConfirm", (
            f"<CertificateNo>{cert}</CertificateNo><CardNo>{r.card_no}</CardNo>"
            f"{jdate_xml(b.day - timedelta(days=1), 'MoveInDate')}{b.address(b.t.sut_lg, a.seed)}"
            f"<JuminhyoCode>{r.juminhyo_code}</JuminhyoCode>"))
        wait = {"kind": "wait", "arrow": 9, "type": "MoveOutCertInfo", "key": r.juminhyo_code}
        return [info, wait, confirm], r.juminhyo_code
    if a.function == "e_application":
        app = new_id("APP")
        ea = b.send("EApplication", (
            f"<EApplication><ApplicationId>{app}</ApplicationId><Kind>転出届・転入予約</Kind>"
            f"<SubmittedAt>{b.sent_at.isoformat()}</SubmittedAt><LgCode>{b.t.sut_lg}</LgCode>"
            f"<Applicant>{name_xml(r.name)}{jdate_xml(r.birth_date, 'BirthDate')}</Applicant>"
            f"{address_xml(r.address, 'CurrentAddress')}"
            f"<PlannedMoveOutDate>{(b.day + timedelta(days=3)).isoformat()}</PlannedMoveOutDate>"
            f"{b.address(peer, a.seed).replace('NewAddress', 'Destination')}"
            f"<CertSerial>{r.card_serial}</CertSerial><Signature>c2lnbmVk</Signature></EApplication>"),
            ("portal", b.t.sut_lg), to="counter")
        process = b.counter("EApplicationProcessOp", f"<ApplicationId>{app}</ApplicationId>")
        return [ea, {"kind": "wait", "arrow": 35, "type": "EApplication", "key": app}, process], r.juminhyo_code
    kiosk_id = f"K-{a.index}"  # the cascade's key: one per action
    op = b.send("KioskOperation", (
        f"<KioskOperation><OperationNo>{new_id('OP')}</OperationNo><KioskId>{kiosk_id}</KioskId>"
        f"<CertSerial>{r.card_serial}</CertSerial><PinOk>true</PinOk><Request><CertificateKind>住民票の写し"
        "</CertificateKind><Scope>本人</Scope><Copies>1</Copies><Options><Relationship>false</Relationship>"
        "<Honseki>false</Honseki></Options></Request></KioskOperation>"), ("resident", b.t.sut_lg), to="kiosk")
    return [op], kiosk_id


def _existing(b: _Builder, a: Action, r: Resident, peer: str) -> Step:
    """The request of an action on a person already recorded in the SUT."""
    code = f"<JuminhyoCode>{r.juminhyo_code}</JuminhyoCode>"
    if a.function == "move_out":
        return b.move_out(r, peer, a.seed)
    if a.function == "tenkyo":
        return b.counter("MovingNotification", (
            f"<Kind>転居</Kind>{jdate_xml(b.day, 'EventDate')}{b.address(b.t.sut_lg, a.seed + 1)}"
            f"<Person>{code}</Person>"))
    if a.function == "copy":
        return b.counter("CopyRequest", (
            f"{code}<Scope>本人</Scope><Requester>本人</Requester><Purpose>{_esc('就職')}</Purpose>"
            "<Relationship>false</Relationship><Honseki>false</Honseki><IncludeMyNumber>false</IncludeMyNumber>"
            "<IncludeJuminhyoCode>false</IncludeJuminhyoCode>"))
    if a.function == "card_issue":
        return b.counter("CardIssueOp", f"{code}<ApplicationNo>{new_id('APP')}</ApplicationNo>"
                                        "<CheckedDocument>運転免許証</CheckedDocument>")
    if a.function == "identity_query":
        return b.counter("IdentityQueryOp", f"<Purpose>転入審査</Purpose>{code}")
    if a.function == "wide_area_copy":
        req = new_id("REQ")
        step = b.send("WideAreaCopyRequest", (
            f"<WideAreaCopyRequest><RequestNo>{req}</RequestNo><IssuingLgCode>{peer}</IssuingLgCode>"
            f"{subject_xml(r)}<Scope>本人</Scope><Options><Relationship>false</Relationship>"
            "<IncludeMyNumber>false</IncludeMyNumber></Options></WideAreaCopyRequest>"), ("peer", peer))
        return {**step, "request_no": req}
    raise ValueError(f"no request for {a.function}")
