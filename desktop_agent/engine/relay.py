"""Opening streams to targets: guard, owner's blocks, connect, then hand the socket to a link.

The name is resolved here, on the agent, every address is checked by the
guard and by the owner's blocked destinations, and the connection goes to an
address that was checked — so a DNS answer cannot change between the check
and the connect (no rebinding). A name the owner blocked is refused before
it is even looked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable

from desktop_agent.engine.bandwidth import Bandwidth
from desktop_agent.engine.guard import Forbidden, Guard, ResolveError
from desktop_agent.engine.target_link import TargetLink
from desktop_agent.engine.traffic import TrafficMeter
from tunnel import Mux, SocketLink
from wire import Reason

log = logging.getLogger(__name__)

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2+

BLOCKED_BY_OWNER = "forbidden: the owner of this PC blocked this destination"
"""What a proxy user is told about a destination on the owner's block list."""

Blocked = Callable[[str, int, list[str] | None], bool]
"""``blocked(host, port, addresses)``: the owner refuses this destination (addresses None
before the name is resolved)."""


class OpenFailed(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _classify(exc: OSError) -> Reason:
    if isinstance(exc, ConnectionRefusedError):
        return Reason.REFUSED
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return Reason.TIMEOUT
    return Reason.UNREACHABLE


async def connect_from(local: tuple[str, int], address: str, port: int) -> socket.socket:
    """A TCP socket connected from the source address ``local``, with Nagle off.

    A plain ``bind((source, 0))`` picks the port alone, scanning every port
    of the source address in use or in TIME_WAIT: with many short streams
    that costs a millisecond of kernel time per connect. With
    ``IP_BIND_ADDRESS_NO_PORT`` (Linux) connect() picks the port per
    destination instead, as it does without a source address. asyncio leaves
    Nagle on for a socket it is handed, so it is turned off here.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sys.platform == "linux":
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind(local)
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class Relay:
    """Serves the server's OPEN requests on one connection.

    Every link is a :class:`TargetLink` counted in ``meter`` and limited by
    ``bandwidth``; ``blocked`` is the owner's block list, asked before DNS
    (by name) and after it (by address).
    """

    def __init__(
        self,
        mux: Mux,
        guard: Guard,
        connect_timeout: float,
        source_address: str | None,
        on_link_closed: Callable[[SocketLink, str | None], None],
        *,
        meter: TrafficMeter,
        bandwidth: Bandwidth,
        blocked: Blocked = lambda host, port, addresses: False,
    ) -> None:
        self.mux = mux
        self.guard = guard
        self.connect_timeout = connect_timeout
        self.source_address = source_address
        self._source_version = ipaddress.ip_address(source_address).version if source_address else 0
        self.on_link_closed = on_link_closed
        self.meter = meter
        self.bandwidth = bandwidth
        self.blocked = blocked
        self.links: set[TargetLink] = set()
        self._opening: dict[int, asyncio.Task[None]] = {}

    def open(self, sid: int, host: str, port: int) -> None:
        task = asyncio.get_running_loop().create_task(self._open(sid, host, port))
        self._opening[sid] = task
        task.add_done_callback(lambda _: self._opening.pop(sid, None))

    def refuse(self, sid: int, reason: Reason, message: str) -> None:
        self.mux.reject(sid, reason, message)

    def settle(self) -> None:
        """Report every running link's bytes to the meter."""
        for link in self.links:
            link.settle()

    def cut(self, reason: Reason, message: str) -> None:
        """End every stream now: running ones are reset, half-open ones refused."""
        for link in list(self.links):
            self.mux.reset(link.sid, reason, message)
            link.on_reset(reason, message)
        for sid, task in list(self._opening.items()):
            task.cancel()
            self._reject(sid, reason, message)  # a no-op for one accepted meanwhile

    async def _open(self, sid: int, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.blocked(host, port, None):
                    raise OpenFailed(Reason.FORBIDDEN, BLOCKED_BY_OWNER)
                addresses = await self._resolve(host, port)
                if self.blocked(host, port, addresses):
                    log.info("refused %s port %d: the owner blocked it", host, port)
                    raise OpenFailed(Reason.FORBIDDEN, BLOCKED_BY_OWNER)
                await self._connect(sid, host, addresses, port)
        except OpenFailed as exc:
            self._reject(sid, exc.reason, str(exc))
        except TimeoutError:
            self._reject(sid, Reason.TIMEOUT, f"connect timed out after {self.connect_timeout:g}s")
        except Exception as exc:  # never past the stream's boundary
            log.exception("opening %s:%d failed", host, port)
            self._reject(sid, Reason.INTERNAL, f"agent error: {exc.__class__.__name__}")

    def _reject(self, sid: int, reason: Reason, message: str) -> None:
        if self.mux.conn.has_stream(sid) and not self.mux.closed:
            self.refuse(sid, reason, message)

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            return await self.guard.resolve(host, port)
        except Forbidden as exc:
            log.info("refused %s port %d: %s", host, port, exc)
            raise OpenFailed(Reason.FORBIDDEN, exc.public) from None
        except ResolveError as exc:
            raise OpenFailed(Reason.DNS, str(exc)) from None

    async def _connect(self, sid: int, host: str, addresses: list[str], port: int) -> None:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for address in addresses:
            if not self.mux.conn.has_stream(sid):
                return  # the server gave up meanwhile
            local = self._local_address(address)

            def accept(link: SocketLink, peer: str = address) -> None:
                assert isinstance(link, TargetLink)
                if not self.mux.conn.has_stream(sid) or self.mux.closed:
                    assert link.transport is not None
                    link.transport.abort()  # the server gave up while we connected
                    return
                self.mux.accept(sid, peer)
                self.links.add(link)
                self.bandwidth.add(link)
                self.meter.connection_opened(host, port)

            def link() -> TargetLink:
                return TargetLink(
                    self.mux, sid, host, port, self.meter, self.bandwidth, self._closed, accept
                )

            try:
                if local is None:
                    await loop.create_connection(link, address, port)
                else:
                    sock = await connect_from(local, address, port)
                    await loop.create_connection(link, sock=sock)
                return
            except OSError as exc:
                last = exc
        assert last is not None
        reason = _classify(last)
        what = {Reason.REFUSED: "connection refused", Reason.TIMEOUT: "connection timed out"}
        detail = what.get(reason) or last.strerror or str(last)
        raise OpenFailed(reason, f"{detail} by {addresses[-1]} port {port}")

    def _local_address(self, target: str) -> tuple[str, int] | None:
        """Where to connect from: the source address, if ``target`` (an address the guard
        returned) is of its family."""
        if self.source_address is None:
            return None
        target_version = 6 if ":" in target else 4
        return (self.source_address, 0) if target_version == self._source_version else None

    def _closed(self, link: SocketLink, error: str | None) -> None:
        assert isinstance(link, TargetLink)
        if link in self.links:
            self.links.discard(link)
            self.bandwidth.discard(link)
            link.settle()
        self.on_link_closed(link, error)

    def close(self) -> None:
        for task in list(self._opening.values()):
            task.cancel()
