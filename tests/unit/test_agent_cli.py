"""``exitpool-agent``'s options: what the parser accepts and how it refuses the rest."""

from __future__ import annotations

import pytest

from desktop_agent.cli import build_parser


@pytest.mark.parametrize(("given", "kept"), [("127.0.0.2", "127.0.0.2"), ("::0001", "::1")])
def test_a_source_address_is_taken_in_its_normal_spelling(given: str, kept: str) -> None:
    assert build_parser().parse_args(["--source-address", given]).source_address == kept


@pytest.mark.parametrize("given", ["office-pc", "127.0.0.256", "10.0.0.0/8", ""])
def test_a_source_address_that_is_no_ip_is_refused_at_start(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--source-address", given])
    assert exited.value.code == 2
    assert f"--source-address: not an IP address: {given!r}" in capsys.readouterr().err
