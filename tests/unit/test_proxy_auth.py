"""Proxy-Authorization: parsing Basic credentials and checking them with a short cache.

The authenticator tests use a real Django database in a temporary data
directory (migrated once per module) and real ``ProxyUser`` rows.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

# Settings read these at import: point them at a throwaway data directory first.
os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
DATA_DIR = tempfile.mkdtemp(prefix="exitpool-proxy-auth-")
os.environ["EXITPOOL_DATA_DIR"] = DATA_DIR
os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402

if TYPE_CHECKING:
    from server.fleet.models import ProxyUser
    from server.proxy_auth import ProxyIdentity

PASSWORD = "correct horse"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def proxy_auth() -> ModuleType:
    """``server.proxy_auth``, importable once Django's apps are loaded."""
    django.setup()
    import server.proxy_auth

    return server.proxy_auth


@pytest.fixture(scope="module")
def database(proxy_auth: ModuleType) -> Iterator[None]:
    from django.core.management import call_command
    from django.test.utils import override_settings

    # The production hasher is deliberately slow; these tests are about caching, not hashing.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        call_command("migrate", verbosity=0)
        yield
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def create_user(password: str = PASSWORD, active: bool = True) -> ProxyUser:
    from server.fleet.models import ProxyUser

    user = ProxyUser(name=f"user{next(_names)}", is_active=active)
    user.set_password(password)
    user.save()
    return user


@pytest.fixture
def user(database: None) -> ProxyUser:
    return create_user()


async def delete_user(user_id: int) -> None:
    from server.fleet.models import ProxyUser

    await sync_to_async(lambda: ProxyUser.objects.filter(pk=user_id).delete())()


