"""The dashboard's snapshot, built from real database rows and a real hub.

Online agents are real :class:`AgentSession` objects over a real
:class:`tunnel.Mux` whose ``send`` appends to a list; everything else is rows
in the run's test database (``django_db`` in tests/conftest.py). Each test runs
in a transaction that is rolled back, on tables it empties first, so it sees
only its own rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.server_state import agent_session

if TYPE_CHECKING:
    from server.accounting import Accounting
    from server.fleet.models import Agent
    from server.hub import AgentSession, Hub

NOW = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def clean(django_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty fleet and traffic history, rolled back after the test.

    The request-log summary is never reused here (each test has its own rows),
    however long a query takes on a busy machine.
    """
    from django.db import transaction

    from server.dashboard import data
    from server.fleet.models import Agent, AgentDayUsage, ProxyUser, RequestLog, TrafficMinute

    fresh = data.CostlyQuery(data._summarize_log, threshold=math.inf)
    monkeypatch.setattr(data, "_log_summary", fresh)

    with transaction.atomic():
        for model in (RequestLog, TrafficMinute, AgentDayUsage, Agent, ProxyUser):
            model.objects.all().delete()
        yield
        transaction.set_rollback(True)


def enrolled(name: str, **fields: Any) -> Agent:
    from server.fleet.models import Agent

    return Agent.objects.create(name=name, credential_hash=f"hash-{next(_serial)}", **fields)


def online(hub: Hub, agent: Agent, exit_ip: str = "198.51.100.7", **facts: str) -> AgentSession:
    session = agent_session(
        agent.pk, agent.name, exit_ip, facts=dict(facts), connected_at=NOW.timestamp() - 300
    )
    hub.register(session)
    return session


@pytest.fixture
def hub() -> Hub:
    from server.hub import Hub

    return Hub()


@pytest.fixture
def accounting() -> Accounting:
    from server.accounting import Accounting
    from server.config import ServerConfig

    return Accounting(ServerConfig())


def on_a_loop(action: Callable[[], None]) -> None:
    """Run ``action`` where the server runs it: on an event loop (the mux sends from there)."""

    async def run() -> None:
        action()

    asyncio.run(run())


def snapshot_of(hub: Hub | None = None, accounting: Accounting | None = None) -> dict[str, Any]:
    from server.dashboard.data import read_live, snapshot

    state = read_live(hub, accounting) if hub is not None and accounting is not None else None
    return snapshot(state, now=NOW)


def logged(
    host: str = "example.com",
    port: int = 443,
    user: str = "alice",
    result: str = "ok",
    up: int = 100,
    down: int = 1000,
    ago: dt.timedelta = dt.timedelta(minutes=5),
) -> None:
    from server.fleet.models import RequestLog

    RequestLog.objects.create(
        time=NOW - ago,
        kind="connect",
        user_name=user,
        host=host,
        port=port,
        bytes_up=up,
        bytes_down=down,
        result=result,
    )


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in data["agents"]}


# ------------------------------------------------------------------ agents


def test_without_live_state_every_enrolled_agent_is_offline_and_revoked_ones_are_left_out() -> None:
    enrolled("pc-1", last_seen=NOW - dt.timedelta(hours=2), last_exit_ip="203.0.113.5")
    enrolled("pc-2")
    enrolled("pc-gone", revoked_at=NOW - dt.timedelta(days=1))

    data = snapshot_of()

    assert data["live"] is False
    assert data["counts"] == {"online": 0, "paused": 0, "offline": 2}
    rows = by_name(data)
    assert set(rows) == {"pc-1", "pc-2"}
    assert rows["pc-1"]["state"] == "offline"
    assert rows["pc-1"]["exit_ip"] == "203.0.113.5"
    assert rows["pc-1"]["last_seen"] == (NOW - dt.timedelta(hours=2)).timestamp()
    assert rows["pc-2"]["last_seen"] is None


