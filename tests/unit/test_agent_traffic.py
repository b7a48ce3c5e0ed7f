"""The traffic meter: rates, calendar totals, recent destinations, and their file."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from desktop_agent.engine.traffic import TRAFFIC_FILE, Destination, RateSample, TrafficMeter
from tests.support.clock import Clock

TZ = dt.timezone(dt.timedelta(hours=1))


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2024, 5, 31, 23, 0, tzinfo=TZ))


def test_it_turns_bytes_per_period_into_rates(clock: Clock) -> None:
    meter = TrafficMeter(clock)
    meter.add("a.example", 443, up=1000, down=4000)
    clock.advance(seconds=1)
    meter.sample(1.0)
    meter.add("a.example", 443, up=300, down=0)
    clock.advance(seconds=2)
    meter.sample(2.0)

    start = dt.datetime(2024, 5, 31, 23, 0, tzinfo=TZ).timestamp()
    assert meter.rates() == [
        RateSample(start + 1, up=1000.0, down=4000.0),
        RateSample(start + 3, up=150.0, down=0.0),
    ]


def test_it_keeps_only_the_last_samples(clock: Clock) -> None:
    meter = TrafficMeter(clock, history=600)

    for second in range(700):
        meter.add("a.example", 80, up=second, down=0)
        meter.sample(1.0)

    rates = meter.rates()
    assert len(rates) == 600
    assert rates[0].up == 100 and rates[-1].up == 699


def test_it_counts_today_this_month_and_overall_by_the_local_calendar(clock: Clock) -> None:
    meter = TrafficMeter(clock)
    meter.add("a.example", 443, up=10, down=20)  # 31 May, 23:00

    clock.advance(hours=2)  # 1 June, 01:00: a new day and a new month
    meter.add("a.example", 443, up=1, down=2)
    totals = meter.totals()
    assert (totals.today_up, totals.today_down) == (1, 2)
    assert (totals.month_up, totals.month_down) == (1, 2)
    assert (totals.all_up, totals.all_down) == (11, 22)

    clock.advance(days=1)  # 2 June: same month
    meter.add("a.example", 443, up=100, down=0)
    totals = meter.totals()
    assert (totals.today_up, totals.month_up, totals.all_up) == (100, 101, 111)
    assert meter.today_bytes() == 100


def test_a_new_day_starts_at_zero_without_any_traffic(clock: Clock) -> None:
    meter = TrafficMeter(clock)
    meter.add("a.example", 443, up=5, down=5)

    clock.advance(hours=1, minutes=1)

    assert meter.today_bytes() == 0


def test_it_lists_destinations_most_recent_first_with_their_numbers(clock: Clock) -> None:
    meter = TrafficMeter(clock)
    start = clock.now.timestamp()
    meter.connection_opened("a.example", 443)
    meter.add("a.example", 443, up=100, down=1000)
    clock.advance(seconds=5)
    meter.connection_opened("b.example", 80)
    clock.advance(seconds=5)
    meter.connection_opened("a.example", 443)
    meter.add("a.example", 443, up=1, down=1)

    assert meter.recent_destinations() == [
        Destination("a.example", 443, 101, 1001, start, start + 10, connections=2),
        Destination("b.example", 80, 0, 0, start + 5, start + 5, connections=1),
    ]
    assert meter.connections_served == 3


def test_it_drops_the_least_recently_used_destinations_beyond_its_limit(clock: Clock) -> None:
    meter = TrafficMeter(clock, max_destinations=200)

    for number in range(250):
        meter.connection_opened(f"host{number}.example", 443)
    meter.add("host10.example", 443, up=1, down=0)  # evicted already: counted afresh

    hosts = [d.host for d in meter.recent_destinations()]
    assert len(hosts) == 200
    assert hosts[0] == "host10.example"
    assert hosts[1] == "host249.example"
    assert "host50.example" not in hosts and "host51.example" in hosts


def test_a_saved_meter_comes_back_with_todays_count(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / TRAFFIC_FILE
    meter = TrafficMeter(clock, path)
    meter.connection_opened("a.example", 443)
    meter.add("a.example", 443, up=10, down=20)
    meter.save()

    again = TrafficMeter(clock, path)
    again.load()

    assert again.totals() == meter.totals()
    assert again.connections_served == 1
    assert again.recent_destinations() == meter.recent_destinations()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [TRAFFIC_FILE]


def test_a_meter_saved_yesterday_keeps_only_the_overall_total(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / TRAFFIC_FILE
    meter = TrafficMeter(clock, path)
    meter.add("a.example", 443, up=10, down=20)
    meter.save()
    clock.advance(days=1)

    again = TrafficMeter(clock, path)
    again.load()

    totals = again.totals()
    assert (totals.today_up, totals.month_up, totals.all_up, totals.all_down) == (0, 0, 10, 20)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[]",
        '{"day": "yesterday", "today": [1, 2], "month": [1, 2], "all": [1, 2]}',
        '{"day": "2024-05-31", "today": [-1, 2], "month": [1, 2], "all": [1, 2]}',
        '{"day": "2024-05-31", "today": [1], "month": [1, 2], "all": [1, 2]}',
    ],
)
def test_an_unreadable_file_leaves_the_meter_empty(
    tmp_path: Path, clock: Clock, content: str
) -> None:
    path = tmp_path / TRAFFIC_FILE
    path.write_text(content)
    meter = TrafficMeter(clock, path)

    meter.load()

    assert meter.today_bytes() == 0
    assert meter.recent_destinations() == []


def test_a_long_file_is_cut_to_the_destination_limit(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / TRAFFIC_FILE
    big = TrafficMeter(clock, path, max_destinations=50)
    for number in range(50):
        big.connection_opened(f"host{number}.example", 443)
    big.save()

    small = TrafficMeter(clock, path, max_destinations=10)
    small.load()

    hosts = [d.host for d in small.recent_destinations()]
    assert hosts == [f"host{n}.example" for n in range(49, 39, -1)]
    assert json.loads(path.read_text())["connections_served"] == 50
