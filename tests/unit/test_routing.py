"""Proxy usernames: ``NAME``, ``NAME-session-ID``, ``NAME-agent-AGENT`` and both together."""

from __future__ import annotations

import pytest

from server.routing import Route, parse_username


def test_it_reads_a_plain_name_as_the_user_with_no_options() -> None:
    assert parse_username("alice") == Route(user="alice", session=None, agent=None)


def test_it_reads_a_session_option() -> None:
    assert parse_username("alice-session-abc123") == Route(user="alice", session="abc123")


def test_it_reads_an_agent_option_whose_name_has_dashes() -> None:
    assert parse_username("alice-agent-office-pc-7") == Route(user="alice", agent="office-pc-7")


@pytest.mark.parametrize(
    "username",
    ["alice-session-s1-agent-office-pc-7", "alice-agent-office-pc-7-session-s1"],
)
def test_it_reads_both_options_in_either_order(username: str) -> None:
    assert parse_username(username) == Route(user="alice", session="s1", agent="office-pc-7")


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice-session-", Route(user="alice")),
        ("alice-agent-", Route(user="alice")),
        ("alice-session--agent-pc", Route(user="alice", agent="pc")),
        ("alice-agent--session-s1", Route(user="alice", session="s1")),
    ],
)
def test_it_ignores_options_with_empty_values(username: str, expected: Route) -> None:
    assert parse_username(username) == expected


def test_it_keeps_dashes_in_the_user_name_that_are_not_option_markers() -> None:
    assert parse_username("crawl-team-session-x") == Route(user="crawl-team", session="x")


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("john.doe@corp.example", Route(user="john.doe@corp.example")),
        (
            "john.doe@corp.example-session-a.b@c",
            Route(user="john.doe@corp.example", session="a.b@c"),
        ),
        (
            "qa+bot@corp.example-agent-pc.lan",
            Route(user="qa+bot@corp.example", agent="pc.lan"),
        ),
    ],
)
def test_it_accepts_names_and_values_with_dots_and_at_signs(username: str, expected: Route) -> None:
    assert parse_username(username) == expected


def test_it_lets_a_repeated_option_take_its_last_value() -> None:
    assert parse_username("alice-session-one-session-two").session == "two"


def test_it_treats_option_words_without_both_dashes_as_part_of_the_name() -> None:
    assert parse_username("alice-sessionX") == Route(user="alice-sessionX")
