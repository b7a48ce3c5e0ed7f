"""The API views in Django's async test client: tokens, JSON errors, agents and usage.

Real ``ProxyUser``, ``Agent`` and usage rows in the run's test database. The
views run on this test's event loop, as they do on the server's; with
``running`` installed they read a real hub and accounting, otherwise the
database alone. Fetching through agents is covered by tests/integration/test_api.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async

from server.config import ServerConfig
from tests.support.server_state import agent_session, installed_live

if TYPE_CHECKING:
    from django.test import AsyncClient

    from server.fleet.models import Agent, ProxyUser
    from server.live import Live

_names = itertools.count(1)


@pytest.fixture
def client(django_db: None) -> AsyncClient:
    from django.test import AsyncClient

    return AsyncClient()


@pytest.fixture
async def running(django_db: None) -> AsyncIterator[Live]:
    """The live state of a server process, installed as ``exitpool-server run`` does."""
    async with installed_live(ServerConfig(user_max_streams=7)) as state:
        yield state


@sync_to_async
def make_user(**fields: Any) -> tuple[ProxyUser, str]:
    from server.fleet.models import ProxyUser

    user = ProxyUser(name=f"api-user{next(_names)}", **fields)
    user.set_password("pw")
    token = user.new_api_token()
    user.save()
    return user, token


@sync_to_async
def make_agent(**fields: Any) -> Agent:
    from server.fleet.models import Agent

    name = f"api-pc{next(_names)}"
    return Agent.objects.create(name=name, credential_hash=f"hash-{name}", **fields)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["message"]
    return str(body["error"])


# ------------------------------------------------------------------ tokens


async def test_every_endpoint_but_the_description_needs_a_token(client: AsyncClient):
    _, token = await make_user()
    for header, code in (
        ({}, "auth-required"),
        ({"Authorization": f"Basic {token}"}, "auth-required"),
        (bearer("ept_not-a-token"), "auth-failed"),
    ):
        for path in ("agents", "usage"):
            response = await client.get(f"/api/v1/{path}", headers=header)
            assert error_of(response, 401) == code
            assert response["WWW-Authenticate"].startswith("Bearer")
        response = await client.post(
            "/api/v1/fetch", {"url": "http://x/"}, content_type="application/json", headers=header
        )
        assert error_of(response, 401) == code
    assert (await client.get("/api/v1/openapi.json")).status_code == 200


async def test_a_disabled_user_s_token_no_longer_works(client: AsyncClient):
    _, token = await make_user(is_active=False)
    assert error_of(await client.get("/api/v1/usage", headers=bearer(token)), 401) == "auth-failed"


async def test_a_replaced_token_no_longer_works(client: AsyncClient):
    user, old = await make_user()
    user.new_api_token()
    await sync_to_async(user.save)()
    assert error_of(await client.get("/api/v1/usage", headers=bearer(old)), 401) == "auth-failed"


# ------------------------------------------------------------------ fetch without a server


async def test_fetch_checks_the_request_then_needs_the_running_server(client: AsyncClient):
    from django.test import override_settings

    _, token = await make_user()
    post = {"content_type": "application/json", "headers": bearer(token)}
    response = await client.post("/api/v1/fetch", {"url": "gopher://x/"}, **post)
    assert error_of(response, 400) == "bad-request"
    # Django's own upload cap is not what limits a fetch: api_max_request_body is.
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        response = await client.post(
            "/api/v1/fetch", {"url": "http://example.test/", "body": "x" * 1000}, **post
        )
    assert error_of(response, 503) == "server-not-running"


async def test_fetch_takes_json_posts_only(client: AsyncClient):
    _, token = await make_user()
    response = await client.post("/api/v1/fetch", {"url": "http://x/"}, headers=bearer(token))
    assert error_of(response, 415) == "unsupported-media-type"
    response = await client.get("/api/v1/fetch", headers=bearer(token))
    assert error_of(response, 405) == "method-not-allowed"
    assert response["Allow"] == "POST"
    response = await client.post("/api/v1/usage", headers=bearer(token))
    assert error_of(response, 405) == "method-not-allowed"
    assert error_of(await client.get("/api/v1/elsewhere"), 404) == "not-found"


async def test_an_api_request_over_its_size_is_413_before_it_is_parsed(client: AsyncClient):
    config = ServerConfig.from_env()
    _, token = await make_user()
    oversized = b"{" + b" " * (config.api_max_request_body * 2 + 64 * 1024) + b"}"
    response = await client.post(
        "/api/v1/fetch", oversized, content_type="application/json", headers=bearer(token)
    )
    assert error_of(response, 413) == "body-too-large"


# ------------------------------------------------------------------ agents


async def test_agents_offline_show_their_last_exit_ip_and_revoked_ones_are_not_listed(
    client: AsyncClient,
):
    _, token = await make_user()
    seen = await make_agent(last_exit_ip="203.0.113.9", paused_by_admin=True)
    revoked = await make_agent(revoked_at=dt.datetime.now(dt.UTC))
    response = await client.get("/api/v1/agents", headers=bearer(token))
    assert response.status_code == 200
    agents = {a["name"]: a for a in json.loads(response.content)["agents"]}
    assert agents[seen.name] == {
        "name": seen.name,
        "exit_ip": "203.0.113.9",
        "online": False,
        "paused": True,
    }
    assert revoked.name not in agents


async def test_agents_online_show_their_live_exit_ip_and_pause(client: AsyncClient, running: Live):
    _, token = await make_user()
    sharing, owner_paused = await make_agent(last_exit_ip="203.0.113.1"), await make_agent()
    for agent, paused in ((sharing, False), (owner_paused, True)):
        session = agent_session(agent.pk, agent.name, "198.51.100.7")
        session.set_paused(paused)
        running.hub.register(session)
    response = await client.get("/api/v1/agents", headers=bearer(token))
    agents = {a["name"]: a for a in json.loads(response.content)["agents"]}
    assert agents[sharing.name] == {
        "name": sharing.name,
        "exit_ip": "198.51.100.7",
        "online": True,
        "paused": False,
    }
    assert agents[owner_paused.name]["online"] is True
    assert agents[owner_paused.name]["paused"] is True


# ------------------------------------------------------------------ usage


@sync_to_async
def record_month(user: ProxyUser, up: int, down: int, requests: int) -> None:
    from server.accounting import month_of
    from server.fleet.models import UserMonthUsage

    month = month_of(dt.datetime.now(dt.UTC).date())
    UserMonthUsage.objects.create(
        user=user, month=month, bytes_up=up, bytes_down=down, requests=requests
    )
    last_month = month_of(month - dt.timedelta(days=1))
    UserMonthUsage.objects.create(user=user, month=last_month, bytes_up=10**9, bytes_down=10**9)


async def test_usage_is_this_month_s_from_the_database_without_a_server(client: AsyncClient):
    user, token = await make_user(monthly_quota_bytes=10_000, max_streams=3)
    await record_month(user, 1000, 2500, 4)
    response = await client.get("/api/v1/usage", headers=bearer(token))
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "user": user.name,
        "month": dt.datetime.now(dt.UTC).strftime("%Y-%m"),
        "bytes_up": 1000,
        "bytes_down": 2500,
        "bytes_total": 3500,
        "requests": 4,
        "monthly_quota_bytes": 10_000,
        "remaining_bytes": 6500,
        "open_streams": 0,
        "max_streams": 3,
    }


async def test_usage_adds_what_the_running_server_has_not_flushed_yet(
    client: AsyncClient, running: Live
):
    from server.accounting import Flow
    from server.proxy_auth import ProxyIdentity

    user, token = await make_user(monthly_quota_bytes=5000)
    await record_month(user, 1000, 2000, 1)
    identity = ProxyIdentity(user.pk, user.name, None, 5000)
    finished, still_open = Flow("api", user.name, "a.test", 80), Flow("http", user.name, "b", 80)
    for flow in (finished, still_open):
        await running.accounting.admit(flow, identity)
    finished.add_bytes(100, 400)
    running.accounting.end(finished, 200, "ok")
    usage = json.loads((await client.get("/api/v1/usage", headers=bearer(token))).content)
    assert (usage["bytes_up"], usage["bytes_down"], usage["bytes_total"]) == (1100, 2400, 3500)
    assert usage["requests"] == 2
    assert usage["remaining_bytes"] == 1500
    assert usage["open_streams"] == 1
    assert usage["max_streams"] == 7  # the server's default for users without their own
    running.accounting.end(still_open, None, "ok")
