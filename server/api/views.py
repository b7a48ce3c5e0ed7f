"""The ``/api/v1/`` endpoints (documented in docs/api.md and :mod:`server.api.openapi`).

The views are async: they run on the server's event loop, beside the hub and
the gateway, so a fetch drives its agent stream directly. Every answer is
JSON, errors included (``{"error": code, "message": text}``); nothing raises
past a view.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from server import live
from server.accounting import month_of
from server.api.auth import authenticate
from server.api.errors import ApiError
from server.api.fetch import FetchRequest, fetch
from server.api.openapi import OPENAPI
from server.fleet.models import Agent, UserMonthUsage
from server.proxy_auth import ProxyIdentity

log = logging.getLogger(__name__)

ENVELOPE_SLACK = 64 * 1024
"""Bytes of JSON a fetch request may carry beyond its body (url, headers, options)."""

AsyncView = Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]]
UserView = Callable[[HttpRequest, ProxyIdentity], Coroutine[Any, Any, HttpResponse]]


def api_view(method: str) -> Callable[[UserView], AsyncView]:
    """One method, a valid Bearer token, and every failure answered as JSON."""

    def decorate(view: UserView) -> AsyncView:
        @functools.wraps(view)
        async def handle(request: HttpRequest) -> HttpResponse:
            try:
                if request.method != method:
                    return _wrong_method(method)
                return await view(request, await authenticate(request))
            except ApiError as exc:
                return exc.response()
            except Exception:
                log.exception("API %s %s failed", request.method, request.path)
                return ApiError(500, "internal", "internal error").response()

        return csrf_exempt(handle)

    return decorate


# ------------------------------------------------------------------ endpoints


@api_view("POST")
async def fetch_view(request: HttpRequest, identity: ProxyIdentity) -> HttpResponse:
    """Perform the caller's HTTP request through an agent and return the whole response."""
    config = live.config()
    data = _json_body(request, config.api_max_request_body * 2 + ENVELOPE_SLACK)
    fetch_request = FetchRequest.parse(data, identity.name, config)
    running = live.current()
    if running is None:
        raise ApiError(
            503, "server-not-running", "fetches need the running server (exitpool-server run)"
        )
    result = await fetch(running, identity, fetch_request)
    return JsonResponse(result.to_json())


@api_view("GET")
async def agents_view(request: HttpRequest, identity: ProxyIdentity) -> HttpResponse:
    """Every agent that may carry traffic: what a user needs to pin one with ``agent``."""
    rows = await sync_to_async(_registered_agents)()
    running = live.current()
    sessions = running.hub.sessions if running is not None else {}
    agents = []
    for agent_id, name, last_exit_ip, paused_by_admin in rows:
        session = sessions.get(agent_id)
        agents.append(
            {
                "name": name,
                "exit_ip": session.exit_ip if session is not None else last_exit_ip,
                "online": session is not None,
                "paused": session.is_paused if session is not None else paused_by_admin,
            }
        )
    return JsonResponse({"agents": agents})


@api_view("GET")
async def usage_view(request: HttpRequest, identity: ProxyIdentity) -> HttpResponse:
    """The caller's own traffic this month (UTC), limits and what is left of the quota."""
    month = month_of(dt.datetime.now(dt.UTC).date())
    up, down, requests = await sync_to_async(_month_usage)(identity.user_id, month)
    running = live.current()
    open_streams = 0
    used = up + down
    if running is not None:
        pending = running.accounting.pending.users.get((identity.user_id, month))
        if pending is not None:
            up, down, requests = (
                up + pending.bytes_up,
                down + pending.bytes_down,
                requests + pending.count,
            )
        used = await running.accounting.month_used(identity.user_id)
        open_streams = running.accounting.open_by_user[identity.user_id]
    quota = identity.monthly_quota
    max_streams = identity.max_streams
    return JsonResponse(
        {
            "user": identity.name,
            "month": month.strftime("%Y-%m"),
            "bytes_up": up,
            "bytes_down": down,
            "bytes_total": up + down,
            "requests": requests,
            "monthly_quota_bytes": quota,
            "remaining_bytes": None if quota is None else max(0, quota - used),
            "open_streams": open_streams,
            "max_streams": live.config().user_max_streams if max_streams is None else max_streams,
        }
    )


async def openapi_view(request: HttpRequest) -> HttpResponse:
    """The OpenAPI description: public, like this documentation."""
    return JsonResponse(OPENAPI) if request.method == "GET" else _wrong_method("GET")


async def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown paths under /api/v1/ answer in JSON too."""
    return ApiError(404, "not-found", f"no API endpoint at {request.path}").response()


# ------------------------------------------------------------------ helpers


def _wrong_method(allowed: str) -> HttpResponse:
    response = ApiError(405, "method-not-allowed", f"use {allowed} here").response()
    response["Allow"] = allowed
    return response


def _json_body(request: HttpRequest, limit: int) -> Any:
    """The request's JSON, read only if it fits in ``limit`` bytes (413 otherwise)."""
    content_type = request.content_type or ""
    if content_type.lower() != "application/json":
        raise ApiError(
            415,
            "unsupported-media-type",
            "send the request as JSON (Content-Type: application/json)",
        )
    too_big = ApiError(
        413, "body-too-large", f"the API request is over {limit} bytes (see api_max_request_body)"
    )
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big  # refused without reading it
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_big
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad-request", f"the request body is not valid JSON: {exc}") from None


def _registered_agents() -> list[tuple[int, str, str | None, bool]]:
    return list(
        Agent.objects.filter(revoked_at__isnull=True).values_list(
            "pk", "name", "last_exit_ip", "paused_by_admin"
        )
    )


def _month_usage(user_id: int, month: dt.date) -> tuple[int, int, int]:
    usage = UserMonthUsage.objects.filter(user_id=user_id, month=month).first()
    return (usage.bytes_up, usage.bytes_down, usage.requests) if usage else (0, 0, 0)
