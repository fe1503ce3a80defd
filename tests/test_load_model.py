"""The load model: rates integrate to the day's totals, the shape of a day and a season, seeded schedules,
thresholds and the plan built from a schedule."""

from __future__ import annotations

from datetime import date

import pytest

from conformance.errors import HarnessError
from conformance.identifiers import is_valid_juminhyo_code
from load.model import FUNCTIONS, Action, LoadModel, Scale, replay_summary
from load.plan import DRIVEN, POOL_SIZE, POOLED, REQUIRED, WAITED, Planner, Tenant
from load.stats import Row, Stats, parse_threshold

MODEL = LoadModel.default()
PEAK = date(2026, 3, 30)        # a Monday in the busiest stretch
ORDINARY = date(2026, 6, 10)    # a Wednesday in June


@pytest.mark.parametrize("scale", ["national", "prefecture:13", "municipality:68000"])
@pytest.mark.parametrize("day", [PEAK, ORDINARY, date(2026, 4, 5)])
def test_rates_integrate_to_the_days_totals(scale: str, day: date) -> None:
    sc = Scale.parse(scale)
    totals = MODEL.day_totals(sc, day)
    rates = MODEL.rates(sc, day)
    assert set(rates) == set(FUNCTIONS)
    for fn, per_minute in rates.items():
        assert len(per_minute) == 1440
        assert sum(per_minute) == pytest.approx(totals[fn], rel=1e-9, abs=1e-9)


def test_national_peak_day_is_of_the_order_the_domain_gives() -> None:
    t = MODEL.day_totals(Scale.parse("national"), PEAK)
    # DOMAIN.md: ≈100k moving-ins, ≈100k moving-outs, ≈100k in-municipality moves, 100k+ kiosk certificates
    assert 40_000 < t["move_in"] + t["special_move_in"] < 150_000
    assert 40_000 < t["tenkyo"] < 150_000
    assert t["kiosk"] > 80_000


def test_peak_day_is_four_to_five_times_an_ordinary_day() -> None:
    sc = Scale.parse("municipality:100000")
    ratio = MODEL.day_totals(sc, PEAK)["move_in"] / MODEL.day_totals(sc, ORDINARY)["move_in"]
    assert 4.0 <= ratio <= 5.0
    edge = MODEL.day_totals(sc, date(2026, 3, 20))["move_in"] / MODEL.day_totals(sc, ORDINARY)["move_in"]
    assert 1.0 < edge < ratio


def test_counter_and_kiosk_hours_and_the_busiest_hours() -> None:
    rates = MODEL.rates(Scale.parse("national"), PEAK)
    counter, kiosk = rates["move_in"], rates["kiosk"]
    assert all(r == 0 for r in counter[: 8 * 60 + 30]) and counter[8 * 60 + 30] > 0
    assert counter[17 * 60 + 14] > 0 and all(r == 0 for r in counter[17 * 60 + 15:])
    assert all(r == 0 for r in kiosk[: 6 * 60 + 30]) and kiosk[6 * 60 + 30] > 0
    assert kiosk[22 * 60 + 59] > 0 and all(r == 0 for r in kiosk[23 * 60:])
    busiest = max(range(1440), key=lambda m: counter[m])
    assert 11 * 60 <= busiest < 14 * 60


def test_counters_are_closed_on_a_sunday_but_kiosks_are_not() -> None:
    t = MODEL.day_totals(Scale.parse("national"), date(2026, 3, 29))
    assert t["move_in"] == 0 and t["copy"] == 0 and t["kiosk"] > 0


def test_scales_are_population_shares_and_bad_ones_are_refused() -> None:
    assert Scale.parse("national").share == 1.0
    tokyo = Scale.parse("prefecture:13")
    assert 0.10 < tokyo.share < 0.12 and tokyo.kind == "prefecture:13"
    assert Scale.parse("municipality:126146").share == pytest.approx(0.001, rel=1e-3)
    for bad in ("prefecture:48", "municipality:-5", "city:3", "national:1"):
        with pytest.raises(HarnessError) as e:
            Scale.parse(bad)
        assert e.value.findings[0].code == "LOAD-SCALE"


