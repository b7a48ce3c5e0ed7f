"""The agent engine: one WebSocket to the server, kept up forever.

:class:`AgentEngine` is what both the headless CLI and the tray app drive. It
connects (aiohttp), says HELLO, serves OPEN requests through the guard and
the relay, pings every ``ping_interval`` and declares the connection dead when
nothing arrives within ``ping_timeout`` of a ping, and reconnects with jittered
exponential backoff (up to ``backoff_max``) forever. Listeners are told of
every state change; the UI renders them, the engine never imports Qt.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import platform
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

import wire
from desktop_agent import __version__
from desktop_agent.engine.backoff import Backoff
from desktop_agent.engine.config import AgentConfig
from desktop_agent.engine.guard import Guard
from desktop_agent.engine.relay import Relay
from desktop_agent.engine.state import AgentState
from tunnel import Mux, SocketLink
from wire import CloseCode, Reason

log = logging.getLogger(__name__)


class Status(enum.Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    ONLINE = "online"
    REFUSED = "refused"  # the server refused our credential or key; we keep retrying slowly


def websocket_url(server: str) -> str:
    """Accept ``http(s)://host:port`` as well as the full ``ws(s)://…/ws/agent``."""
    parts = urlsplit(server.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"server URL must be ws://, wss://, http:// or https://, not {server!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws/agent"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class AgentEngine:
    """The headless agent. Use :meth:`run` in a task; control it with the public methods."""

    def __init__(self, config: AgentConfig, guard: Guard | None = None) -> None:
        self.config = config
        self.url = websocket_url(config.server_url)
        self.guard = guard or Guard(
            allowed_networks=config.allowed_networks,
            blocked_networks=config.blocked_networks,
            blocked_ports=config.blocked_ports,
        )
        self.state = AgentState(config.config_dir)
        self.status = Status.STOPPED
        self.paused = False
        self.paused_by_admin = False
        """The server's admin paused this agent; the owner's resume does not lift it."""
        self.agent_name: str | None = None
        self.exit_ip: str | None = None
        self.last_error: str | None = None
        self.connected_since: float | None = None
        self.bytes_to_targets = 0
        self.bytes_from_targets = 0
        self.streams_total = 0
        self._listeners: list[Callable[[AgentEngine], None]] = []
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self._mux: Mux | None = None
        self._relay: Relay | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_rx = 0.0

    # ------------------------------------------------------------ public API

    def add_listener(self, callback: Callable[[AgentEngine], None]) -> None:
        """``callback(engine)`` runs after every change of status, pause or identity."""
        self._listeners.append(callback)

    def pause(self) -> None:
        """Stop taking new streams (running ones finish) and tell the server."""
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def stop(self) -> None:
        """End :meth:`run`: close the WebSocket with 1001 and return."""
        self._stopping.set()
        if self._ws is not None and not self._ws.closed:
            task = asyncio.get_running_loop().create_task(self._ws.close(code=CloseCode.GOING_AWAY))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def open_streams(self) -> int:
        return len(self._relay.links) if self._relay is not None else 0

    def stats(self) -> dict[str, int]:
        live = self._relay.links if self._relay is not None else set()
        return {
            "bytes_from_targets": self.bytes_from_targets + sum(link.sender.sent for link in live),
            "bytes_to_targets": self.bytes_to_targets + sum(link.received for link in live),
            "streams_open": len(live),
            "streams_total": self.streams_total,
        }

    async def run(self) -> None:
        """Connect and serve until :meth:`stop`; reconnects forever."""
        connector = aiohttp.TCPConnector(
            local_addr=(self.config.source_address, 0) if self.config.source_address else None,
            limit=1,
        )
        async with aiohttp.ClientSession(connector=connector) as http:
            while not self._stopping.is_set():
                self._set_status(Status.CONNECTING)
                try:
                    await self._connect_and_serve(http)
                except aiohttp.WSServerHandshakeError as exc:
                    self._refused(exc.status)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.last_error = f"cannot reach the server: {exc or exc.__class__.__name__}"
                    log.warning("%s", self.last_error)
                except Exception as exc:  # a bug of ours must not end the agent
                    self.last_error = f"internal error: {exc.__class__.__name__}"
                    log.exception("connection failed unexpectedly")
                if self._stopping.is_set():
                    break
                delay = self._backoff.next_delay()
                if self.status is not Status.REFUSED:
                    self._set_status(Status.CONNECTING)
                log.info("reconnecting in %.1fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        self._set_status(Status.STOPPED)

    # ------------------------------------------------------------- internals

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback(self)
            except Exception:
                log.exception("engine listener failed")

    def _set_status(self, status: Status) -> None:
        if status is not self.status:
            self.status = status
            self.connected_since = time.time() if status is Status.ONLINE else None
            self._notify()

    def _set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        log.info("sharing %s", "paused" if paused else "resumed")
        if self._mux is not None:
            self._mux.send_control({"type": "pause" if paused else "resume"})
        self._notify()

    def _refused(self, status: int) -> None:
        had_credential = self.state.credential(self.url) is not None
        what = "this agent's credential" if had_credential else "the enrollment key"
        self.last_error = f"the server refused {what} (HTTP {status}): revoked, expired or unknown"
        log.error("%s", self.last_error)
        self._set_status(Status.REFUSED)

    def _handshake_headers(self) -> dict[str, str]:
        credential = self.state.credential(self.url)
        if credential:
            return {"Authorization": f"Bearer {credential}"}
        if self.config.enrollment_key:
            return {"X-Exitpool-Enrollment-Key": self.config.enrollment_key}
        raise aiohttp.ClientError("no credential and no enrollment key: cannot enroll")

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "version": wire.PROTOCOL_VERSION,
            "name": self.config.name or socket.gethostname(),
            "os": f"{platform.system()} {platform.release()}".strip(),
            "agent_version": __version__,
            "max_streams": self.config.max_streams,
            "paused": self.paused,
        }

    async def _connect_and_serve(self, http: aiohttp.ClientSession) -> None:
        ws = await http.ws_connect(
            self.url,
            headers=self._handshake_headers(),
            autoping=False,
            max_msg_size=self.config.max_ws_message,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        )
        limits = wire.Limits(
            stream_window=self.config.stream_window,
            max_streams=self.config.max_streams,
            max_message_size=self.config.max_ws_message,
        )

        async def send(message: bytes | str) -> None:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)

        mux = Mux(wire.Connection(wire.Role.AGENT, limits), send, self._on_control, self._on_open)
        relay = Relay(
            mux,
            self.guard,
            self.config.connect_timeout,
            self.config.source_address,
            self._link_closed,
        )
        self._ws, self._mux, self._relay = ws, mux, relay
        self._last_rx = asyncio.get_running_loop().time()
        tasks = [
            asyncio.create_task(self._heartbeat(ws)),
            asyncio.create_task(self._report_stats(mux)),
        ]
        close_code: int | None = None
        try:
            mux.send_control(self._hello())
            close_code = await self._receive(ws, mux)
        finally:
            for task in tasks:
                task.cancel()
            mux.close(Reason.CONNECTION_LOST, "server connection lost")
            relay.close()
            self._ws = self._mux = self._relay = None
            if not ws.closed:
                await ws.close()
            self.exit_ip = None
        if self.status is Status.ONLINE:
            log.warning("disconnected from the server (close code %s)", close_code or ws.close_code)

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, mux: Mux) -> int | None:
        loop = asyncio.get_running_loop()
        while True:
            message = await ws.receive()
            self._last_rx = loop.time()
            kind = message.type
            try:
                if kind is aiohttp.WSMsgType.BINARY:
                    mux.feed_bytes(message.data)
                elif kind is aiohttp.WSMsgType.TEXT:
                    mux.feed_text(message.data)
                elif kind is aiohttp.WSMsgType.PING:
                    await ws.pong(message.data)
                elif kind is aiohttp.WSMsgType.PONG:
                    pass
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    return ws.close_code
            except wire.ProtocolError as exc:
                log.error("the server broke the protocol: %s", exc)
                await ws.close(code=exc.close_code)
                return int(exc.close_code)

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping every interval; if nothing came back within the timeout, the link is dead."""
        loop = asyncio.get_running_loop()
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        while True:
            await asyncio.sleep(interval)
            sent = loop.time()
            await ws.ping()
            await asyncio.sleep(timeout)
            if self._last_rx < sent:
                self.last_error = f"no answer from the server for {timeout:g}s after a ping"
                log.warning("%s; reconnecting", self.last_error)
                await ws.close(code=CloseCode.GOING_AWAY)
                return
            await asyncio.sleep(max(0.0, interval - timeout))

    async def _report_stats(self, mux: Mux) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            mux.send_control({"type": "stats", **self.stats()})

    def _on_control(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "welcome":
            self.agent_name = str(message.get("name", ""))
            self.exit_ip = message.get("exit_ip")
            if isinstance(message.get("credential"), str):
                self.state.update(
                    self.url,
                    credential=message["credential"],
                    agent_id=message.get("agent_id"),
                    name=self.agent_name,
                )
                log.info("enrolled as %s; credential saved in %s", self.agent_name, self.state.path)
            self._backoff.reset()
            self.last_error = None
            log.info("online as %s (exit IP seen by the server: %s)", self.agent_name, self.exit_ip)
            self._set_status(Status.ONLINE)
        elif kind in ("pause", "resume"):  # the server's admin asks
            paused = kind == "pause"
            if paused != self.paused_by_admin:
                self.paused_by_admin = paused
                log.info("the server's admin %s this agent", "paused" if paused else "resumed")
                self._notify()

    def _on_open(self, sid: int, host: str, port: int) -> None:
        assert self._relay is not None
        if self.paused or self.paused_by_admin:
            who = "the owner" if self.paused else "the server's admin"
            self._relay.refuse(sid, Reason.PAUSED, f"{who} paused sharing")
            return
        self.streams_total += 1
        self._relay.open(sid, host, port)

    def _link_closed(self, link: SocketLink, error: str | None) -> None:
        self.bytes_from_targets += link.sender.sent
        self.bytes_to_targets += link.received
