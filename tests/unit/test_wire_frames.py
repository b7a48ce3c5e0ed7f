"""Property tests for the wire codec: binary frames and JSON control messages."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import (
    HEADER_SIZE,
    Data,
    Fin,
    Frame,
    FrameType,
    Open,
    OpenFail,
    OpenOk,
    ProtocolError,
    Reason,
    Reset,
    Window,
    decode_control,
    decode_frames,
    encode_control,
    encode_frame,
)
from wire.control import MAX_CONTROL_SIZE
from wire.errors import CloseCode
from wire.frames import MAX_STREAM_ID
from wire.limits import MAX_WINDOW

MAX_PAYLOAD = 64 * 1024  # the decoder limit used throughout, unless a test says otherwise
HEADER = struct.Struct("!BII")

# ----------------------------------------------------------------- strategies

stream_ids = st.integers(1, MAX_STREAM_ID)
windows = st.integers(1, MAX_WINDOW)
ports = st.integers(1, 65535)
reasons = st.sampled_from(Reason)
texts = st.text(max_size=64)  # any unicode scalar values (hypothesis excludes lone surrogates)
hosts = st.text(min_size=1, max_size=64)  # OPEN needs at least one byte of host
payloads = st.binary(min_size=1, max_size=2048)

opens = st.builds(Open, stream_ids, hosts, ports, windows)
open_oks = st.builds(OpenOk, stream_ids, windows, texts)
open_fails = st.builds(OpenFail, stream_ids, reasons, texts)
datas = st.builds(Data, stream_ids, payloads)
window_frames = st.builds(Window, stream_ids, windows)
fins = st.builds(Fin, stream_ids)
resets = st.builds(Reset, stream_ids, reasons, texts)
frames = st.one_of(opens, open_oks, open_fails, datas, window_frames, fins, resets)


def raw(ftype: int, sid: int, payload: bytes, length: int | None = None) -> bytes:
    """A frame built by hand, bypassing every check of ``encode_frame``."""
    return HEADER.pack(ftype, sid, len(payload) if length is None else length) + payload


def boundaries(frame_list: list[Frame]) -> set[int]:
    """Offsets where one frame ends and the next begins in the concatenated message."""
    offsets, total = set(), 0
    for frame in frame_list:
        total += len(encode_frame(frame))
        offsets.add(total)
    return offsets


# ------------------------------------------------------------------ round trips


@given(frames)
@settings(max_examples=300)
def test_any_frame_round_trips(frame: Frame) -> None:
    assert decode_frames(encode_frame(frame), MAX_PAYLOAD) == [frame]


@given(st.lists(frames, min_size=1, max_size=12))
@settings(max_examples=150)
def test_any_list_of_frames_round_trips_concatenated(frame_list: list[Frame]) -> None:
    message = b"".join(encode_frame(frame) for frame in frame_list)
    assert decode_frames(message, MAX_PAYLOAD) == frame_list


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (Open(1, "a.b", 443, 0x40000), "01 00000001 00000009 00040000 01bb 612e62"),
        (OpenOk(2, 0x40000, "1.2.3.4:80"), "02 00000002 0000000e 00040000 312e322e332e343a3830"),
        (OpenFail(3, Reason.DNS, "x"), "03 00000003 00000002 03 78"),
        (Data(4, b"hi"), "04 00000004 00000002 6869"),
        (Window(5, 65536), "05 00000005 00000004 00010000"),
        (Fin(0xFFFFFFFF), "06 ffffffff 00000000"),
        (Reset(7, Reason.CANCELLED, ""), "07 00000007 00000001 08"),
    ],
)
def test_the_layout_matches_the_spec(frame: Frame, expected: str) -> None:
    """Golden vectors for docs/protocol.md: header type|id|length, big-endian, then payload."""
    assert encode_frame(frame) == bytes.fromhex(expected)


def test_the_header_is_nine_bytes() -> None:
    assert HEADER_SIZE == 9


def test_an_unknown_reason_code_reads_as_internal() -> None:
    """Forward compatibility: a newer peer's reason codes do not break the connection."""
    [frame] = decode_frames(raw(FrameType.RESET, 1, bytes([200]) + b"why"), MAX_PAYLOAD)
    assert frame == Reset(1, Reason.INTERNAL, "why")
    [frame] = decode_frames(raw(FrameType.OPEN_FAIL, 1, bytes([0])), MAX_PAYLOAD)
    assert frame == OpenFail(1, Reason.INTERNAL, "")


