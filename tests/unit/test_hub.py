"""The hub: who is online and which agent carries the next stream.

Sessions are real :class:`AgentSession` objects over a real :class:`tunnel.Mux`
whose ``send`` appends to a list; nothing leaves the process.
"""

from __future__ import annotations

import itertools

import pytest

import wire
from server.hub import AgentSession, Hub, NoAgent
from server.routing import Route
from tests.support.server_state import agent_session

IP_A = "198.51.100.1"
IP_B = "203.0.113.9"
PLAIN = Route(user="alice")


def make_session(
    agent_id: int, exit_ip: str = IP_A, name: str | None = None, max_streams: int = 8
) -> AgentSession:
    return agent_session(
        agent_id, name or f"office-pc-{agent_id}", exit_ip, max_streams=max_streams
    )


def hub_with(*sessions: AgentSession, sticky_max: int = 100_000) -> Hub:
    hub = Hub(sticky_max=sticky_max)
    for session in sessions:
        hub.register(session)
    return hub


def picks(hub: Hub, count: int, route: Route = PLAIN) -> list[int]:
    return [hub.choose(route).agent_id for _ in range(count)]


def fill(session: AgentSession) -> None:
    while session.open_streams < session.max_streams:
        session.mux.conn.open_stream("example.org", 443)


# ------------------------------------------------------------------ rotation


def test_it_alternates_exit_ips_before_reusing_one() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_A), make_session(3, IP_B))

    chosen = [hub.choose(PLAIN) for _ in range(6)]

    ips = [session.exit_ip for session in chosen]
    assert all(first != second for first, second in itertools.pairwise(ips))
    assert {s.agent_id for s in chosen if s.exit_ip == IP_A} == {1, 2}


def test_it_spreads_streams_over_the_agents_behind_one_ip() -> None:
    hub = hub_with(make_session(1), make_session(2), make_session(3))

    assert sorted(picks(hub, 3)) == [1, 2, 3]
    assert sorted(picks(hub, 3)) == [1, 2, 3]


def test_it_skips_a_paused_agent() -> None:
    paused = make_session(1, IP_A)
    paused.set_paused(True)
    hub = hub_with(paused, make_session(2, IP_B))

    assert picks(hub, 4) == [2, 2, 2, 2]


def test_it_records_when_an_agent_paused_and_clears_it_on_resume() -> None:
    session = make_session(1)

    session.set_paused(True)
    assert session.paused_since is not None
    session.set_paused(False)
    assert session.paused_since is None


async def test_it_skips_an_agent_at_its_stream_limit() -> None:
    busy = make_session(1, IP_A, max_streams=2)
    fill(busy)
    hub = hub_with(busy, make_session(2, IP_B))

    assert busy.open_streams == 2
    assert picks(hub, 4) == [2, 2, 2, 2]


async def test_it_uses_an_agent_again_once_a_stream_slot_frees() -> None:
    busy = make_session(1, IP_A, max_streams=1)
    sid = busy.mux.conn.open_stream("example.org", 443)
    hub = hub_with(busy)

    with pytest.raises(NoAgent):
        hub.choose(PLAIN)
    busy.mux.reset(sid, wire.Reason.CANCELLED)

    assert hub.choose(PLAIN) is busy


def test_it_skips_an_agent_whose_connection_closed() -> None:
    gone = make_session(1, IP_A)
    gone.mux.close()
    hub = hub_with(gone, make_session(2, IP_B))

    assert picks(hub, 3) == [2, 2, 2]


def test_it_skips_excluded_agents() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_A), make_session(3, IP_B))

    chosen = [hub.choose(PLAIN, exclude=[1, 3]).agent_id for _ in range(4)]

    assert chosen == [2, 2, 2, 2]


# ------------------------------------------------------------------ no agent


def test_it_says_no_agent_is_online_when_the_hub_is_empty() -> None:
    with pytest.raises(NoAgent, match=r"^no agent is online$"):
        Hub().choose(PLAIN)


def test_it_says_every_agent_is_paused_or_busy_when_all_are_paused() -> None:
    first, second = make_session(1, IP_A), make_session(2, IP_B)
    first.set_paused(True)
    second.set_paused(True)

    with pytest.raises(NoAgent, match=r"^every online agent is paused or busy$"):
        hub_with(first, second).choose(PLAIN)


async def test_it_says_every_agent_is_paused_or_busy_when_all_are_at_their_limit() -> None:
    busy = make_session(1, max_streams=1)
    fill(busy)

    with pytest.raises(NoAgent, match=r"^every online agent is paused or busy$"):
        hub_with(busy).choose(PLAIN)


# ------------------------------------------------------------------ sticky sessions


def test_it_keeps_a_session_on_one_agent_while_other_traffic_rotates() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_B), make_session(3, IP_B))
    sticky = Route(user="alice", session="s1")
    first = hub.choose(sticky).agent_id

    for _ in range(5):
        hub.choose(PLAIN)
        assert hub.choose(sticky).agent_id == first


def test_it_keeps_sessions_of_different_users_apart() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_B))

    alice = hub.choose(Route(user="alice", session="same")).agent_id
    bob = hub.choose(Route(user="bob", session="same")).agent_id

    assert alice != bob
    assert hub.choose(Route(user="alice", session="same")).agent_id == alice
    assert hub.choose(Route(user="bob", session="same")).agent_id == bob


