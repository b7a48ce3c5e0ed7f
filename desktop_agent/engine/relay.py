"""Opening streams to targets: guard, connect, then hand the socket to a link.

The name is resolved here, on the agent, every address is checked by the
guard, and the connection goes to an address that was checked — so a DNS
answer cannot change between the check and the connect (no rebinding).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
from collections.abc import Callable

from desktop_agent.engine.guard import Forbidden, Guard, ResolveError
from tunnel import Mux, SocketLink
from wire import Reason

log = logging.getLogger(__name__)


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


class Relay:
    """Serves the server's OPEN requests on one connection."""

    def __init__(
        self,
        mux: Mux,
        guard: Guard,
        connect_timeout: float,
        source_address: str | None,
        on_link_closed: Callable[[SocketLink, str | None], None],
    ) -> None:
        self.mux = mux
        self.guard = guard
        self.connect_timeout = connect_timeout
        self.source_address = source_address
        self.on_link_closed = on_link_closed
        self.links: set[SocketLink] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def open(self, sid: int, host: str, port: int) -> None:
        task = asyncio.get_running_loop().create_task(self._open(sid, host, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def refuse(self, sid: int, reason: Reason, message: str) -> None:
        self.mux.reject(sid, reason, message)

    async def _open(self, sid: int, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = await self._resolve(host, port)
                await self._connect(sid, addresses, port)
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

    async def _connect(self, sid: int, addresses: list[str], port: int) -> None:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for address in addresses:
            if not self.mux.conn.has_stream(sid):
                return  # the server gave up meanwhile
            local = self._local_address(address)

            def accept(link: SocketLink, peer: str = address) -> None:
                if not self.mux.conn.has_stream(sid) or self.mux.closed:
                    assert link.transport is not None
                    link.transport.abort()  # the server gave up while we connected
                    return
                self.mux.accept(sid, peer)
                self.links.add(link)

            try:
                await loop.create_connection(
                    lambda: SocketLink(self.mux, sid, self._closed, accept),
                    address,
                    port,
                    local_addr=local,
                )
                return
            except OSError as exc:
                last = exc
        assert last is not None
        reason = _classify(last)
        what = {Reason.REFUSED: "connection refused", Reason.TIMEOUT: "connection timed out"}
        detail = what.get(reason) or last.strerror or str(last)
        raise OpenFailed(reason, f"{detail} by {addresses[-1]} port {port}")

    def _local_address(self, target: str) -> tuple[str, int] | None:
        if self.source_address is None:
            return None
        same_family = (
            ipaddress.ip_address(self.source_address).version
            == ipaddress.ip_address(target).version
        )
        return (self.source_address, 0) if same_family else None

    def _closed(self, link: SocketLink, error: str | None) -> None:
        self.links.discard(link)
        self.on_link_closed(link, error)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