# ------------------------------------------------------------- truncation, garbage


@given(frames)
@settings(max_examples=100)
def test_every_strict_prefix_of_a_frame_is_an_error(frame: Frame) -> None:
    message = encode_frame(frame)
    for cut in range(len(message)):
        with pytest.raises(ProtocolError):
            decode_frames(message[:cut], MAX_PAYLOAD)


@given(st.lists(frames, min_size=1, max_size=6), st.data())
@settings(max_examples=100)
def test_every_prefix_cut_inside_a_frame_is_an_error(
    frame_list: list[Frame], data: st.DataObject
) -> None:
    message = b"".join(encode_frame(frame) for frame in frame_list)
    inside = sorted(set(range(len(message))) - boundaries(frame_list) | {0})
    for cut in data.draw(st.lists(st.sampled_from(inside), min_size=1, max_size=20)):
        with pytest.raises(ProtocolError):
            decode_frames(message[:cut], MAX_PAYLOAD)


def decodes_or_protocol_error(message: bytes, max_payload: int = MAX_PAYLOAD) -> None:
    """The codec's promise: frames or ProtocolError, never any other exception."""
    try:
        result = decode_frames(message, max_payload)
    except ProtocolError as exc:
        assert exc.close_code is CloseCode.PROTOCOL_ERROR
    else:
        assert result
        # What decoded re-encodes and decodes the same (unknown reason codes read as INTERNAL).
        again = b"".join(encode_frame(frame) for frame in result)
        assert decode_frames(again, max(max_payload, len(again))) == result


@given(st.binary(max_size=256))
@settings(max_examples=400)
def test_garbage_decodes_or_raises_protocol_error(message: bytes) -> None:
    decodes_or_protocol_error(message)


# Garbage that gets past the header checks, so the payload decoders see it too.
plausible_frames = st.builds(
    lambda ftype, sid, payload: raw(ftype, sid, payload),
    st.integers(0, 9),
    st.integers(0, 5),
    st.binary(max_size=16),
)


@given(st.lists(plausible_frames, min_size=1, max_size=5).map(b"".join), st.integers(0, 32))
@settings(max_examples=400)
def test_plausible_garbage_decodes_or_raises_protocol_error(message: bytes, limit: int) -> None:
    decodes_or_protocol_error(message, limit)


# ------------------------------------------------------------------- bad frames


def test_an_oversized_payload_is_an_error() -> None:
    limit = 1024
    assert decode_frames(raw(FrameType.DATA, 1, b"x" * limit), limit) == [Data(1, b"x" * limit)]
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_frames(raw(FrameType.DATA, 1, b"x" * (limit + 1)), limit)


@given(frames, st.integers(0, 64))
@settings(max_examples=200)
def test_a_payload_over_max_payload_is_always_an_error(frame: Frame, slack: int) -> None:
    message = encode_frame(frame)
    length = len(message) - HEADER_SIZE
    if length > slack:
        with pytest.raises(ProtocolError):
            decode_frames(message, slack)
    else:
        assert decode_frames(message, slack) == [frame]


def test_an_oversized_length_is_refused_before_waiting_for_the_payload() -> None:
    """A header announcing 4 GiB is refused on the header alone (no buffering attack)."""
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_frames(raw(FrameType.DATA, 1, b"", length=2**32 - 1), MAX_PAYLOAD)


