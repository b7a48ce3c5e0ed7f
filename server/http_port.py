"""The ``--http`` port: agents' WebSockets to our own asyncio code, everything else to daphne.

Agents and people share one port (``ws(s)://HOST:8000/ws/agent`` beside the
admin and the API), but the agents' socket is the hot path and daphne's
Twisted/autobahn/ASGI stack cost ~20-25% of the server's CPU and half the
event-loop turns of a new tunnel (benchmarks/README.md). So this listener
accepts every connection itself and looks at the request line without
reading it (``MSG_PEEK``): ``GET /ws/agent`` goes to :class:`AgentSocket` on
this loop; anything else is handed, unread, to daphne's HTTP factory with
``reactor.adoptStreamConnection``, so Django sees the request and the real
peer address exactly as if daphne had accepted it.

The look is bounded: at most :data:`PEEK_BYTES`, and a connection that has
not sent a whole request line after :data:`PEEK_TIMEOUT` goes to daphne as it
is (which then applies its own timeouts, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

AGENT_PATH = b"/ws/agent"

PEEK_BYTES = 2048
"""Bytes looked at to find the request line; a longer line is not an agent's."""

PEEK_TIMEOUT = 10.0
"""Seconds a new connection may take to send its request line before daphne gets it."""

PEEK_RETRY = 0.005
"""Seconds between looks at a connection whose request line is still incomplete."""

ACCEPT_BATCH = 64
"""Connections accepted per wake-up of the listening socket (as asyncio's own servers do)."""

BACKLOG = 1024
"""Listen backlog of the ``--http`` port."""

TRANSIENT_ACCEPT_ERRORS = frozenset({errno.ECONNABORTED, errno.EPROTO})
"""The connection died in the queue: take the next one."""
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""No descriptor or memory for a new socket: the listener stays readable, so accepting pauses."""
ACCEPT_RETRY_DELAY = 1.0
"""Seconds the listener rests after running out of descriptors (asyncio's own servers wait 1 s),
instead of failing again on every loop turn and flooding the log."""


def is_agent_request(head: bytes) -> bool | None:
    """Whether ``head`` (a connection's first bytes) starts an agent's WebSocket request.

    ``None``: the request line is not complete yet. The path may carry a query
    and trailing slashes, as daphne's routing accepted (``/ws/agent/?x``).
    """
    end = head.find(b"\n")
    if end < 0:
        if len(head) >= PEEK_BYTES or not (b"GET /ws/agent".startswith(head[:13])):
            return False
        return None
    parts = head[:end].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return False
    path = parts[1].partition(b"?")[0]
    return path.rstrip(b"/") == AGENT_PATH


class HttpPort:
    """The listening socket of the ``--http`` port and the connections being sorted.

    ``agent`` serves an accepted agent socket on this loop; ``adopt`` hands any
    other socket to daphne (it must not close it: the caller does, after).
    """

    def __init__(
        self,
        host: str,
        port: int,
        agent: Callable[[socket.socket], None],
        adopt: Callable[[socket.socket], None],
    ) -> None:
        self.host = host
        self.port = port
        self._agent = agent
        self._adopt = adopt
        self._listener: socket.socket | None = None
        self._sorting: dict[socket.socket, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Listen (raises ``OSError`` if the address cannot be bound)."""
        loop = self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server(
            (self.host, self.port),
            family=family,
            backlog=BACKLOG,
            # "::" also takes IPv4, as the system's default (and daphne's listener) did.
            dualstack_ipv6=family == socket.AF_INET6 and socket.has_dualstack_ipv6(),
        )
        listener.setblocking(False)
        # Inherited by every accepted socket: small WINDOW frames must not wait for ACKs.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        loop.add_reader(listener.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; connections still being sorted are closed."""
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for sock in list(self._sorting):
            self._forget(sock)
            sock.close()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in TRANSIENT_ACCEPT_ERRORS:
                    continue
                if exc.errno in OUT_OF_RESOURCES:
                    log.warning(
                        "accept on the http port failed (%s); pausing %.0f s",
                        exc,
                        ACCEPT_RETRY_DELAY,
                    )
                    self._rest()
                    return
                raise
            sock.setblocking(False)
            self._sort(sock)

    def _rest(self) -> None:
        """Stop watching the listener for a while, then accept again."""
        assert self._listener is not None and self._loop is not None
        fileno = self._listener.fileno()
        self._loop.remove_reader(fileno)

        def resume() -> None:
            if self._listener is not None and self._loop is not None:
                self._loop.add_reader(fileno, self._accept)

        self._loop.call_later(ACCEPT_RETRY_DELAY, resume)

    def _sort(self, sock: socket.socket) -> None:
        """Look at the first bytes and send the connection where it belongs."""
        try:
            head = sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            self._wait(sock)
            return
        except OSError:
            self._forget(sock)
            sock.close()
            return
        if not head:  # closed before saying anything
            self._forget(sock)
            sock.close()
            return
        verdict = is_agent_request(head)
        if verdict is None:
            self._retry(sock)
            return
        self._forget(sock)
        self._hand_over(sock, agent=verdict)

    def _wait(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._deadline(sock)
        self._loop.add_reader(sock.fileno(), self._readable, sock)

    def _retry(self, sock: socket.socket) -> None:
        """An incomplete request line stays readable: look again a little later, not at once."""
        assert self._loop is not None
        self._deadline(sock)
        self._loop.remove_reader(sock.fileno())
        self._loop.call_later(PEEK_RETRY, self._look_again, sock)

    def _look_again(self, sock: socket.socket) -> None:
        if sock in self._sorting:
            self._sort(sock)

    def _readable(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock.fileno())
        self._sort(sock)

    def _deadline(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if sock not in self._sorting:
            self._sorting[sock] = self._loop.call_later(PEEK_TIMEOUT, self._timed_out, sock)

    def _timed_out(self, sock: socket.socket) -> None:
        self._forget(sock)
        self._hand_over(sock, agent=False)

    def _forget(self, sock: socket.socket) -> None:
        timer = self._sorting.pop(sock, None)
        if timer is not None:
            timer.cancel()
            assert self._loop is not None
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock.fileno())

    def _hand_over(self, sock: socket.socket, agent: bool) -> None:
        try:
            (self._agent if agent else self._adopt)(sock)
        except Exception:
            log.exception("could not hand over a connection on the http port")
            sock.close()
            return
        if not agent:
            sock.close()  # daphne holds its own duplicate of the descriptor
