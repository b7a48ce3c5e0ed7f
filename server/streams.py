"""Opening a stream on an agent for a user's request: the proxy's and the API's one way in.

Both the gateway (a proxy user's connection) and ``POST /api/v1/fetch`` need
the same thing: pick an agent for a route, ask it to connect to a
destination, and, if that agent refuses, try one other agent once (a pinned
``-agent-`` route never moves). A failure is an :class:`OpenFailed` carrying
the HTTP status and the stable error code both interfaces answer with, so a
refused destination reads the same through the proxy and through the API.
"""

from __future__ import annotations

import wire
from server.http_forward import Destination
from server.hub import AgentSession, Hub, NoAgent
from server.routing import Route
from wire import Reason

OPEN_FAILURES: dict[Reason, tuple[int, str]] = {
    Reason.FORBIDDEN: (403, "forbidden"),
    Reason.TIMEOUT: (504, "target-timeout"),
    Reason.REFUSED: (502, "target-refused"),
    Reason.DNS: (502, "dns-failed"),
    Reason.UNREACHABLE: (502, "target-unreachable"),
    Reason.TOO_MANY_STREAMS: (503, "agent-busy"),
    Reason.PAUSED: (503, "agent-paused"),
    Reason.CONNECTION_LOST: (502, "agent-lost"),
}
"""How an agent's refusal is answered: HTTP status and error code."""


class OpenFailed(Exception):
    """No stream could be opened; answer with ``status`` and the error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


async def open_stream(
    hub: Hub, route: Route, destination: Destination, timeout: float
) -> tuple[AgentSession, int]:
    """Open a stream to ``destination`` on an agent chosen for ``route``.

    Returns the agent's session and the accepted stream's id. If the first
    agent refuses, a second one is tried once (unless the route pins an
    agent); the failure reported is the last agent's. An agent that does not
    answer within ``timeout`` seconds fails at once with ``agent-timeout``.
    Raises :class:`OpenFailed`.
    """
    tried: list[int] = []
    failure: tuple[AgentSession, wire.StreamRejected] | None = None
    for _attempt in range(2):
        try:
            session = hub.choose(route, exclude=tried)
        except NoAgent as exc:
            if failure is None:
                raise OpenFailed(503, exc.code, str(exc)) from None
            break
        tried.append(session.agent_id)
        try:
            sid, answer = await session.mux.open(destination.host, destination.port, timeout)
        except TimeoutError:
            raise OpenFailed(
                504,
                "agent-timeout",
                f"agent {session.name} did not answer within {timeout:g}s",
            ) from None
        if isinstance(answer, wire.StreamAccepted):
            return session, sid
        failure = (session, answer)
        if route.agent is not None:
            break
    assert failure is not None
    session, rejected = failure
    status, code = OPEN_FAILURES.get(rejected.reason, (502, "agent-error"))
    raise OpenFailed(
        status, code, f"agent {session.name} could not reach {destination}: {rejected.message}"
    )