def test_schedule_totals_are_the_rounded_day_totals_in_time_order() -> None:
    sc = Scale.parse("municipality:300000")
    sched = MODEL.schedule(sc, PEAK, seed=5)
    totals = MODEL.day_totals(sc, PEAK)
    for fn, tot in totals.items():
        assert sum(a.function == fn for a in sched) == int(tot + 0.5)
    assert [a.t for a in sched] == sorted(a.t for a in sched)
    assert [a.index for a in sched] == list(range(len(sched)))
    assert sched[0].t >= 0  # from the earliest opening (06:30)


def test_same_seed_same_schedule_different_seed_different() -> None:
    sc = Scale.parse("municipality:100000")
    a = MODEL.schedule(sc, PEAK, seed=11)
    b = MODEL.schedule(sc, PEAK, seed=11)
    c = MODEL.schedule(sc, PEAK, seed=12)
    assert [x.to_json() for x in a] == [x.to_json() for x in b]
    assert [x.to_json() for x in a] != [x.to_json() for x in c]
    assert len(a) == len(c)  # the seed moves the times, not the day's totals


def test_steady_and_season_profiles() -> None:
    sc = Scale.parse("municipality:100000")
    steady = MODEL.schedule(sc, PEAK, seed=1, profile="steady", rate=20.0, duration=10.0)
    assert 195 <= len(steady) <= 205 and max(a.t for a in steady) < 10.0
    season = MODEL.schedule(sc, PEAK, seed=1, profile="season")
    days = {int(a.t // 86400) for a in season}
    assert min(days) == 0 and max(days) == 21  # 20 March .. 10 April
    with pytest.raises(HarnessError):
        MODEL.schedule(sc, PEAK, seed=1, profile="steady")
    with pytest.raises(HarnessError):
        MODEL.schedule(sc, PEAK, seed=1, profile="weekly")


def test_a_ramp_rises_evenly_to_its_rate_with_the_steady_mix() -> None:
    sc = Scale.parse("municipality:100000")
    ramp = MODEL.schedule(sc, PEAK, seed=3, profile="ramp", rate=40.0, duration=60.0)
    assert ramp == MODEL.schedule(sc, PEAK, seed=3, profile="ramp", rate=40.0, duration=60.0)
    assert abs(len(ramp) - 40.0 * 60.0 / 2) <= len(FUNCTIONS)  # the area under the ramp, rounded per function
    per_10s = [sum(1 for a in ramp if 10 * k <= a.t < 10 * (k + 1)) for k in range(6)]
    for k, n in enumerate(per_10s):  # second i runs at 40·(i + ½)/60: ten of them hold 40·(10k + 5)/60·10
        assert abs(n - 40.0 * (10 * k + 5) / 60.0 * 10) <= len(FUNCTIONS), per_10s
    steady = MODEL.schedule(sc, PEAK, seed=3, profile="steady", rate=20.0, duration=60.0)
    share = {fn: sum(a.function == fn for a in ramp) / len(ramp) for fn in FUNCTIONS}
    assert all(abs(share[fn] - sum(a.function == fn for a in steady) / len(steady)) < 0.02 for fn in FUNCTIONS)
    with pytest.raises(HarnessError, match="ramp profile needs --rate"):
        MODEL.schedule(sc, PEAK, seed=3, profile="ramp", duration=60.0)


def _window_rows(p95_by_window: list[float], rate: list[int], width: float = 5.0,
                 status: str = "ok") -> list[Row]:
    """rate[k] actions in window k, each taking p95_by_window[k] seconds."""
    rows: list[Row] = []
    for k, (lat, n) in enumerate(zip(p95_by_window, rate, strict=True)):
        for j in range(n):
            t = k * width + width * j / n
            rows.append(Row(len(rows), "copy", t, t, t + lat, status, None))
    return rows


def test_capacity_is_the_busiest_window_before_the_first_that_did_not_hold() -> None:
    rows = _window_rows([0.1, 0.2, 0.4, 1.5, 0.3, 0.2], [50, 100, 150, 200, 400, 300])
    cap = Stats(rows=rows).capacity(limit=1.0, width=5.0)
    assert cap["held_rate"] == 30.0 and cap["held"]["t"] == 10.0  # 150 actions in 5 s
    assert cap["first_failed"]["rate"] == 40.0 and cap["first_failed"]["p95"] == pytest.approx(1.5)
    # a later window that holds again at a higher rate does not count: the backlog had already begun
    assert [w["held"] for w in cap["windows"]] == [True, True, True, False, True, True]
    assert Stats(rows=rows).capacity(limit=2.0, width=5.0)["held_rate"] == 80.0


def test_a_window_with_more_than_one_percent_behind_does_not_hold() -> None:
    rows = _window_rows([0.1, 0.1], [100, 100])
    rows[150].status = "error"  # one of 100 behind: holds
    assert Stats(rows=rows).capacity(width=5.0)["first_failed"] is None
    rows[151].status, rows[152].status = "late", "dropped"  # three of 100: does not
    cap = Stats(rows=rows).capacity(width=5.0)
    assert cap["first_failed"]["t"] == 5.0 and cap["first_failed"]["behind"] == 3 and cap["held_rate"] == 20.0


def test_each_window_carries_the_cpu_sampled_during_its_own_seconds() -> None:
    stats = Stats(rows=_window_rows([0.1, 0.2, 1.5], [50, 100, 150]), t0_wall=1000.0)
    # one sample a second, each covering the second before it: window k's samples are those of seconds 5k+1 .. 5k+5
    stats.cpu = [{"wall": 1000.0 + s, "gateway_cpu": 10.0 * (s // 5.5 + 1), "sut_cpu": 5.0} for s in range(1, 16)]
    cap = stats.capacity(width=5.0)
    assert [(w["gateway_cpu"], w["sut_cpu"]) for w in cap["windows"]] == [(10.0, 5.0), (20.0, 5.0), (30.0, 5.0)]
    assert Stats(rows=stats.rows).capacity(width=5.0)["windows"][0]["gateway_cpu"] is None  # no start time known


def test_the_capacity_sentence_names_the_rates_and_the_run_that_confirms_them() -> None:
    from load.report import capacity_sentence

    both = capacity_sentence(Stats(rows=_window_rows([0.1, 0.2, 1.5], [50, 100, 150])).capacity(width=5.0),
                             "reference", "municipality:100000")
    assert "Held up to 20 actions/s" in both and "offered 30 actions/s" in both
    assert "--sut reference --scale municipality:100000 --profile steady --rate 20 --duration 60s" in both
    stats = Stats(rows=_window_rows([0.1, 0.2, 1.5], [50, 100, 150]), t0_wall=0.0)
    stats.cpu = [{"wall": float(s), "gateway_cpu": 70.0, "sut_cpu": 40.0} for s in range(1, 16)]
    with_cpu = capacity_sentence(stats.capacity(width=5.0), "reference", "national")
    assert "p95 200.0 ms; the gateway process at 70 % and the SUT process at 40 % of one core" in with_cpu
    never = capacity_sentence(Stats(rows=_window_rows([0.1, 0.2], [50, 100])).capacity(width=5.0), "stub", "x")
    assert never.startswith("Every window held") and "20 actions/s" in never
    none = capacity_sentence(Stats(rows=_window_rows([3.0], [50])).capacity(width=5.0), "stub", "x")
    assert none.startswith("Not even the first window held") and "10 actions/s" in none
    assert capacity_sentence(Stats().capacity(), "stub", "x").startswith("No action ran")


def test_plan_requires_the_routes_messages_and_fixtures_for_existing_persons() -> None:
    sc = Scale.parse("municipality:200000")
    sched = MODEL.schedule(sc, PEAK, seed=3)[:400]
    tenant = Tenant("T-x", "131016", ("011002", "473821"))
    planner = Planner(tenant, PEAK, compress=600.0)
    assert set(FUNCTIONS) == DRIVEN
    actions = [planner.action(a) for a in sched]
    assert {"move_in", "copy", "kiosk", "tenkyo"} <= {a["fn"] for a in actions}
    for a, act in zip(sched, actions, strict=True):
        assert [(ar, t) for ar, t, _ in act["require"]] == REQUIRED[a.function]
        keyed_by_jcode = a.function not in ("kiosk", "wide_area_copy")  # their routes carry no 住民票コード
        assert all((code == act["jcode"]) is keyed_by_jcode for _, _, code in act["require"])
        assert act["t"] == pytest.approx(a.t / 600.0) and act["i"] == a.index
        assert planner.ids(a)[0] == act["jcode"]
        assert all((st["arrow"], st["type"]) in WAITED for st in act["steps"] if st["kind"] == "wait")
        # one 職権記載 of the very person the action finds recorded (and a 転出 for a 転出証明書情報 request);
        # pooled persons (copy, kiosk) are recorded once for all their actions
        fixtures = planner.fixtures(a)
        own = a.function not in (*POOLED, "move_in", "special_move_in")
        assert [st["op"] for st in fixtures] == (
            ["OfficialCorrection", "MovingNotification"] if a.function == "peer_moveout_cert"
            else ["OfficialCorrection"] if own else [])
        assert all(act["jcode"] in st["body"] for st in fixtures)
    persons = [act["jcode"] for act in actions if act["fn"] not in POOLED]
    assert len(set(persons)) == len(persons) and all(map(is_valid_juminhyo_code, persons))  # one each
    pooled = [act for act in actions if act["fn"] in POOLED]
    assert sum(act["fn"] == "copy" for act in pooled) > POOL_SIZE  # the pool is exercised
    codes = {act["jcode"] for act in pooled}
    assert len(codes) == len({(a.function, a.index % POOL_SIZE) for a in sched if a.function in POOLED})
    records = planner.pool_fixtures(sched)
    assert len(records) == len(codes) and all(any(c in st["body"] for st in records) for c in codes)
    kiosk = {act["jcode"] for act in pooled if act["fn"] == "kiosk"}
    assert {code for code, _ in planner.centre_cards(sched)} == kiosk


def test_every_process_builds_the_same_person_for_the_same_action() -> None:
    """The runner records the fixtures and each Locust process builds its share of the actions on its own:
    both must arrive at the same persons, whatever was built before in that process."""
    sched = MODEL.schedule(Scale.parse("municipality:200000"), PEAK, seed=5)[:120]
    tenant = Tenant("T-x", "131016", ("011002", "473821"))
    one, other = Planner(tenant, PEAK, 600.0), Planner(tenant, PEAK, 600.0)
    forward = {a.index: one.action(a)["jcode"] for a in sched}
    backward = {a.index: other.action(a)["jcode"] for a in reversed(sched[::2])}
    assert all(forward[i] == code for i, code in backward.items())
    assert [one.fixtures(a) != [] for a in sched] == [other.fixtures(a) != [] for a in sched]


@pytest.mark.parametrize("fn", ["tenkyo", "kiosk", "special_move_in"])
def test_two_actions_with_the_same_seed_get_their_own_person_and_key(fn: str) -> None:
    """The schedule's seeds are 31 bits: a national day's 525,000 actions repeat some of them. Two actions
    must still never share a person (the second 職権記載 would be refused) or a cascade key."""
    planner = Planner(Tenant("T-x", "131016", ("011002", "473821")), PEAK, 12.0)
    first, second = (planner.action(Action(100.0, fn, 4242, i)) for i in (7, 70_007))
    assert first["jcode"] != second["jcode"]
    assert {tuple(r) for r in first["require"]}.isdisjoint(tuple(r) for r in second["require"])


def _stats() -> Stats:
    rows = [Row(i, "move_in", float(i), float(i), i + 0.010 * (i + 1), "ok", None) for i in range(100)]
    rows.append(Row(100, "copy", 1.0, None, None, "dropped", "1000 cascades open"))
    return Stats(rows=rows)


def test_percentiles_are_exact_from_the_intended_time() -> None:
    p = _stats().percentiles("move_in")
    assert p["p50"] == pytest.approx(0.50, rel=2e-3)
    assert p["p99"] == pytest.approx(0.99, rel=2e-3)
    assert p["max"] == pytest.approx(1.00, rel=2e-3)
    assert _stats().totals() == {"actions": 101, "ok": 100, "late": 0, "error": 0, "dropped": 1, "unsent": 0}


def test_percentiles_over_time_are_exact_per_bucket() -> None:
    series = _stats().series(10.0)
    move_in = series["functions"]["move_in"]
    assert len(series["t"]) == 10 and series["completed"] == [10] * 10 and series["dropped"][0] == 1
    # bucket k holds the cascades of 0.01·(10k+1) … 0.01·(10k+10) s: nearest rank of 10 values
    assert move_in["p50"] == pytest.approx([0.01 * (10 * k + 5) for k in range(10)])
    assert move_in["p95"] == move_in["p99"] == move_in["max"] == pytest.approx([0.1 * (k + 1) for k in range(10)])
    assert "copy" not in series["functions"]  # a dropped action has no cascade time


@pytest.mark.parametrize(("text", "ok"), [
    ("p95<1s", True), ("p95<1ms", False), ("move_in:p99<=995ms", True), ("max<900ms", False),
    ("dropped<1%", True), ("dropped<0.5%", False), ("copy:p95<1s", False),
])
def test_thresholds(text: str, ok: bool) -> None:
    passed, _ = parse_threshold(text).evaluate(_stats())
    assert passed is ok


def test_bad_thresholds_are_refused_with_a_code() -> None:
    for bad in ("p95 > 1s", "p95<1%", "speed<3"):
        with pytest.raises(HarnessError) as e:
            parse_threshold(bad)
        assert e.value.findings[0].code == "LOAD-THRESHOLD"


def test_svg_plot_draws_lines_and_isolated_points() -> None:
    from load.report import svg_lines

    svg = svg_lines([0.0, 1.0, 2.0, 3.0, 4.0], {"p95": [0.1, 0.2, None, 0.4, None], "max": [None] * 5})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<path") == 1 and "M60.0" in svg  # one line for p95; nothing to draw for max
    assert svg.count("<circle") == 1  # the bucket at x=3 stands alone between gaps
    assert "■ p95" in svg and "■ max" in svg


def test_the_bottleneck_sentence_follows_the_numbers() -> None:
    from load.report import bottleneck
    from load.runner import LoadOutcome

    on_time = Stats(rows=[Row(i, "copy", float(i), float(i), i + 0.05, "ok", None) for i in range(100)],
                    cpu=[{"t": 1.0, "gateway_cpu": 40.0, "locust_cpu": 10.0, "lanes": 0.0, "trace_seq": 0.0}])
    assert bottleneck(LoadOutcome(stats=on_time)).startswith("Neither was saturated")
    slow = Stats(rows=[Row(i, "copy", float(i), float(i), i + 3.0, "ok", None) for i in range(100)], cpu=on_time.cpu)
    assert bottleneck(LoadOutcome(stats=slow)).startswith("The SUT side was the bottleneck")
    behind = Stats(rows=[Row(i, "copy", float(i), i + 1.0, i + 1.1, "late", None) for i in range(100)],
                   cpu=[{"t": 1.0, "gateway_cpu": 20.0, "locust_cpu": 99.0, "lanes": 0.0, "trace_seq": 0.0}])
    assert bottleneck(LoadOutcome(stats=behind)).startswith("The harness was the bottleneck")


def test_the_plan_says_what_a_replay_asks_for_at_its_compression() -> None:
    national = Scale.parse("national")
    slow, fast = (replay_summary(MODEL, national, PEAK, c) for c in (12.0, 100.0))
    assert slow["minutes_of_the_day"] == fast["minutes_of_the_day"] == 990  # 06:30 .. 23:00 (the kiosks)
    assert (slow["run_seconds"], fast["run_seconds"]) == (4950.0, 594.0)
    busiest = max(sum(r[m] for r in MODEL.rates(national, PEAK).values()) for m in range(1440))
    assert fast["busiest_minute_actions"] == pytest.approx(busiest, abs=0.1)
    assert fast["busiest_actions_per_s"] == pytest.approx(busiest / 60 * 100, abs=0.1)
    assert slow["busiest_actions_per_s"] == pytest.approx(busiest / 60 * 12, abs=0.1)
