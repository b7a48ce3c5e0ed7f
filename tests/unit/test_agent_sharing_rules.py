"""The engine under the owner's rules, with a clock the test moves and a stand-in server.

The server here is a bare aiohttp WebSocket endpoint driving a real
:class:`wire.Connection`: it records every control message the engine sends
(pause, resume, limits) and opens streams the way the hub does, so each test
sees exactly what a real server would be told and answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

import wire
from desktop_agent.engine.client import AgentEngine, Problem, Status
from desktop_agent.engine.config import AgentConfig
from desktop_agent.engine.owner_rules import OwnerRules, PauseReason, Schedule
from desktop_agent.engine.relay import BLOCKED_BY_OWNER
from tests.support.clock import Clock
from tests.support.target import free_port

TZ = dt.timezone(dt.timedelta(hours=2))
QUICK = 5.0


class MemoryCredentials:
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def get(self, server_url: str) -> str | None:
        return self.saved.get(server_url)

    def set(self, server_url: str, credential: str) -> None:
        self.saved[server_url] = credential


class StandInServer:
    """Welcomes agents (or refuses them with ``refuse_status``) and speaks the protocol."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.refuse_status: int | None = None
        self.handshakes: list[dict[str, str]] = []
        self.controls: list[dict[str, Any]] = []
        self.events: list[wire.Event] = []
        self.conn: wire.Connection | None = None
        self.ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> StandInServer:
        app = web.Application()
        app.router.add_get("/ws/agent", self._handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent"

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append(dict(request.headers))
        if self.refuse_status is not None:
            return web.Response(status=self.refuse_status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = wire.Connection(wire.Role.SERVER)
        self.ws, self.conn = ws, conn
        welcome = {"type": "welcome", "agent_id": 7, "name": "pc-test", "exit_ip": "127.0.0.1"}
        if "X-Exitpool-Enrollment-Key" in request.headers:
            welcome["credential"] = "epa_new-credential"
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                control = json.loads(message.data)
                self.controls.append(control)
                if control["type"] == "hello":
                    await ws.send_str(json.dumps(welcome))
            elif message.type is WSMsgType.BINARY:
                conn.receive_bytes(message.data)
                self.events.extend(conn.events_received())
                await self._flush()
        return ws

    async def _flush(self) -> None:
        assert self.conn is not None and self.ws is not None
        for message in self.conn.data_to_send():
            assert isinstance(message, bytes)
            await self.ws.send_bytes(message)

    async def open(self, host: str, port: int) -> wire.Event:
        """Ask the agent for a stream; returns its answer (accepted or rejected)."""
        assert self.conn is not None
        sid = self.conn.open_stream(host, port)
        await self._flush()
        return await self.answer(sid, (wire.StreamAccepted, wire.StreamRejected))

    async def answer(self, sid: int, kinds: tuple[type, ...]) -> wire.Event:
        async with asyncio.timeout(QUICK):
            while True:
                for event in self.events:
                    if isinstance(event, kinds) and event.stream_id == sid:  # type: ignore[union-attr]
                        return event
                await asyncio.sleep(0.01)

    def types(self) -> list[str]:
        return [control["type"] for control in self.controls]


async def until(predicate: Callable[[], object], what: str, timeout: float = QUICK) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def server() -> AsyncIterator[StandInServer]:
    stand_in = await StandInServer(free_port()).start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2024, 5, 6, 12, 0, tzinfo=TZ))  # a Monday, noon


def make_engine(
    tmp_path: Path, server_url: str, clock: Clock, rules: OwnerRules | None = None, **config: Any
) -> AgentEngine:
    settings: dict[str, Any] = {
        "server_url": server_url,
        "enrollment_key": "epk_test",
        "config_dir": tmp_path,
        "allowed_networks": ("127.0.0.0/8",),
        "sample_interval": 0.05,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        **config,
    }
    return AgentEngine(AgentConfig(**settings), clock=clock, rules=rules)


@pytest.fixture
async def running(
    tmp_path: Path, server: StandInServer, clock: Clock
) -> AsyncIterator[Callable[..., AgentEngine]]:
    engines: list[tuple[AgentEngine, asyncio.Task[None]]] = []

    def start(rules: OwnerRules | None = None, **config: Any) -> AgentEngine:
        engine = make_engine(tmp_path, server.url, clock, rules, **config)
        engines.append((engine, asyncio.create_task(engine.run())))
        return engine

    yield start
    for engine, task in engines:
        engine.stop()
        await asyncio.wait_for(task, QUICK)


async def online(engine: AgentEngine) -> AgentEngine:
    await until(lambda: engine.status is Status.ONLINE, "online")
    return engine


