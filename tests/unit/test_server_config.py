"""Server settings: addresses, ``EXITPOOL_*`` variables and command-line overrides."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from server.config import ServerConfig, default_data_dir, split_host_port

# ------------------------------------------------------------------ split_host_port


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0:8000", ("0.0.0.0", 8000)),
        ("127.0.0.1:8899", ("127.0.0.1", 8899)),
        ("localhost:80", ("localhost", 80)),
        (":8899", ("0.0.0.0", 8899)),
        ("8899", ("0.0.0.0", 8899)),
        ("[::1]:80", ("::1", 80)),
        ("[::]:8000", ("::", 8000)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ],
)
def test_it_splits_host_and_port(value: str, expected: tuple[str, int]) -> None:
    assert split_host_port(value) == expected


def test_it_fills_in_the_given_default_host() -> None:
    assert split_host_port(":8000", default_host="127.0.0.1") == ("127.0.0.1", 8000)
    assert split_host_port("8000", default_host="::") == ("::", 8000)


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1", "", "[::1]", "host:8 000"],
)
def test_it_rejects_a_bad_port(value: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(value)


# ------------------------------------------------------------------ from_env


def test_it_uses_the_defaults_when_no_variable_is_set() -> None:
    assert ServerConfig.from_env({}) == ServerConfig()


def test_it_reads_every_field_from_its_variable_with_the_fields_type() -> None:
    config = ServerConfig.from_env(
        {
            "EXITPOOL_HTTP": "127.0.0.1:9000",
            "EXITPOOL_PROXY": "[::1]:9899",
            "EXITPOOL_MAX_HEADER_BYTES": "2048",
            "EXITPOOL_OPEN_TIMEOUT": "2.5",
            "EXITPOOL_AUTH_CACHE_SECONDS": "0",
            "EXITPOOL_STICKY_SESSIONS_MAX": " 10 ",
            "EXITPOOL_MAX_STREAMS_PER_AGENT": "16",
        }
    )

    assert config.http == "127.0.0.1:9000"
    assert config.proxy == "[::1]:9899"
    assert config.max_header_bytes == 2048 and type(config.max_header_bytes) is int
    assert config.open_timeout == 2.5 and type(config.open_timeout) is float
    assert config.auth_cache_seconds == 0.0 and type(config.auth_cache_seconds) is float
    assert config.sticky_sessions_max == 10
    assert config.max_streams_per_agent == 16
    assert config.http_address == ("127.0.0.1", 9000)
    assert config.proxy_address == ("::1", 9899)


def test_it_names_each_variable_after_its_field() -> None:
    for field in fields(ServerConfig):
        default = getattr(ServerConfig(), field.name)
        raw = "1.0" if isinstance(default, float) else "1"
        if isinstance(default, str):
            raw = "9.9" if field.name == "min_agent_version" else "127.0.0.1:1"

        config = ServerConfig.from_env({f"EXITPOOL_{field.name.upper()}": raw})

        assert getattr(config, field.name) != default, field.name


def test_it_ignores_variables_that_name_no_field() -> None:
    config = ServerConfig.from_env(
        {"EXITPOOL_NOT_A_SETTING": "x", "HTTP": "1.2.3.4:5", "PATH": "/"}
    )

    assert config == ServerConfig()


def test_it_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXITPOOL_HEADER_TIMEOUT", "3")

    assert ServerConfig.from_env().header_timeout == 3.0


@pytest.mark.parametrize(
    ("variable", "raw", "kind"),
    [
        ("EXITPOOL_MAX_STREAMS_PER_AGENT", "many", "int"),
        ("EXITPOOL_MAX_HEADER_BYTES", "1.5", "int"),
        ("EXITPOOL_MAX_HEADER_BYTES", "64k", "int"),
        ("EXITPOOL_STICKY_SESSIONS_MAX", "", "int"),
        ("EXITPOOL_OPEN_TIMEOUT", "fast", "float"),
        ("EXITPOOL_WS_PING_INTERVAL", "20s", "float"),
    ],
)
def test_it_rejects_a_bad_value_naming_the_variable(variable: str, raw: str, kind: str) -> None:
    with pytest.raises(ValueError) as caught:
        ServerConfig.from_env({variable: raw})

    assert str(caught.value) == f"{variable}={raw!r} is not a {kind}"


# ------------------------------------------------------------------ overrides and the data dir


def test_it_overrides_only_what_is_given() -> None:
    base = ServerConfig.from_env({"EXITPOOL_HTTP": "127.0.0.1:9000"})

    config = base.with_overrides(http=None, proxy="127.0.0.1:9899", open_timeout=None)

    assert config.http == "127.0.0.1:9000"
    assert config.proxy == "127.0.0.1:9899"
    assert config.open_timeout == base.open_timeout
    assert base.proxy == "0.0.0.0:8899"


def test_it_returns_an_equal_config_when_every_override_is_none() -> None:
    base = ServerConfig()

    assert base.with_overrides(http=None, proxy=None) == base


def test_it_is_immutable() -> None:
    with pytest.raises(FrozenInstanceError):
        ServerConfig().http = "1.2.3.4:5"  # type: ignore[misc]


def test_it_takes_the_data_dir_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXITPOOL_DATA_DIR", str(tmp_path / "data"))

    assert default_data_dir() == (tmp_path / "data").resolve()


def test_it_defaults_the_data_dir_to_var_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EXITPOOL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)

    assert default_data_dir() == (tmp_path / "var").resolve()


@pytest.mark.parametrize("raw", ["-1", "nan", "inf"])
def test_it_refuses_negative_or_infinite_limits_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="open_timeout"):
        ServerConfig.from_env({"EXITPOOL_OPEN_TIMEOUT": raw})