BAD_MESSAGES = {
    "empty message": b"",
    "unknown type 0": raw(0, 1, b""),
    "unknown type 8": raw(8, 1, b"x"),
    "unknown type 255": raw(255, 1, b""),
    "stream id 0": raw(FrameType.DATA, 0, b"x"),
    "stream id 0 on FIN": raw(FrameType.FIN, 0, b""),
    "WINDOW of 0": raw(FrameType.WINDOW, 1, struct.pack("!I", 0)),
    "WINDOW of 2^31": raw(FrameType.WINDOW, 1, struct.pack("!I", 2**31)),
    "WINDOW of 2^32-1": raw(FrameType.WINDOW, 1, struct.pack("!I", 2**32 - 1)),
    "WINDOW of 3 bytes": raw(FrameType.WINDOW, 1, b"\x00\x00\x01"),
    "WINDOW of 5 bytes": raw(FrameType.WINDOW, 1, b"\x00\x00\x00\x01\x00"),
    "empty DATA": raw(FrameType.DATA, 1, b""),
    "FIN with payload": raw(FrameType.FIN, 1, b"\x00"),
    "OPEN without host": raw(FrameType.OPEN, 1, struct.pack("!IH", 1024, 80)),
    "OPEN too short": raw(FrameType.OPEN, 1, b"\x00\x00"),
    "OPEN port 0": raw(FrameType.OPEN, 1, struct.pack("!IH", 1024, 0) + b"h"),
    "OPEN window 0": raw(FrameType.OPEN, 1, struct.pack("!IH", 0, 80) + b"h"),
    "OPEN window 2^31": raw(FrameType.OPEN, 1, struct.pack("!IH", 2**31, 80) + b"h"),
    "OPEN host not UTF-8": raw(FrameType.OPEN, 1, struct.pack("!IH", 1024, 80) + b"\xff\xfe"),
    "OPEN host surrogate": raw(FrameType.OPEN, 1, struct.pack("!IH", 1, 80) + b"\xed\xa0\x80"),
    "OPEN_OK too short": raw(FrameType.OPEN_OK, 1, b"\x00\x00\x01"),
    "OPEN_OK window 0": raw(FrameType.OPEN_OK, 1, struct.pack("!I", 0)),
    "OPEN_OK window 2^31": raw(FrameType.OPEN_OK, 1, struct.pack("!I", 2**31)),
    "OPEN_OK peer not UTF-8": raw(FrameType.OPEN_OK, 1, struct.pack("!I", 1) + b"\x80"),
    "OPEN_FAIL without reason": raw(FrameType.OPEN_FAIL, 1, b""),
    "OPEN_FAIL message not UTF-8": raw(FrameType.OPEN_FAIL, 1, b"\x01\xc3"),
    "RESET without reason": raw(FrameType.RESET, 1, b""),
    "RESET message not UTF-8": raw(FrameType.RESET, 1, b"\x01\xc0\xaf"),
    "good frame then a truncated one": encode_frame(Fin(1)) + encode_frame(Data(2, b"ab"))[:-1],
    "good frame then a bad one": encode_frame(Fin(1)) + raw(FrameType.DATA, 1, b""),
    "trailing byte": encode_frame(Fin(1)) + b"\x06",
}


