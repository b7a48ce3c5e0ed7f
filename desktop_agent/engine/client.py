"""The agent engine: one WebSocket to the server, kept up forever, under the owner's rules.

:class:`AgentEngine` is what both the headless CLI and the tray app drive. It
connects (aiohttp), says HELLO, serves OPEN requests through the guard and
the relay, pings every ``ping_interval`` and declares the connection dead when
nothing arrives within ``ping_timeout`` of a ping, and reconnects with jittered
exponential backoff (up to ``backoff_max``) forever — at once after the PC
slept or when :meth:`AgentEngine.reconnect_now` asks.

The owner's :class:`~desktop_agent.engine.owner_rules.OwnerRules` apply the
moment they are set: sharing is off while the owner paused it, outside the
schedule, or once today's data cap is used up, and the server is told each
time that flips; blocked destinations are refused; a bandwidth limit slows
every connection together. Listeners are told of every state change; the UI
renders them (and polls :attr:`AgentEngine.traffic`), the engine never
imports Qt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import enum
import logging
import math
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
from desktop_agent.engine.bandwidth import Bandwidth
from desktop_agent.engine.config import AgentConfig
from desktop_agent.engine.guard import Guard
from desktop_agent.engine.owner_rules import (
    BlockedDestination,
    OwnerRules,
    PauseReason,
    parse_blocked,
)
from desktop_agent.engine.problems import REFUSED_STATUSES, Problem, classify, refusal
from desktop_agent.engine.relay import Relay
from desktop_agent.engine.state import AgentState, CredentialStore, StateFileCredentials
from desktop_agent.engine.traffic import TRAFFIC_FILE, TrafficMeter
from tunnel import Mux, SocketLink
from wire import CloseCode, Reason

log = logging.getLogger(__name__)

__all__ = ["AgentEngine", "Problem", "Status", "websocket_url"]


class Status(enum.Enum):
    """Where the connection to the server stands (see :attr:`AgentEngine.problem` for why)."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    ONLINE = "online"
    REFUSED = "refused"  # the server refused our credential or key; we keep retrying slowly


_OWNER_SIDE = (PauseReason.OWNER, PauseReason.SCHEDULE, PauseReason.DAILY_CAP)
_PAUSED_MESSAGES = {
    PauseReason.OWNER: "the owner paused sharing",
    PauseReason.SCHEDULE: "outside the owner's sharing hours",
    PauseReason.DAILY_CAP: "the owner's daily data cap is used up",
    PauseReason.ADMIN: "the server's admin paused sharing",
}


class _NoKey(Exception):
    """Neither a credential nor an enrollment key: nothing to connect with."""


