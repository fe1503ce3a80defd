"""和暦 conversion: boundary days, dates that do not exist, 不詳 forms, and the western round trip."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.errors import HarnessError
from conformance.wareki import UncertainDate, eras, from_wareki, load_eras, parse_uncertain, to_wareki


@pytest.mark.parametrize(("d", "text"), [
    (date(1980, 1, 2), "昭和55年1月2日"),
    (date(1912, 7, 29), "明治45年7月29日"),
    (date(1912, 7, 30), "大正元年7月30日"),      # shared boundary day: the new era
    (date(1926, 12, 24), "大正15年12月24日"),
    (date(1926, 12, 25), "昭和元年12月25日"),    # shared boundary day: the new era
    (date(1989, 1, 7), "昭和64年1月7日"),
    (date(1989, 1, 8), "平成元年1月8日"),
    (date(2019, 4, 30), "平成31年4月30日"),
    (date(2019, 5, 1), "令和元年5月1日"),
    (date(2020, 2, 29), "令和2年2月29日"),
    (date(1868, 1, 1), "明治元年1月1日"),
])
def test_to_wareki(d: date, text: str) -> None:
    assert to_wareki(d) == text


def test_to_wareki_before_meiji_is_an_error() -> None:
    with pytest.raises(HarnessError) as e:
        to_wareki(date(1867, 12, 31))
    assert e.value.findings[0].code == "DATE-WAREKI"


@pytest.mark.parametrize(("text", "d"), [
    ("昭和55年1月2日", date(1980, 1, 2)),
    ("明治45年7月30日", date(1912, 7, 30)),     # the boundary day exists in both eras
    ("大正元年7月30日", date(1912, 7, 30)),
    ("大正15年12月25日", date(1926, 12, 25)),
    ("昭和元年12月25日", date(1926, 12, 25)),
    ("昭和64年1月7日", date(1989, 1, 7)),
    ("平成元年1月8日", date(1989, 1, 8)),
    ("令和元年5月1日", date(2019, 5, 1)),
    ("令和1年5月1日", date(2019, 5, 1)),        # 1年 is accepted for 元年
    ("令和2年2月29日", date(2020, 2, 29)),
])
def test_from_wareki(text: str, d: date) -> None:
    assert from_wareki(text) == d


@pytest.mark.parametrize(("text", "says"), [
    ("平成31年5月1日", "after 平成 ended on 2019-04-30; that day is 令和元年5月1日"),
    ("昭和64年1月8日", "after 昭和 ended on 1989-01-07; that day is 平成元年1月8日"),
    ("平成32年1月1日", "平成 ended in 平成31年"),
    ("令和1年4月30日", "before 令和 began on 2019-05-01; that day is 平成31年4月30日"),
    ("平成元年1月7日", "before 平成 began on 1989-01-08"),
    ("明治46年1月1日", "明治 ended in 明治45年"),
    ("令和2年2月30日", "2020-02 has 29 days, so day 30 does not exist"),
    ("令和3年2月29日", "2021-02 has 28 days"),
    ("令和2年13月1日", "there is no month 13"),
    ("令和2年0月1日", "there is no month 0"),
    ("令和2年4月31日", "2020-04 has 30 days"),
    ("昭和0年1月1日", "no year 0 of 昭和"),
    ("慶応3年1月1日", "not a 和暦 date"),
    ("昭和55年1月2", "not a 和暦 date"),
    ("1980-01-02", "not a 和暦 date"),
])
def test_from_wareki_refuses_days_that_do_not_exist(text: str, says: str) -> None:
    with pytest.raises(HarnessError) as e:
        from_wareki(text)
    f = e.value.findings[0]
    assert f.code == "DATE-WAREKI"
    assert says in f.message


@given(st.dates(min_value=date(1873, 1, 1), max_value=date(2100, 12, 31)))
def test_round_trip_western_wareki_western(d: date) -> None:
    assert from_wareki(to_wareki(d)) == d


@given(st.dates(min_value=date(1873, 1, 1), max_value=date(2100, 12, 31)))
def test_to_wareki_names_the_newest_era_that_contains_the_day(d: date) -> None:
    name = to_wareki(d)
    containing = [e for e in eras() if e.contains(d)]
    assert name.startswith(containing[-1].name)


@pytest.mark.parametrize(("text", "expected"), [
    ("年月日不詳", UncertainDate("年月日不詳", None, None, None, "年月日不詳")),
    ("令和2年頃", UncertainDate("令和2年頃", "令和", 2, None, "頃")),
    ("昭和50年月日不詳", UncertainDate("昭和50年月日不詳", "昭和", 50, None, "月日不詳")),
    ("平成3年5月上旬", UncertainDate("平成3年5月上旬", "平成", 3, 5, "上旬")),
    ("平成3年5月中旬", UncertainDate("平成3年5月中旬", "平成", 3, 5, "中旬")),
    ("平成3年5月下旬", UncertainDate("平成3年5月下旬", "平成", 3, 5, "下旬")),
    ("平成3年5月日不詳", UncertainDate("平成3年5月日不詳", "平成", 3, 5, "日不詳")),
    ("平成3年5月頃", UncertainDate("平成3年5月頃", "平成", 3, 5, "頃")),
    ("令和元年頃", UncertainDate("令和元年頃", "令和", 1, None, "頃")),
    ("昭和64年1月上旬", UncertainDate("昭和64年1月上旬", "昭和", 64, 1, "上旬")),  # 1/1-1/7 are 昭和
    ("明治45年7月下旬", UncertainDate("明治45年7月下旬", "明治", 45, 7, "下旬")),
])
def test_parse_uncertain(text: str, expected: UncertainDate) -> None:
    assert parse_uncertain(text) == expected


@pytest.mark.parametrize(("text", "span"), [
    ("平成3年5月上旬", (date(1991, 5, 1), date(1991, 5, 10))),
    ("平成3年2月下旬", (date(1991, 2, 21), date(1991, 2, 28))),
    ("令和元年頃", (date(2019, 5, 1), date(2019, 12, 31))),
    ("昭和64年1月上旬", (date(1989, 1, 1), date(1989, 1, 7))),
])
def test_uncertain_span_is_clipped_to_the_era(text: str, span: tuple[date, date]) -> None:
    assert parse_uncertain(text).span() == span


@pytest.mark.parametrize(("text", "says"), [
    ("平成32年頃", "平成 ended in 平成31年"),
    ("明治46年月日不詳", "明治 ended in 明治45年"),
    ("平成31年5月上旬", "no day of"),        # 令和 from 5/1
    ("令和元年4月頃", "no day of"),
    ("昭和64年1月中旬", "no day of"),       # 昭和 ended on 1/7
    ("令和2年13月上旬", "no month 13"),
    ("令和0年頃", "no year 0"),
    ("令和2年", "not a 不詳 date"),
    ("令和2年5月", "not a 不詳 date"),
    ("不詳", "not a 不詳 date"),
])
def test_parse_uncertain_refuses(text: str, says: str) -> None:
    with pytest.raises(HarnessError) as e:
        parse_uncertain(text)
    assert e.value.findings[0].code == "DATE-UNCERTAIN"
    assert says in e.value.findings[0].message


def test_era_table_is_a_parameter(tmp_path: Path) -> None:
    table = tmp_path / "eras.yaml"
    table.write_text("eras:\n  - {name: 甲, start: 2000-01-01, end: 2009-12-31}\n"
                     "  - {name: 乙, start: 2010-01-01, end: null}\n", encoding="utf-8")
    loaded = load_eras(table)
    assert [e.name for e in loaded] == ["甲", "乙"] and loaded[0].last_year == 10


def test_era_table_with_a_gap_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "eras.yaml"
    table.write_text("eras:\n  - {name: 甲, start: 2000-01-01, end: 2009-12-30}\n"
                     "  - {name: 乙, start: 2010-01-01, end: null}\n", encoding="utf-8")
    with pytest.raises(HarnessError) as e:
        load_eras(table)
    assert e.value.findings[0].code == "DATE-ERAS"
