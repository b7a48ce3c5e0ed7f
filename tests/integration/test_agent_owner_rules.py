"""The owner's rules, end to end: a real server, the real engine in this process, real targets.

The engine runs on the test's own loop (as the tray app runs it under qasync),
with a clock the test moves for the schedule, the cap and timed pauses.
Requests go through the server's proxy pinned to the engine's agent, so what
the user sees is exactly what the owner's rules decided — and a 503
``agent-paused`` shows the server itself knows the agent is paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from desktop_agent.engine.check import check_connection
from desktop_agent.engine.client import AgentEngine, Problem, Status
from desktop_agent.engine.config import AgentConfig
from desktop_agent.engine.owner_rules import OwnerRules, PauseReason, Schedule
from tests.integration.conftest import USER, proxies
from tests.support.processes import ServerProcess
from tests.support.target import TargetProcess, free_port

QUICK = 10.0
_sources = itertools.count(21)


class Clock:
    """Local time that runs with the real clock plus whatever the test adds."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now().astimezone() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@pytest.fixture(scope="module")
def other_target() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.13") as process:
        yield process


@contextlib.asynccontextmanager
async def sharing(
    tmp: Path, server: ServerProcess, key: str, rules: OwnerRules | None = None, **kw: Any
) -> AsyncIterator[AgentEngine]:
    """A real engine connected to ``server``, exiting from its own loopback address."""
    number = next(_sources)
    clock: Callable[[], dt.datetime] | None = kw.pop("clock", None)
    config = AgentConfig(
        server_url=server.ws_url,
        enrollment_key=key,
        name=f"pc-rules{number}",
        source_address=f"127.0.0.{number}",
        allowed_networks=("127.0.0.0/8",),
        config_dir=tmp / f"engine-{number}",
        connect_timeout=2.0,
        sample_interval=0.1,
        **kw,
    )
    engine = AgentEngine(config, clock=clock, rules=rules)
    task = asyncio.create_task(engine.run())
    try:
        await until(lambda: engine.status is Status.ONLINE, "the engine to come online")
        yield engine
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)


async def until(predicate: Callable[[], object], what: str, timeout: float = QUICK) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def fetch(server: ServerProcess, engine: AgentEngine, url: str, **kw: Any) -> Any:
    """A request through the proxy, pinned to ``engine``'s agent."""
    route = proxies(server, f"{USER}-agent-{engine.agent_name}")
    method = kw.pop("method", "GET")
    return await asyncio.to_thread(requests.request, method, url, proxies=route, timeout=30, **kw)


async def until_answer(
    server: ServerProcess, engine: AgentEngine, url: str, status: int, what: str
) -> Any:
    """Fetch until the proxy answers ``status`` (the server hears of a change within moments)."""
    deadline = time.monotonic() + QUICK
    while True:
        answer = await fetch(server, engine, url)
        if answer.status_code == status:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {answer.status_code} {answer.text!r}")
        await asyncio.sleep(0.1)


def agents_enrolled(server: ServerProcess) -> int:
    script = "from server.fleet.models import Agent; print(Agent.objects.count())"
    return int(server.cli("shell", "-c", script).strip().splitlines()[-1])


# ------------------------------------------------------------------ blocked


async def test_a_blocked_destination_gets_a_403_while_others_still_work(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess, other_target: TargetProcess
) -> None:
    async with sharing(tmp, server, key) as engine:
        assert (await fetch(server, engine, f"{target.url}/ip")).status_code == 200

        engine.block(f"127.0.0.3:{target.port}")

        refused = await fetch(server, engine, f"{target.url}/ip")
        assert refused.status_code == 403
        assert refused.headers["X-Exitpool-Error"] == "forbidden"
        assert "the owner of this PC blocked this destination" in refused.text
        carried = await fetch(server, engine, f"{other_target.url}/ip")
        assert carried.status_code == 200
        assert carried.text == engine.config.source_address
        assert [d.host for d in engine.traffic.recent_destinations()] == ["127.0.0.13", "127.0.0.3"]


# ------------------------------------------------------------ pauses by time


