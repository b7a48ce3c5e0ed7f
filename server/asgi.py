"""The ASGI application daphne serves: the agent endpoint beside Django."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.asgi import get_asgi_application

from server.agent_endpoint import AgentEndpoint, Receive, Scope, Send
from server.forwarded import Network, behind_proxies

AGENT_PATH = "/ws/agent"


def build_application(endpoint: AgentEndpoint, trusted_proxies: Sequence[Network]) -> Any:
    """Route ``/ws/agent`` to the plain ASGI endpoint and everything HTTP to Django.

    Both sit behind the ``X-Forwarded-*`` rewrite, so an agent's exit IP and an
    admin's ``REMOTE_ADDR`` are the real client's when ``trusted_proxies`` front the server.
    """
    django_app = get_asgi_application()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            if scope["path"].rstrip("/") == AGENT_PATH:
                await endpoint(scope, receive, send)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        await django_app(scope, receive, send)  # type: ignore[arg-type]

    return behind_proxies(application, trusted_proxies)
