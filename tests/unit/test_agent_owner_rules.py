"""The owner's rules as pure values: the sharing schedule and the blocked destinations."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.engine.owner_rules import (
    OwnerRules,
    PauseReason,
    Schedule,
    parse_blocked,
)

TZ = dt.timezone(dt.timedelta(hours=2))
MONDAY = dt.date(2024, 5, 6)  # a Monday
EVENINGS = Schedule(start=dt.time(18), end=dt.time(8))
EVENINGS_AND_WEEKENDS = Schedule(start=dt.time(18), end=dt.time(8), all_day=frozenset({5, 6}))
OFFICE_HOURS = Schedule(start=dt.time(9), end=dt.time(17, 30))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """``day`` days after Monday 6 May 2024, at the given local time."""
    return dt.datetime.combine(
        MONDAY + dt.timedelta(days=day), dt.time(hour, minute, second), tzinfo=TZ
    )


# ------------------------------------------------------------------ Schedule.allows


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        (at(0, 7, 59, 59), True),
        (at(0, 8), False),
        (at(0, 12), False),
        (at(0, 17, 59, 59), False),
        (at(0, 18), True),
        (at(0, 23, 59), True),
        (at(1, 0), True),
        (at(1, 3), True),
    ],
)
def test_it_allows_a_window_that_wraps_midnight(when: dt.datetime, allowed: bool) -> None:
    assert EVENINGS.allows(when) is allowed


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        (at(0, 8, 59), False),
        (at(0, 9), True),
        (at(0, 17, 29), True),
        (at(0, 17, 30), False),
        (at(0, 23), False),
    ],
)
def test_it_allows_a_window_within_one_day(when: dt.datetime, allowed: bool) -> None:
    assert OFFICE_HOURS.allows(when) is allowed


def test_it_allows_whole_weekdays_listed_as_all_day() -> None:
    assert EVENINGS_AND_WEEKENDS.allows(at(5, 12))  # Saturday noon
    assert EVENINGS_AND_WEEKENDS.allows(at(6, 12))  # Sunday noon
    assert EVENINGS_AND_WEEKENDS.allows(at(7, 7))  # Monday early: Sunday evening's window
    assert not EVENINGS_AND_WEEKENDS.allows(at(7, 12))  # Monday noon
    assert not EVENINGS_AND_WEEKENDS.allows(at(4, 12))  # Friday noon


def test_it_allows_the_whole_day_when_start_equals_end() -> None:
    always = Schedule(start=dt.time(6), end=dt.time(6))

    assert all(always.allows(at(day, hour)) for day in range(7) for hour in range(24))
    assert always.next_change(at(0, 12)) is None


def test_it_refuses_weekdays_outside_zero_to_six() -> None:
    with pytest.raises(ValueError, match="weekdays"):
        Schedule(start=dt.time(9), end=dt.time(17), all_day=frozenset({7}))


# ------------------------------------------------------------ Schedule.next_change


@pytest.mark.parametrize(
    ("schedule", "when", "change"),
    [
        (EVENINGS, at(0, 12), at(0, 18)),
        (EVENINGS, at(0, 18), at(1, 8)),  # allowed from 18:00 through midnight until 08:00
        (EVENINGS, at(0, 23, 30), at(1, 8)),
        (OFFICE_HOURS, at(0, 20), at(1, 9)),  # across midnight
        (OFFICE_HOURS, at(0, 9), at(0, 17, 30)),
        (EVENINGS_AND_WEEKENDS, at(4, 12), at(4, 18)),  # Friday noon: the evening starts
        (EVENINGS_AND_WEEKENDS, at(4, 18), at(7, 8)),  # then on through the weekend
        (EVENINGS_AND_WEEKENDS, at(5, 12), at(7, 8)),
    ],
)
def test_it_finds_the_next_change(
    schedule: Schedule, when: dt.datetime, change: dt.datetime
) -> None:
    assert schedule.next_change(when) == change


def test_it_finds_a_change_at_midnight_when_an_all_day_weekday_begins() -> None:
    weekends_only_mornings = Schedule(start=dt.time(6), end=dt.time(7), all_day=frozenset({5, 6}))

    assert weekends_only_mornings.next_change(at(4, 12)) == at(5, 0)  # Saturday 00:00
    assert weekends_only_mornings.next_change(at(6, 12)) == at(7, 0)  # Monday 00:00


def test_it_never_changes_when_every_day_is_all_day() -> None:
    every_day = Schedule(start=dt.time(9), end=dt.time(10), all_day=frozenset(range(7)))

    assert every_day.next_change(at(2, 15)) is None


@given(
    start=st.times(),
    end=st.times(),
    all_day=st.frozensets(st.integers(0, 6)),
    offset=st.integers(0, 7 * 24 * 3600 - 1),
)
def test_it_flips_exactly_at_the_change_it_announces(
    start: dt.time, end: dt.time, all_day: frozenset[int], offset: int
) -> None:
    schedule = Schedule(
        start=start.replace(microsecond=0), end=end.replace(microsecond=0), all_day=all_day
    )
    when = at(0, 0) + dt.timedelta(seconds=offset)
    change = schedule.next_change(when)
    if change is None:
        return
    assert change > when
    assert schedule.allows(change) != schedule.allows(when)
    assert schedule.allows(change - dt.timedelta(seconds=1)) == schedule.allows(when)


# ------------------------------------------------------------------ parse_blocked


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("example.com", "example.com"),
        ("  Example.COM.  ", "example.com"),
        ("*.example.com", "example.com"),
        ("example.com:443", "example.com:443"),
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4:8080", "1.2.3.4:8080"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.9/24", "203.0.113.0/24"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_it_reads_every_accepted_form(entry: str, canonical: str) -> None:
    assert str(parse_blocked(entry)) == canonical
    assert str(parse_blocked(canonical)) == canonical  # the canonical form reads back


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("exa mple.com", "'exa mple.com' is not a host name, IP address or network"),
        ("", "an empty entry is not a host name, IP address or network"),
        ("   ", "an empty entry is not a host name, IP address or network"),
        ("example.com:0", "the port must be a number from 1 to 65535"),
        ("example.com:65536", "the port must be a number from 1 to 65535"),
        ("example.com:https", "the port must be a number from 1 to 65535"),
        ("https://example.com/page", "not a web address"),
        ("1.2.3.4/33", "'1.2.3.4/33' is not a host name, IP address or network"),
        ("999.1.1.1", "is not a host name, IP address or network"),
        ("1234", "is not a host name, IP address or network"),
        ("-bad-.com!", "is not a host name, IP address or network"),
        ("a" * 64 + ".com", "is not a host name, IP address or network"),
    ],
)
def test_it_explains_what_is_wrong_with_a_bad_entry(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_blocked(entry)


# ------------------------------------------------------------ BlockedDestination.matches


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("example.com", 443),
        ("EXAMPLE.com.", 80),
        ("www.example.com", 443),
        ("deep.sub.example.com", 8080),
    ],
)
def test_a_blocked_name_covers_its_spellings_and_subdomains(host: str, port: int) -> None:
    assert parse_blocked("example.com").matches(host, port)


@pytest.mark.parametrize("host", ["notexample.com", "example.com.evil", "example.org", "1.2.3.4"])
def test_a_blocked_name_leaves_other_names_alone(host: str) -> None:
    assert not parse_blocked("example.com").matches(host, 443)


def test_a_blocked_port_only_refuses_that_port() -> None:
    entry = parse_blocked("example.com:443")

    assert entry.matches("www.example.com", 443)
    assert not entry.matches("www.example.com", 80)


def test_a_blocked_address_matches_the_literal_and_the_resolved_addresses() -> None:
    entry = parse_blocked("93.184.216.34")

    assert entry.matches("93.184.216.34", 443)
    assert entry.matches("0x5db8d822", 443)  # another spelling the OS would dial
    assert entry.matches("example.com", 443, ["2606:2800::1", "93.184.216.34"])
    assert entry.matches("example.com", 443, ["::ffff:93.184.216.34"])  # IPv4 inside IPv6
    assert not entry.matches("example.com", 443, ["93.184.216.35"])
    assert not entry.matches("example.com", 443)  # not resolved yet: no opinion


def test_a_blocked_network_matches_every_address_inside_it() -> None:
    entry = parse_blocked("203.0.113.0/24")

    assert entry.matches("203.0.113.200", 80)
    assert entry.matches("a.example", 80, ["203.0.113.7"])
    assert not entry.matches("203.0.114.1", 80)


def test_a_blocked_ipv6_address_with_a_port() -> None:
    entry = parse_blocked("[2001:db8::1]:443")

    assert entry.matches("[2001:db8::1]", 443)
    assert entry.matches("2001:db8::1", 443)
    assert not entry.matches("2001:db8::1", 80)


# -------------------------------------------------------------------- OwnerRules


def test_the_default_rules_allow_everything_but_a_stream_count() -> None:
    rules = OwnerRules()

    assert (rules.daily_cap_bytes, rules.bandwidth_limit, rules.schedule) == (None, None, None)
    assert (rules.max_streams, rules.blocked, rules.cut_streams_on_pause) == (256, (), False)


@pytest.mark.parametrize(
    "bad", [{"max_streams": 0}, {"daily_cap_bytes": 0}, {"bandwidth_limit": -1}]
)
def test_it_refuses_limits_that_make_no_sense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        OwnerRules(**bad)  # type: ignore[arg-type]


def test_pause_reasons_read_as_lower_case_words() -> None:
    assert [reason.value for reason in PauseReason] == ["owner", "schedule", "daily_cap", "admin"]
