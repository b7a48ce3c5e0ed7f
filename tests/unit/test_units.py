"""How the admin writes amounts of traffic."""

from __future__ import annotations

import pytest

from tunnel.units import human_bytes, human_duration, human_rate, share


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (1000 * 1024, "1000 KB"),
        (3 * 1024**2 + 200 * 1024, "3.2 MB"),
        (int(5.5 * 1024**3), "5.5 GB"),
        (2 * 1024**4, "2 TB"),
        (3 * 1024**6, "3072 PB"),
        (None, "—"),
    ],
)
def test_it_writes_bytes_in_the_largest_unit_with_three_digits(count: int | None, text: str):
    assert human_bytes(count) == text


def test_it_writes_a_rate_per_second():
    assert human_rate(2048.0) == "2 KB/s"
    assert human_rate(12.7) == "12 B/s"


def test_it_writes_usage_against_a_quota_as_x_of_y():
    assert share(512 * 1024**2, 2 * 1024**3) == "512 MB of 2 GB (25%)"
    assert share(3 * 1024**3, 2 * 1024**3) == "3 GB of 2 GB (150%)"
    assert share(0, 0) == "0 B of 0 B (100%)"


def test_it_writes_just_the_amount_without_a_quota():
    assert share(2048, None) == "2 KB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 s"),
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (7200, "2 h"),
        (86400, "1 day"),
        (3 * 86400 + 5, "3 days"),
    ],
)
def test_it_writes_how_long_in_the_largest_whole_unit(seconds: float, text: str):
    assert human_duration(seconds) == text
