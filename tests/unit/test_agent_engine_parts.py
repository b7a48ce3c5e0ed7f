"""Small parts of the agent engine: reconnect backoff, durable state, the server URL."""

from __future__ import annotations

import json
import random
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.engine.backoff import Backoff
from desktop_agent.engine.client import websocket_url
from desktop_agent.engine.state import STATE_FILE, AgentState

SERVER = "https://exitpool.example.com"
OTHER_SERVER = "http://10.0.0.5:8000"


# ------------------------------------------------------------------ backoff


def test_it_keeps_each_delay_between_half_the_cap_and_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, rng=random.Random(7))

    for cap in [1, 2, 4, 8, 16, 30, 30, 30]:
        delay = backoff.next_delay()
        assert cap / 2 <= delay <= cap


def test_it_doubles_the_cap_until_the_maximum() -> None:
    # An rng that always answers its upper bound shows the cap itself.
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    backoff = Backoff(initial=0.5, maximum=10.0, rng=Highest())

    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_it_stays_at_the_maximum_after_very_many_failures() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, rng=random.Random(1))

    delays = [backoff.next_delay() for _ in range(200)]

    assert all(30.0 <= delay <= 60.0 for delay in delays[6:])
    assert backoff.failures == 200


def test_it_starts_over_after_a_reset() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, rng=random.Random(3))
    for _ in range(10):
        backoff.next_delay()

    backoff.reset()

    assert backoff.failures == 0
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_it_repeats_a_sequence_for_the_same_seed_and_differs_between_seeds() -> None:
    def delays(seed: int) -> list[float]:
        backoff = Backoff(initial=1.0, maximum=30.0, rng=random.Random(seed))
        return [backoff.next_delay() for _ in range(6)]

    assert delays(1) == delays(1)
    assert delays(1) != delays(2)


def test_it_gives_different_agents_different_delays_without_a_seed() -> None:
    first, second = Backoff(1.0, 30.0), Backoff(1.0, 30.0)

    assert [first.next_delay() for _ in range(6)] != [second.next_delay() for _ in range(6)]


