"""A rogue agent sends malformed and hostile frames.

Expected behaviour: the server closes that agent's WebSocket with 1002 (protocol error) and
logs "broke the protocol" — for a truncated frame, an oversized one, an unknown type, DATA
on a stream never opened, a window pushed beyond 2^31-1, DATA beyond the window it was
granted, a flood of OPEN_OK for streams never opened, or a control message that is not
JSON. A WebSocket message over the 1 MiB limit is dropped by the WebSocket layer (1006).
Frames about a stream that was opened and is now gone are a legal race (docs/protocol.md
§3) and are ignored: that agent stays connected. Through all of it the server keeps serving
a good agent and nothing raises as an unhandled exception in its log (the fixtures check
every log at the end of the module).

The stateful protocol core is fuzzed in-process too: any sequence of plausible-looking
frames fed to a server-side or agent-side :class:`wire.Connection` is processed or raises
:class:`wire.ProtocolError` — never anything else — and never creates a stream the server
did not open. (The frame codec alone is fuzzed in tests/unit/test_wire_frames.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

import wire
from tests.faults.conftest import PASSWORD, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess, enroll_raw_agent
from tests.support.raw_proxy import basic_auth
from tests.support.target import TargetProcess
from wire import FrameType, ProtocolError
from wire.limits import MAX_WINDOW

MAX_FRAME_PAYLOAD = 256 * 1024  # the server's default max_frame_payload
MAX_WS_MESSAGE = 1024 * 1024  # the server's default max_ws_message
STREAM_WINDOW = 256 * 1024  # the server's default stream_window


def raw_frame(ftype: int, sid: int, payload: bytes, length: int | None = None) -> bytes:
    """A frame exactly as given, legal or not (``length`` may lie about the payload)."""
    return struct.pack("!BII", ftype, sid, len(payload) if length is None else length) + payload


# ------------------------------------------------------------------ in-process fuzz

SMALL = wire.Limits(stream_window=4096, max_frame_payload=1024, max_message_size=4096)
plausible_frames = st.builds(
    lambda ftype, sid, payload, lie: raw_frame(ftype, sid, payload, lie),
    st.integers(0, 9),
    st.integers(0, 6),
    st.binary(max_size=40)
    | st.builds(lambda n: struct.pack("!I", n), st.integers(0, 2**32 - 1))
    | st.builds(
        lambda n, host: struct.pack("!IH", n, 80) + host,
        st.integers(0, 5000),
        st.binary(max_size=8),
    ),
    st.none() | st.integers(0, 2**32 - 1),
)
hostile_messages = st.lists(
    st.lists(plausible_frames, min_size=1, max_size=6).map(b"".join) | st.text(max_size=40),
    min_size=1,
    max_size=12,
)


def feed_until_error(conn: wire.Connection, messages: list[bytes | str]) -> list[wire.Event]:
    """Feed messages as an I/O layer does, stopping at the first ProtocolError (it closes)."""
    events: list[wire.Event] = []
    for message in messages:
        try:
            if isinstance(message, bytes):
                conn.receive_bytes(message)
            else:
                conn.receive_text(message)
        except ProtocolError:
            break
        events += conn.events_received()
        conn.data_to_send()
    return events


@given(hostile_messages)
@settings(max_examples=150, deadline=None)
def test_a_server_connection_survives_any_hostile_input_as_a_protocol_error(
    messages: list[bytes | str],
) -> None:
    conn = wire.Connection(wire.Role.SERVER, SMALL)
    opened = [conn.open_stream("example.org", 443) for _ in range(3)]  # streams 1, 2, 3
    conn.receive_bytes(wire.encode_frame(wire.OpenOk(1, 4096, "1.2.3.4:443")))
    conn.reset_stream(3, wire.Reason.CANCELLED)  # a stream that is gone
    conn.events_received()
    events = feed_until_error(conn, messages)
    assert conn.stream_count <= 2
    for event in events:
        if not isinstance(event, wire.ControlReceived):
            assert event.stream_id in opened[:2], event  # nothing about unknown or gone streams


@given(hostile_messages)
@settings(max_examples=150, deadline=None)
def test_an_agent_connection_survives_any_hostile_input_as_a_protocol_error(
    messages: list[bytes | str],
) -> None:
    conn = wire.Connection(wire.Role.AGENT, SMALL)
    conn.receive_bytes(wire.encode_frame(wire.Open(1, "example.org", 443, 4096)))
    conn.accept_stream(1, "1.2.3.4:443")
    conn.events_received()
    opened = [1]
    for event in feed_until_error(conn, messages):
        if isinstance(event, wire.StreamOpenRequested):
            assert event.stream_id > opened[-1]  # ids only ever grow
            opened.append(event.stream_id)
        elif not isinstance(event, wire.ControlReceived):
            assert event.stream_id in opened, event
    assert conn.stream_count <= len(opened)


# ------------------------------------------------------------ a real rogue client


@pytest.fixture(scope="module", autouse=True)
def good_agent(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-good", "127.0.0.2")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Rogue:
    """A bare protocol client enrolled as an agent, doing what the test tells it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name

    async def next_frames(self) -> list[wire.Frame]:
        """The frames of the next binary message the server sends (OPEN, WINDOW, ...)."""
        while True:
            message = await self.ws.receive(timeout=10)
            if message.type is aiohttp.WSMsgType.BINARY:
                return wire.decode_frames(message.data, MAX_FRAME_PAYLOAD)
            assert message.type is aiohttp.WSMsgType.TEXT, message

    async def closed_with(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to end the connection; its close code (None: dropped)."""
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None


async def rogue(http: aiohttp.ClientSession, server: ServerProcess, key: str, name: str) -> Rogue:
    ws, welcome = await enroll_raw_agent(http, server, key, name)
    return Rogue(ws, str(welcome["name"]))


def user_request_to(
    server: ServerProcess, rogue: Rogue, target: TargetProcess
) -> asyncio.Task[bytes]:
    """A user's CONNECT pinned to the rogue, in the background; returns what the user got."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.proxy_port)
        auth = basic_auth(f"{USER}-agent-{rogue.name}", PASSWORD)
        head = f"CONNECT {target.host}:{target.port} HTTP/1.1\r\nProxy-Authorization: {auth}"
        writer.write(head.encode() + b"\r\n\r\n")
        try:
            return await asyncio.wait_for(reader.read(4096), 15)
        except ConnectionResetError:
            return b"reset"
        finally:
            writer.close()

    return asyncio.create_task(exchange())


async def opened_stream(rogue: Rogue) -> int:
    """Wait for the server's OPEN; its stream id."""
    frames = await rogue.next_frames()
    assert isinstance(frames[0], wire.Open), frames
    return frames[0].stream_id


def good_agent_serves(server: ServerProcess, target: TargetProcess) -> str:
    return requests.get(
        f"{target.url}/ip", proxies=proxies(server, f"{USER}-agent-pc-good"), timeout=10
    ).text


BAD_MESSAGES = {
    "truncated header": b"\x04\x00\x00",
    "truncated payload": raw_frame(FrameType.DATA, 1, b"x" * 10, length=100),
    "oversized frame": raw_frame(FrameType.DATA, 1, b"x" * (MAX_FRAME_PAYLOAD + 1)),
    "oversized length, no payload": raw_frame(FrameType.DATA, 1, b"", length=2**32 - 1),
    "unknown type": raw_frame(99, 1, b"hello"),
    "stream id 0": raw_frame(FrameType.FIN, 0, b""),
    "DATA on a stream never opened": raw_frame(FrameType.DATA, 7, b"x"),
    "OPEN sent to the server": wire.encode_frame(wire.Open(1, "example.org", 80, 1024)),
    "flood of OPEN_OK for streams never opened": b"".join(
        wire.encode_frame(wire.OpenOk(sid, 1024, "1.2.3.4:80")) for sid in range(1, 10_001)
    ),
}


@pytest.mark.parametrize("message", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_a_rogue_agent_sending_a_bad_frame_is_closed_with_a_protocol_error(
    http: aiohttp.ClientSession,
    server: ServerProcess,
    key: str,
    target: TargetProcess,
    message: bytes,
) -> None:
    bad = await rogue(http, server, key, "rogue-frame")
    await bad.ws.send_bytes(message)
    assert await bad.closed_with() == wire.CloseCode.PROTOCOL_ERROR
    assert f"agent {bad.name} broke the protocol" in server.log()
    assert await asyncio.to_thread(good_agent_serves, server, target) == "127.0.0.2"


async def test_a_control_message_that_is_not_json_is_a_protocol_error(
    http: aiohttp.ClientSession, server: ServerProcess, key: str
) -> None:
    bad = await rogue(http, server, key, "rogue-text")
    await bad.ws.send_str('{"type": "stats", oops')
    assert await bad.closed_with() == wire.CloseCode.PROTOCOL_ERROR
    assert f"agent {bad.name} broke the protocol" in server.log()


async def test_a_websocket_message_over_the_limit_drops_that_agent_only(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    bulky = await rogue(http, server, key, "rogue-bulky")
    # The server closes as soon as the header announces too much, so the rest of
    # the megabyte may meet a closed socket while it is still being written.
    with contextlib.suppress(ConnectionError, aiohttp.ClientOSError):
        await bulky.ws.send_bytes(raw_frame(FrameType.DATA, 1, b"\x00" * MAX_WS_MESSAGE))
    assert await bulky.closed_with() in (None, 1009, 1006)  # autobahn drops it: 1006
    assert bulky.ws.closed
    assert await asyncio.to_thread(good_agent_serves, server, target) == "127.0.0.2"


async def test_a_window_pushed_beyond_2_31_is_a_protocol_error(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    bad = await rogue(http, server, key, "rogue-window")
    user = user_request_to(server, bad, target)
    sid = await opened_stream(bad)
    await bad.ws.send_bytes(wire.encode_frame(wire.OpenOk(sid, MAX_WINDOW, "127.0.0.3:1")))
    await bad.ws.send_bytes(wire.encode_frame(wire.Window(sid, 1)))
    assert await bad.closed_with() == wire.CloseCode.PROTOCOL_ERROR
    assert "overflows 2^31-1" in server.log()
    answer = await user
    assert answer.startswith(b"HTTP/1.1 200") or answer in (b"", b"reset")


async def test_data_beyond_the_granted_window_is_a_protocol_error(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    """A rogue that ignores the credit it was given cannot make the server buffer more."""
    bad = await rogue(http, server, key, "rogue-credit")
    user = user_request_to(server, bad, target)
    sid = await opened_stream(bad)
    await bad.ws.send_bytes(wire.encode_frame(wire.OpenOk(sid, 1024, "127.0.0.3:1")))
    chunk = wire.encode_frame(wire.Data(sid, b"x" * 65536))
    await bad.ws.send_bytes(chunk * (STREAM_WINDOW // 65536 + 1))
    assert await bad.closed_with() == wire.CloseCode.PROTOCOL_ERROR
    assert "exceeds the window" in server.log()
    await user


async def test_frames_for_a_stream_that_is_gone_are_ignored_and_the_agent_stays(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    """Late frames race a close legitimately; only a stream never opened is an error."""
    late = await rogue(http, server, key, "rogue-late")
    user = user_request_to(server, late, target)
    sid = await opened_stream(late)
    await late.ws.send_bytes(wire.encode_frame(wire.OpenFail(sid, wire.Reason.REFUSED, "no")))
    assert (await user).startswith(b"HTTP/1.1 502")
    gone: list[wire.Frame] = [
        wire.Data(sid, b"late"),
        wire.Window(sid, 10),
        wire.Fin(sid),
        wire.OpenOk(sid, 1024, "1.2.3.4:80"),
        wire.Reset(sid, wire.Reason.CANCELLED, ""),
    ]
    await late.ws.send_bytes(b"".join(wire.encode_frame(frame) for frame in gone))
    with pytest.raises(asyncio.TimeoutError):
        await late.ws.receive(timeout=1.0)  # nothing comes back: no close, no answer
    assert f"agent {late.name} broke the protocol" not in server.log()
    await late.ws.send_bytes(raw_frame(FrameType.DATA, sid + 1, b"x"))  # still listening
    assert await late.closed_with() == wire.CloseCode.PROTOCOL_ERROR


def random_frames(rng: random.Random, sid: int) -> bytes:
    """A few frames about ``sid`` or a neighbour, each of any kind, legal or not."""
    frames = []
    for _ in range(rng.randrange(1, 5)):
        about = max(0, sid + rng.choice((0, 0, 0, -1, 1)))
        kind = rng.randrange(7)
        ftype: int
        if kind == 0:
            ftype, payload = FrameType.DATA, rng.randbytes(rng.randrange(1, 3000))
        elif kind == 1:
            ftype, payload = FrameType.WINDOW, struct.pack("!I", rng.randrange(1, MAX_WINDOW))
        elif kind == 2:
            ftype, payload = FrameType.FIN, b""
        elif kind == 3:
            ftype, payload = FrameType.RESET, bytes([rng.randrange(12)])
        elif kind == 4:
            ftype, payload = FrameType.OPEN_OK, struct.pack("!I", rng.randrange(1, 2**32)) + b"x"
        elif kind == 5:
            ftype, payload = FrameType.OPEN_FAIL, bytes([rng.randrange(12)])
        else:
            ftype, payload = rng.randrange(10), rng.randbytes(rng.randrange(9))
        frames.append(raw_frame(ftype, about, payload))
    return b"".join(frames)


async def test_random_frames_on_a_live_stream_only_ever_close_the_rogue(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    """Seeded random frames about a stream a user is waiting on, through the whole server
    (endpoint, mux, the user's link): each rogue ends closed with 1002 or is left alone when
    all it sent happened to be legal; the user's connection ends; the good agent serves."""
    for seed in range(8):
        rng = random.Random(seed)
        bad = await rogue(http, server, key, f"rogue-random-{seed}")
        user = user_request_to(server, bad, target)
        sid = await opened_stream(bad)
        await bad.ws.send_bytes(wire.encode_frame(wire.OpenOk(sid, 65536, "127.0.0.3:1")))
        for _ in range(rng.randrange(1, 5)):
            if not bad.ws.closed:
                await bad.ws.send_bytes(random_frames(rng, sid))
        try:
            code = await bad.closed_with(timeout=1.0)
        except TimeoutError:
            code = None  # everything it sent was legal
        await bad.ws.close()
        assert code in (None, wire.CloseCode.PROTOCOL_ERROR), (seed, code)
        await user
    assert await asyncio.to_thread(good_agent_serves, server, target) == "127.0.0.2"
