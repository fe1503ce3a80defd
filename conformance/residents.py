"""Synthetic residents: a Faker ja_JP provider and a seeded factory for tenants' worlds.

Everything is made up (no real person, no real register), but shaped like the real thing: valid check
digits on every identifier, 和暦 beside every calendar date, households with 続柄, foreign residents with
在留カード番号, and a configurable share of the hard cases a register must survive (IVS variation sequences,
characters beyond JIS X 0208, long names, 旧氏, 通称, 不詳 dates, births in 明治 and 大正).

Reproducible: ``ResidentFactory(seed, lg_code)`` draws everything from one ``random.Random`` seeded from
the seed and the code, never from the wall clock or hash order, so two factories with the same arguments
give the same residents in any process. ``today`` (default 2025-04-01) anchors ages and 在留期間.

Addresses: real prefecture names and codes, real names for the capitals' codes (and a few more), invented
but stable names for every other code; postal codes carry the prefecture's real leading digits; town
names come from Faker ja_JP. Reproducibility also assumes the same Faker version (its name lists).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cache
from random import Random
from typing import Any

from faker import Faker
from faker.providers import BaseProvider
from faker.providers.address.ja_JP import Provider as JaAddress
from faker.providers.person.ja_JP import Provider as JaPerson

from conformance.errors import fail
from conformance.identifiers import make_juminhyo_code, make_lg_code, make_my_number
from conformance.model import (
    FOREIGN_CATEGORIES,
    Address,
    ForeignInfo,
    Honseki,
    IndividualEntry,
    JDate,
    Municipality,
    Name,
    Resident,
)
from conformance.resident_pools import (
    _KNOWN,
    _LONG_NAME_NATIONS,
    _MORPH_A,
    _MORPH_B,
    _NATION_NAMES,
    _NATION_WEIGHTS,
    _NATIONS,
    _PREF,
    _STATUSES,
    BEYOND_JIS_SURNAMES,
    HARD_KINDS,
    IVS_SURNAMES,
    JISX0213_SURNAMES,
    LONG_GIVEN_FEMALE,
    LONG_GIVEN_MALE,
    LONG_SURNAMES,
    PREFECTURES,
    SP,
    _Part,
)
from conformance.wareki import to_wareki

__all__ = [
    "DEFAULT_TODAY",
    "HARD_KINDS",
    "PREFECTURES",
    "JukiProvider",
    "ResidentFactory",
    "all_municipality_codes",
    "make_faker",
    "municipality_for",
]

DEFAULT_TODAY = date(2025, 4, 1)
_PERIOD = re.compile(r"(?:(\d+)年)?(?:(\d+)月)?")
_WAREKI = re.compile(r"(明治|大正|昭和|平成|令和)(元|\d+)年(\d+)月(\d+)日")
_ALNUM = string.digits + string.ascii_uppercase


def _add_years(d: date, years: int) -> date:
    """The same day ``years`` later (29 February goes to 1 March)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return date(d.year + years, 3, 1)


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _synthetic_name(seed: str) -> str:
    r = Random(seed)
    n = r.choice((2, 2, 2, 3))
    return r.choice(_MORPH_A) + "".join(r.choice(_MORPH_B) for _ in range(n - 1))


def municipality_for(lg_code: str) -> Municipality:
    """The municipality of a 5- or 6-digit code: its real name where known, else a stable invented one."""
    first5 = lg_code[:5]
    if not (len(lg_code) in (5, 6) and first5.isascii() and first5.isdigit() and first5[:2] in _PREF):
        raise fail("ID-LGCODE", f"{lg_code!r} is not a 地方公共団体コード of a prefecture 01–47")
    full = make_lg_code(first5)
    if len(lg_code) == 6 and lg_code != full:
        raise fail("ID-LGCODE", f"{lg_code!r} has a wrong check digit (expected {full})")
    pref = _PREF[first5[:2]]
    part = int(first5[2:])
    if first5 in _KNOWN:
        city = _KNOWN[first5]
    elif part < 300:
        city = _synthetic_name(f"city:{first5}") + ("区" if pref[0] == "13" and part < 200 else "市")
    else:
        gun = _synthetic_name(f"gun:{first5[:4]}")
        city = f"{gun}郡{_synthetic_name(f'town:{first5}')}" + ("村" if part % 10 == 9 else "町")
    postal = (pref[2] + part % 20) % 1000 if pref[2] >= 100 else pref[2] + part % 10
    return Municipality(lg_code=full, prefecture=pref[1], city=city, postal_prefix=f"{postal:03d}")