def test_it_moves_a_session_when_its_agent_goes_away_and_stays_on_the_new_one() -> None:
    first, second = make_session(1, IP_A), make_session(2, IP_B)
    hub = hub_with(first, second)
    sticky = Route(user="alice", session="s1")
    assert hub.choose(sticky) is first

    hub.unregister(first)
    assert hub.choose(sticky) is second

    hub.register(make_session(1, IP_A))
    assert picks(hub, 3, sticky) == [2, 2, 2]


def test_it_moves_a_session_when_its_agent_pauses_and_does_not_move_back() -> None:
    first, second = make_session(1, IP_A), make_session(2, IP_B)
    hub = hub_with(first, second)
    sticky = Route(user="alice", session="s1")
    assert hub.choose(sticky) is first

    first.set_paused(True)
    assert hub.choose(sticky) is second

    first.set_paused(False)
    assert picks(hub, 3, sticky) == [2, 2, 2]


def test_it_moves_a_session_off_an_excluded_agent() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_B))
    sticky = Route(user="alice", session="s1")
    assert hub.choose(sticky).agent_id == 1

    assert hub.choose(sticky, exclude=[1]).agent_id == 2
    assert hub.choose(sticky).agent_id == 2


def test_it_forgets_the_least_recently_used_session_beyond_sticky_max() -> None:
    hub = hub_with(make_session(1, IP_A), make_session(2, IP_B), sticky_max=2)

    def pick(session: str) -> int:
        return hub.choose(Route(user="alice", session=session)).agent_id

    assert pick("s1") == 1  # rotation turn 0
    assert pick("s2") == 2  # turn 1
    assert pick("s1") == 1  # remembered; s1 is now the most recently used
    assert pick("s3") == 1  # turn 2; s2, the least recently used, is forgotten
    assert pick("s1") == 1  # still remembered (rotation alone would give 2)
    hub.choose(PLAIN)  # turn 3 → agent 2, so the next rotation gives agent 1
    assert pick("s2") == 1  # forgotten: routed afresh instead of back to agent 2


# ------------------------------------------------------------------ pinned agents


def test_it_pins_a_route_to_the_named_agent() -> None:
    hub = hub_with(
        make_session(1, IP_A, name="office-pc-7"),
        make_session(2, IP_B, name="office-pc-8"),
    )

    route = Route(user="alice", agent="office-pc-8")

    assert picks(hub, 3, route) == [2, 2, 2]


def test_it_refuses_a_pin_to_an_unknown_agent() -> None:
    hub = hub_with(make_session(1))

    with pytest.raises(NoAgent, match="agent 'nowhere' is not online"):
        hub.choose(Route(user="alice", agent="nowhere"))


def test_it_refuses_a_pin_to_a_paused_agent_instead_of_picking_another() -> None:
    pinned = make_session(1, IP_A, name="office-pc-7")
    pinned.set_paused(True)
    hub = hub_with(pinned, make_session(2, IP_B))

    with pytest.raises(NoAgent, match="agent 'office-pc-7' is paused"):
        hub.choose(Route(user="alice", agent="office-pc-7"))


async def test_it_refuses_a_pin_to_an_agent_at_its_stream_limit() -> None:
    pinned = make_session(1, name="office-pc-7", max_streams=1)
    fill(pinned)

    with pytest.raises(NoAgent, match="agent 'office-pc-7' is at its stream limit"):
        hub_with(pinned).choose(Route(user="alice", agent="office-pc-7"))


def test_it_refuses_a_pin_to_an_excluded_agent() -> None:
    hub = hub_with(make_session(1, name="office-pc-7"))

    with pytest.raises(NoAgent):
        hub.choose(Route(user="alice", agent="office-pc-7"), exclude=[1])


# ------------------------------------------------------------------ registration


def test_it_returns_the_older_session_when_an_agent_registers_again() -> None:
    hub = Hub()
    older, newer = make_session(1), make_session(1)

    assert hub.register(older) is None
    assert hub.register(newer) is older
    assert hub.sessions == {1: newer}


def test_it_keeps_the_new_session_when_the_replaced_one_unregisters() -> None:
    hub = Hub()
    older, newer = make_session(1), make_session(1)
    hub.register(older)
    hub.register(newer)

    hub.unregister(older)

    assert hub.sessions == {1: newer}
    assert hub.choose(PLAIN) is newer


def test_it_removes_a_session_that_unregisters() -> None:
    session = make_session(1)
    hub = hub_with(session)

    hub.unregister(session)

    assert hub.sessions == {}
    assert hub.by_name(session.name) is None


async def test_it_closes_every_agent_on_shutdown() -> None:
    closes: list[tuple[int, int, str]] = []
    sessions = [make_session(1), make_session(2)]
    for session in sessions:

        async def close(code: int, reason: str, agent_id: int = session.agent_id) -> None:
            closes.append((agent_id, code, reason))

        session.close = close
    hub = hub_with(*sessions)

    await hub.close_all(1001, "server shutting down")

    assert closes == [(1, 1001, "server shutting down"), (2, 1001, "server shutting down")]
