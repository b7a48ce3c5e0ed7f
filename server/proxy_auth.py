"""Proxy-Authorization checking without a slow hash on every request.

Django stores proxy passwords with its password hasher (PBKDF2: deliberately
hundreds of milliseconds). The gateway verifies a (name, password) pair once
with it, then trusts a SHA-256 of the pair in memory for
``auth_cache_seconds``. Concurrent first requests with the same pair share one
check.

For as long again after that, a pair that was good is still let in at once
while it is checked again behind the request: otherwise, every time an entry
expired, every new connection of a busy user would wait for the slow hash
together (the benchmark saw a quarter-second stall a minute, and a keep-alive
p99 of 160 ms from it). A pair whose last check is older than twice the TTL
is checked before it is let in. So a user disabled or given a new password
outside this process (an admin's change here forgets the user at once) is
refused at most ``auth_cache_seconds`` plus one check after the change.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from server.fleet.models import ProxyUser

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProxyIdentity:
    """A verified proxy user and the limits the gateway enforces for them."""

    user_id: int
    name: str
    max_streams: int | None = None
    monthly_quota: int | None = None

    @classmethod
    def of(cls, user: ProxyUser) -> ProxyIdentity:
        return cls(user.pk, user.name, user.max_streams, user.monthly_quota_bytes)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(name:password)`` → ``(name, password)``, or None if malformed."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else None


def _check(name: str, password: str) -> ProxyIdentity | None:
    user = ProxyUser.authenticate(name, password)
    return ProxyIdentity.of(user) if user else None


def _check_token(token: str) -> ProxyIdentity | None:
    user = ProxyUser.by_api_token(token)
    return ProxyIdentity.of(user) if user else None


class ProxyAuthenticator:
    """Verifies proxy users with a short-lived in-memory cache (see module docstring)."""

    NEGATIVE_TTL = 5.0

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[bytes, tuple[float, ProxyIdentity | None]] = {}
        self._pending: dict[bytes, asyncio.Task[ProxyIdentity | None]] = {}

    async def check(self, name: str, password: str) -> ProxyIdentity | None:
        """The identity for this name and password, or None if they are wrong."""
        key = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        return await self._cached(key, lambda: _check(name, password))

    async def check_token(self, token: str) -> ProxyIdentity | None:
        """The identity owning this API token, or None."""
        key = hashlib.sha256(f"\0token\0{token}".encode()).digest()
        return await self._cached(key, lambda: _check_token(token))

    def forget(self, user_id: int) -> None:
        """Drop what is cached for a user (an admin changed or disabled them)."""
        self._cache = {
            key: entry
            for key, entry in self._cache.items()
            if entry[1] is None or entry[1].user_id != user_id
        }

    async def _cached(
        self, key: bytes, verify: Callable[[], ProxyIdentity | None]
    ) -> ProxyIdentity | None:
        cached = self._cache.get(key)
        if cached is not None:
            expires, identity = cached
            now = time.monotonic()
            if expires > now:
                return identity
            if identity is not None and expires + self.ttl > now:
                self._check_again(key, verify)  # let this one in; the next ones learn
                return identity
        return await asyncio.shield(self._check_again(key, verify))

    def _check_again(
        self, key: bytes, verify: Callable[[], ProxyIdentity | None]
    ) -> asyncio.Task[ProxyIdentity | None]:
        """The running check of this pair, or a new one.

        One check per pair, owned by no caller: a caller that goes away must
        not cancel the answer others are waiting for.
        """
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._verify(key, verify))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._checked(key, done))
        return task

    def _checked(self, key: bytes, task: asyncio.Task[ProxyIdentity | None]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # Those waiting get the error; one started behind a request has nobody.
            log.error("checking proxy credentials failed", exc_info=task.exception())

    async def _verify(
        self, key: bytes, verify: Callable[[], ProxyIdentity | None]
    ) -> ProxyIdentity | None:
        identity = await sync_to_async(verify)()
        now = time.monotonic()
        if len(self._cache) > 100_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        ttl = self.ttl if identity is not None else self.NEGATIVE_TTL
        self._cache[key] = (now + ttl, identity)
        return identity