async def target() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionResetError):  # a cut stream resets the socket
            while data := await reader.read(65536):
                writer.write(data)
        writer.close()

    listener = await asyncio.start_server(echo, "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1]


# ------------------------------------------------------------------ timed pause


async def test_a_timed_pause_ends_by_itself_and_the_server_hears_both(
    server: StandInServer, running: Callable[..., AgentEngine], clock: Clock
) -> None:
    engine = await online(running())
    changes: list[list[PauseReason]] = []
    engine.add_listener(lambda e: changes.append(e.pause_reasons()))
    until_time = clock.now.timestamp() + 3600

    engine.pause(until=until_time)
    assert engine.paused and engine.paused_until == until_time
    await until(lambda: "pause" in server.types(), "the server to hear the pause")

    clock.advance(minutes=59)
    await asyncio.sleep(0.2)
    assert engine.pause_reasons() == [PauseReason.OWNER]
    clock.advance(minutes=1)
    await until(lambda: server.types()[-1] == "resume", "the server to hear the resume")
    assert (engine.paused, engine.paused_until, engine.pause_reasons()) == (False, None, [])
    assert changes[0] == [PauseReason.OWNER] and changes[-1] == []


async def test_resume_lifts_a_timed_pause_early(
    server: StandInServer, running: Callable[..., AgentEngine], clock: Clock
) -> None:
    engine = await online(running())
    engine.pause(until=clock.now.timestamp() + 60)

    engine.resume()

    assert (engine.paused, engine.paused_until) == (False, None)
    await until(lambda: server.types()[-2:] == ["pause", "resume"], "pause then resume")


async def test_a_paused_engine_refuses_streams_with_paused(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())
    engine.pause()
    await until(lambda: "pause" in server.types(), "the pause")

    answer = await server.open("127.0.0.1", 9)

    assert answer == wire.StreamRejected(1, wire.Reason.PAUSED, "the owner paused sharing")


# --------------------------------------------------------------------- schedule


async def test_outside_its_hours_the_agent_says_hello_paused_and_refuses_streams(
    server: StandInServer, running: Callable[..., AgentEngine], clock: Clock
) -> None:
    evenings = Schedule(start=dt.time(18), end=dt.time(8))
    engine = await online(running(OwnerRules(schedule=evenings)))

    assert server.controls[0]["paused"] is True
    assert engine.pause_reasons() == [PauseReason.SCHEDULE]
    answer = await server.open("127.0.0.1", 9)
    assert isinstance(answer, wire.StreamRejected)
    assert (answer.reason, answer.message) == (
        wire.Reason.PAUSED,
        "outside the owner's sharing hours",
    )

    clock.advance(hours=6)  # 18:00
    await until(lambda: "resume" in server.types(), "the server to hear the resume")
    assert engine.pause_reasons() == []


async def test_a_new_schedule_applies_at_once(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())

    engine.set_rules(OwnerRules(schedule=Schedule(start=dt.time(20), end=dt.time(6))))

    assert engine.pause_reasons() == [PauseReason.SCHEDULE]
    await until(lambda: "pause" in server.types(), "the pause")


# ------------------------------------------------------------------ admin pause


async def test_an_admins_pause_lasts_as_long_as_the_server_says_so(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())
    assert server.ws is not None
    first = server.ws

    await first.send_str(json.dumps({"type": "pause"}))
    await until(lambda: engine.pause_reasons() == [PauseReason.ADMIN], "the admin's pause")
    assert "pause" not in server.types()  # the owner's side did not change
    answer = await server.open("127.0.0.1", 9)
    assert answer == wire.StreamRejected(1, wire.Reason.PAUSED, "the server's admin paused sharing")

    await first.close()  # resumed while the agent was away: the next session says nothing
    await until(lambda: server.ws is not first and engine.status is Status.ONLINE, "reconnect")
    assert engine.pause_reasons() == []


# ---------------------------------------------------------------------- daily cap


async def test_reaching_the_daily_cap_pauses_until_the_next_local_day(
    server: StandInServer, running: Callable[..., AgentEngine], clock: Clock, tmp_path: Path
) -> None:
    engine = await online(running(OwnerRules(daily_cap_bytes=1000)))
    listener, port = await target()
    async with listener:
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)
        assert server.conn is not None
        server.conn.send_data(1, b"x" * 1200)  # echoed back: 2400 bytes both ways
        await server._flush()
        await until(lambda: "pause" in server.types(), "the cap to pause sharing", 10)

    assert engine.pause_reasons() == [PauseReason.DAILY_CAP]
    assert engine.traffic.today_bytes() >= 1000
    clock.advance(hours=12)  # past local midnight
    await until(lambda: server.types()[-1] == "resume", "sharing to resume the next day")
    assert engine.pause_reasons() == []


