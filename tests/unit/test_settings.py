"""Django settings from the environment: the helpers, and the production switches.

Django reads its settings once per process, so the switches are checked in a
fresh interpreter per environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import envbool, envint, envlist, envurl

# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on"])
def test_envbool_reads_yes(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EXITPOOL_X", value)
    assert envbool("EXITPOOL_X", False) is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_envbool_reads_no(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EXITPOOL_X", value)
    assert envbool("EXITPOOL_X", True) is False


def test_envbool_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXITPOOL_X", raising=False)
    assert envbool("EXITPOOL_X", True) is True
    assert envbool("EXITPOOL_X", False) is False


@pytest.mark.parametrize("value", ["ture", "2", "enabled"])
def test_envbool_refuses_a_typo_instead_of_reading_it_as_no(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EXITPOOL_TLS", value)
    with pytest.raises(ValueError, match="EXITPOOL_TLS"):
        envbool("EXITPOOL_TLS", False)


def test_envint_reads_a_number_or_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXITPOOL_X", " 31536000 ")
    assert envint("EXITPOOL_X", 0) == 31536000
    monkeypatch.setenv("EXITPOOL_X", "")
    assert envint("EXITPOOL_X", 7) == 7


@pytest.mark.parametrize("value", ["1y", "-1", "1.5"])
def test_envint_refuses_what_is_not_a_whole_number_from_zero(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EXITPOOL_X", value)
    with pytest.raises(ValueError, match="EXITPOOL_X"):
        envint("EXITPOOL_X", 0)


def test_envlist_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXITPOOL_X", " exitpool.example.com, ,.example.org ,")
    assert envlist("EXITPOOL_X", "*") == ["exitpool.example.com", ".example.org"]
    monkeypatch.delenv("EXITPOOL_X")
    assert envlist("EXITPOOL_X", "*") == ["*"]
    assert envlist("EXITPOOL_X", "") == []


def test_envurl_drops_the_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXITPOOL_X", "https://exitpool.example.com/")
    assert envurl("EXITPOOL_X") == "https://exitpool.example.com"
    monkeypatch.delenv("EXITPOOL_X")
    assert envurl("EXITPOOL_X") == ""


def test_envurl_wants_a_web_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXITPOOL_X", "exitpool.example.com")
    with pytest.raises(ValueError, match="http:// or https://"):
        envurl("EXITPOOL_X")


# ------------------------------------------------------------------ the settings a process gets

SHOWN = [
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "PUBLIC_URL",
    "CREATE_FIRST_ADMIN",
]


def settings_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly these EXITPOOL_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXITPOOL_")}
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {SHOWN!r}}}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "server.settings",
            "EXITPOOL_DATA_DIR": str(tmp_path),
            **env,
        },
    )


def settings_of(tmp_path: Path, **env: str) -> dict[str, object]:
    done = settings_with(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_the_defaults_are_safe_for_a_first_start_on_plain_http(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    assert settings["DEBUG"] is False
    assert settings["ALLOWED_HOSTS"] == ["*"]
    assert settings["SESSION_COOKIE_SECURE"] is False  # plain http: a Secure cookie never returns
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["X_FRAME_OPTIONS"] == "DENY"
    assert settings["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 0
    assert settings["CREATE_FIRST_ADMIN"] is True
    assert settings["PUBLIC_URL"] == ""


def test_django_never_reads_x_forwarded_proto_itself(tmp_path: Path) -> None:
    # Only server/forwarded.py may, and only from trusted proxies.
    settings = settings_of(tmp_path, EXITPOOL_TLS="1", EXITPOOL_TRUSTED_PROXIES="127.0.0.1")
    assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_production_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = settings_of(
        tmp_path,
        EXITPOOL_ALLOWED_HOSTS="exitpool.example.com",
        EXITPOOL_CSRF_TRUSTED_ORIGINS="https://exitpool.example.com",
        EXITPOOL_TLS="yes",
        EXITPOOL_HSTS_SECONDS="31536000",
        EXITPOOL_PUBLIC_URL="https://exitpool.example.com/",
        EXITPOOL_CREATE_ADMIN="0",
    )
    assert settings["ALLOWED_HOSTS"] == ["exitpool.example.com"]
    assert settings["CSRF_TRUSTED_ORIGINS"] == ["https://exitpool.example.com"]
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 31536000
    assert settings["PUBLIC_URL"] == "https://exitpool.example.com"
    assert settings["CREATE_FIRST_ADMIN"] is False
    assert settings["DEBUG"] is False


def test_a_mistyped_switch_stops_the_start_with_its_name(tmp_path: Path) -> None:
    done = settings_with(tmp_path, EXITPOOL_TLS="ture")
    assert done.returncode != 0
    assert "EXITPOOL_TLS='ture' is not a yes/no value" in done.stderr


def deploy_check(tmp_path: Path, **env: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "exitpool-server"), "check", "--deploy"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("EXITPOOL_")},
            "EXITPOOL_DATA_DIR": str(tmp_path),
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    report = done.stdout + done.stderr
    assert "System check identified" in report
    return report


def test_behind_tls_djangos_deploy_check_finds_the_cookies_and_hsts_set(tmp_path: Path) -> None:
    cookies_and_hsts = ("security.W004", "security.W012", "security.W016")
    plain = deploy_check(tmp_path)
    assert all(warning in plain for warning in cookies_and_hsts), plain
    behind_tls = deploy_check(tmp_path, EXITPOOL_TLS="1", EXITPOOL_HSTS_SECONDS="31536000")
    assert not any(warning in behind_tls for warning in cookies_and_hsts), behind_tls