@pytest.fixture
def checks(proxy_auth: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every database check, recorded by wrapping the real ``_check``."""
    calls: list[tuple[str, str]] = []
    real = proxy_auth._check

    def counting(name: str, password: str) -> ProxyIdentity | None:
        calls.append((name, password))
        return real(name, password)

    monkeypatch.setattr(proxy_auth, "_check", counting)
    return calls


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode("ascii")


# ------------------------------------------------------------------ parse_basic


def test_it_parses_valid_basic_credentials(proxy_auth: ModuleType) -> None:
    assert proxy_auth.parse_basic(basic(b"alice:s3cret")) == ("alice", "s3cret")


def test_it_accepts_the_scheme_in_any_case_and_surrounding_spaces(proxy_auth: ModuleType) -> None:
    header = "  bAsIc   " + base64.b64encode(b"alice:pw").decode() + "  "

    assert proxy_auth.parse_basic(header) == ("alice", "pw")


def test_it_keeps_colons_inside_the_password(proxy_auth: ModuleType) -> None:
    assert proxy_auth.parse_basic(basic(b"alice:pa:ss:word:")) == ("alice", "pa:ss:word:")


def test_it_accepts_an_empty_password(proxy_auth: ModuleType) -> None:
    assert proxy_auth.parse_basic(basic(b"alice:")) == ("alice", "")


def test_it_keeps_routing_options_in_the_name(proxy_auth: ModuleType) -> None:
    assert proxy_auth.parse_basic(basic(b"alice-session-x1:pw")) == ("alice-session-x1", "pw")


def test_it_decodes_utf8_credentials(proxy_auth: ModuleType) -> None:
    assert proxy_auth.parse_basic(basic("jürgen:пароль".encode())) == ("jürgen", "пароль")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Basic",
        "Bearer " + base64.b64encode(b"alice:pw").decode(),
        "Digest username=alice",
        "Basic not*base64!",
        "Basic YWxpY2U6cHc",  # missing padding
        basic(b"alice-without-colon"),
        basic(b":password-without-name"),
        basic(b"\xff\xfe:pw"),
        basic(b"alice:\xc3\x28"),
    ],
)
def test_it_returns_none_for_malformed_headers(proxy_auth: ModuleType, header: str | None) -> None:
    assert proxy_auth.parse_basic(header) is None


# ------------------------------------------------------------------ ProxyAuthenticator


async def test_it_returns_the_identity_for_the_right_password(
    proxy_auth: ModuleType, user: ProxyUser
) -> None:
    identity = await proxy_auth.ProxyAuthenticator(ttl=60).check(user.name, PASSWORD)

    assert identity == proxy_auth.ProxyIdentity(user_id=user.pk, name=user.name)


async def test_it_returns_none_for_a_wrong_password(
    proxy_auth: ModuleType, user: ProxyUser
) -> None:
    assert await proxy_auth.ProxyAuthenticator(ttl=60).check(user.name, "wrong horse") is None


async def test_it_returns_none_for_an_unknown_user(proxy_auth: ModuleType, database: None) -> None:
    assert await proxy_auth.ProxyAuthenticator(ttl=60).check("nobody-here", PASSWORD) is None


async def test_it_returns_none_for_an_inactive_user(proxy_auth: ModuleType, database: None) -> None:
    inactive = await sync_to_async(create_user)(active=False)

    assert await proxy_auth.ProxyAuthenticator(ttl=60).check(inactive.name, PASSWORD) is None


async def test_it_serves_a_second_check_from_the_cache(
    proxy_auth: ModuleType, user: ProxyUser, checks: list[tuple[str, str]]
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=60)
    first = await auth.check(user.name, PASSWORD)
    await delete_user(user.pk)

    assert first is not None
    assert await auth.check(user.name, PASSWORD) == first
    assert len(checks) == 1


@pytest.mark.parametrize(
    ("ttl", "idle"),
    [(0.0, 0.0), (0.1, 0.25)],
    ids=["no-cache", "unused-for-twice-the-ttl"],
)
async def test_it_checks_a_pair_again_before_letting_it_in_once_its_entry_is_past_use(
    proxy_auth: ModuleType,
    user: ProxyUser,
    checks: list[tuple[str, str]],
    ttl: float,
    idle: float,
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=ttl)
    assert await auth.check(user.name, PASSWORD) is not None
    await delete_user(user.pk)
    await asyncio.sleep(idle)

    assert await auth.check(user.name, PASSWORD) is None
    assert len(checks) == 2


async def test_it_does_not_let_a_cached_pair_vouch_for_another_password(
    proxy_auth: ModuleType, user: ProxyUser, checks: list[tuple[str, str]]
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=60)
    assert await auth.check(user.name, PASSWORD) is not None

    assert await auth.check(user.name, PASSWORD + "!") is None
    assert len(checks) == 2


async def test_it_remembers_a_wrong_password_briefly(
    proxy_auth: ModuleType, user: ProxyUser, checks: list[tuple[str, str]]
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=60)

    assert await auth.check(user.name, "wrong") is None
    assert await auth.check(user.name, "wrong") is None
    assert len(checks) == 1


async def test_it_shares_one_database_check_between_concurrent_requests(
    proxy_auth: ModuleType, user: ProxyUser, checks: list[tuple[str, str]]
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=60)

    results = await asyncio.gather(*(auth.check(user.name, PASSWORD) for _ in range(8)))

    assert len(checks) == 1
    assert results == [proxy_auth.ProxyIdentity(user_id=user.pk, name=user.name)] * 8


async def test_it_still_answers_waiting_requests_when_the_first_one_is_cancelled(
    proxy_auth: ModuleType, user: ProxyUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One client hangs up while its check runs; another with the same credentials still gets in.
    release = threading.Event()
    real = proxy_auth._check

    def held(name: str, password: str) -> ProxyIdentity | None:
        release.wait(timeout=5)
        return real(name, password)

    monkeypatch.setattr(proxy_auth, "_check", held)
    auth = proxy_auth.ProxyAuthenticator(ttl=60)
    first = asyncio.create_task(auth.check(user.name, PASSWORD))
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(auth.check(user.name, PASSWORD))
    await asyncio.sleep(0.01)

    first.cancel()
    release.set()
    await asyncio.wait([first, waiter], timeout=5)

    assert waiter.done()
    assert not waiter.cancelled()
    assert waiter.result() == proxy_auth.ProxyIdentity(user_id=user.pk, name=user.name)


async def test_it_lets_a_pair_just_past_its_ttl_in_at_once_and_checks_it_behind_the_request(
    proxy_auth: ModuleType, user: ProxyUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An expiry must not make every new connection wait for the slow hash together.
    release = threading.Event()
    calls: list[str] = []
    real = proxy_auth._check

    def held(name: str, password: str) -> ProxyIdentity | None:
        calls.append(name)
        if len(calls) > 1:
            release.wait(timeout=5)
        return real(name, password)

    monkeypatch.setattr(proxy_auth, "_check", held)
    auth = proxy_auth.ProxyAuthenticator(ttl=0.2)
    identity = await auth.check(user.name, PASSWORD)
    await delete_user(user.pk)
    await asyncio.sleep(0.25)  # expired, but within a second TTL

    # Let in at once on the old answer while the second check is held.
    assert await asyncio.wait_for(auth.check(user.name, PASSWORD), timeout=1) == identity
    assert await asyncio.wait_for(auth.check(user.name, PASSWORD), timeout=1) == identity
    for _ in range(100):  # the check behind them starts in a worker thread
        if len(calls) == 2:
            break
        await asyncio.sleep(0.01)
    assert calls == [user.name, user.name]  # one check behind both requests
    release.set()
    for _ in range(100):  # the check behind finishes: the deleted user is refused from now on
        if await auth.check(user.name, PASSWORD) is None:
            break
        await asyncio.sleep(0.02)
    assert await auth.check(user.name, PASSWORD) is None


async def test_a_wrong_password_is_never_let_in_on_an_old_answer(
    proxy_auth: ModuleType, user: ProxyUser, checks: list[tuple[str, str]]
) -> None:
    auth = proxy_auth.ProxyAuthenticator(ttl=60)
    auth.NEGATIVE_TTL = 0.05
    assert await auth.check(user.name, "wrong") is None
    await asyncio.sleep(0.1)

    assert await auth.check(user.name, "wrong") is None
    assert len(checks) == 2  # the expired refusal was checked again, not reused