async def test_a_restart_remembers_that_todays_cap_is_used_up(
    server: StandInServer, clock: Clock, tmp_path: Path
) -> None:
    first = make_engine(tmp_path, server.url, clock)
    first.traffic.add("a.example", 443, up=600, down=600)
    first.traffic.save()

    again = make_engine(tmp_path, server.url, clock, OwnerRules(daily_cap_bytes=1000))

    assert again.pause_reasons() == [PauseReason.DAILY_CAP]
    assert again._hello()["paused"] is True


async def test_the_traffic_totals_are_saved_on_the_interval_and_at_stop(
    server: StandInServer, clock: Clock, tmp_path: Path
) -> None:
    engine = make_engine(tmp_path, server.url, clock, traffic_save_interval=0.2)
    saved = tmp_path / "traffic.json"
    task = asyncio.create_task(engine.run())
    try:
        engine.traffic.add("a.example", 443, up=10, down=20)
        await until(lambda: saved.exists(), "the first save")
        assert json.loads(saved.read_text())["today"] == [10, 20]
        engine.traffic.add("a.example", 443, up=1, down=1)
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)
    assert json.loads(saved.read_text())["today"] == [11, 21]


# ------------------------------------------------------------- cutting streams


async def test_with_cut_streams_on_pause_running_streams_are_reset(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running(OwnerRules(cut_streams_on_pause=True)))
    listener, port = await target()
    async with listener:
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)
        await until(lambda: engine.open_streams == 1, "the stream")

        engine.pause()

        reset = await server.answer(1, (wire.StreamReset,))
        assert reset == wire.StreamReset(1, wire.Reason.PAUSED, "the owner paused sharing")
        assert engine.open_streams == 0


async def test_without_it_running_streams_carry_on_after_a_pause(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())
    listener, port = await target()
    async with listener:
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)
        engine.pause()
        assert server.conn is not None
        server.conn.send_data(1, b"still here")
        await server._flush()

        echoed = await server.answer(1, (wire.DataReceived,))
        assert isinstance(echoed, wire.DataReceived) and bytes(echoed.data) == b"still here"
        assert engine.open_streams == 1


# ---------------------------------------------------------------- stream limit


async def test_a_lower_stream_limit_reaches_the_server_and_refuses_extra_streams(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())
    listener, port = await target()
    async with listener:
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)

        engine.set_rules(OwnerRules(max_streams=1))

        await until(lambda: {"type": "limits", "max_streams": 1} in server.controls, "limits")
        refused = await server.open("127.0.0.1", port)
        assert isinstance(refused, wire.StreamRejected)
        assert refused.reason is wire.Reason.TOO_MANY_STREAMS
        assert engine.rules.max_streams == 1


# ------------------------------------------------------------------ bandwidth


async def test_under_the_upload_limit_the_target_gets_every_byte_before_the_end(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running(OwnerRules(bandwidth_limit=200_000)))

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = len(await reader.read())  # up to the end of the stream
        writer.write(f"got {total}".encode())
        writer.close()

    listener = await asyncio.start_server(count, "127.0.0.1", 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)
        assert server.conn is not None
        started = asyncio.get_running_loop().time()
        server.conn.send_data(1, b"u" * 200_000)  # within the window, so sent at once
        server.conn.send_fin(1)
        await server._flush()

        reply = await server.answer(1, (wire.DataReceived,))
        elapsed = asyncio.get_running_loop().time() - started

    assert isinstance(reply, wire.DataReceived) and bytes(reply.data) == b"got 200000"
    assert 0.4 < elapsed < 1.2  # 200 KB less two 50 KB bursts (first and last), at 200 KB/s
    assert engine.traffic.totals().today_up == 200_000


# ------------------------------------------------------------------- blocking


async def test_a_blocked_name_is_refused_before_any_lookup(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running())
    notified: list[tuple[str, ...]] = []
    engine.add_listener(lambda e: notified.append(e.rules.blocked))

    engine.block("Does-Not-Resolve.invalid")
    engine.block("does-not-resolve.invalid.")  # the same, once

    answer = await server.open("www.does-not-resolve.invalid", 443)
    assert answer == wire.StreamRejected(1, wire.Reason.FORBIDDEN, BLOCKED_BY_OWNER)
    assert engine.rules.blocked == ("does-not-resolve.invalid",)
    assert notified == [("does-not-resolve.invalid",)]