def websocket_url(server: str) -> str:
    """Accept ``http(s)://host:port`` as well as the full ``ws(s)://…/ws/agent``."""
    parts = urlsplit(server.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"server URL must be ws://, wss://, http:// or https://, not {server!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws/agent"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class AgentEngine:
    """The headless agent. Use :meth:`run` in a task; control it with the public methods.

    ``credentials`` keeps the agent's credential (default: in ``agent-state.json``);
    ``clock`` gives the aware local time the schedule, the daily cap and timed
    pauses follow (default: the system clock); ``rules`` are the owner's
    (default: none but ``config.max_streams``). A bad blocked entry in
    ``rules`` raises ValueError.
    """

    def __init__(
        self,
        config: AgentConfig,
        guard: Guard | None = None,
        *,
        credentials: CredentialStore | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        rules: OwnerRules | None = None,
    ) -> None:
        self.config = config
        self.url = websocket_url(config.server_url)
        self.guard = guard or Guard(
            allowed_networks=config.allowed_networks,
            blocked_networks=config.blocked_networks,
            blocked_ports=config.blocked_ports,
        )
        self.state = AgentState(config.config_dir)
        self.credentials: CredentialStore = credentials or StateFileCredentials(self.state)
        self._clock = clock or _local_now
        self.rules = rules or OwnerRules(max_streams=config.max_streams)
        """The owner's rules in force; change them with :meth:`set_rules` or :meth:`block`."""
        self._blocked = [parse_blocked(entry) for entry in self.rules.blocked]
        self.traffic = TrafficMeter(
            self._clock,
            config.config_dir / TRAFFIC_FILE,
            history=math.ceil(config.rate_history_seconds / config.sample_interval),
            max_destinations=config.max_recent_destinations,
        )
        """What went through this PC; the UI reads it on its own timer."""
        self.traffic.load()
        self.bandwidth = Bandwidth(self.rules.bandwidth_limit, config.bandwidth_burst)
        self.status = Status.STOPPED
        self.paused_by_admin = False
        """The server's admin paused this agent; the owner's resume does not lift it."""
        self.agent_name: str | None = None
        self.exit_ip: str | None = None
        self.last_error: str | None = None
        """The latest problem in one sentence for the owner, None while all is well."""
        self.problem: Problem | None = None
        """What keeps the agent from connecting, None while it is online or simply connecting."""
        self.connected_since: float | None = None
        self.offline_since: float | None = None
        """Unix time the connection was lost or first failed; None while online or stopped."""
        self.bytes_to_targets = 0
        self.bytes_from_targets = 0
        self.streams_total = 0
        self._owner_paused = False
        self._paused_until: float | None = None
        self._reasons: tuple[PauseReason, ...] = ()
        self._sharing_off = False  # what the server was (or will be, in HELLO) told
        self._listeners: list[Callable[[AgentEngine], None]] = []
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self._mux: Mux | None = None
        self._relay: Relay | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # cuts a backoff wait short
        self._probe = asyncio.Event()  # asks the heartbeat for a ping now
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_rx = 0.0
        self._used_credential = False
        self._wall: Callable[[], float] = time.time
        self._refresh(notify=False)

    # ------------------------------------------------------------ public API

    def add_listener(self, callback: Callable[[AgentEngine], None]) -> None:
        """``callback(engine)`` runs after a change of status, pause, rules, problem or identity.

        Not for traffic: byte counts change all the time; read :attr:`traffic` on a timer.
        """
        self._listeners.append(callback)

    def now(self) -> dt.datetime:
        """The engine's clock: aware local time (controllable in tests)."""
        return self._clock()

    @property
    def paused(self) -> bool:
        """The owner paused sharing (a timed pause ends by itself at :attr:`paused_until`)."""
        if self._paused_until is not None and self.now().timestamp() >= self._paused_until:
            return False
        return self._owner_paused

    @property
    def paused_until(self) -> float | None:
        """Unix time a timed owner pause ends, None for no pause or one without an end."""
        return self._paused_until if self.paused else None

    @property
    def online_since(self) -> float | None:
        """Unix time the current connection came online (same as ``connected_since``)."""
        return self.connected_since

    def pause(self, until: float | None = None) -> None:
        """Stop taking new streams and tell the server; with ``until`` (unix time), only
        until then. Running streams finish, or are cut if the rules say so."""
        self._owner_paused = True
        self._paused_until = until
        log.info(
            "the owner paused sharing%s",
            f" until {dt.datetime.fromtimestamp(until).astimezone():%Y-%m-%d %H:%M}"
            if until
            else "",
        )
        self._refresh(notify=True)

    def resume(self) -> None:
        """Lift the owner's pause (timed or not); schedule, cap and admin pauses stay."""
        was = self.paused
        self._owner_paused = False
        self._paused_until = None
        if was:
            log.info("the owner resumed sharing")
        self._refresh(notify=was)

    def pause_reasons(self) -> list[PauseReason]:
        """Every reason sharing is off right now; sharing is on exactly when it is empty."""
        now = self.now()
        reasons = []
        if self.paused:
            reasons.append(PauseReason.OWNER)
        schedule = self.rules.schedule
        if schedule is not None and not schedule.allows(now):
            reasons.append(PauseReason.SCHEDULE)
        cap = self.rules.daily_cap_bytes
        if cap is not None and self.traffic.today_bytes() >= cap:
            reasons.append(PauseReason.DAILY_CAP)
        if self.paused_by_admin:
            reasons.append(PauseReason.ADMIN)
        return reasons

    def set_rules(self, rules: OwnerRules) -> None:
        """Apply the owner's new rules at once (ValueError for a bad blocked entry).

        The block list, bandwidth limit, schedule and cap take effect for what
        comes next; a lower ``max_streams`` refuses new streams until fewer are
        open, and the server learns the new maximum.
        """
        blocked = [parse_blocked(entry) for entry in rules.blocked]
        old, self.rules, self._blocked = self.rules, rules, blocked
        self.bandwidth.set_limit(rules.bandwidth_limit)
        if rules.max_streams != old.max_streams:
            self._send_limits()
        self._refresh(notify=True)

    def block(self, entry: str) -> None:
        """Refuse ``entry`` (see :func:`parse_blocked`) from now on; ValueError if it is not one."""
        destination = parse_blocked(entry)
        if str(destination) in map(str, self._blocked):
            return
        self._blocked.append(destination)
        blocked = (*self.rules.blocked, str(destination))
        self.rules = dataclasses.replace(self.rules, blocked=blocked)
        log.info("the owner blocked %s", destination)
        self._notify()

    @property
    def blocked_destinations(self) -> list[BlockedDestination]:
        """The owner's block list, parsed."""
        return list(self._blocked)

    def reconnect_now(self) -> None:
        """Try the server at once: cut a backoff wait short, or check a live connection.

        For the network coming back or the PC waking up. While online, a ping
        goes out now and the connection is replaced if nothing answers within
        ``probe_timeout``.
        """
        self._backoff.reset()
        if self._ws is not None and not self._ws.closed:
            self._probe.set()
        else:
            self._wake.set()

    def stop(self) -> None:
        """End :meth:`run`: close the WebSocket with 1001 and return."""
        self._stopping.set()
        self._wake.set()
        if self._ws is not None and not self._ws.closed:
            self._spawn(self._ws.close(code=CloseCode.GOING_AWAY))

    @property
    def open_streams(self) -> int:
        """Connections to targets carried right now."""
        return len(self._relay.links) if self._relay is not None else 0

    def stats(self) -> dict[str, int]:
        """The numbers of the STATS message: bytes and streams since this process started."""
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
        housekeeping = asyncio.create_task(self._housekeeping())
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                while not self._stopping.is_set():
                    await self._attempt(http)
                    if self._stopping.is_set():
                        break
                    delay = self._backoff.next_delay()
                    log.info("reconnecting in %.1fs", delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    self._wake.clear()
        finally:
            housekeeping.cancel()
            self.bandwidth.close()
            self._save_traffic()
            self.offline_since = None
            self._set_status(Status.STOPPED)

    # ------------------------------------------------------------- internals

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback(self)
            except Exception:
                log.exception("engine listener failed")

    def _set_status(self, status: Status) -> None:
        if status is not self.status:
            self.status = status
            self.connected_since = self.now().timestamp() if status is Status.ONLINE else None
            self._notify()

    def _refresh(self, notify: bool) -> None:
        """Re-judge the time-dependent rules; tell the server and listeners what flipped."""
        if self._paused_until is not None and not self.paused:
            self._owner_paused, self._paused_until = False, None
            log.info("the owner's timed pause is over")
            notify = True
        reasons = tuple(self.pause_reasons())
        if reasons != self._reasons:
            self._reasons = reasons
            notify = True
        off = any(reason in _OWNER_SIDE for reason in reasons)
        if off != self._sharing_off:
            self._sharing_off = off
            why = ", ".join(_PAUSED_MESSAGES[r] for r in reasons if r in _OWNER_SIDE)
            log.info("sharing %s", f"paused: {why}" if off else "resumed")
            if self._mux is not None:
                self._mux.send_control({"type": "pause" if off else "resume"})
            if off and self.rules.cut_streams_on_pause and self._relay is not None:
                self._relay.cut(Reason.PAUSED, why)
        if notify:
            self._notify()

    def _send_limits(self) -> None:
        if self._mux is None:
            return
        conn = self._mux.conn
        conn.limits = dataclasses.replace(conn.limits, max_streams=self.rules.max_streams)
        self._mux.send_control({"type": "limits", "max_streams": self.rules.max_streams})

    def _is_blocked(self, host: str, port: int, addresses: list[str] | None) -> bool:
        return any(entry.matches(host, port, addresses) for entry in self._blocked)

    async def _attempt(self, http: aiohttp.ClientSession) -> None:
        """One connection, from handshake to loss; records why it ended."""
        self._set_status(Status.CONNECTING)
        problem: Problem | None = None
        try:
            close_code = await self._connect_and_serve(http)
        except _NoKey:
            problem = Problem.NO_KEY
            self.last_error = "no enrollment key: enter the key from the server's admin"
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in REFUSED_STATUSES:
                problem, self.last_error = refusal(self._used_credential, exc.status)
            else:
                problem, self.last_error = classify(exc, self.url)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            problem, self.last_error = classify(exc, self.url)
        except Exception as exc:  # a bug of ours must not end the agent
            self.last_error = f"internal error: {exc.__class__.__name__}"
            log.exception("connection failed unexpectedly")
        else:
            if close_code == CloseCode.UNAUTHORIZED:
                problem = Problem.REVOKED
                self.last_error = "the server revoked this agent's credential while it was online"
            elif self.last_error is None:  # else the heartbeat already said why
                self.last_error = f"lost the connection to the server (close code {close_code})"
        if self._stopping.is_set():
            return
        refused = problem in (Problem.BAD_KEY, Problem.REVOKED, Problem.NO_KEY)
        if self.last_error:
            log.log(logging.ERROR if refused else logging.WARNING, "%s", self.last_error)
        self.problem = problem
        if self.offline_since is None:
            self.offline_since = self.now().timestamp()
        self._refresh(notify=False)
        status = Status.REFUSED if refused else Status.CONNECTING
        if status is self.status:
            self._notify()
        else:
            self._set_status(status)

    def _handshake_headers(self) -> dict[str, str]:
        credential = self.credentials.get(self.url)
        self._used_credential = bool(credential)
        if credential:
            return {"Authorization": f"Bearer {credential}"}
        if self.config.enrollment_key:
            return {"X-Exitpool-Enrollment-Key": self.config.enrollment_key}
        raise _NoKey

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "version": wire.PROTOCOL_VERSION,
            "name": self.config.name or socket.gethostname(),
            "os": f"{platform.system()} {platform.release()}".strip(),
            "agent_version": __version__,
            "max_streams": self.rules.max_streams,
            "paused": self._sharing_off,
        }

    async def _connect_and_serve(self, http: aiohttp.ClientSession) -> int | None:
        """Serve one connection; returns its close code."""
        ws = await http.ws_connect(
            self.url,
            headers=self._handshake_headers(),
            autoping=False,
            max_msg_size=self.config.max_ws_message,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        )
        limits = wire.Limits(
            stream_window=self.config.stream_window,
            max_streams=self.rules.max_streams,
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
            meter=self.traffic,
            bandwidth=self.bandwidth,
            blocked=self._is_blocked,
        )
        self._ws, self._mux, self._relay = ws, mux, relay
        self._last_rx = asyncio.get_running_loop().time()
        self._probe.clear()
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
            self.paused_by_admin = False  # the server says it again on the next connection
        if self.status is Status.ONLINE:
            log.warning("disconnected from the server (close code %s)", close_code or ws.close_code)
        return close_code or ws.close_code

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
        """Ping every interval (at once when probed); silence after a ping means a dead link."""
        loop = asyncio.get_running_loop()
        while True:
            probed = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe.wait(), self.config.ping_interval)
                probed = True
            self._probe.clear()
            timeout = self.config.probe_timeout if probed else self.config.ping_timeout
            sent = loop.time()
            await ws.ping()
            await asyncio.sleep(timeout)
            if self._last_rx < sent:
                self.last_error = f"no answer from the server for {timeout:g}s after a ping"
                log.warning("%s; reconnecting", self.last_error)
                self._wake.set()  # a dead link is no reason to wait: try again at once
                await ws.close(code=CloseCode.GOING_AWAY)
                return

    async def _housekeeping(self) -> None:
        """Every ``sample_interval``: sample traffic, re-judge the rules, notice a sleep, save."""
        loop = asyncio.get_running_loop()
        interval = self.config.sample_interval
        last_wall, last_mono, last_save = self._wall(), loop.time(), loop.time()
        while True:
            await asyncio.sleep(interval)
            wall, mono = self._wall(), loop.time()
            late = max(wall - last_wall, mono - last_mono) - interval
            if late > self.config.suspend_gap:
                self._woke_up(late)
            elapsed = mono - last_mono
            last_wall, last_mono = wall, mono
            if self._relay is not None:
                self._relay.settle()
            self.traffic.sample(elapsed)
            self._refresh(notify=False)
            if mono - last_save >= self.config.traffic_save_interval:
                last_save = mono
                self._save_traffic()

    def _save_traffic(self) -> None:
        try:
            self.traffic.save()
        except OSError as exc:
            log.warning("cannot save the traffic totals: %s", exc)

    def _woke_up(self, late: float) -> None:
        """The PC slept (or the clock jumped): the connection is likely dead, start over now."""
        log.info("the PC seems to have slept for %.0fs; reconnecting", late)
        self._backoff.reset()
        self._wake.set()
        if self._ws is not None and not self._ws.closed:
            self._spawn(self._ws.close(code=CloseCode.GOING_AWAY))

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
                self.credentials.set(self.url, message["credential"])
                self.state.update(self.url, agent_id=message.get("agent_id"), name=self.agent_name)
                log.info("enrolled as %s; credential saved", self.agent_name)
            self._backoff.reset()
            self._wake.clear()
            self.last_error = None
            self.problem = None
            self.offline_since = None
            log.info("online as %s (exit IP seen by the server: %s)", self.agent_name, self.exit_ip)
            self._set_status(Status.ONLINE)
        elif kind in ("pause", "resume"):  # the server's admin asks
            paused = kind == "pause"
            if paused != self.paused_by_admin:
                self.paused_by_admin = paused
                log.info("the server's admin %s this agent", "paused" if paused else "resumed")
                self._refresh(notify=True)

    def _on_open(self, sid: int, host: str, port: int) -> None:
        assert self._relay is not None
        self._refresh(notify=False)
        reasons = self._reasons
        if reasons:
            self._relay.refuse(sid, Reason.PAUSED, _PAUSED_MESSAGES[reasons[0]])
            return
        self.streams_total += 1
        self._relay.open(sid, host, port)

    def _link_closed(self, link: SocketLink, error: str | None) -> None:
        self.bytes_from_targets += link.sender.sent
        self.bytes_to_targets += link.received
