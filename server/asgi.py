"""The ASGI application daphne serves: Django, behind the ``X-Forwarded-*`` rewrite.

Agents' WebSockets never reach it (server/http_port.py sends them to
server/agent_socket.py before daphne sees the connection); any other
WebSocket is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.asgi import get_asgi_application

from server.forwarded import Network, Receive, Scope, Send, behind_proxies


def build_application(trusted_proxies: Sequence[Network]) -> Any:
    """Django for HTTP; ``REMOTE_ADDR`` is the real client's when ``trusted_proxies`` front
    the server."""
    django_app = get_asgi_application()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        await django_app(scope, receive, send)  # type: ignore[arg-type]

    return behind_proxies(application, trusted_proxies)
