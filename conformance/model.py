"""The domain model: plain, immutable records of residents and the places they live.

Everything the harness says about a person (fixtures, message bodies, printed copies) is built from these
classes, so they stay free of XML and of generation logic: ``conformance.codec`` maps them to the common
types of ``schemas/common.xsd`` and ``conformance.residents`` makes synthetic ones. Field names follow the
XSD element names (snake case). Use ``dataclasses.replace`` to derive a changed record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from conformance.wareki import to_wareki

#: 続柄 (relationship to the head of household) the generator uses; the XSD allows any short text.
RELATIONSHIPS: tuple[str, ...] = (
    "世帯主", "妻", "夫", "子", "父", "母", "祖父", "祖母", "孫", "兄", "姉", "弟", "妹", "同居人", "縁故者",
)

#: 法30条の45 categories of foreign residents (ForeignInfoType/Category).
FOREIGN_CATEGORIES: tuple[str, ...] = (
    "中長期在留者", "特別永住者", "一時庇護許可者", "仮滞在許可者", "経過滞在者",
)

#: 個別記載事項 kinds (IndividualEntryType/Kind).
ENTRY_KINDS: tuple[str, ...] = (
    "国民健康保険", "後期高齢者医療", "介護保険", "国民年金", "児童手当", "選挙人名簿",
)


@dataclass(frozen=True, slots=True)
class Name:
    """氏名. Japanese residents have ``kanji`` and ``kana``; foreign residents ``latin`` and maybe 通称.

    Surname and given name are separated by a full-width space (U+3000) in kanji and kana, by an ASCII
    space in ``latin`` (surname first, upper case, as on the residence card).
    """

    kanji: str | None = None
    kana: str | None = None
    latin: str | None = None
    tsusho: str | None = None
    tsusho_kana: str | None = None
    former_surname: str | None = None
    former_surname_kana: str | None = None

    @property
    def display(self) -> str:
        """The name as a register prints it first: kanji, else the Latin name."""
        return self.kanji or self.latin or self.tsusho or ""


@dataclass(frozen=True, slots=True)
class Address:
    """住所: domestic (``lg_code`` + prefecture, city, town, ...) or abroad (``overseas`` only)."""

    lg_code: str | None = None
    postal_code: str | None = None
    prefecture: str | None = None
    city: str | None = None
    town: str | None = None
    block: str | None = None
    building: str | None = None
    overseas: str | None = None

    @property
    def is_overseas(self) -> bool:
        return self.overseas is not None

    def one_line(self) -> str:
        """The address as printed on one line (方書 after a full-width space)."""
        if self.overseas is not None:
            return self.overseas
        head = "".join(p for p in (self.prefecture, self.city, self.town, self.block) if p)
        return f"{head}\u3000{self.building}" if self.building else head


@dataclass(frozen=True, slots=True)
class JDate:
    """A register date: a calendar date (西暦, with its 和暦 when known) or a 不詳 text.

    Exactly one of ``western`` and ``uncertain`` is set; ``wareki`` goes with ``western`` only. Build
    ordinary dates with :meth:`of` so the 和暦 is always the one the era table gives.
    """

    western: date | None = None
    wareki: str | None = None
    uncertain: str | None = None

    def __post_init__(self) -> None:
        if (self.western is None) == (self.uncertain is None):
            raise ValueError("JDate needs exactly one of western and uncertain")
        if self.uncertain is not None and self.wareki is not None:
            raise ValueError("a 不詳 JDate has no separate wareki")

    @classmethod
    def of(cls, d: date) -> JDate:
        """A calendar date with its 和暦 filled from the era table."""
        return cls(western=d, wareki=to_wareki(d))

    @classmethod
    def unknown(cls, text: str) -> JDate:
        """A 不詳 date such as 年月日不詳, 昭和50年月日不詳 or 平成3年5月上旬."""
        return cls(uncertain=text)


@dataclass(frozen=True, slots=True)
class Honseki:
    """本籍 and 筆頭者 (Japanese residents only)."""

    place: str
    lg_code: str
    head_of_family: str


@dataclass(frozen=True, slots=True)
class Household:
    """世帯: number (unique in the municipality) and the head's name."""

    no: str
    head_name: str


@dataclass(frozen=True, slots=True)
class ForeignInfo:
    """外国人住民の記載事項. 特別永住者 have no 在留資格 or 在留期間."""

    nationality: str
    category: str
    residence_card_no: str
    residence_status: str | None = None
    period_of_stay: str | None = None
    period_end: date | None = None


@dataclass(frozen=True, slots=True)
class IndividualEntry:
    """個別記載事項: one insurance, pension, allowance or electoral-roll entry."""

    kind: str
    from_: date
    to: date | None = None
    number: str | None = None


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    """本人確認情報 (PersonIdentityType): what Juki-Net knows of a person."""

    juminhyo_code: str
    name: Name
    birth_date: JDate
    sex: str
    address: Address
    my_number: str | None = None


@dataclass(frozen=True, slots=True)
class Resident:
    """住民票の記載事項 (ResidentType) plus the card-side keys other routes need.

    ``sex`` is "1" (男) or "2" (女). ``entries`` is a tuple so the record stays immutable.
    ``card_serial`` (利用者証明用電子証明書 serial), ``card_no`` and ``identification_no`` (識別番号,
    the kiosk-route key used instead of the 個人番号) are not part of ResidentType and are not carried by it.
    """

    juminhyo_code: str
    name: Name
    birth_date: JDate
    sex: str
    household_no: str
    head_name: str
    relationship: str
    address: Address
    my_number: str | None = None
    resident_since: JDate | None = None
    address_since: JDate | None = None
    previous_address: Address | None = None
    honseki: Honseki | None = None
    foreign: ForeignInfo | None = None
    entries: tuple[IndividualEntry, ...] = ()
    card_serial: str | None = None
    card_no: str | None = None
    identification_no: str | None = None

    @property
    def is_foreign(self) -> bool:
        return self.foreign is not None

    @property
    def household(self) -> Household:
        return Household(no=self.household_no, head_name=self.head_name)

    def identity(self) -> PersonIdentity:
        """The 本人確認情報 subset of this record."""
        return PersonIdentity(juminhyo_code=self.juminhyo_code, name=self.name, birth_date=self.birth_date,
                              sex=self.sex, address=self.address, my_number=self.my_number)


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipality: 全国地方公共団体コード (6 digits, check digit included) and its names."""

    lg_code: str
    prefecture: str
    city: str
    postal_prefix: str

    @property
    def pref_code(self) -> str:
        """The two-digit prefecture part of the code (01–47)."""
        return self.lg_code[:2]
