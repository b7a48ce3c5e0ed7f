"""The mux's output: sends start in the flush itself; one that must wait keeps the order."""

from __future__ import annotations

import asyncio

import pytest

import wire
from tunnel import Mux


class Socket:
    """A WebSocket send that takes messages at once until told to block."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.gate: asyncio.Future[None] | None = None
        self.tasks_during_send: list[asyncio.Task[object] | None] = []

    async def send(self, message: bytes | str) -> None:
        self.tasks_during_send.append(asyncio.current_task())
        if self.gate is not None:
            await self.gate
        self.sent.append(message)


def _mux(socket: Socket) -> Mux:
    return Mux(wire.Connection(wire.Role.SERVER), socket.send)


async def _one_iteration() -> None:
    await asyncio.sleep(0)


def test_it_sends_in_the_flush_without_a_writer_task() -> None:
    async def scenario() -> None:
        socket = Socket()
        mux = _mux(socket)
        mux.send_control({"type": "pause"})
        await _one_iteration()  # the flush runs
        assert socket.sent == ['{"type":"pause"}']
        # The send ran inside the flush callback, not in a task of its own.
        assert socket.tasks_during_send == [None]

    asyncio.run(scenario())


def test_it_finishes_a_waiting_send_in_a_task_and_keeps_the_order() -> None:
    async def scenario() -> None:
        socket = Socket()
        socket.gate = asyncio.get_running_loop().create_future()
        mux = _mux(socket)
        mux.send_control({"type": "pause"})
        await _one_iteration()
        mux.send_control({"type": "resume"})
        await _one_iteration()
        assert socket.sent == []  # the first send waits; the second queues behind it
        socket.gate.set_result(None)
        socket.gate = None
        for _ in range(3):
            await _one_iteration()
        assert socket.sent == ['{"type":"pause"}', '{"type":"resume"}']
        mux.send_control({"type": "pause"})
        await _one_iteration()
        assert len(socket.sent) == 3  # eager again once the writer is done

    asyncio.run(scenario())


@pytest.mark.parametrize("iterations", [0, 2], ids=["before-writer-ran", "after-writer-ran"])
def test_it_abandons_a_waiting_send_when_the_connection_closes(iterations: int) -> None:
    async def scenario() -> None:
        socket = Socket()
        gate = socket.gate = asyncio.get_running_loop().create_future()
        mux = _mux(socket)
        mux.send_control({"type": "pause"})
        await _one_iteration()
        mux.send_control({"type": "resume"})
        for _ in range(iterations):
            await _one_iteration()
        mux.close()
        await _one_iteration()
        if not gate.done():
            gate.set_result(None)
        for _ in range(3):
            await _one_iteration()
        assert socket.sent == []

    asyncio.run(scenario())


def test_it_drops_the_rest_of_a_flush_when_a_send_fails() -> None:
    async def scenario() -> None:
        failures: list[bytes | str] = []

        async def broken(message: bytes | str) -> None:
            failures.append(message)
            raise ConnectionResetError("gone")

        mux = Mux(wire.Connection(wire.Role.SERVER), broken)
        mux.send_control({"type": "pause"})
        await _one_iteration()
        assert failures == ['{"type":"pause"}']

    asyncio.run(scenario())


def _accepted_stream(mux: Mux) -> int:
    """Open a stream on a server-side mux and feed it the agent's OPEN_OK."""
    sid = mux.conn.open_stream("example.com", 443)
    mux.conn.data_to_send()
    mux.feed_bytes(wire.encode_frame(wire.OpenOk(sid, 65536, "192.0.2.1")))
    return sid


class FailingHandler:
    def __init__(self) -> None:
        self.resets: list[wire.Reason] = []

    def on_data(self, data: bytes | memoryview) -> None:
        raise OSError(107, "Transport endpoint is not connected")

    def on_credit(self) -> None: ...

    def on_end(self) -> None:
        raise OSError(107, "Transport endpoint is not connected")

    def on_reset(self, reason: wire.Reason, message: str) -> None:
        self.resets.append(reason)


@pytest.mark.parametrize("frame", ["data", "fin"])
def test_it_resets_only_the_stream_whose_handler_fails(frame: str) -> None:
    async def scenario() -> None:
        socket = Socket()
        mux = _mux(socket)
        broken, healthy = _accepted_stream(mux), _accepted_stream(mux)
        handler = FailingHandler()
        mux.attach(broken, handler)
        sent = wire.Data(broken, b"x") if frame == "data" else wire.Fin(broken)
        mux.feed_bytes(wire.encode_frame(sent))  # does not raise: the connection lives on
        await _one_iteration()
        assert handler.resets == [wire.Reason.INTERNAL]
        assert not mux.conn.has_stream(broken) and mux.conn.has_stream(healthy)
        frames = [
            f for m in socket.sent if isinstance(m, bytes) for f in wire.decode_frames(m, 1 << 20)
        ]
        assert any(isinstance(f, wire.Reset) and f.stream_id == broken for f in frames)

    asyncio.run(scenario())


def _frames_sent(socket: Socket) -> list[wire.Frame]:
    return [f for m in socket.sent if isinstance(m, bytes) for f in wire.decode_frames(m, 1 << 20)]


def test_an_open_the_agent_never_answers_times_out_and_resets_the_stream() -> None:
    async def scenario() -> None:
        socket = Socket()
        mux = _mux(socket)
        with pytest.raises(TimeoutError):
            await mux.open("example.com", 443, timeout=0.05)
        await _one_iteration()
        opened, reset = _frames_sent(socket)
        assert isinstance(opened, wire.Open) and isinstance(reset, wire.Reset)
        assert reset.stream_id == opened.stream_id and reset.reason is wire.Reason.CANCELLED
        assert not mux.conn.has_stream(opened.stream_id)
        # The late answer of an agent that finally connected finds nothing waiting.
        mux.feed_bytes(wire.encode_frame(wire.OpenOk(opened.stream_id, 1024, "192.0.2.1")))

    asyncio.run(scenario())


def test_an_open_abandoned_by_its_caller_resets_the_stream() -> None:
    async def scenario() -> None:
        socket = Socket()
        mux = _mux(socket)
        opening = asyncio.create_task(mux.open("example.com", 443, timeout=60))
        await _one_iteration()
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        await _one_iteration()
        assert [type(f) for f in _frames_sent(socket)] == [wire.Open, wire.Reset]

    asyncio.run(scenario())


def test_an_answer_in_time_returns_it_and_cancels_the_timer() -> None:
    async def scenario() -> None:
        socket = Socket()
        mux = _mux(socket)
        opening = asyncio.create_task(mux.open("example.com", 443, timeout=0.05))
        await _one_iteration()  # the task sends OPEN...
        await _one_iteration()  # ...and the flush writes it
        (opened,) = _frames_sent(socket)
        mux.feed_bytes(wire.encode_frame(wire.OpenOk(opened.stream_id, 1024, "192.0.2.1")))
        sid, answer = await opening
        assert sid == opened.stream_id and isinstance(answer, wire.StreamAccepted)
        await asyncio.sleep(0.1)  # past the timeout: nothing fires, nothing is reset
        assert [type(f) for f in _frames_sent(socket)] == [wire.Open]

    asyncio.run(scenario())
