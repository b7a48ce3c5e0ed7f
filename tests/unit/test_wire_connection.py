"""The sans-IO Connection: a server and an agent joined in memory, h11-style."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from wire import (
    Connection,
    ControlReceived,
    CreditAdded,
    Data,
    DataReceived,
    EndReceived,
    Event,
    Fin,
    Frame,
    Limits,
    Open,
    OpenFail,
    OpenOk,
    ProtocolError,
    Reason,
    Reset,
    Role,
    StreamAccepted,
    StreamOpenRequested,
    StreamRejected,
    StreamReset,
    Window,
    decode_frames,
    encode_frame,
)
from wire.limits import MAX_WINDOW

WINDOW = Limits().stream_window
FIXED = Limits(max_stream_window=WINDOW)
"""Default limits with a window that does not grow, for tests that count credit exactly."""
SMALL = Limits(
    stream_window=4096, max_stream_window=4096, max_frame_payload=1024, max_message_size=2048
)
PEER = "93.184.216.34:443"

# ------------------------------------------------------------------- helpers


@dataclass
class Seen:
    """What each side reported while messages moved between them."""

    server: list[Event] = field(default_factory=list)
    agent: list[Event] = field(default_factory=list)


class ConnectionPair:
    """A server :class:`Connection` and an agent one, joined by an in-memory WebSocket."""

    def __init__(self, server: Limits | None = None, agent: Limits | None = None) -> None:
        self.server = Connection(Role.SERVER, server or FIXED)
        self.agent = Connection(Role.AGENT, agent or FIXED)
        self.to_agent: list[bytes | str] = []  # every message ever sent, for inspection
        self.to_server: list[bytes | str] = []

    def pump(self) -> Seen:
        """Deliver everything both sides queued, until both are quiet; return their events."""
        seen = Seen()
        while True:
            moved = self._move(self.server, self.agent, self.to_agent, seen.agent)
            moved += self._move(self.agent, self.server, self.to_server, seen.server)
            if not moved:
                return seen

    @staticmethod
    def _move(
        sender: Connection, receiver: Connection, log: list[bytes | str], events: list[Event]
    ) -> int:
        messages = sender.data_to_send()
        for message in messages:
            log.append(message)
            if isinstance(message, bytes):
                receiver.receive_bytes(message)
            else:
                receiver.receive_text(message)
        events.extend(receiver.events_received())
        return len(messages)

    def open(self, host: str = "example.com", port: int = 443) -> int:
        """Open a stream and have the agent accept it; return its id."""
        sid = self.server.open_stream(host, port)
        assert self.pump().agent == [StreamOpenRequested(sid, host, port)]
        self.agent.accept_stream(sid, PEER)
        assert self.pump().server == [StreamAccepted(sid, PEER)]
        return sid

    def conn(self, side: str) -> Connection:
        return self.server if side == "server" else self.agent


def inject(conn: Connection, *frames: Frame) -> list[Event]:
    """Feed hand-crafted frames (one message) to ``conn``; return its events."""
    conn.receive_bytes(b"".join(encode_frame(frame) for frame in frames))
    return conn.events_received()


def frames_of(messages: list[bytes | str]) -> list[Frame]:
    return [f for m in messages if isinstance(m, bytes) for f in decode_frames(m, 2**31)]


def other(side: str) -> str:
    return "agent" if side == "server" else "server"


SIDES = ["server", "agent"]

# ------------------------------------------------------------------ lifecycle


def test_it_asks_the_agent_to_open() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("example.com", 443)
    seen = pair.pump()
    assert seen.agent == [StreamOpenRequested(sid, "example.com", 443)]
    assert seen.server == []
    assert pair.server.has_stream(sid) and pair.agent.has_stream(sid)
    assert pair.server.credit(sid) == 0  # nothing may be sent before OPEN_OK


def test_it_allocates_strictly_increasing_ids_from_one() -> None:
    pair = ConnectionPair()
    assert [pair.server.open_stream("h", 1) for _ in range(5)] == [1, 2, 3, 4, 5]
    pair.pump()
    sid = pair.open()
    pair.server.reset_stream(sid, Reason.CANCELLED)
    assert pair.server.open_stream("h", 1) == sid + 1  # ids are never reused


def test_it_reports_an_accepted_stream_with_its_peer() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("example.com", 443)
    pair.pump()
    pair.agent.accept_stream(sid, PEER)
    seen = pair.pump()
    assert seen.server == [StreamAccepted(sid, PEER)]
    assert seen.agent == []
    assert pair.server.credit(sid) == WINDOW
    assert pair.agent.credit(sid) == WINDOW


def test_it_reports_a_rejected_stream_with_its_reason() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("nowhere.invalid", 80)
    pair.pump()
    pair.agent.reject_stream(sid, Reason.DNS, "no such host")
    seen = pair.pump()
    assert seen.server == [StreamRejected(sid, Reason.DNS, "no such host")]
    assert pair.server.stream_count == pair.agent.stream_count == 0


def test_it_carries_data_both_ways_exactly() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_data(sid, b"GET / HTTP/1.1\r\n\r\n")
    pair.agent.send_data(sid, b"HTTP/1.1 200 OK\r\n\r\n")
    seen = pair.pump()
    assert seen.agent == [DataReceived(sid, b"GET / HTTP/1.1\r\n\r\n")]
    assert seen.server == [DataReceived(sid, b"HTTP/1.1 200 OK\r\n\r\n")]


def test_it_keeps_streams_apart() -> None:
    pair = ConnectionPair()
    a, b = pair.open(), pair.open()
    pair.server.send_data(b, b"to b")
    pair.server.send_data(a, b"to a")
    assert pair.pump().agent == [DataReceived(b, b"to b"), DataReceived(a, b"to a")]


def test_it_splits_a_large_write_into_frames_of_max_frame_payload() -> None:
    pair = ConnectionPair(SMALL, SMALL)
    sid = pair.open()
    payload = bytes(range(256)) * 12  # 3072 bytes
    pair.server.send_data(sid, payload)
    seen = pair.pump()
    assert [len(e.data) for e in seen.agent if isinstance(e, DataReceived)] == [1024, 1024, 1024]
    assert b"".join(e.data for e in seen.agent if isinstance(e, DataReceived)) == payload


def test_it_closes_a_stream_after_fin_both_ways() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_fin(sid)
    assert pair.pump().agent == [EndReceived(sid)]
    assert pair.server.stream_count == pair.agent.stream_count == 1  # half-closed
    pair.agent.send_fin(sid)
    assert pair.pump().server == [EndReceived(sid)]
    assert pair.server.stream_count == pair.agent.stream_count == 0
    assert not pair.server.has_stream(sid) and not pair.agent.has_stream(sid)


def test_it_closes_a_stream_when_both_fins_cross() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_fin(sid)
    pair.agent.send_fin(sid)
    seen = pair.pump()
    assert seen.server == [EndReceived(sid)] and seen.agent == [EndReceived(sid)]
    assert pair.server.stream_count == pair.agent.stream_count == 0


@pytest.mark.parametrize("side", SIDES)
def test_it_keeps_the_other_direction_open_after_a_half_close(side: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    closer, talker = pair.conn(side), pair.conn(other(side))
    closer.send_fin(sid)
    pair.pump()
    assert closer.credit(sid) == 0
    with pytest.raises(RuntimeError):
        closer.send_data(sid, b"late")
    talker.send_data(sid, b"still talking")
    seen = pair.pump()
    assert getattr(seen, side) == [DataReceived(sid, b"still talking")]


def test_it_sends_fin_once() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_fin(sid)
    pair.server.send_fin(sid)
    assert frames_of(pair.server.data_to_send()) == [Fin(sid)]


@pytest.mark.parametrize("side", SIDES)
def test_it_forgets_a_reset_stream_on_both_sides(side: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_data(sid, b"in flight")
    pair.conn(side).reset_stream(sid, Reason.CANCELLED, "user went away")
    seen = pair.pump()
    assert getattr(seen, other(side))[-1] == StreamReset(sid, Reason.CANCELLED, "user went away")
    assert pair.server.stream_count == pair.agent.stream_count == 0
    assert pair.server.credit(sid) == pair.agent.credit(sid) == 0


def test_it_lets_the_server_cancel_a_stream_still_opening() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("slow.example", 443)
    pair.server.reset_stream(sid, Reason.CANCELLED)
    seen = pair.pump()
    assert seen.agent == [
        StreamOpenRequested(sid, "slow.example", 443),
        StreamReset(sid, Reason.CANCELLED, ""),
    ]
    assert pair.agent.stream_count == 0


def test_it_ignores_resetting_a_stream_that_is_gone() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.reset_stream(sid, Reason.CANCELLED)
    pair.pump()
    pair.server.reset_stream(sid, Reason.CANCELLED)
    pair.server.reset_stream(999, Reason.CANCELLED)
    assert pair.server.data_to_send() == []


def test_it_delivers_control_messages_both_ways() -> None:
    pair = ConnectionPair()
    pair.agent.send_control({"type": "hello", "version": 1, "name": "pc-1"})
    pair.server.send_control({"type": "welcome", "agent_id": 7, "paused": False})
    seen = pair.pump()
    assert seen.server == [ControlReceived({"type": "hello", "version": 1, "name": "pc-1"})]
    assert seen.agent == [ControlReceived({"type": "welcome", "agent_id": 7, "paused": False})]


def test_it_has_nothing_to_send_when_idle() -> None:
    pair = ConnectionPair()
    assert pair.server.data_to_send() == [] and pair.agent.data_to_send() == []
    assert pair.server.events_received() == [] and pair.agent.events_received() == []


def test_it_refuses_local_misuse() -> None:
    pair = ConnectionPair()
    with pytest.raises(RuntimeError):
        pair.agent.open_stream("h", 1)
    with pytest.raises(ValueError):
        pair.server.open_stream("a" * 256, 80)
    sid = pair.open()
    with pytest.raises(RuntimeError):
        pair.agent.accept_stream(sid, PEER)
    with pytest.raises(RuntimeError):
        pair.agent.reject_stream(sid, Reason.DNS, "too late")


def test_it_leaves_no_trace_of_a_refused_open() -> None:
    """A refused open_stream neither uses up an id nor leaves a phantom stream."""
    pair = ConnectionPair()
    with pytest.raises(ValueError):
        pair.server.open_stream("h", 0)
    assert pair.server.stream_count == 0
    assert pair.server.open_stream("h", 1) == 1


def test_it_refuses_an_empty_host_locally() -> None:
    """An OPEN without a host is a protocol error at the agent: refuse it before sending."""
    pair = ConnectionPair()
    with pytest.raises(ValueError):
        pair.server.open_stream("", 80)
    pair.pump()  # whatever was queued must not break the connection


# --------------------------------------------------------------- flow control


def test_it_lets_the_server_send_exactly_one_window() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    assert pair.server.credit(sid) == WINDOW
    pair.server.send_data(sid, b"x" * WINDOW)
    assert pair.server.credit(sid) == 0
    with pytest.raises(ValueError):
        pair.server.send_data(sid, b"x")
    seen = pair.pump()
    assert sum(len(e.data) for e in seen.agent if isinstance(e, DataReceived)) == WINDOW


def test_it_lets_the_agent_send_exactly_one_window() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.agent.send_data(sid, b"y" * WINDOW)
    with pytest.raises(ValueError):
        pair.agent.send_data(sid, b"y")
    seen = pair.pump()
    assert sum(len(e.data) for e in seen.server if isinstance(e, DataReceived)) == WINDOW


def test_it_returns_credit_in_batches_of_a_quarter_window() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    batch = WINDOW // 4
    pair.server.send_data(sid, b"x" * WINDOW)
    pair.pump()
    for _ in range(batch - 1):
        pair.agent.consumed(sid, 1)
    assert pair.agent.data_to_send() == []  # not yet worth a WINDOW frame
    pair.agent.consumed(sid, 1)
    messages = pair.agent.data_to_send()
    assert frames_of(messages) == [Window(sid, batch)]
    pair.to_server.extend(messages)
    for message in messages:
        pair.server.receive_bytes(message)  # type: ignore[arg-type]
    assert pair.server.events_received() == [CreditAdded(sid, batch)]
    assert pair.server.credit(sid) == batch


def test_it_doubles_the_window_of_a_flowing_stream_up_to_its_ceiling() -> None:
    limits = Limits(stream_window=4096, max_stream_window=16384, max_frame_payload=4096)
    pair = ConnectionPair(limits, limits)
    sid = pair.open()
    grants = []
    for _ in range(4):
        credit = pair.server.credit(sid)
        pair.server.send_data(sid, b"x" * credit)
        pair.pump()
        pair.agent.consumed(sid, credit)
        grants.append(pair.pump().server)
        assert pair.server.credit(sid) == min(2 * credit, 16384)
    assert grants == [[CreditAdded(sid, c)] for c in (8192, 16384, 16384, 16384)]


def test_it_grows_no_window_for_bytes_still_held() -> None:
    limits = Limits(stream_window=4096, max_stream_window=16384, max_frame_payload=4096)
    pair = ConnectionPair(limits, limits)
    sid = pair.open()
    pair.server.send_data(sid, b"x" * 4096)
    pair.pump()  # the agent holds them all: no WINDOW, no growth, nothing more may come
    assert pair.server.credit(sid) == 0
    assert frames_of(pair.agent.data_to_send()) == []


def test_a_window_at_its_ceiling_from_the_start_never_grows() -> None:
    pair = ConnectionPair(SMALL, SMALL)
    sid = pair.open()
    pair.server.send_data(sid, b"x" * SMALL.stream_window)
    pair.pump()
    pair.agent.consumed(sid, SMALL.stream_window)
    pair.pump()
    assert pair.server.credit(sid) == SMALL.stream_window


def test_it_reports_the_total_credit() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_data(sid, b"x" * (WINDOW - 100))
    pair.pump()
    pair.agent.consumed(sid, WINDOW // 2)  # one WINDOW frame for the whole amount
    assert pair.pump().server == [CreditAdded(sid, 100 + WINDOW // 2)]
    pair.agent.consumed(sid, WINDOW // 2 - 100)
    assert pair.pump().server == [CreditAdded(sid, WINDOW)]
    assert pair.server.credit(sid) == WINDOW


def test_it_keeps_the_flow_going_over_many_windows() -> None:
    pair = ConnectionPair(SMALL, SMALL)
    sid = pair.open()
    sent, received = bytearray(), bytearray()
    for i in range(40):
        chunk = bytes([i]) * pair.server.credit(sid)
        pair.server.send_data(sid, chunk)
        sent += chunk
        for event in pair.pump().agent:
            assert isinstance(event, DataReceived)
            received += event.data
            pair.agent.consumed(sid, len(event.data))
        pair.pump()
    assert received == sent and len(sent) > 20 * SMALL.stream_window


def test_it_grants_nothing_after_the_peer_finished() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.send_data(sid, b"x" * WINDOW)
    pair.server.send_fin(sid)
    pair.pump()
    pair.agent.consumed(sid, WINDOW)
    assert pair.agent.data_to_send() == []


@pytest.mark.parametrize("receiver", SIDES)
def test_it_refuses_a_peer_that_ignores_credit_in_one_frame(receiver: str) -> None:
    limits = Limits(stream_window=4096, max_frame_payload=8192, max_message_size=16384)
    pair = ConnectionPair(limits, limits)
    sid = pair.open()
    with pytest.raises(ProtocolError, match="exceeds the window"):
        inject(pair.conn(receiver), Data(sid, b"x" * 4097))


@pytest.mark.parametrize("receiver", SIDES)
def test_it_refuses_a_peer_that_ignores_credit_over_several_frames(receiver: str) -> None:
    pair = ConnectionPair(SMALL, SMALL)
    sid = pair.open()
    conn = pair.conn(receiver)
    assert len(inject(conn, *[Data(sid, b"x" * 1024)] * 4)) == 4  # exactly the window
    with pytest.raises(ProtocolError, match="exceeds the window"):
        inject(conn, Data(sid, b"x"))


@pytest.mark.parametrize("receiver", SIDES)
def test_it_refuses_a_window_that_overflows(receiver: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    conn = pair.conn(receiver)
    assert inject(conn, Window(sid, MAX_WINDOW - WINDOW)) == [CreditAdded(sid, MAX_WINDOW)]
    with pytest.raises(ProtocolError, match="overflows"):
        inject(conn, Window(sid, 1))


def test_it_refuses_a_window_before_the_stream_is_accepted() -> None:
    """Nobody can have consumed bytes of a stream that is not open yet."""
    pair = ConnectionPair()
    sid = pair.server.open_stream("h", 1)
    pair.pump()
    with pytest.raises(ProtocolError, match="before"):
        inject(pair.agent, Window(sid, 10))


# ------------------------------------------------------------- hostile input

NEVER_OPENED_TO_SERVER = [
    OpenOk(2, 1024, PEER),
    OpenFail(2, Reason.DNS, ""),
    Data(2, b"x"),
    Window(2, 1),
    Fin(2),
    Reset(2, Reason.CANCELLED, ""),
]
NEVER_OPENED_TO_AGENT = [Data(2, b"x"), Window(2, 1), Fin(2), Reset(2, Reason.CANCELLED, "")]


@pytest.mark.parametrize("frame", NEVER_OPENED_TO_SERVER, ids=repr)
def test_it_refuses_frames_for_a_stream_the_server_never_opened(frame: Frame) -> None:
    pair = ConnectionPair()
    pair.open()  # stream 1 exists; stream 2 never did
    with pytest.raises(ProtocolError, match="never opened"):
        inject(pair.server, frame)


@pytest.mark.parametrize("frame", NEVER_OPENED_TO_AGENT, ids=repr)
def test_it_refuses_frames_for_a_stream_the_agent_was_never_asked_to_open(frame: Frame) -> None:
    pair = ConnectionPair()
    pair.open()
    with pytest.raises(ProtocolError, match="never opened"):
        inject(pair.agent, frame)


@pytest.mark.parametrize("frame", NEVER_OPENED_TO_SERVER, ids=repr)
def test_it_ignores_late_frames_for_a_closed_stream_on_the_server(frame: Frame) -> None:
    pair = ConnectionPair()
    pair.open()
    sid = pair.server.open_stream("h", 1)  # stream 2, abandoned before the agent answered
    pair.server.reset_stream(sid, Reason.CANCELLED)
    assert inject(pair.server, frame) == []
    assert pair.server.data_to_send()  # only the RESET, nothing in reply to the late frame
    assert pair.server.stream_count == 1


@pytest.mark.parametrize("close", ["fin", "reset"])
@pytest.mark.parametrize("side", SIDES)
def test_it_ignores_late_frames_for_a_stream_closed_cleanly(side: str, close: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    if close == "fin":
        pair.server.send_fin(sid)
        pair.agent.send_fin(sid)
    else:
        pair.agent.reset_stream(sid, Reason.CONNECTION_LOST)
    pair.pump()
    conn = pair.conn(side)
    late = [Data(sid, b"x"), Window(sid, 1), Fin(sid), Reset(sid, Reason.CANCELLED, "")]
    if side == "server":
        late += [OpenOk(sid, 1, PEER), OpenFail(sid, Reason.DNS, "")]
    assert inject(conn, *late) == []
    assert conn.data_to_send() == [] and conn.stream_count == 0


def test_it_ignores_late_frames_for_a_stream_the_agent_rejected() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("h", 1)
    pair.pump()
    pair.agent.reject_stream(sid, Reason.REFUSED, "")
    assert inject(pair.agent, Data(sid, b"x"), Fin(sid), Reset(sid, Reason.CANCELLED, "")) == []


@pytest.mark.parametrize("reused", [1, 2])
def test_it_refuses_an_open_that_reuses_an_id(reused: int) -> None:
    pair = ConnectionPair()
    inject(pair.agent, Open(2, "h", 80, 1024))
    with pytest.raises(ProtocolError, match="reuses"):
        inject(pair.agent, Open(reused, "h", 80, 1024))


def test_it_refuses_an_open_that_reuses_a_closed_id() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    pair.server.reset_stream(sid, Reason.CANCELLED)
    pair.pump()
    with pytest.raises(ProtocolError, match="reuses"):
        inject(pair.agent, Open(sid, "h", 80, 1024))


def test_it_accepts_gaps_in_stream_ids() -> None:
    pair = ConnectionPair()
    assert inject(pair.agent, Open(10, "h", 80, 1024)) == [StreamOpenRequested(10, "h", 80)]
    with pytest.raises(ProtocolError, match="reuses"):
        inject(pair.agent, Open(9, "h", 80, 1024))


def test_it_refuses_an_open_sent_to_the_server() -> None:
    with pytest.raises(ProtocolError, match="OPEN sent to the server"):
        inject(Connection(Role.SERVER), Open(1, "h", 80, 1024))


@pytest.mark.parametrize("frame", [OpenOk(1, 1024, PEER), OpenFail(1, Reason.DNS, "")], ids=repr)
def test_it_refuses_open_answers_sent_to_the_agent(frame: Frame) -> None:
    pair = ConnectionPair()
    pair.server.open_stream("h", 1)
    pair.pump()  # stream 1 exists on the agent: still an error
    with pytest.raises(ProtocolError, match="sent to the agent"):
        inject(pair.agent, frame)


def test_it_refuses_a_second_open_ok() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    with pytest.raises(ProtocolError, match="already open"):
        inject(pair.server, OpenOk(sid, 1024, PEER))


def test_it_refuses_open_fail_for_an_accepted_stream() -> None:
    pair = ConnectionPair()
    sid = pair.open()
    with pytest.raises(ProtocolError, match="already open"):
        inject(pair.server, OpenFail(sid, Reason.DNS, ""))


def test_it_refuses_an_over_long_host() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        inject(Connection(Role.AGENT), Open(1, "a" * 256, 80, 1024))
    assert inject(Connection(Role.AGENT), Open(1, "a" * 255, 80, 1024))


@pytest.mark.parametrize("side", SIDES)
def test_it_refuses_data_after_fin(side: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    conn = pair.conn(side)
    assert inject(conn, Fin(sid)) == [EndReceived(sid)]
    with pytest.raises(ProtocolError, match="after FIN"):
        inject(conn, Data(sid, b"x"))


@pytest.mark.parametrize("side", SIDES)
def test_it_refuses_a_second_fin(side: str) -> None:
    pair = ConnectionPair()
    sid = pair.open()
    conn = pair.conn(side)
    with pytest.raises(ProtocolError, match="second FIN"):
        inject(conn, Fin(sid), Fin(sid))


def test_it_refuses_data_to_an_agent_stream_not_yet_accepted() -> None:
    pair = ConnectionPair()
    sid = pair.server.open_stream("h", 1)
    pair.pump()
    with pytest.raises(ProtocolError):
        inject(pair.agent, Data(sid, b"x"))


def test_it_refuses_data_to_a_server_stream_before_open_ok() -> None:
    """The agent may send only after its OPEN_OK, so it can never have two windows in flight."""
    pair = ConnectionPair(SMALL, SMALL)
    sid = pair.server.open_stream("h", 1)
    with pytest.raises(ProtocolError, match="exceeds the window"):
        inject(pair.server, Data(sid, b"x"))


def test_it_gives_the_agent_no_credit_before_it_accepts() -> None:
    """The server refuses DATA before OPEN_OK, so the agent must not be able to send it."""
    pair = ConnectionPair()
    sid = pair.server.open_stream("h", 1)
    pair.pump()
    assert pair.agent.credit(sid) == 0
    with pytest.raises((ValueError, RuntimeError)):
        pair.agent.send_data(sid, b"early")


@pytest.mark.parametrize(
    "how",
    [
        "reject",
        "reset",
        "accept",
    ],
)
def test_it_never_sends_a_frame_over_the_peers_max_frame_payload(how: str) -> None:
    """Texts are cut in bytes, not characters, so even the smallest limits hold."""
    tight = Limits(stream_window=4096, max_frame_payload=1024, max_message_size=2048)
    pair = ConnectionPair(tight, tight)
    sid = pair.server.open_stream("h", 1)
    pair.pump()
    text = "é" * 600  # 1200 bytes
    if how == "reject":
        pair.agent.reject_stream(sid, Reason.INTERNAL, text)
    elif how == "reset":
        pair.agent.reset_stream(sid, Reason.INTERNAL, text)
    else:
        pair.agent.accept_stream(sid, text)
    [event] = pair.pump().server
    assert isinstance(event, StreamRejected | StreamReset | StreamAccepted)
    if not isinstance(event, StreamAccepted):
        assert text.startswith(event.message) and len(event.message.encode()) <= 512


def test_it_stops_at_the_first_open_ok_of_a_flood() -> None:
    pair = ConnectionPair()
    flood = b"".join(encode_frame(OpenOk(sid, 1024, PEER)) for sid in range(1, 5001))
    with pytest.raises(ProtocolError, match="stream 1,"):
        pair.server.receive_bytes(flood)
    assert pair.server.events_received() == []
    assert pair.server.stream_count == 0


# ---------------------------------------------------------------- max_streams


def test_it_refuses_an_open_beyond_max_streams_without_bothering_the_agent() -> None:
    pair = ConnectionPair(agent=Limits(max_streams=2))
    sids = [pair.server.open_stream("h", port) for port in (1, 2, 3)]
    seen = pair.pump()
    assert seen.agent == [StreamOpenRequested(1, "h", 1), StreamOpenRequested(2, "h", 2)]
    assert len(seen.server) == 1
    rejected = seen.server[0]
    assert isinstance(rejected, StreamRejected)
    assert (rejected.stream_id, rejected.reason) == (sids[2], Reason.TOO_MANY_STREAMS)
    assert pair.agent.stream_count == pair.server.stream_count == 2


def test_it_makes_room_when_a_stream_closes() -> None:
    pair = ConnectionPair(agent=Limits(max_streams=2))
    first, _ = pair.open(), pair.open()
    pair.server.reset_stream(first, Reason.CANCELLED)
    pair.pump()
    sid = pair.server.open_stream("h", 1)
    assert pair.pump().agent == [StreamOpenRequested(sid, "h", 1)]


def test_it_counts_half_closed_streams_against_max_streams() -> None:
    pair = ConnectionPair(agent=Limits(max_streams=1))
    sid = pair.open()
    pair.server.send_fin(sid)
    pair.pump()
    pair.server.open_stream("h", 1)
    seen = pair.pump()
    assert seen.agent == []
    assert [type(e) for e in seen.server] == [StreamRejected]


# ----------------------------------------------------------------- coalescing


def test_it_coalesces_many_small_frames_into_one_message() -> None:
    pair = ConnectionPair()
    sids = [pair.open() for _ in range(20)]
    for sid in sids:
        pair.server.send_data(sid, b"ping")
        pair.server.send_fin(sid)
    messages = pair.server.data_to_send()
    assert len(messages) == 1 and isinstance(messages[0], bytes)
    assert len(frames_of(messages)) == 40


def test_it_splits_output_at_max_message_size() -> None:
    limits = Limits(stream_window=8192, max_frame_payload=1024, max_message_size=1100)
    pair = ConnectionPair(limits, limits)
    sids = [pair.server.open_stream(f"host-{i}.example", 443) for i in range(100)]
    messages = pair.server.data_to_send()
    assert len(messages) > 1
    assert all(isinstance(m, bytes) and len(m) <= 1100 for m in messages)
    assert [f.stream_id for f in frames_of(messages)] == sids  # order kept across messages


def test_it_never_builds_a_message_over_max_message_size_with_data() -> None:
    limits = Limits(stream_window=65536, max_frame_payload=1024, max_message_size=1500)
    pair = ConnectionPair(limits, limits)
    sid = pair.open()
    payload = bytes(range(251)) * 200
    for start in range(0, len(payload), 700):
        pair.server.send_data(sid, payload[start : start + 700])
    messages = pair.server.data_to_send()
    assert all(len(m) <= 1500 for m in messages)
    assert b"".join(f.data for f in frames_of(messages) if isinstance(f, Data)) == payload


def test_it_keeps_control_messages_in_order_with_frames() -> None:
    pair = ConnectionPair()
    pair.server.open_stream("a", 1)
    pair.server.send_control({"type": "pause"})
    pair.server.open_stream("b", 2)
    pair.server.open_stream("c", 3)
    pair.server.send_control({"type": "resume"})
    pair.server.send_control({"type": "stats"})
    messages = pair.server.data_to_send()
    assert [type(m) for m in messages] == [bytes, str, bytes, str, str]
    for message in messages:
        if isinstance(message, bytes):
            pair.agent.receive_bytes(message)
        else:
            pair.agent.receive_text(message)
    assert pair.agent.events_received() == [
        StreamOpenRequested(1, "a", 1),
        ControlReceived({"type": "pause"}),
        StreamOpenRequested(2, "b", 2),
        StreamOpenRequested(3, "c", 3),
        ControlReceived({"type": "resume"}),
        ControlReceived({"type": "stats"}),
    ]


# ------------------------------------------------- randomized flow control

FLOW = Limits(
    stream_window=4096, max_stream_window=16384, max_frame_payload=1024, max_message_size=1500
)
STREAMS = 3
PATTERN = bytes(range(251)) * 30


class FlowControl(RuleBasedStateMachine):
    """Random sends, partial deliveries and consumes on several streams, both ways.

    Messages sit in a queue per direction, so any amount may be in flight; the
    invariants say no stream ever has more than its largest window of bytes sent
    but not yet consumed, and what arrives is exactly what was sent, in order.
    """

    @initialize()
    def connect(self) -> None:
        self.pair = ConnectionPair(FLOW, FLOW)
        self.sids = [self.pair.open() for _ in range(STREAMS)]
        self.queued: dict[str, list[bytes | str]] = {"server": [], "agent": []}
        # keyed by (sending side, stream id)
        self.sent = {(s, i): bytearray() for s in SIDES for i in self.sids}
        self.received = {(s, i): bytearray() for s in SIDES for i in self.sids}
        self.consumed_ = {(s, i): 0 for s in SIDES for i in self.sids}
        self.counter = 0

    def _collect(self) -> None:
        for side in SIDES:
            self.queued[side].extend(self.pair.conn(side).data_to_send())

    @rule(side=st.sampled_from(SIDES), index=st.integers(0, STREAMS - 1), size=st.integers(1, 6000))
    def send(self, side: str, index: int, size: int) -> None:
        conn, sid = self.pair.conn(side), self.sids[index]
        size = min(size, conn.credit(sid))
        if size == 0:
            with pytest.raises(ValueError):
                conn.send_data(sid, b"\x00")
            return
        data = PATTERN[self.counter % 251 :][:size]  # never repeats at a 4 KiB scale
        self.counter += size
        conn.send_data(sid, data)
        self.sent[side, sid] += data
        self._collect()

    @rule(side=st.sampled_from(SIDES), count=st.integers(1, 4))
    def deliver(self, side: str, count: int) -> None:
        """Deliver the oldest ``count`` messages ``side`` sent."""
        queue, receiver = self.queued[side], self.pair.conn(other(side))
        batch, self.queued[side] = queue[:count], queue[count:]
        for message in batch:
            assert isinstance(message, bytes)
            for frame in decode_frames(message, FLOW.max_frame_payload):
                if isinstance(frame, Window):  # credit comes back in batches
                    assert frame.increment >= FLOW.stream_window // 4
            receiver.receive_bytes(message)
        credits = {}
        for event in receiver.events_received():
            if isinstance(event, DataReceived):
                self.received[side, event.stream_id] += event.data
            else:
                assert isinstance(event, CreditAdded)
                credits[event.stream_id] = event.credit
        for sid, credit in credits.items():  # CreditAdded reports the total
            assert credit == receiver.credit(sid)
        self._collect()

    @rule(side=st.sampled_from(SIDES), index=st.integers(0, STREAMS - 1), size=st.integers(1, 5000))
    def consume(self, side: str, index: int, size: int) -> None:
        """The receiving ``side`` drains up to ``size`` buffered bytes of one stream."""
        key, sid = (other(side), self.sids[index]), self.sids[index]
        size = min(size, len(self.received[key]) - self.consumed_[key])
        if size:
            self.pair.conn(side).consumed(sid, size)
            self.consumed_[key] += size
            self._collect()

    @invariant()
    def never_more_than_a_window_outstanding(self) -> None:
        if not hasattr(self, "pair"):
            return
        for (side, sid), sent in self.sent.items():
            outstanding = len(sent) - self.consumed_[side, sid]
            assert 0 <= outstanding <= FLOW.max_stream_window
            assert 0 <= self.pair.conn(side).credit(sid) <= FLOW.max_stream_window - outstanding

    @invariant()
    def data_arrives_in_order(self) -> None:
        if not hasattr(self, "pair"):
            return
        for key, received in self.received.items():
            assert self.sent[key].startswith(received)

    def teardown(self) -> None:
        if not hasattr(self, "pair"):
            return
        for _ in range(100):  # deliver and consume everything: all that was sent arrives
            for side in SIDES:
                self.deliver(side, len(self.queued[side]))
            for side in SIDES:
                for index in range(STREAMS):
                    self.consume(side, index, FLOW.stream_window)
            if not any(self.queued.values()):
                break
        assert self.received == self.sent
        threshold = FLOW.stream_window // 4
        for side in SIDES:  # all credit came back but for a last batch below the threshold
            for sid in self.sids:
                assert FLOW.stream_window - threshold < self.pair.conn(side).credit(sid)


FlowControl.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
test_flow_control_holds_under_random_interleavings = FlowControl.TestCase


# -------------------------------------------------------------------- limits


@pytest.mark.parametrize("window", [0, -1, MAX_WINDOW + 1, 2**32])
def test_limits_refuse_an_impossible_window(window: int) -> None:
    with pytest.raises(ValueError):
        Limits(stream_window=window)


@pytest.mark.parametrize("window", [0, -1, MAX_WINDOW + 1])
def test_limits_refuse_an_impossible_window_ceiling(window: int) -> None:
    with pytest.raises(ValueError):
        Limits(max_stream_window=window)


@pytest.mark.parametrize("window", [1, MAX_WINDOW])
def test_limits_accept_any_window_in_range(window: int) -> None:
    assert Limits(stream_window=window).stream_window == window


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_frame_payload": 1023},
        {"max_frame_payload": 4096, "max_message_size": 4096 + 8},
        {"max_streams": 0},
    ],
    ids=repr,
)
def test_limits_refuse_inconsistent_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Limits(**kwargs)


def test_limits_defaults() -> None:
    limits = Limits()
    assert limits.stream_window == 256 * 1024
    assert limits.max_stream_window == 2048 * 1024
    assert limits.max_frame_payload == 256 * 1024
    assert limits.max_message_size == 1024 * 1024
    assert limits.max_streams == 1024
    assert limits.max_host_length == 255
