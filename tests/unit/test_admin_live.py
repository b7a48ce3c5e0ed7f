"""The admin against live state: a real hub, gateway and accounting on this test's loop.

Agent sessions are real :class:`AgentSession` objects over a real
:class:`tunnel.Mux` whose WebSocket is an in-memory outbox; the admin runs in
Django's test client in a worker thread, as Django's sync views do in the
server, and reaches the loop through :meth:`server.live.Live.call`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

import wire
from server.config import ServerConfig
from tests.support.pages import row, text
from tests.support.server_state import Outbox, agent_session, installed_live

if TYPE_CHECKING:
    from django.test import Client

    from server.fleet.models import Agent, ProxyUser
    from server.hub import AgentSession
    from server.live import Live

_names = itertools.count(1)


@pytest.fixture(scope="module")
def client(django_db: None) -> Client:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    name = f"live-root{next(_names)}"
    client.force_login(User.objects.create_superuser(name, "root@example.com", "pw"))
    return client


@pytest.fixture
async def running(django_db: None) -> AsyncIterator[Live]:
    """The live state of a server process, installed as ``exitpool-server run`` does."""
    async with installed_live(ServerConfig()) as state:
        yield state


def make_agent(**fields: Any) -> Agent:
    from server.fleet.models import Agent

    name = f"live-pc{next(_names)}"
    return Agent.objects.create(name=name, credential_hash=f"hash-{name}", **fields)


def go_online(
    running: Live, agent: Agent, exit_ip: str = "198.51.100.1", owner_paused: bool = False
) -> tuple[AgentSession, Outbox]:
    """Register a session for ``agent`` as the agent endpoint does."""
    outbox = Outbox()
    session = agent_session(agent.pk, agent.name, exit_ip, outbox)
    session.set_paused(owner_paused)
    session.set_admin_paused(agent.paused_by_admin)
    running.hub.register(session)
    return session, outbox


async def admin(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A request through Django's test client, in a worker thread like a sync view."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def eventually(predicate: Callable[[], object], what: str) -> None:
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


# ------------------------------------------------------------------------- showing


async def test_the_list_shows_who_is_online_who_paused_them_and_the_live_exit_ip(
    client: Client, running: Live
):
    carrying, by_owner, offline = [
        await admin(make_agent, last_exit_ip="192.0.2.99") for _ in range(3)
    ]
    by_admin = await admin(make_agent, paused_by_admin=True)
    go_online(running, carrying, "198.51.100.1")
    go_online(running, by_owner, "198.51.100.2", owner_paused=True)
    go_online(running, by_admin, "198.51.100.3")

    page = await admin(client.get, "/admin/fleet/agent/")
    assert "online for" in row(page, carrying.name)
    assert "198.51.100.1" in row(page, carrying.name)  # the live exit IP, not the stored one
    assert "0 of 8" in row(page, carrying.name)  # open streams of the session's limit
    assert "paused by owner for" in row(page, by_owner.name)
    assert "paused by admin for" in row(page, by_admin.name)
    assert "offline" in row(page, offline.name)
    assert "192.0.2.99" in row(page, offline.name)


async def test_the_online_and_paused_filters_follow_the_hub(client: Client, running: Live):
    carrying, by_owner, offline = [await admin(make_agent) for _ in range(3)]
    by_admin = await admin(make_agent, paused_by_admin=True)
    go_online(running, carrying)
    go_online(running, by_owner, owner_paused=True)
    go_online(running, by_admin)

    async def listed(query: str) -> set[str]:
        page = text(await admin(client.get, f"/admin/fleet/agent/?{query}"))
        return {a.name for a in (carrying, by_owner, by_admin, offline) if f" {a.name} " in page}

    assert await listed("connection=online") == {carrying.name, by_owner.name, by_admin.name}
    assert await listed("connection=offline") == {offline.name}
    assert await listed("paused=owner") == {by_owner.name}
    assert await listed("paused=yes") == {by_owner.name, by_admin.name}
    assert await listed("paused=no") == {carrying.name, offline.name}


async def test_the_index_counts_agents_online(client: Client, running: Live):
    go_online(running, await admin(make_agent))
    go_online(running, await admin(make_agent), owner_paused=True)
    assert "2 of " in text(await admin(client.get, "/admin/"))
    assert "1 paused" in text(await admin(client.get, "/admin/"))


# ------------------------------------------------------------------------- actions


async def test_pause_reaches_the_online_agent_at_once_and_resume_undoes_it(
    client: Client, running: Live
):
    from server.hub import NoAgent
    from server.routing import Route

    online, offline = await admin(make_agent), await admin(make_agent)
    session, outbox = go_online(running, online)
    pinned = Route(user="alice", agent=online.name)

    response = await admin(
        client.post,
        "/admin/fleet/agent/",
        {"action": "pause", "_selected_action": [online.pk, offline.pk]},
        follow=True,
    )
    assert "Paused 2 agents (1 online" in text(response)
    assert session.admin_paused  # already, when the admin's page answered
    with pytest.raises(NoAgent, match="paused"):
        running.hub.choose(pinned)
    await eventually(lambda: any('"pause"' in str(m) for m in outbox.messages), "PAUSE sent")

    await admin(
        client.post, "/admin/fleet/agent/", {"action": "resume", "_selected_action": [online.pk]}
    )
    assert running.hub.choose(pinned) is session
    await eventually(lambda: any('"resume"' in str(m) for m in outbox.messages), "RESUME sent")


async def test_the_pause_button_on_an_agents_page_reaches_it(client: Client, running: Live):
    agent = await admin(make_agent)
    session, _ = go_online(running, agent)
    response = await admin(client.post, f"/admin/fleet/agent/{agent.pk}/control/pause/")
    assert response.status_code == 302
    assert session.admin_paused


async def test_disconnect_closes_the_websocket_and_the_agent_may_come_back(
    client: Client, running: Live
):
    from server.fleet.models import Agent

    agent = await admin(make_agent)
    _, outbox = go_online(running, agent)
    response = await admin(
        client.post,
        "/admin/fleet/agent/",
        {"action": "disconnect", "_selected_action": [agent.pk]},
        follow=True,
    )
    assert "Disconnected 1 of 1 agent" in text(response)
    await eventually(lambda: outbox.closes, "the close")
    assert outbox.closes == [(wire.CloseCode.GOING_AWAY, "by an admin")]
    assert await admin(lambda: Agent.objects.get(pk=agent.pk).revoked_at) is None


async def test_revoke_cuts_the_online_agent_off_as_unauthorized(client: Client, running: Live):
    from server.fleet.models import Agent

    agent = await admin(make_agent)
    _, outbox = go_online(running, agent)
    await admin(
        client.post, "/admin/fleet/agent/", {"action": "revoke", "_selected_action": [agent.pk]}
    )
    await eventually(lambda: outbox.closes, "the close")
    assert outbox.closes[0][0] == wire.CloseCode.UNAUTHORIZED
    assert await admin(lambda: Agent.objects.get(pk=agent.pk).revoked_at) is not None


async def test_deleting_an_online_agent_cuts_it_off_first(client: Client, running: Live):
    agent = await admin(make_agent)
    _, outbox = go_online(running, agent)
    response = await admin(client.post, f"/admin/fleet/agent/{agent.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    await eventually(lambda: outbox.closes, "the close")
    assert outbox.closes[0][0] == wire.CloseCode.UNAUTHORIZED


# --------------------------------------------------------------------- proxy users


def make_user(password: str) -> ProxyUser:
    from server.fleet.models import ProxyUser

    user = ProxyUser(name=f"live-user{next(_names)}")
    user.set_password(password)
    user.save()
    return user


async def test_a_limit_saved_in_the_admin_applies_to_the_next_request(
    client: Client, running: Live
):
    user = await admin(make_user, "pw")
    auth = running.gateway.auth
    cached = await auth.check(user.name, "pw")
    assert cached is not None and cached.max_streams is None
    response = await admin(
        client.post,
        f"/admin/fleet/proxyuser/{user.pk}/change/",
        {"name": user.name, "is_active": "on", "max_streams": "1", "monthly_quota_bytes": "5000"},
    )
    assert response.status_code == 302
    now = await auth.check(user.name, "pw")
    assert now is not None
    assert (now.max_streams, now.monthly_quota) == (1, 5000)


async def test_a_reset_password_or_disabled_user_is_refused_at_once(client: Client, running: Live):
    reset, disabled = await admin(make_user, "old-pw"), await admin(make_user, "pw")
    auth = running.gateway.auth
    assert await auth.check(reset.name, "old-pw") is not None
    assert await auth.check(disabled.name, "pw") is not None

    await admin(
        client.post,
        "/admin/fleet/proxyuser/",
        {"action": "reset_password", "_selected_action": [reset.pk]},
    )
    await admin(
        client.post,
        "/admin/fleet/proxyuser/",
        {"action": "disable", "_selected_action": [disabled.pk]},
    )
    assert await auth.check(reset.name, "old-pw") is None
    assert await auth.check(disabled.name, "pw") is None


async def test_the_user_list_shows_open_streams(client: Client, running: Live):
    user = await admin(make_user, "pw")
    running.accounting.open_by_user[user.pk] = 3
    assert "3 of 256 (default)" in row(
        await admin(client.get, "/admin/fleet/proxyuser/"), user.name
    )
