"""What the PC's owner allows: when to share, how much, how fast, and where not to.

Pure values and pure decisions, no asyncio: the engine applies them, the tray
app edits them, and the tests check every rule with a clock they control.
The guard (``guard.py``) protects the office network whatever these say; the
rules here only ever narrow what is shared further.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass

from desktop_agent.engine.guard import (
    Address,
    Network,
    embedded_ipv4,
    normalise_name,
    parse_ip_literal,
)

_DAY = dt.timedelta(days=1)


class PauseReason(enum.Enum):
    """Why sharing is off right now; several may hold at once."""

    OWNER = "owner"
    """The owner paused (from the menu), maybe until a set time."""
    SCHEDULE = "schedule"
    """Outside the owner's sharing hours."""
    DAILY_CAP = "daily_cap"
    """Today's data cap is used up; sharing resumes on the next local day."""
    ADMIN = "admin"
    """The server's admin paused this agent; only the admin can lift it."""


@dataclass(frozen=True)
class Schedule:
    """When sharing is allowed: every day from ``start`` to ``end``, plus whole weekdays.

    The daily window may wrap midnight (18:00-08:00 allows the evening and the
    early morning of every day); ``start == end`` allows the whole day.
    ``all_day`` holds weekdays (0 = Monday … 6 = Sunday) allowed from midnight
    to midnight, e.g. ``{5, 6}`` for weekends. Times are local wall-clock times
    of the datetime asked about.
    """

    start: dt.time
    end: dt.time
    all_day: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not self.all_day <= set(range(7)):
            raise ValueError("all_day holds weekdays 0 (Monday) to 6 (Sunday)")

    def allows(self, when: dt.datetime) -> bool:
        """Whether sharing is allowed at ``when``."""
        if when.weekday() in self.all_day:
            return True
        time = when.time().replace(tzinfo=None)
        start, end = self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)
        if start == end:
            return True
        if start < end:
            return start <= time < end
        return time >= start or time < end

    def next_change(self, when: dt.datetime) -> dt.datetime | None:
        """The first instant after ``when`` at which :meth:`allows` flips; None if it never does.

        Only midnight, ``start`` and ``end`` can be such instants, so a week and
        a day of them is enough to find the next one or prove there is none.
        """
        now = self.allows(when)
        times = sorted({dt.time(0), self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)})
        for days in range(9):
            day = when.date() + dt.timedelta(days=days)
            for time in times:
                moment = dt.datetime.combine(day, time, tzinfo=when.tzinfo)
                if moment > when and self.allows(moment) != now:
                    return moment
        return None


@dataclass(frozen=True)
class OwnerRules:
    """Every limit the owner sets in the tray app; the engine applies a new set at once."""

    daily_cap_bytes: int | None = None
    """Bytes both ways per local day; reaching it pauses sharing until the next day."""
    bandwidth_limit: int | None = None
    """Bytes per second in each direction across all connections (None: unlimited)."""
    max_streams: int = 256
    """Connections carried at once; more are refused so the server picks another agent."""
    schedule: Schedule | None = None
    """When sharing is allowed (None: always)."""
    blocked: tuple[str, ...] = ()
    """Destinations refused, in :func:`parse_blocked` form."""
    cut_streams_on_pause: bool = False
    """A pause resets running connections instead of letting them finish."""

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        for name in ("daily_cap_bytes", "bandwidth_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None")


@dataclass(frozen=True)
class BlockedDestination:
    """One destination the owner refuses: a name (with its subdomains) or an IP network,
    optionally on one port only. ``str()`` gives the canonical entry."""

    name: str | None = None
    network: Network | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.name is not None:
            where = self.name
        else:
            assert self.network is not None
            net = self.network
            single = net.num_addresses == 1
            where = str(net.network_address) if single else str(net)
            if single and net.version == 6 and self.port is not None:
                where = f"[{where}]"
        return where if self.port is None else f"{where}:{self.port}"

    def matches(self, host: str, port: int, addresses: list[str] | None = None) -> bool:
        """Whether a connection to ``host:port`` (resolved to ``addresses``) is refused.

        Names compare case-insensitively without a trailing dot and cover their
        subdomains. A network entry matches the host when it is an IP literal,
        or any resolved address, including an IPv4 address carried inside IPv6.
        """
        if self.port is not None and port != self.port:
            return False
        if self.name is not None:
            try:
                name = normalise_name(host)
            except ValueError:
                return False
            return name == self.name or name.endswith("." + self.name)
        candidates: list[Address] = []
        literal = parse_ip_literal(host)
        if literal is not None:
            candidates.append(literal)
        for text in addresses or ():
            try:
                candidates.append(ipaddress.ip_address(text))
            except ValueError:
                continue
        return any(self._covers(address) for address in candidates)

    def _covers(self, address: Address) -> bool:
        assert self.network is not None
        inside: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inside.extend(embedded_ipv4(address))
        return any(a.version == self.network.version and a in self.network for a in inside)


def parse_blocked(entry: str) -> BlockedDestination:
    """Read an entry the owner typed; raise ValueError with a sentence for a person.

    Accepted: ``example.com`` (and its subdomains; ``*.example.com`` means the
    same), ``example.com:443``, ``1.2.3.4``, ``1.2.3.4:8080``, ``2001:db8::1``,
    ``[2001:db8::1]:443`` and networks such as ``203.0.113.0/24``.
    """
    text = entry.strip()
    if not text:
        raise ValueError("an empty entry is not a host name, IP address or network")
    if "://" in text:
        raise ValueError(f"{entry!r}: enter a host name such as example.com, not a web address")
    host, port = text, None
    head, sep, tail = text.rpartition(":")
    if sep and (":" not in head or (head.startswith("[") and head.endswith("]"))):
        if not tail.isdigit() or not 0 < int(tail) < 65536:
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
        host, port = head, int(tail)
    if "/" in host:
        try:
            network = ipaddress.ip_network(host.strip("[]"), strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not a host name, IP address or network") from None
        return BlockedDestination(network=network, port=port)
    literal = parse_ip_literal(host)
    if literal is not None and (":" in host or _dotted_quad(host)):
        if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id:
            raise ValueError(f"{entry!r}: leave out the '%' zone of an IPv6 address")
        return BlockedDestination(network=ipaddress.ip_network(literal), port=port)
    try:
        name = normalise_name(host.removeprefix("*."))
    except ValueError:
        raise ValueError(f"{entry!r} is not a host name, IP address or network") from None
    if name.replace(".", "").isdigit():
        raise ValueError(f"{entry!r} is not a host name, IP address or network")
    return BlockedDestination(name=name, port=port)


def _dotted_quad(host: str) -> bool:
    """Only the usual a.b.c.d spelling counts as an IPv4 entry the owner meant."""
    parts = host.removesuffix(".").split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