def test_online_agents_come_from_the_hub_with_their_live_rates(
    hub: Hub, accounting: Accounting
) -> None:
    agent = enrolled("pc-live", label="Anna's desk", os="Windows 11")
    enrolled("pc-idle")
    online(hub, agent, os="Linux 6.1", agent_version="0.1.0")
    accounting.agent_rates = {agent.pk: (1500.0, 250000.0)}
    accounting.total_rate = (1500.0, 250000.0)

    data = snapshot_of(hub, accounting)

    assert data["live"] is True
    assert data["counts"] == {"online": 1, "paused": 0, "offline": 1}
    assert data["rate"] == {"up": 1500.0, "down": 250000.0}
    row = by_name(data)["pc-live"]
    assert row["state"] == "online"
    assert row["label"] == "Anna's desk"
    assert row["exit_ip"] == "198.51.100.7"
    assert row["since"] == NOW.timestamp() - 300
    assert (row["rate_up"], row["rate_down"]) == (1500.0, 250000.0)
    assert (row["os"], row["agent_version"]) == ("Linux 6.1", "0.1.0")
    assert (row["open_streams"], row["max_streams"]) == (0, 8)
    assert row["admin_url"] == f"/admin/fleet/agent/{agent.pk}/change/"
    assert [r["name"] for r in data["agents"]] == ["pc-live", "pc-idle"]  # online first


def test_open_streams_are_counted_from_the_agents_connection(
    hub: Hub, accounting: Accounting
) -> None:
    session = online(hub, enrolled("pc-busy"))
    session.mux.conn.open_stream("example.org", 443)
    session.mux.conn.open_stream("example.org", 80)

    assert by_name(snapshot_of(hub, accounting))["pc-busy"]["open_streams"] == 2


def test_it_says_who_paused_an_agent_and_since_when(hub: Hub, accounting: Accounting) -> None:
    by_owner = online(hub, enrolled("pc-owner"))
    by_both = online(hub, enrolled("pc-both"))
    by_owner.set_paused(True)
    by_both.set_paused(True)
    on_a_loop(lambda: by_both.set_admin_paused(True))  # it tells the agent, as in the server

    data = snapshot_of(hub, accounting)

    rows = by_name(data)
    assert data["counts"] == {"online": 0, "paused": 2, "offline": 0}
    assert rows["pc-owner"]["paused_by"] == ["owner"]
    assert rows["pc-both"]["paused_by"] == ["owner", "admin"]
    assert rows["pc-owner"]["state"] == "paused"
    assert rows["pc-owner"]["since"] == by_owner.paused_since


def test_an_offline_agent_paused_by_an_admin_says_so() -> None:
    enrolled("pc-held", paused_by_admin=True)

    row = by_name(snapshot_of())["pc-held"]

    assert (row["state"], row["paused_by"]) == ("offline", ["admin"])


def test_an_agent_still_online_after_its_revocation_is_shown_until_it_is_cut_off(
    hub: Hub, accounting: Accounting
) -> None:
    online(hub, enrolled("pc-revoked", revoked_at=NOW))

    assert by_name(snapshot_of(hub, accounting))["pc-revoked"]["state"] == "online"


def test_bytes_today_count_only_todays_usage() -> None:
    from server.fleet.models import AgentDayUsage

    agent = enrolled("pc-usage")
    AgentDayUsage.objects.create(agent=agent, day=NOW.date(), bytes_up=10, bytes_down=2000)
    yesterday = NOW.date() - dt.timedelta(days=1)
    AgentDayUsage.objects.create(agent=agent, day=yesterday, bytes_up=99, bytes_down=99999)

    row = by_name(snapshot_of())["pc-usage"]

    assert (row["today_up"], row["today_down"]) == (10, 2000)


# ------------------------------------------------------------------ traffic