@given(
    initial=st.floats(min_value=0.01, max_value=100),
    factor=st.floats(min_value=1, max_value=1000),
    failures=st.integers(min_value=0, max_value=100),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_it_never_leaves_the_documented_range(
    initial: float, factor: float, failures: int, seed: int
) -> None:
    maximum = initial * factor
    backoff = Backoff(initial, maximum, rng=random.Random(seed))
    backoff.failures = failures
    cap = min(maximum, initial * 2.0 ** min(failures, 32))

    assert cap / 2 <= backoff.next_delay() <= cap


# ------------------------------------------------------------------ state


def test_it_keeps_a_credential_per_server_across_instances(tmp_path: Path) -> None:
    AgentState(tmp_path).update(SERVER, credential="cred-one", agent_name="office-pc-7")
    AgentState(tmp_path).update(OTHER_SERVER, credential="cred-two")

    state = AgentState(tmp_path)

    assert state.credential(SERVER) == "cred-one"
    assert state.credential(OTHER_SERVER) == "cred-two"
    assert state.for_server(SERVER) == {"credential": "cred-one", "agent_name": "office-pc-7"}
    assert state.credential("https://unknown.example") is None
    assert state.for_server("https://unknown.example") == {}


def test_it_merges_new_values_into_a_servers_entry(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.update(SERVER, credential="cred-one")

    state.update(SERVER, agent_name="office-pc-7")
    state.update(SERVER, credential="cred-new")

    assert state.for_server(SERVER) == {"credential": "cred-new", "agent_name": "office-pc-7"}


def test_it_hands_out_a_copy_of_a_servers_entry(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.update(SERVER, credential="cred-one")

    state.for_server(SERVER)["credential"] = "changed"

    assert state.credential(SERVER) == "cred-one"


@pytest.mark.parametrize("value", ["", 42, None, ["x"]])
def test_it_treats_an_empty_or_non_text_credential_as_missing(
    tmp_path: Path, value: object
) -> None:
    state = AgentState(tmp_path)
    state.update(SERVER, credential=value)

    assert state.credential(SERVER) is None


def test_it_writes_the_state_file_for_the_owner_only(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.update(SERVER, credential="cred-one")
    state.path.chmod(0o644)

    state.update(SERVER, credential="cred-two")

    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600


def test_it_creates_the_config_directory(tmp_path: Path) -> None:
    state = AgentState(tmp_path / "nested" / "config")

    state.update(SERVER, credential="cred-one")

    assert state.path == tmp_path / "nested" / "config" / STATE_FILE
    assert state.credential(SERVER) == "cred-one"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"servers": "not a table"}',
        b'{"other": 1}',
        b'{"servers": {"https://exitpool.example.com": "not a table"}}',
    ],
)
def test_it_reads_a_corrupt_file_as_empty_state(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    state = AgentState(tmp_path)

    assert state.credential(SERVER) is None
    assert state.for_server(SERVER) == {}


@pytest.mark.parametrize("content", [b"[]", b"null", b"42", b'"text"'])
def test_it_reads_a_file_holding_json_other_than_an_object_as_empty_state(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    state = AgentState(tmp_path)

    assert state.credential(SERVER) is None


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"servers": "not a table"}',
        b'{"servers": {"https://exitpool.example.com": 7}}',
    ],
)
def test_it_replaces_a_corrupt_file_on_the_next_update(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    state = AgentState(tmp_path)

    state.update(SERVER, credential="cred-one")

    assert state.credential(SERVER) == "cred-one"
    assert json.loads(state.path.read_text())["servers"][SERVER] == {"credential": "cred-one"}


def test_it_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    state = AgentState(tmp_path)

    for number in range(5):
        state.update(SERVER, credential=f"cred-{number}")

    assert [path.name for path in tmp_path.iterdir()] == [STATE_FILE]


def test_it_keeps_the_old_file_and_no_temporary_file_when_an_update_fails(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.update(SERVER, credential="cred-one")

    with pytest.raises(TypeError):
        state.update(SERVER, unserializable=object())

    assert [path.name for path in tmp_path.iterdir()] == [STATE_FILE]
    assert AgentState(tmp_path).for_server(SERVER) == {"credential": "cred-one"}


# ------------------------------------------------------------------ websocket_url


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://10.0.0.5:8000", "ws://10.0.0.5:8000/ws/agent"),
        ("http://10.0.0.5:8000/", "ws://10.0.0.5:8000/ws/agent"),
        ("https://exitpool.example.com", "wss://exitpool.example.com/ws/agent"),
        ("HTTPS://exitpool.example.com/", "wss://exitpool.example.com/ws/agent"),
        ("  https://exitpool.example.com  ", "wss://exitpool.example.com/ws/agent"),
        ("ws://10.0.0.5:8000", "ws://10.0.0.5:8000/ws/agent"),
        ("ws://10.0.0.5:8000/ws/agent", "ws://10.0.0.5:8000/ws/agent"),
        ("wss://exitpool.example.com/custom/agent", "wss://exitpool.example.com/custom/agent"),
        ("wss://exitpool.example.com/ws/agent?x=1", "wss://exitpool.example.com/ws/agent?x=1"),
        ("https://exitpool.example.com/#top", "wss://exitpool.example.com/ws/agent"),
        ("http://[::1]:8000", "ws://[::1]:8000/ws/agent"),
    ],
)
def test_it_turns_a_server_url_into_the_agent_websocket_url(server: str, expected: str) -> None:
    assert websocket_url(server) == expected


@pytest.mark.parametrize(
    "server",
    [
        "ftp://exitpool.example.com",
        "exitpool.example.com:8000",
        "exitpool.example.com",
        "",
        "http://",
        "ws:///ws/agent",
    ],
)
def test_it_rejects_urls_it_cannot_connect_to(server: str) -> None:
    with pytest.raises(ValueError, match="server URL must be"):
        websocket_url(server)


# ------------------------------------------------------- admin pause vs owner


async def test_an_admins_pause_is_kept_apart_from_the_owners(tmp_path: Path) -> None:
    from desktop_agent.engine.client import AgentEngine
    from desktop_agent.engine.config import AgentConfig

    engine = AgentEngine(AgentConfig(server_url=SERVER, config_dir=tmp_path))
    changes: list[tuple[bool, bool]] = []
    engine.add_listener(lambda e: changes.append((e.paused, e.paused_by_admin)))

    engine._on_control({"type": "pause"})  # the server's admin asks
    engine.resume()  # the owner's resume does not lift the admin's pause
    assert (engine.paused, engine.paused_by_admin) == (False, True)
    engine.pause()
    engine._on_control({"type": "resume"})
    assert (engine.paused, engine.paused_by_admin) == (True, False)
    assert changes == [(False, True), (True, True), (True, False)]
