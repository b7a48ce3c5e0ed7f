"""Let the agent endpoint close WebSockets with the codes RFC 6455 gives servers.

daphne passes an ASGI ``websocket.close`` to autobahn's ``sendClose``, which
accepts only 1000 and 3000-4999 — so "going away" (1001, server shutdown) and
"protocol error" (1002, a misbehaving agent) could not be sent and the
connection was dropped instead (the agent saw 1006). ``install()`` wraps
daphne's ``handle_reply`` so a close sends any code a server may send, with
the ASGI ``reason``; every other message goes to daphne unchanged.
"""

from __future__ import annotations

from typing import Any

SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011}) | frozenset(
    range(3000, 5000)
)


def install() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    def handle_close(self: Any, message: dict[str, Any]) -> bool:
        if message.get("type") != "websocket.close" or self.state == self.STATE_CONNECTING:
            return False
        code = int(message.get("code") or 1000)
        if code not in SENDABLE:
            code = 1011
        reason = str(message.get("reason") or "").encode("utf-8")[:123] or None
        self.sendCloseFrame(code=code, reasonUtf8=reason, isReply=False)
        return True

    original = WebSocketProtocol.handle_reply

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        if not handle_close(self, message):
            original(self, message)

    WebSocketProtocol.handle_reply = handle_reply
