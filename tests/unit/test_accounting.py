"""Accounting: limits at admission, counters in memory, batched writes, pruning.

Real ``ProxyUser`` and ``Agent`` rows in the run's test database; bytes are
added with ``Flow.add_bytes`` (the integration tests count them from real links).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async

from server.config import ServerConfig

if TYPE_CHECKING:
    from server.accounting import Accounting, Flow
    from server.fleet.models import Agent, ProxyUser
    from server.proxy_auth import ProxyIdentity

_names = itertools.count(1)


@pytest.fixture
def accounting(django_db: None) -> Accounting:
    from server.accounting import Accounting

    return Accounting(ServerConfig(user_max_streams=3, log_retention_days=30))


@pytest.fixture
def user(django_db: None) -> ProxyUser:
    from server.fleet.models import ProxyUser

    user = ProxyUser(name=f"acct{next(_names)}")
    user.set_password("pw")
    user.save()
    return user


@pytest.fixture
def agent(django_db: None) -> Agent:
    from server.fleet.models import Agent

    return Agent.objects.create(
        name=f"acct-pc{next(_names)}", credential_hash=f"acct-h{next(_names)}"
    )


def identity(user: ProxyUser, **limits: Any) -> ProxyIdentity:
    from server.proxy_auth import ProxyIdentity

    return ProxyIdentity(user.pk, user.name, **limits)


def flow(kind: str = "connect", host: str = "example.test", port: int = 443) -> Flow:
    from server.accounting import Flow

    return Flow(kind, "someone", host, port)


async def test_a_user_gets_the_servers_stream_limit_unless_they_have_their_own(
    accounting: Accounting, user: ProxyUser
) -> None:
    from server.accounting import Limited

    flows = [flow() for _ in range(4)]
    for one in flows[:3]:
        await accounting.admit(one, identity(user))
    with pytest.raises(Limited) as refused:
        await accounting.admit(flows[3], identity(user))
    assert refused.value.code == "too-many-streams"
    assert "3 connections" in str(refused.value)

    accounting.end(flows[0], 200, "ok")
    await accounting.admit(flows[3], identity(user))  # a slot came free
    assert accounting.open_by_user[user.pk] == 3

    with pytest.raises(Limited):
        await accounting.admit(flow(), identity(user, max_streams=1))
    await accounting.admit(flow(), identity(user, max_streams=10))


async def test_ending_a_flow_twice_counts_it_once(accounting: Accounting, user: ProxyUser) -> None:
    one = flow()
    await accounting.admit(one, identity(user))
    accounting.end(one, 200, "ok")
    accounting.end(one, 502, "agent-lost")
    assert accounting.open_by_user[user.pk] == 0
    assert len(accounting.pending.rows) == 1
    assert accounting.pending.rows[0]["result"] == "ok"


async def test_the_quota_counts_the_database_and_what_is_not_yet_flushed(
    accounting: Accounting, user: ProxyUser, agent: Agent
) -> None:
    from server.accounting import Limited, month_of
    from server.fleet.models import UserMonthUsage

    this_month = month_of(dt.datetime.now(dt.UTC).date())
    await sync_to_async(UserMonthUsage.objects.create)(
        user=user, month=this_month, bytes_up=400, bytes_down=500
    )
    first = flow()
    await accounting.admit(first, identity(user, monthly_quota=1000))  # 900 used: allowed
    first.carried_by(agent.pk, agent.name)
    first.add_bytes(50, 60)  # 1010 once counted; not flushed yet
    accounting.tick()
    with pytest.raises(Limited) as refused:
        await accounting.admit(flow(), identity(user, monthly_quota=1000))
    assert refused.value.code == "quota-exceeded"
    assert "1010 of 1000" in str(refused.value)
    # A flow already running is not cut; the next one is refused.
    assert first in accounting.active


async def test_a_flush_writes_rows_usage_and_minutes_and_adds_to_earlier_ones(
    accounting: Accounting, user: ProxyUser, agent: Agent
) -> None:
    from server.fleet.models import AgentDayUsage, RequestLog, TrafficMinute, UserMonthUsage

    async def one_request(up: int, down: int, result: str = "ok", status: int = 200) -> None:
        one = flow(host="files.test", port=80)
        await accounting.admit(one, identity(user))
        one.carried_by(agent.pk, agent.name)
        one.add_bytes(up, down)
        accounting.end(one, status, result)

    await one_request(100, 1000)
    await one_request(10, 0, "target-refused", 502)
    await accounting.flush()
    await one_request(1, 5)
    await accounting.flush()

    def read() -> dict[str, Any]:
        rows = list(RequestLog.objects.filter(user=user).order_by("time", "id"))
        usage = UserMonthUsage.objects.get(user=user)
        day = AgentDayUsage.objects.get(agent=agent)
        minutes = TrafficMinute.objects.all()
        return {
            "rows": [(r.host, r.port, r.bytes_up, r.bytes_down, r.status, r.result) for r in rows],
            "agents": {r.agent_name for r in rows},
            "user": (usage.bytes_up, usage.bytes_down, usage.requests),
            "agent": (day.bytes_up, day.bytes_down, day.streams),
            "minute_bytes": sum(m.bytes_up + m.bytes_down for m in minutes),
            "minute_errors": sum(m.errors for m in minutes),
        }

    seen = await sync_to_async(read)()
    assert seen["rows"] == [
        ("files.test", 80, 100, 1000, 200, "ok"),
        ("files.test", 80, 10, 0, 502, "target-refused"),
        ("files.test", 80, 1, 5, 200, "ok"),
    ]
    assert seen["agents"] == {agent.name}
    assert seen["user"] == (111, 1005, 3)
    assert seen["agent"] == (111, 1005, 3)
    assert seen["minute_bytes"] >= 1116  # other tests of this run share the minutes
    assert seen["minute_errors"] >= 1
    assert not accounting.pending.rows


async def test_a_row_outlives_its_deleted_user(
    accounting: Accounting, user: ProxyUser, agent: Agent
) -> None:
    from server.fleet.models import RequestLog

    one = flow(host="gone.test")
    await accounting.admit(one, identity(user))
    accounting.end(one, 200, "ok")
    name = user.name
    await sync_to_async(user.delete)()
    await accounting.flush()
    row = await sync_to_async(RequestLog.objects.get)(host="gone.test")
    assert (row.user_id, row.user_name) == (None, name)


async def test_rows_older_than_the_retention_are_pruned(
    accounting: Accounting, user: ProxyUser
) -> None:
    from server.fleet.models import RequestLog

    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
    for when, host in ((old, "old.test"), (recent, "recent.test")):
        await sync_to_async(RequestLog.objects.create)(
            time=when, kind="http", user_name=user.name, host=host, port=80, result="ok"
        )
    await accounting.flush()
    hosts = await sync_to_async(
        lambda: set(RequestLog.objects.filter(user_name=user.name).values_list("host", flat=True))
    )()
    assert hosts == {"recent.test"}


async def test_agent_rates_average_the_last_ticks(
    accounting: Accounting, user: ProxyUser, agent: Agent
) -> None:
    one = flow()
    await accounting.admit(one, identity(user))
    one.carried_by(agent.pk, agent.name)
    one.add_bytes(500, 5000)
    accounting.tick()
    assert accounting.agent_rates[agent.pk] == (500.0, 5000.0)
    accounting.tick()  # nothing moved in the second second
    assert accounting.agent_rates[agent.pk] == (250.0, 2500.0)
    assert accounting.total_rate == (250.0, 2500.0)


def test_a_batch_that_could_not_be_written_is_merged_back_whole() -> None:
    from server.accounting import Minute, Pending, Usage

    day = dt.date(2026, 11, 21)
    when = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
    failed = Pending(
        rows=[{"host": "a"}],
        users={(1, day): Usage(10, 20, 1)},
        agents={(2, day): Usage(1, 2, 3)},
        minutes={when: Minute(5, 6, 7, 8)},
    )
    newer = Pending(
        rows=[{"host": "b"}],
        users={(1, day): Usage(1, 1, 1)},
        minutes={when: Minute(1, 1, 1, 1)},
    )
    newer.merge(failed)
    assert [row["host"] for row in newer.rows] == ["a", "b"]
    assert newer.users[(1, day)] == Usage(11, 21, 2)
    assert newer.agents[(2, day)] == Usage(1, 2, 3)
    assert newer.minutes[when] == Minute(6, 7, 8, 9)


async def test_a_flushed_row_reads_back_with_every_value_and_its_exact_time(
    accounting: Accounting, user: ProxyUser, agent: Agent
) -> None:
    from server.fleet.models import RequestLog

    one = flow(kind="http", host="every.test", port=8080)
    await accounting.admit(one, identity(user))
    one.carried_by(agent.pk, agent.name)
    one.add_bytes(7, 70)
    accounting.end(one, 504, "target-timeout")
    queued = dict(accounting.pending.rows[0])
    await accounting.flush()

    row = await sync_to_async(RequestLog.objects.get)(host="every.test")
    assert {name: getattr(row, name) for name in queued} == queued
    assert row.time == dt.datetime.fromtimestamp(one.started, dt.UTC)