@cache
def all_municipality_codes() -> tuple[str, ...]:
    """Every code the generator may hand out, in a fixed order (≈20k over 47 prefectures)."""
    codes = set(_KNOWN)
    for p in PREFECTURES:
        for part in (*range(201, 240), *range(301, 700)):
            if part % 100:
                codes.add(f"{p[0]}{part:03d}")
    return tuple(make_lg_code(c) for c in sorted(codes))


class JukiProvider(BaseProvider):
    """Faker provider for register values: identifiers with check digits, names with hard cases, dates.

    Stateless apart from the generator's ``random``; uniqueness across a tenant is the factory's job.
    Method names avoid Faker's own (``postcode``, ``city`` ...) so registering never shadows them.
    """

    def __init__(self, generator: Any) -> None:
        super().__init__(generator)
        self._person = JaPerson(generator)
        self._address = JaAddress(generator)

    @property
    def _r(self) -> Random:
        r: Random = self.generator.random
        return r

    def digit_string(self, n: int) -> str:
        """``n`` random ASCII digits."""
        return "".join(self._r.choice(string.digits) for _ in range(n))

    def _alnum(self, n: int) -> str:
        return "".join(self._r.choice(_ALNUM) for _ in range(n))

    # -- identifiers ---------------------------------------------------------------------------------------
    def my_number(self) -> str:
        """個人番号 with a valid check digit (never a leading 0, to look like issued numbers)."""
        return make_my_number(str(self._r.randint(1, 9)) + self.digit_string(10))

    def juminhyo_code(self) -> str:
        """住民票コード with the check digit of the selected algorithm."""
        return make_juminhyo_code(str(self._r.randint(1, 9)) + self.digit_string(9))

    def residence_card_no(self) -> str:
        """在留カード番号: two letters, eight digits, two letters."""
        up = string.ascii_uppercase
        return (self._r.choice(up) + self._r.choice(up) + self.digit_string(8) + self._r.choice(up)
                + self._r.choice(up))

    def cert_serial(self) -> str:
        """利用者証明用電子証明書 serial number, 16 or 32 upper-case hex digits."""
        return "".join(self._r.choice("0123456789ABCDEF") for _ in range(self._r.choice((16, 32))))

    def card_no(self) -> str:
        """カード管理番号 (CardNoType: C + 11 alphanumerics)."""
        return "C" + self._alnum(11)

    def identification_no(self) -> str:
        """識別番号 for the certificate-issuance route (ID + 14 alphanumerics, not a 個人番号)."""
        return "ID" + self._alnum(14)

    def household_no(self) -> str:
        """世帯番号: ten digits (the XSD allows one to twelve)."""
        return str(self._r.randint(1, 9)) + self.digit_string(9)

    def municipal_lg_code(self, pref: str | None = None) -> str:
        """A valid 6-digit 地方公共団体コード, in ``pref`` (two digits) if given."""
        codes = all_municipality_codes()
        if pref is not None:
            codes = tuple(c for c in codes if c.startswith(pref))
        return self._r.choice(codes)

    # -- names ---------------------------------------------------------------------------------------------
    def surname_pair(self, kind: str | None = None) -> tuple[str, str]:
        """(kanji, kana) of a surname; ``kind`` picks a hard-case pool (ivs, jisx0213, beyond_jis,
        long_name)."""
        pools = {"ivs": IVS_SURNAMES, "jisx0213": JISX0213_SURNAMES, "beyond_jis": BEYOND_JIS_SURNAMES,
                 "long_name": LONG_SURNAMES}
        if kind in pools:
            return self._r.choice(pools[kind])
        kanji, kana, _ = self._person.last_name_pair()
        return kanji, kana

    def given_name_pair(self, sex: str, *, long: bool = False) -> tuple[str, str]:
        """(kanji, kana) of a given name for sex "1" or "2"."""
        if long:
            return self._r.choice(LONG_GIVEN_MALE if sex == "1" else LONG_GIVEN_FEMALE)
        pair = self._person.first_name_male_pair() if sex == "1" else self._person.first_name_female_pair()
        return pair[0], pair[1]

    def japanese_name(self, sex: str, *, surname: tuple[str, str] | None = None, kind: str | None = None,
                      former: tuple[str, str] | None = None) -> Name:
        """A Japanese resident's 氏名 (kanji and kana), with 旧氏 when ``former`` is given."""
        sur = surname or self.surname_pair(kind)
        given = self.given_name_pair(sex, long=kind == "long_name")
        return Name(kanji=f"{sur[0]}{SP}{given[0]}", kana=f"{sur[1]}{SP}{given[1]}",
                    former_surname=former[0] if former else None,
                    former_surname_kana=former[1] if former else None)

    def nationality(self) -> str:
        """A nationality label as registers print it (中国, ベトナム, 米国 ...), weighted by population."""
        return self._r.choices(_NATION_NAMES, weights=_NATION_WEIGHTS)[0]

    def foreign_surname(self, nationality: str) -> _Part:
        """(Latin, kana, kanji or "") of a surname common in ``nationality``."""
        return self._r.choice(_NATIONS[nationality].sur)

    def foreign_name(self, nationality: str, sex: str, *, surname: _Part | None = None, tsusho: bool = False,
                     long: bool = False) -> Name:
        """A foreign resident's name: Latin (surname first, upper case), kana, kanji where the nation uses
        it, and a Japanese 通称 when ``tsusho``. ``long`` stacks names up to about 40 characters."""
        n = _NATIONS[nationality]
        sur = surname or self.foreign_surname(nationality)
        pool = n.male if sex == "1" else n.female
        given = [self._r.choice(pool)]
        if long:
            extra = self._r.sample(pool, len(pool)) + self._r.sample(n.sur, len(n.sur))
            for part in extra:
                if len(" ".join([sur[0], *(g[0] for g in given), part[0]])) > 40:
                    break
                if part not in given and part != sur:
                    given.append(part)
        elif n.middle and self._r.random() < 0.5:
            given.append(self._r.choice([g for g in pool if g != given[0]]))
        latin = " ".join([sur[0], *(g[0] for g in given)])
        kana = SP.join([sur[1], *(g[1] for g in given)])
        kanji = f"{sur[2]}{SP}{''.join(g[2] for g in given)}" if sur[2] and all(g[2] for g in given) else None
        ts = ts_kana = None
        if tsusho:
            ts_sur = self.surname_pair()
            ts_given = self.given_name_pair(sex)
            ts, ts_kana = f"{ts_sur[0]}{SP}{ts_given[0]}", f"{ts_sur[1]}{SP}{ts_given[1]}"
        return Name(kanji=kanji, kana=kana, latin=latin, tsusho=ts, tsusho_kana=ts_kana)

    # -- dates ---------------------------------------------------------------------------------------------
    def birth_date(self, today: date, min_age: int, max_age: int) -> date:
        """A birth date giving an age in [min_age, max_age] on ``today``."""
        latest = _add_years(today, -min_age)
        earliest = _add_years(today, -(max_age + 1)) + timedelta(days=1)
        latest = min(latest, today - timedelta(days=1))
        return earliest + timedelta(days=self._r.randint(0, max(0, (latest - earliest).days)))

    def population_age(self) -> int:
        """An age drawn roughly like Japan's population (0–14: 12%, 15–64: 59%, 65–100: 29%)."""
        lo, hi = self._r.choices(((0, 14), (15, 64), (65, 100)), weights=(12, 59, 29))[0]
        return self._r.randint(lo, hi)

    def old_era_birth(self) -> date:
        """A birth in 明治 or 大正, including the days that belong to two eras."""
        pick = self._r.random()
        if pick < 0.2:
            return self._r.choice((date(1912, 7, 30), date(1926, 12, 25)))
        if pick < 0.6:
            lo, hi = date(1905, 1, 1), date(1912, 7, 29)
        else:
            lo, hi = date(1912, 7, 31), date(1926, 12, 24)
        return lo + timedelta(days=self._r.randint(0, (hi - lo).days))

    def uncertain_date(self, d: date) -> str:
        """A 不詳 text near ``d`` in one of the forms UncertainDateText allows."""
        m = _WAREKI.fullmatch(to_wareki(d))
        if m is None:  # pragma: no cover - to_wareki always returns this form
            return "年月日不詳"
        era, year, month = m.group(1), m.group(2), int(m.group(3))
        form = self._r.choices(("all", "year", "about", "month"), weights=(25, 25, 15, 35))[0]
        if form == "all":
            return "年月日不詳"
        if form == "year":
            return f"{era}{year}年月日不詳"
        if form == "about":
            return f"{era}{year}年頃"
        return f"{era}{year}年{month}月{self._r.choice(('上旬', '中旬', '下旬', '日不詳', '頃'))}"

    def between(self, lo: date, hi: date) -> date:
        """A day in [lo, hi] (lo when hi < lo)."""
        return lo + timedelta(days=self._r.randint(0, max(0, (hi - lo).days)))

    # -- addresses -----------------------------------------------------------------------------------------
    def address_in(self, m: Municipality) -> Address:
        """A domestic address in ``m``: 郵便番号 with the prefecture's leading digits, 町域, 番地, 方書."""
        r = self._r
        town = self._address.town()
        if r.random() < 0.7:
            block = f"{r.randint(1, 9)}丁目{r.randint(1, 30)}番{r.randint(1, 25)}号"
        else:
            block = f"{r.randint(1, 3000)}番地" + (f"{r.randint(1, 20)}" if r.random() < 0.5 else "")
        building = None
        if r.random() < 0.4:
            building = f"{town}{self._address.building_name()}{r.randint(1, 12)}{r.randint(1, 9):02d}号室"
        return Address(lg_code=m.lg_code, postal_code=f"{m.postal_prefix}-{self.digit_string(4)}",
                       prefecture=m.prefecture, city=m.city, town=town, block=block, building=building)

    def honseki_place(self, m: Municipality) -> str:
        """A 本籍 in ``m`` (番地 form, as the family register writes it)."""
        return f"{m.prefecture}{m.city}{self._address.town()}{self._r.randint(1, 2000)}番地"

    def abroad(self, nationality: str) -> str:
        """A foreign address for 国外転入 from ``nationality``'s country."""
        return _NATIONS[nationality].abroad

    def residence_status(self) -> tuple[str, str | None]:
        """(在留資格, 在留期間 or None) for a 中長期在留者."""
        status, periods, _ = self._r.choices(_STATUSES, weights=[s[2] for s in _STATUSES])[0]
        return status, (self._r.choice(periods) if periods else None)