@pytest.mark.parametrize("message", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_bad_frame_is_a_protocol_error(message: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frames(message, MAX_PAYLOAD)
    assert info.value.close_code is CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "frame",
    [
        Fin(0),
        Fin(MAX_STREAM_ID + 1),
        Data(0, b"x"),
        Window(1, 0),
        Window(1, MAX_WINDOW + 1),
        Open(1, "h", 0, 1),
        Open(1, "h", 65536, 1),
        Open(1, "h", 80, 0),
        Open(1, "h", 80, MAX_WINDOW + 1),
        OpenOk(1, 0, "p"),
        OpenOk(1, MAX_WINDOW + 1, "p"),
        Open(1, "", 80, 1024),
        Data(1, b""),
    ],
    ids=repr,
)
def test_encoding_an_out_of_range_frame_is_a_value_error(frame: Frame) -> None:
    with pytest.raises(ValueError):
        encode_frame(frame)


def test_encoding_a_non_frame_is_a_value_error() -> None:
    @dataclass(frozen=True)
    class Bogus:
        stream_id: int

    with pytest.raises(ValueError, match="not a frame"):
        encode_frame(Bogus(1))  # type: ignore[arg-type]


# Frames built from the widest field ranges, including values that must not be sent.
any_frames = st.one_of(
    st.builds(Open, stream_ids, texts, st.integers(0, 70000), st.integers(0, 2**32 - 1)),
    st.builds(OpenOk, stream_ids, st.integers(0, 2**32 - 1), texts),
    open_fails,
    st.builds(Data, stream_ids, st.binary(max_size=64)),
    st.builds(Window, stream_ids, st.integers(0, 2**32 - 1)),
    fins,
    resets,
)


@given(any_frames)
@settings(max_examples=300)
def test_encode_never_produces_a_frame_the_decoder_rejects(frame: Frame) -> None:
    """``encode_frame`` raises ValueError "for a frame we must never send", or it decodes."""
    try:
        message = encode_frame(frame)
    except ValueError:
        return
    assert decode_frames(message, MAX_PAYLOAD) == [frame]


# -------------------------------------------------------------- control messages

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | texts
json_scalars |= st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
control_messages = st.builds(
    lambda kind, rest: {**rest, "type": kind},
    texts,
    st.dictionaries(texts, json_values, max_size=6),
)


@given(control_messages)
@settings(max_examples=200)
def test_a_control_message_round_trips(message: dict[str, object]) -> None:
    text = encode_control(message)
    assert isinstance(text, str)
    assert decode_control(text) == message


def test_a_control_message_is_compact_json() -> None:
    assert encode_control({"type": "pause"}) == '{"type":"pause"}'
    assert decode_control('{"type": "stats", "bytes_up": 1}') == {"type": "stats", "bytes_up": 1}


def test_an_unknown_control_type_is_delivered() -> None:
    """Forward compatibility: the application ignores what it does not know."""
    assert decode_control('{"type":"from-the-future","x":[1]}')["type"] == "from-the-future"


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_garbage_text_decodes_or_raises_protocol_error(text: str) -> None:
    try:
        message = decode_control(text)
    except ProtocolError as exc:
        assert exc.close_code is CloseCode.PROTOCOL_ERROR
    else:
        assert isinstance(message, dict)
        assert isinstance(message["type"], str)


@given(json_values.filter(lambda value: not isinstance(value, dict)))
@settings(max_examples=100)
def test_a_control_message_that_is_not_an_object_is_an_error(value: object) -> None:
    with pytest.raises(ProtocolError):
        decode_control(json.dumps(value))


BAD_CONTROL = {
    "empty": "",
    "not JSON": "hello",
    "unterminated": '{"type":"pause"',
    "array": '["type","pause"]',
    "string": '"pause"',
    "number": "1",
    "null": "null",
    "missing type": '{"kind":"pause"}',
    "empty object": "{}",
    "type is a number": '{"type":1}',
    "type is null": '{"type":null}',
    "type is an object": '{"type":{"name":"pause"}}',
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "huge integer": '{"type":"stats","n":' + "9" * 5000 + "}",
    "over the size limit": '{"type":"x","pad":"' + "a" * MAX_CONTROL_SIZE + '"}',
}


@pytest.mark.parametrize("text", BAD_CONTROL.values(), ids=BAD_CONTROL.keys())
def test_a_bad_control_message_is_a_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode_control(text)


@pytest.mark.parametrize("message", [{}, {"type": 1}, {"kind": "pause"}], ids=repr)
def test_encoding_a_control_message_without_a_string_type_is_a_value_error(
    message: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        encode_control(message)