async def test_a_blocked_address_is_refused_after_the_lookup_and_others_still_open(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running(OwnerRules(blocked=("127.0.0.1",))))
    listener, port = await target()
    async with listener:
        refused = await server.open("localhost", port)  # a name that resolves to it
        assert refused == wire.StreamRejected(1, wire.Reason.FORBIDDEN, BLOCKED_BY_OWNER)

        engine.set_rules(OwnerRules())
        assert isinstance(await server.open("127.0.0.1", port), wire.StreamAccepted)


def test_a_bad_blocked_entry_is_refused_and_changes_nothing(tmp_path: Path, clock: Clock) -> None:
    engine = make_engine(tmp_path, "ws://127.0.0.1:9/ws/agent", clock)

    with pytest.raises(ValueError, match="is not a host name"):
        engine.block("exa mple.com")
    with pytest.raises(ValueError, match="is not a host name"):
        engine.set_rules(OwnerRules(blocked=("ok.example", "exa mple.com")))
    assert engine.rules.blocked == ()


# ------------------------------------------------------------- problems, reconnect


async def test_it_enrolls_through_the_credential_store_it_was_given(
    server: StandInServer, tmp_path: Path, clock: Clock
) -> None:
    store = MemoryCredentials()
    engine = AgentEngine(
        AgentConfig(server_url=server.url, enrollment_key="epk_test", config_dir=tmp_path),
        credentials=store,
        clock=clock,
    )
    task = asyncio.create_task(engine.run())
    try:
        await online(engine)
        assert store.saved == {server.url: "epa_new-credential"}
        assert "credential" not in (tmp_path / "agent-state.json").read_text()
        assert engine.online_since == engine.connected_since == clock.now.timestamp()
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)


@pytest.mark.parametrize(
    ("credential", "problem", "words"),
    [
        (None, Problem.BAD_KEY, "the server refused the enrollment key (HTTP 403)"),
        ("epa_old", Problem.REVOKED, "the server refused this agent's credential (HTTP 403)"),
    ],
)
async def test_a_refused_handshake_names_what_was_refused(
    server: StandInServer,
    tmp_path: Path,
    clock: Clock,
    credential: str | None,
    problem: Problem,
    words: str,
) -> None:
    server.refuse_status = 403
    store = MemoryCredentials()
    if credential:
        store.set(server.url, credential)
    engine = AgentEngine(
        AgentConfig(server_url=server.url, enrollment_key="epk_test", config_dir=tmp_path),
        credentials=store,
        clock=clock,
    )
    task = asyncio.create_task(engine.run())
    try:
        await until(lambda: engine.problem is not None, "the problem")
        assert engine.status is Status.REFUSED
        assert engine.problem is problem
        assert engine.last_error is not None and words in engine.last_error
        assert engine.offline_since == clock.now.timestamp()
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)


async def test_without_key_or_credential_it_says_so_and_never_connects(
    server: StandInServer, tmp_path: Path, clock: Clock
) -> None:
    engine = make_engine(tmp_path, server.url, clock, enrollment_key=None)
    task = asyncio.create_task(engine.run())
    try:
        await until(lambda: engine.problem is Problem.NO_KEY, "the problem")
        assert engine.status is Status.REFUSED
        assert server.handshakes == []
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)


async def test_reconnect_now_cuts_a_long_backoff_wait(tmp_path: Path, clock: Clock) -> None:
    stand_in = StandInServer(free_port())
    engine = make_engine(tmp_path, stand_in.url, clock, backoff_initial=60, backoff_max=60)
    task = asyncio.create_task(engine.run())
    try:
        await until(lambda: engine.problem is Problem.UNREACHABLE, "the first failure")
        assert engine.offline_since is not None
        assert engine.last_error is not None and "cannot connect to 127.0.0.1" in engine.last_error
        await stand_in.start()

        engine.reconnect_now()

        await until(lambda: engine.status is Status.ONLINE, "online without the 30-60 s wait", 3)
        assert (engine.problem, engine.last_error, engine.offline_since) == (None, None, None)
    finally:
        engine.stop()
        await asyncio.wait_for(task, QUICK)
        await stand_in.stop()


async def test_reconnect_now_while_online_replaces_a_connection_that_went_silent(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running(probe_timeout=0.2))
    assert server.ws is not None
    first = server.ws
    first._autoping = False  # the server stops answering pings, as a dead link would

    engine.reconnect_now()

    await until(lambda: server.ws is not first and engine.status is Status.ONLINE, "a new link")
    assert len(server.handshakes) == 2


async def test_after_a_sleep_it_reconnects_at_once(
    server: StandInServer, running: Callable[..., AgentEngine]
) -> None:
    engine = await online(running(suspend_gap=10))
    engine._wall = lambda: time.time() + 3600  # the wall clock jumps an hour: the PC slept

    await until(lambda: len(server.handshakes) == 2, "a second connection")
    await online(engine)
