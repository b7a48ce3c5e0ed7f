"""Test connection: does this server accept this key or credential, without enrolling?

The Settings dialog asks before it saves. The check opens the agent
WebSocket exactly as the engine would, with ``X-Exitpool-Check: 1`` added:
the server then authenticates the key or credential, accepts, and closes at
once with 1000 "check ok" — no HELLO, no new agent, nothing written. A
refusal, a TLS failure or an address that is no Exitpool server each get
their own sentence (the same ones the tray shows when the engine meets them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from desktop_agent.engine.client import websocket_url
from desktop_agent.engine.problems import (
    REFUSED_STATUSES,
    Problem,
    classify,
    not_exitpool,
    refusal,
)

CHECK_HEADER = "X-Exitpool-Check"
"""Handshake header asking the server to authenticate, then close with :data:`CHECK_OK`."""
CHECK_OK = "check ok"
"""The close reason (with code 1000) of a check the server passed."""


@dataclass(frozen=True)
class ConnectionCheck:
    """The answer to "Test connection": ``ok``, else the problem and a sentence for the owner."""

    ok: bool
    problem: Problem | None
    message: str


async def check_connection(
    server_url: str,
    enrollment_key: str | None,
    credential: str | None = None,
    timeout: float = 10.0,
) -> ConnectionCheck:
    """Ask ``server_url`` whether it would let this agent in; never enrolls.

    The credential is checked when given (that is what the engine would send),
    otherwise the enrollment key. ``timeout`` bounds the whole check.
    """
    try:
        url = websocket_url(server_url)
    except ValueError as exc:
        return ConnectionCheck(False, Problem.UNREACHABLE, str(exc))
    headers = {CHECK_HEADER: "1"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    elif enrollment_key:
        headers["X-Exitpool-Enrollment-Key"] = enrollment_key.strip()
    else:
        return ConnectionCheck(
            False, Problem.NO_KEY, "enter the enrollment key from the server's admin"
        )
    opened = False
    try:
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, headers=headers, autoping=False)
            opened = True
            message = await ws.receive()
            await ws.close()
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in REFUSED_STATUSES:
            return ConnectionCheck(False, *refusal(bool(credential), exc.status))
        return ConnectionCheck(False, *classify(exc, url))
    except TimeoutError:
        if opened:  # an older server waits for a HELLO we will not send
            problem, sentence = not_exitpool(url, "it did not answer the check in time")
            return ConnectionCheck(False, problem, sentence)
        return ConnectionCheck(False, *classify(TimeoutError(), url))
    except (aiohttp.ClientError, OSError) as exc:
        return ConnectionCheck(False, *classify(exc, url))
    if message.type is aiohttp.WSMsgType.CLOSE and message.data == 1000:
        what = "this PC's credential" if credential else "the enrollment key"
        return ConnectionCheck(True, None, f"connected: the server accepts {what}")
    return ConnectionCheck(False, *not_exitpool(url, "it did not answer the check"))