async def test_a_timed_pause_ends_by_itself(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    clock = Clock()
    async with sharing(tmp, server, key, clock=clock) as engine:
        engine.pause(until=clock().timestamp() + 3600)  # "Pause for 1 hour"

        paused = await until_answer(server, engine, f"{target.url}/ip", 503, "the pause")
        assert paused.headers["X-Exitpool-Error"] == "agent-paused"

        clock.advance(hours=1)
        await until_answer(server, engine, f"{target.url}/ip", 200, "the end of the pause")
        assert (engine.paused, engine.paused_until, engine.pause_reasons()) == (False, None, [])


async def test_outside_the_sharing_hours_the_server_sees_the_agent_paused(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    clock = Clock()
    now = clock()
    # Sharing allowed from two hours from now until three hours from now: not yet.
    later = Schedule(
        start=(now + dt.timedelta(hours=2)).time().replace(microsecond=0),
        end=(now + dt.timedelta(hours=3)).time().replace(microsecond=0),
    )
    async with sharing(tmp, server, key, OwnerRules(schedule=later), clock=clock) as engine:
        assert engine.pause_reasons() == [PauseReason.SCHEDULE]
        paused = await fetch(server, engine, f"{target.url}/ip")
        assert paused.status_code == 503
        assert paused.headers["X-Exitpool-Error"] == "agent-paused"

        clock.advance(hours=2, minutes=1)
        await until_answer(server, engine, f"{target.url}/ip", 200, "the sharing hours")


# ---------------------------------------------------------------- daily cap


async def test_reaching_the_daily_cap_pauses_sharing(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    clock = Clock()
    rules = OwnerRules(daily_cap_bytes=300_000)
    async with sharing(tmp, server, key, rules, clock=clock) as engine:
        big = await fetch(server, engine, f"{target.url}/bytes/500000")
        assert big.status_code == 200 and len(big.content) == 500_000

        await until(lambda: engine.pause_reasons() == [PauseReason.DAILY_CAP], "the cap")
        paused = await until_answer(server, engine, f"{target.url}/ip", 503, "the cap")
        assert paused.headers["X-Exitpool-Error"] == "agent-paused"
        assert engine.traffic.totals().today_down >= 500_000

        clock.advance(days=1)
        await until_answer(server, engine, f"{target.url}/ip", 200, "the next day")


# ---------------------------------------------------------------- bandwidth


async def test_a_download_is_held_to_the_bandwidth_limit(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    rules = OwnerRules(bandwidth_limit=500_000)
    async with sharing(tmp, server, key, rules) as engine:
        started = time.monotonic()
        answer = await fetch(server, engine, f"{target.url}/bytes/2000000")
        elapsed = time.monotonic() - started

        assert answer.status_code == 200 and len(answer.content) == 2_000_000
        assert 4.0 * 0.7 <= elapsed <= 4.0 * 1.3, f"2 MB at 500 KB/s took {elapsed:.2f}s"


async def test_an_upload_is_held_to_the_bandwidth_limit(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    rules = OwnerRules(bandwidth_limit=500_000)
    async with sharing(tmp, server, key, rules) as engine:
        started = time.monotonic()
        answer = await fetch(
            server, engine, f"{target.url}/upload", method="POST", data=b"u" * 1_500_000
        )
        elapsed = time.monotonic() - started

        assert answer.json()["length"] == 1_500_000
        assert 3.0 * 0.7 <= elapsed <= 3.0 * 1.3, f"1.5 MB at 500 KB/s took {elapsed:.2f}s"


async def test_lifting_the_limit_lets_a_download_run_at_full_speed(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    async with sharing(tmp, server, key, OwnerRules(bandwidth_limit=100_000)) as engine:
        engine.set_rules(OwnerRules())
        started = time.monotonic()
        answer = await fetch(server, engine, f"{target.url}/bytes/2000000")

        assert len(answer.content) == 2_000_000
        assert time.monotonic() - started < 2.0  # 20 s at the old limit


# ---------------------------------------------------------------- stream limit


async def test_a_lower_stream_limit_reaches_the_server_at_once(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    async with sharing(tmp, server, key) as engine:
        slow = asyncio.create_task(fetch(server, engine, f"{target.url}/slow-bytes/300000"))
        await until(lambda: engine.open_streams == 1, "the slow download to start")

        engine.set_rules(OwnerRules(max_streams=1))

        busy = await until_answer(server, engine, f"{target.url}/ip", 503, "the new limit")
        assert busy.headers["X-Exitpool-Error"] == "agent-busy"
        assert "is at its stream limit" in busy.text  # the hub's own answer: it knows
        assert len((await slow).content) == 300_000

        engine.set_rules(OwnerRules(max_streams=2))
        await until_answer(server, engine, f"{target.url}/ip", 200, "the raised limit")


# --------------------------------------------------------- connection check


async def test_check_connection_answers_without_enrolling_anything(
    tmp: Path, server: ServerProcess, key: str
) -> None:
    async with sharing(tmp, server, key) as engine:
        credential = engine.credentials.get(engine.url)
        assert credential
    before = await asyncio.to_thread(agents_enrolled, server)
    unused = f"http://127.0.0.1:{free_port()}"

    good_key = await check_connection(server.http_url, key)
    good_credential = await check_connection(server.ws_url, None, credential)
    bad_key = await check_connection(server.http_url, "epk_not-a-real-key")
    nothing = await check_connection(server.http_url, None)
    unreachable = await check_connection(unused, key, timeout=5)
    await asyncio.to_thread(server.cli, "revokeagent", str(engine.agent_name))
    revoked = await check_connection(server.http_url, key, credential)

    assert (good_key.ok, good_key.problem) == (True, None)
    assert "the server accepts the enrollment key" in good_key.message
    assert (good_credential.ok, good_credential.problem) == (True, None)
    assert (bad_key.ok, bad_key.problem) == (False, Problem.BAD_KEY)
    assert "refused the enrollment key" in bad_key.message
    assert (nothing.ok, nothing.problem) == (False, Problem.NO_KEY)
    assert (unreachable.ok, unreachable.problem) == (False, Problem.UNREACHABLE)
    assert "cannot connect to 127.0.0.1" in unreachable.message
    assert (revoked.ok, revoked.problem) == (False, Problem.REVOKED)
    assert "refused this agent's credential" in revoked.message
    assert await asyncio.to_thread(agents_enrolled, server) == before
    assert "connection check from 127.0.0.1: accepted" in server.log()