def _period_days(period: str) -> int:
    m = _PERIOD.fullmatch(period)
    years = int(m.group(1) or 0) if m else 1
    months = int(m.group(2) or 0) if m else 0
    return years * 365 + months * 30


def _faker(seed: int | str | None) -> tuple[Faker, JukiProvider]:
    fake = Faker("ja_JP")
    if seed is not None:
        fake.seed_instance(seed)
    provider = JukiProvider(fake.factories[0])
    fake.add_provider(provider)
    return fake, provider


def make_faker(seed: int | str | None = None) -> Faker:
    """Faker("ja_JP") with :class:`JukiProvider` registered (``fake.my_number()``,
    ``fake.japanese_name("2")``)."""
    return _faker(seed)[0]


class FakerSeat:
    """One Faker (with :class:`JukiProvider`) to reseed again and again.

    Why: building a ``Faker("ja_JP")`` costs about 1.5 ms (it loads every provider), which dominated a load
    plan of hundreds of thousands of actions that each want their own seeded residents. Reseeding an
    existing one gives exactly what a new one seeded the same way gives. Whoever takes the seat owns it
    until the next ``take``: what an earlier taker draws afterwards is no longer reproducible.
    """

    __slots__ = ("fake", "provider")

    def __init__(self) -> None:
        self.fake, self.provider = _faker(None)

    def take(self, seed: int | str) -> tuple[Faker, JukiProvider]:
        """The Faker and its provider, reseeded with ``seed`` (as ``make_faker(seed)`` would be)."""
        self.fake.seed_instance(seed)
        return self.fake, self.provider