def test_the_traffic_series_has_one_point_per_minute_with_missing_minutes_as_zeros() -> None:
    from server.fleet.models import TrafficMinute

    this_minute = NOW.replace(second=0, microsecond=0)
    for back, down in ((0, 600), (5, 6000), (59, 60), (60, 999999)):
        TrafficMinute.objects.create(
            minute=this_minute - dt.timedelta(minutes=back),
            bytes_up=down // 10,
            bytes_down=down,
            requests=back + 1,
            errors=1,
        )

    data = snapshot_of()

    traffic = data["traffic"]
    assert traffic["start"] == (this_minute - dt.timedelta(minutes=59)).timestamp()
    assert traffic["step"] == 60
    assert len(traffic["bytes_down"]) == 60
    assert traffic["bytes_down"][-1] == 600
    assert traffic["bytes_down"][-6] == 6000
    assert traffic["bytes_down"][0] == 60
    assert traffic["bytes_up"][-6] == 600
    assert sum(1 for value in traffic["bytes_down"] if value) == 3  # the minute 60 back is out
    assert traffic["requests"][-1] == 1
    assert data["last_hour"] == {
        "requests": 1 + 6 + 60,
        "errors": 3,
        "bytes_up": 60 + 600 + 6,
        "bytes_down": 600 + 6000 + 60,
    }


def test_errors_are_grouped_by_cause_over_the_last_hour() -> None:
    for result in ("ok", "ok", "no-agent", "target-timeout", "no-agent"):
        logged(result=result)
    logged(result="dns-failed", ago=dt.timedelta(minutes=61))

    assert snapshot_of()["errors"] == [
        {"cause": "no-agent", "count": 2},
        {"cause": "target-timeout", "count": 1},
    ]


def test_top_destinations_are_ranked_by_bytes_and_cut_at_ten() -> None:
    from server.dashboard.data import TOP_COUNT

    for i in range(TOP_COUNT + 2):
        logged(host=f"site{i}.example", down=1000 * (i + 1))
    logged(host="site0.example", down=500, result="target-refused")
    logged(host="site0.example", port=80, down=1)
    logged(host="huge.example", down=10**9, ago=dt.timedelta(hours=2))

    top = snapshot_of()["top_destinations"]

    assert len(top) == TOP_COUNT
    assert top[0] == {
        "host": "site11.example",
        "port": 443,
        "bytes_up": 100,
        "bytes_down": 12000,
        "requests": 1,
    }
    assert [row["host"] for row in top] == [f"site{i}.example" for i in range(11, 1, -1)]


def test_top_users_are_ranked_by_bytes_with_their_failures() -> None:
    logged(user="crawler", down=5000)
    logged(user="crawler", down=0, result="no-agent")
    logged(user="qa", down=9000)

    assert snapshot_of()["top_users"] == [
        {"name": "qa", "bytes_up": 100, "bytes_down": 9000, "requests": 1, "errors": 0},
        {"name": "crawler", "bytes_up": 200, "bytes_down": 5000, "requests": 2, "errors": 1},
    ]


def test_the_snapshot_is_plain_json(hub: Hub, accounting: Accounting) -> None:
    online(hub, enrolled("pc-json"))
    enrolled("pc-off", last_seen=NOW)
    logged(result="forbidden")

    data = snapshot_of(hub, accounting)

    assert json.loads(json.dumps(data)) == data
    assert data["server_time"] == NOW.timestamp()


# ------------------------------------------------------------------ costly queries


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_result_is_reused_for_five_times_as_long_as_it_took() -> None:
    from server.dashboard.data import CostlyQuery

    clock = Clock()
    calls: list[str] = []

    def slow(arg: str) -> int:
        calls.append(arg)
        clock.now += 2.0
        return len(calls)

    query = CostlyQuery(slow, threshold=0.1, factor=5.0, clock=clock)

    assert query("first") == 1  # took 2 s, from 100 to 102: kept until 112
    clock.now = 111.9
    assert query("second") == 1
    clock.now = 112.0
    assert query("third") == 2
    assert calls == ["first", "third"]


def test_a_quick_result_is_computed_afresh_every_time() -> None:
    from server.dashboard.data import CostlyQuery

    clock = Clock()
    calls: list[int] = []

    def quick() -> int:
        calls.append(1)
        clock.now += 0.05
        return len(calls)

    query = CostlyQuery(quick, threshold=0.1, clock=clock)

    assert [query(), query(), query()] == [1, 2, 3]
