"""Destination guard: the agent only ever dials the public internet.

Proxy users choose where the agent connects, so every destination is checked here before a
socket is opened. A name is resolved exactly once and the caller must connect to the addresses
returned by :meth:`Guard.resolve`, never re-resolve the name: a second lookup could answer with a
private address (DNS rebinding). IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4,
Teredo, ...) are judged by the IPv4 address inside them as well, because that is where the
packets may end up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Forbidden(Exception):
    """The owner's rules refuse this destination.

    ``str(exc)`` is the full reason, for the owner's log. ``public`` is what may
    be told to the proxy user: it never reveals which private address a name
    resolved to, because that would map the office network for strangers.
    """

    def __init__(self, reason: str, public: str | None = None) -> None:
        super().__init__(reason)
        self.public = public or reason


class ResolveError(Exception):
    """The name did not resolve (DNS failure); str(exc) says why."""


_DEFAULT_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this-host"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "CGNAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol)"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
)
_LABELLED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), label) for cidr, label in _DEFAULT_DENIED
)
DEFAULT_DENIED_NETWORKS: tuple[Network, ...] = tuple(net for net, _ in _LABELLED)
DEFAULT_BLOCKED_PORTS: frozenset[int] = frozenset({25, 465, 587})

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# Characters of every IPv4 spelling inet_aton knows; filtering first keeps platform quirks
# (glibc ignores anything after a space) from turning "1.2.3.4 junk" into an address.
_IPV4_CHARS = frozenset("0123456789abcdefxABCDEFX.")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def parse_ip_literal(host: str) -> Address | None:
    """Return the address if *host* is an IP literal the OS would accept, else None.

    Pure parsing, never DNS: a literal must be judged as the address the OS will dial, so the
    odd IPv4 spellings of inet_aton ('127.1', '0x7f000001', '0177.0.0.1', ...) count too.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)  # keeps a '%zone' suffix
        except ValueError:
            return None
    text = text.removesuffix(".")
    if not text or not set(text) <= _IPV4_CHARS:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address can deliver packets to, so they get checked as well.

    Local-use NAT64 (64:ff9b:1::/48) is read like the well-known prefix, as a /96 with the IPv4
    address in the last 32 bits; RFC 6052 also allows shorter layouts there, but every other
    reading of a /96-style address yields 0.x.x.x and would refuse all traffic through it.
    """
    value = int(ip)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    elif value >> 32 == 0 and value > 1:  # deprecated IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(value))
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client); the client is already un-obfuscated
    return found


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the OS resolver: unique address strings, in the order the OS prefers."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveError(f"{host} did not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalise_name(host: str) -> str:
    """Lower-case, drop one trailing dot, IDNA-encode; ValueError for anything not a DNS name.

    One spelling per name is what makes blocked_hosts unbypassable ('EXAMPLE.com.').
    """
    name = host.lower().removesuffix(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"invalid host name {host!r}") from exc
    labels = name.split(".")
    if len(name) > 253 or not all(0 < len(lab) < 64 and set(lab) <= _NAME_CHARS for lab in labels):
        raise ValueError(f"invalid host name {host!r}")
    return name


def _parse_host_rule(entry: str) -> tuple[str, int | None]:
    """Split 'host' or 'host:port' ('[v6]:port' for IPv6) into a normalised host and port."""
    host, port = entry.strip(), None
    head, sep, tail = host.rpartition(":")
    if sep and tail.isdigit() and (":" not in head or head.startswith("[")):
        host, port = head, int(tail)
        if not 0 < port < 65536:
            raise ValueError(f"invalid port in blocked host {entry!r}")
    literal = parse_ip_literal(host)
    return (str(literal) if literal is not None else normalise_name(host.removeprefix("*."))), port


class Guard:
    """Decides whether a (host, port) may be dialled, and resolves names safely."""

    def __init__(
        self,
        allowed_networks: Iterable[str | Network] = (),
        blocked_networks: Iterable[str | Network] = (),
        blocked_ports: Iterable[int] = DEFAULT_BLOCKED_PORTS,
        blocked_hosts: Iterable[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        # Widening must say exactly what it means: '10.0.0.5/8' is an error, not all of 10/8.
        self._allowed = tuple(ipaddress.ip_network(net, strict=True) for net in allowed_networks)
        self._blocked: list[Network] = []
        self._blocked_hosts: list[tuple[str, int | None]] = []
        self._blocked_ports = frozenset(blocked_ports)
        self._resolver = resolver
        self.narrow(blocked_networks, blocked_hosts)

    def narrow(self, networks: Iterable[str | Network], hosts: Iterable[str] = ()) -> None:
        """Add blocks (owner or server). Nothing here can widen; on bad input nothing changes."""
        nets = [ipaddress.ip_network(net, strict=False) for net in networks]
        rules: list[tuple[str, int | None]] = []
        for host, port in map(_parse_host_rule, hosts):
            literal = parse_ip_literal(host)
            if literal is not None and port is None:
                nets.append(ipaddress.ip_network(literal))  # also catches its IPv6 wrappings
            else:
                rules.append((host, port))
        self._blocked.extend(nets)
        self._blocked_hosts.extend(rules)

    def check_ip(self, ip: Address) -> str | None:
        """None when *ip* may be dialled, else the reason (any embedded IPv4 is judged too)."""
        if isinstance(ip, ipaddress.IPv4Address):
            return self._check_one(ip)
        candidates: list[Address] = [ip, *embedded_ipv4(ip)]
        for addr in candidates:
            reason = self._check_one(addr)
            if reason is not None:
                return reason if addr is ip else f"{reason} (embedded in {ip})"
        return None

    def _check_one(self, addr: Address) -> str | None:
        for net in self._blocked:
            if addr in net:
                return f"{addr} is in blocked network {net}"
        if any(addr in net for net in self._allowed):
            return None
        for net, label in _LABELLED:
            if addr in net:
                return f"{addr} is in {label} network {net}"
        return None

    def check_port(self, port: int) -> str | None:
        """None when *port* may be dialled, else the reason (SMTP ports are spam magnets)."""
        if not 0 < port < 65536:
            return f"port {port} is out of range"
        if port in self._blocked_ports:
            return f"port {port} is blocked"
        return None

    def _check_host(self, names: Iterable[str], port: int) -> str | None:
        for name in names:
            for rule, rule_port in self._blocked_hosts:
                if rule_port not in (None, port):
                    continue
                if name == rule or name.endswith("." + rule):
                    where = rule if rule_port is None else f"{rule}:{rule_port}"
                    return f"{name} is a blocked host ({where})"
        return None

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve once, check everything, return the addresses the caller must dial.

        A name with even one denied address is refused as a whole: otherwise a hostile name
        could list a public decoy next to an internal target and hope for the fallback order.
        """
        reason = self.check_port(port) or ("empty host" if not host else None)
        if reason is not None:
            raise Forbidden(f"forbidden: {reason}")
        ips = await self._lookup(host, port)
        if (reason := self._check_host(map(str, ips), port)) is not None:
            raise Forbidden(f"forbidden: {reason}")
        reason = next((r for r in map(self.check_ip, ips) if r is not None), None)
        if reason is not None:
            public = None
            if parse_ip_literal(host) is None:
                public = f"forbidden: {host} does not resolve to a public internet address"
            raise Forbidden(f"forbidden: {reason}", public)
        return [str(ip) for ip in ips]

    async def _lookup(self, host: str, port: int) -> list[Address]:
        """Literal -> itself (no DNS); name -> checked against blocked_hosts, then resolved."""
        literal = parse_ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            name = normalise_name(host)
        except ValueError as exc:
            raise Forbidden(f"forbidden: {exc}") from None
        if (reason := self._check_host([name], port)) is not None:
            raise Forbidden(f"forbidden: {reason}")  # before DNS: the lookup itself may leak
        try:
            answer = await self._resolver(name, port)
        except OSError as exc:
            raise ResolveError(f"{name} did not resolve: {exc}") from exc
        if not answer:
            raise ResolveError(f"{name} did not resolve: empty answer")
        try:
            return [ipaddress.ip_address(a) for a in dict.fromkeys(answer)]
        except ValueError as exc:
            raise ResolveError(f"{name}: resolver returned a non-address: {exc}") from exc