@dataclass(frozen=True, slots=True)
class _Ids:
    juminhyo_code: str
    my_number: str
    card_serial: str | None
    card_no: str | None
    identification_no: str


@dataclass(frozen=True, slots=True)
class _Timeline:
    since: date  # 住民となった日
    moved: date  # 住所を定めた日
    previous: Address | None  # 前住所

    def for_member(self, birth: date) -> _Timeline:
        """The member's own timeline: shared if born before the family moved in, else from birth."""
        if birth < self.since:
            return self
        if birth < self.moved:  # born here, then moved within the municipality with the family
            return _Timeline(birth, self.moved, self.previous)
        return _Timeline(birth, birth, None)


class ResidentFactory:
    """A tenant's supply of residents, households and peer municipalities, reproducible from ``seed``.

    ``lg_code`` is the municipality the residents live in (the SUT's; 5 digits, or 6 with a valid check
    digit). ``hard_share`` of the residents drawn by :meth:`resident` and of the households drawn by
    :meth:`household` are hard cases (kinds in ``HARD_KINDS``, dealt round-robin). Within one factory
    no 個人番号, 住民票コード, 在留カード番号, certificate serial, card number, 識別番号 or 世帯番号
    repeats, and no peer municipality is handed out twice. ``seat`` reuses a :class:`FakerSeat` (same
    residents, without building a Faker): for a caller that uses one factory at a time.
    """

    def __init__(self, seed: int, lg_code: str, *, hard_share: float = 0.15, today: date = DEFAULT_TODAY,
                 card_share: float = 0.8, seat: FakerSeat | None = None) -> None:
        self.home = municipality_for(lg_code)
        self.lg_code = self.home.lg_code
        self.seed = seed
        self.hard_share = hard_share
        self.card_share = card_share
        self.today = today
        fseed = f"juki-harness:{seed}:{self.lg_code}"
        self.fake, self.p = seat.take(fseed) if seat is not None else _faker(fseed)
        self._r: Random = self.p.generator.random
        self._seen: dict[str, set[str]] = {k: set() for k in
                                           ("my", "jcode", "rcard", "serial", "card", "idno", "hh")}
        self._peers: set[str] = {self.lg_code}
        self._hard_dealt = 0

    # -- public API ----------------------------------------------------------------------------------------
    def municipality(self) -> Municipality:
        """The factory's own municipality."""
        return self.home

    def peer_municipalities(self, n: int, exclude: Iterable[str] = ()) -> list[Municipality]:
        """``n`` distinct municipalities with valid codes: never the own one, one handed out before by this
        factory, or one in ``exclude`` (5- or 6-digit codes)."""
        banned = set(self._peers) | {make_lg_code(c[:5]) for c in exclude}
        pool = [c for c in all_municipality_codes() if c not in banned]
        if n > len(pool):
            raise fail("ID-EXHAUSTED", f"asked for {n} peer municipalities, only {len(pool)} codes are left")
        picked = self._r.sample(pool, n)
        self._peers.update(picked)
        return [municipality_for(c) for c in picked]

    def resident(self, hard: str | None = None) -> Resident:
        """One resident living alone (世帯主 of a one-person household); a hard case at ``hard_share``, or
        the kind named by ``hard``."""
        kind = self._hard(hard)
        if kind in ("foreign", "foreign_tsusho"):
            return self.foreign_resident(tsusho=kind == "foreign_tsusho")
        if kind == "long_name" and self._r.random() < 0.5:
            return self.foreign_resident(long=True)
        return self._japanese_household(1, kind)[0]

    def foreign_resident(self, *, tsusho: bool | None = None, category: str | None = None,
                         long: bool = False) -> Resident:
        """One foreign resident living alone; 通称, 法30条の45 category and a long name can be forced."""
        return self._foreign_household(1, tsusho=tsusho, category=category, long=long)[0]

    def household(self, size: int, hard: str | None = None) -> list[Resident]:
        """A household of ``size``: 世帯主 first, then 妻/夫, 子, 父/母 or 同居人, one 世帯番号, 世帯主名 and
        address, and one timeline for those who moved in together. A hard case at ``hard_share``."""
        if size < 1:
            raise ValueError("a household has at least one member")
        kind = self._hard(hard)
        if kind in ("foreign", "foreign_tsusho"):
            return self._foreign_household(size, tsusho=kind == "foreign_tsusho")
        return self._japanese_household(size, kind)

    def residents(self, n: int) -> list[Resident]:
        """``n`` residents living alone, hard cases at ``hard_share``."""
        return [self.resident() for _ in range(n)]

    # -- helpers -------------------------------------------------------------------------------------------
    def _unique(self, key: str, make: Callable[[], str]) -> str:
        seen = self._seen[key]
        for _ in range(10_000):
            value = make()
            if value not in seen:
                seen.add(value)
                return value
        raise fail("ID-EXHAUSTED", f"no fresh {key} value after 10000 draws")  # pragma: no cover

    def _hard(self, hard: str | None) -> str | None:
        if hard is not None:
            if hard not in HARD_KINDS:
                raise ValueError(f"unknown hard case {hard!r}; known: {', '.join(HARD_KINDS)}")
            return hard
        if self._r.random() >= self.hard_share:
            return None
        kind = HARD_KINDS[self._hard_dealt % len(HARD_KINDS)]
        self._hard_dealt += 1
        return kind

    def _elsewhere(self) -> Municipality:
        """Some other municipality (for 前住所 and 本籍); not allocated as a peer."""
        while True:
            code = self.p.municipal_lg_code()
            if code != self.lg_code:
                return municipality_for(code)

    def _ids(self) -> _Ids:
        has_card = self._r.random() < self.card_share
        return _Ids(
            juminhyo_code=self._unique("jcode", self.p.juminhyo_code),
            my_number=self._unique("my", self.p.my_number),
            card_serial=self._unique("serial", self.p.cert_serial) if has_card else None,
            card_no=self._unique("card", self.p.card_no) if has_card else None,
            identification_no=self._unique("idno", self.p.identification_no),
        )

    def _timeline(self, birth: date, *, abroad: str | None, born_here: float) -> _Timeline:
        """When the household's first member became a resident and settled, and where they came from."""
        r, today = self._r, self.today
        if r.random() < born_here:
            since, previous = birth, None  # 出生
        else:
            since = self.p.between(max(birth, _add_years(today, -40)), today - timedelta(days=1))
            # 国外転入 or 国内転入
            previous = Address(overseas=abroad) if abroad is not None else self.p.address_in(self._elsewhere())
        if r.random() < 0.3 and since < today - timedelta(days=2):
            moved = self.p.between(since + timedelta(days=1), today - timedelta(days=1))  # 転居
            return _Timeline(since, moved, self.p.address_in(self.home))
        return _Timeline(since, since, previous)

    def _entries(self, birth: date, since: date, *, foreign: bool, kids_under_15: Sequence[date] = ()) \
            -> tuple[IndividualEntry, ...]:
        """個別記載事項 that fit the age: 国保, 後期高齢, 介護, 国民年金, 児童手当 (the head's),
        選挙人名簿 (Japanese only)."""
        r, p, today = self._r, self.p, self.today
        age = _age(birth, today)
        out: list[IndividualEntry] = []

        def add(kind: str, start: date, number: str | None) -> None:
            start = max(start, since)
            if start <= today:
                out.append(IndividualEntry(kind=kind, from_=start, number=number))

        if age < 75 and r.random() < 0.3:
            add("国民健康保険", since, f"{r.randint(1, 99):02d}-{p.digit_string(6)}")
        if age >= 75:
            add("後期高齢者医療", _add_years(birth, 75), p.digit_string(8))
        if age >= 65:
            add("介護保険", _add_years(birth, 65), p.digit_string(10))
        if 20 <= age < 60 and r.random() < 0.5:
            add("国民年金", _add_years(birth, 20), f"{p.digit_string(4)}-{p.digit_string(6)}")
        if kids_under_15:
            add("児童手当", max(kids_under_15), None)
        if not foreign and age >= 18:
            add("選挙人名簿", max(_add_years(birth, 18), since + timedelta(days=90)), None)
        return tuple(out)

    def _roles(self, size: int) -> list[str]:
        roles = ["世帯主"]
        if size >= 2:
            roles.append("spouse" if self._r.random() < 0.85 else self._r.choice(("子", "母", "同居人")))
        for _ in range(size - len(roles)):
            roles.append(self._r.choices(("子", "母", "父", "同居人"), weights=(80, 8, 5, 7))[0])
        for parent in ("父", "母"):  # at most one of each
            while roles.count(parent) > 1:
                roles[len(roles) - 1 - roles[::-1].index(parent)] = "子"
        return roles

    def _births(self, roles: list[str], old_era: bool) -> tuple[list[date], list[str]]:
        """Birth dates and sexes per role, consistent with each other (children after parents ...)."""
        p, r, today = self.p, self._r, self.today
        has_parents = "父" in roles or "母" in roles
        parent_birth: date | None = None
        if old_era and has_parents:
            parent_birth = p.old_era_birth()
            head_birth = p.between(_add_years(parent_birth, 20), _add_years(parent_birth, 40))
        elif old_era:
            head_birth = p.old_era_birth()
        elif has_parents:
            head_birth = p.birth_date(today, 28, 62)
        elif "子" in roles:
            head_birth = p.birth_date(today, 28, 70)
        elif len(roles) == 1:
            age = max(18, p.population_age())
            head_birth = p.birth_date(today, age, age)
        else:
            head_birth = p.birth_date(today, 22, 90)
        head_sex = ("1" if r.random() < 0.75 else "2") if len(roles) > 1 else r.choice("12")
        births, sexes = [head_birth], [head_sex]
        for role in roles[1:]:
            if role == "spouse":
                births.append(p.between(_add_years(head_birth, -6),
                                        min(_add_years(head_birth, 6), _add_years(today, -18))))
                sexes.append("2" if head_sex == "1" else "1")
            elif role == "子":
                births.append(p.between(_add_years(head_birth, 20),
                                        min(_add_years(head_birth, 45), today - timedelta(days=1))))
                sexes.append(r.choice("12"))
            elif role in ("父", "母"):
                if parent_birth is not None:
                    near = timedelta(days=1500)
                    births.append(p.between(parent_birth - near, parent_birth + near))
                else:
                    births.append(p.between(_add_years(head_birth, -40), _add_years(head_birth, -20)))
                sexes.append("1" if role == "父" else "2")
            else:  # 同居人
                births.append(p.birth_date(today, 20, 80))
                sexes.append(r.choice("12"))
        return births, sexes

    def _birth_jdate(self, birth: date, uncertain: bool) -> JDate:
        return JDate.unknown(self.p.uncertain_date(birth)) if uncertain else JDate.of(birth)

    def _resident(self, *, name: Name, birth: date, uncertain: bool, sex: str, household_no: str,
                  head_name: str, relationship: str, address: Address, tl: _Timeline, honseki: Honseki | None,
                  foreign: ForeignInfo | None, entries: tuple[IndividualEntry, ...]) -> Resident:
        ids = self._ids()
        return Resident(
            juminhyo_code=ids.juminhyo_code, my_number=ids.my_number, name=name,
            birth_date=self._birth_jdate(birth, uncertain), sex=sex, household_no=household_no,
            head_name=head_name, relationship=relationship, address=address,
            resident_since=JDate.of(tl.since), address_since=JDate.of(tl.moved), previous_address=tl.previous,
            honseki=honseki, foreign=foreign, entries=entries, card_serial=ids.card_serial,
            card_no=ids.card_no, identification_no=ids.identification_no,
        )

    # -- households ----------------------------------------------------------------------------------------
    def _japanese_household(self, size: int, kind: str | None) -> list[Resident]:
        p, r, today = self.p, self._r, self.today
        roles = self._roles(size)
        births, sexes = self._births(roles, kind == "old_era")
        family = p.surname_pair(kind if kind in ("ivs", "jisx0213", "beyond_jis", "long_name") else None)
        hh_no = self._unique("hh", p.household_no)
        address = p.address_in(self.home)
        abroad = p.abroad(p.nationality()) if r.random() < 0.04 else None  # 国外転入 of a Japanese family
        tl = self._timeline(births[0], abroad=abroad, born_here=0.25 if size == 1 else 0.0)
        honseki_m = self.home if r.random() < 0.5 else self._elsewhere()
        honseki_place = p.honseki_place(honseki_m)
        # 旧氏: the spouse (living alone: the head) when the kind asks for it, else a few spouses.
        former_idx = -1
        if kind == "former_surname":
            former_idx = roles.index("spouse") if "spouse" in roles else 0
        elif "spouse" in roles and r.random() < 0.1:
            former_idx = roles.index("spouse")
        uncertain_idx = -1
        if kind == "uncertain_date":
            uncertain_idx = next((i for i, x in enumerate(roles) if x in ("父", "母")), 0)

        names: list[Name] = []
        for i, role in enumerate(roles):
            former = None
            if i == former_idx:
                former = p.surname_pair()
                while former[0] == family[0]:
                    former = p.surname_pair()
            sur = p.surname_pair() if role == "同居人" else family
            names.append(p.japanese_name(sexes[i], surname=sur, kind=kind if i == 0 else None, former=former))
        head_name = names[0].kanji or ""
        father_name = next((names[i].kanji for i, x in enumerate(roles) if x == "父"), None) \
            or f"{family[0]}{SP}{p.given_name_pair('1')[0]}"
        kids = [births[i] for i, x in enumerate(roles) if x == "子" and _age(births[i], today) < 15]

        out: list[Resident] = []
        for i, role in enumerate(roles):
            if role == "同居人":
                m = self._elsewhere()
                honseki = Honseki(place=p.honseki_place(m), lg_code=m.lg_code,
                                  head_of_family=names[i].kanji or "")
            else:
                own_parent = role in ("父", "母") or (len(roles) == 1 and r.random() < 0.5)
                honseki = Honseki(place=honseki_place, lg_code=honseki_m.lg_code,
                                  head_of_family=father_name if own_parent else head_name)
            mtl = tl.for_member(births[i])
            out.append(self._resident(
                name=names[i], birth=births[i], uncertain=i == uncertain_idx, sex=sexes[i],
                household_no=hh_no, head_name=head_name, relationship=_relationship(role, sexes[i]),
                address=address, tl=mtl, honseki=honseki, foreign=None,
                entries=self._entries(births[i], mtl.since, foreign=False,
                                      kids_under_15=kids if i == 0 else ()),
            ))
        return out

    def _foreign_info(self, nationality: str, category: str | None) -> ForeignInfo:
        if category is None:
            spr_ok = _NATIONS[nationality].special_permanent
            category = "特別永住者" if spr_ok and self._r.random() < 0.35 else "中長期在留者"
        card = self._unique("rcard", self.p.residence_card_no)
        if category != "中長期在留者":
            return ForeignInfo(nationality=nationality, category=category, residence_card_no=card)
        status, period = self.p.residence_status()
        end = None
        if period is not None:
            end = self.today + timedelta(days=self._r.randint(14, _period_days(period)))
        return ForeignInfo(nationality=nationality, category=category, residence_card_no=card,
                           residence_status=status, period_of_stay=period, period_end=end)

    def _foreign_household(self, size: int, *, tsusho: bool | None = None, category: str | None = None,
                           long: bool = False) -> list[Resident]:
        p, r = self.p, self._r
        if category is not None and category not in FOREIGN_CATEGORIES:
            known = ", ".join(FOREIGN_CATEGORIES)
            raise ValueError(f"unknown 法30条の45 category {category!r}; known: {known}")
        nationality = r.choice(_LONG_NAME_NATIONS) if long else p.nationality()
        if category == "特別永住者" and not _NATIONS[nationality].special_permanent:
            nationality = r.choice(("韓国", "朝鮮", "台湾"))
        roles = self._roles(size)
        births, sexes = self._births(roles, False)
        head_info = self._foreign_info(nationality, category)
        spr = head_info.category == "特別永住者"
        surname = p.foreign_surname(nationality)
        hh_no = self._unique("hh", p.household_no)
        address = p.address_in(self.home)
        # 特別永住者 were born in Japan; others came from abroad more often than not.
        tl = self._timeline(births[0], abroad=None if spr or r.random() < 0.4 else p.abroad(nationality),
                            born_here=0.5 if spr else 0.05)
        want_tsusho = tsusho if tsusho is not None else r.random() < (0.6 if spr else 0.08)
        uncertain_idx = 0 if r.random() < 0.05 else -1  # 年月日不詳 is commoner among foreign residents
        names: list[Name] = []
        for i, role in enumerate(roles):
            sur = p.foreign_surname(nationality) if role in ("spouse", "同居人") else surname
            names.append(p.foreign_name(nationality, sexes[i], surname=sur, long=long and i == 0,
                                        tsusho=want_tsusho and (i == 0 or r.random() < 0.5)))
        head_name = names[0].kanji or names[0].latin or ""
        out: list[Resident] = []
        for i, role in enumerate(roles):
            info = head_info if i == 0 else self._foreign_info(nationality, head_info.category)
            if not spr and i > 0 and role != "同居人" and info.residence_status != "永住者":
                info = replace(info, residence_status="家族滞在")
            mtl = tl.for_member(births[i])
            out.append(self._resident(
                name=names[i], birth=births[i], uncertain=i == uncertain_idx, sex=sexes[i],
                household_no=hh_no, head_name=head_name, relationship=_relationship(role, sexes[i]),
                address=address, tl=mtl, honseki=None, foreign=info,
                entries=self._entries(births[i], mtl.since, foreign=True),
            ))
        return out


def _relationship(role: str, sex: str) -> str:
    if role == "spouse":
        return "妻" if sex == "2" else "夫"
    return role
