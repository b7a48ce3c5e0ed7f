"""``Authorization: Bearer <token>``: which proxy user is calling the API.

Tokens are stored hashed (``ProxyUser.new_api_token``). In a running server
the gateway's :class:`~server.proxy_auth.ProxyAuthenticator` checks them, so
a token is looked up in the database once per ``auth_cache_seconds`` and a
disabled user is refused once that cache entry expires, as on the proxy port.
Outside a running server (Django's test client) the database is asked directly.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from server import live
from server.api.errors import ApiError
from server.fleet.models import ProxyUser
from server.proxy_auth import ProxyIdentity


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(request: HttpRequest) -> ProxyIdentity:
    """The caller's identity; raises :class:`ApiError` 401 without a valid token."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "auth-required", "send Authorization: Bearer <your API token>")
    running = live.current()
    if running is not None:
        identity = await running.gateway.auth.check_token(token)
    else:
        user = await sync_to_async(ProxyUser.by_api_token)(token)
        identity = ProxyIdentity.of(user) if user is not None else None
    if identity is None:
        raise ApiError(401, "auth-failed", "unknown API token, or its user is disabled")
    return identity
