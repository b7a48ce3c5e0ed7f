"""The OpenAPI description validates, and it and docs/api.md name every error code the API uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]

# Where the API's answers come from: its own errors, the shared stream opening, the limits.
SOURCES = [*sorted((ROOT / "server" / "api").glob("*.py")), ROOT / "server" / "streams.py"]
RAISED = re.compile(r'(?:ApiError|OpenFailed)\(\s*\d{3},\s*"([a-z-]+)"')
LIMITED = re.compile(r'Limited\(\s*"([a-z-]+)"')
NO_AGENT = re.compile(r'"(no-agent|agent-[a-z]+)"')  # NoAgent's default code and pinned ones


@pytest.fixture(scope="module")
def openapi(django_db: None) -> object:
    from server.api import openapi

    return openapi


def codes_in_use() -> set[str]:
    from server.streams import OPEN_FAILURES

    codes = {code for _, code in OPEN_FAILURES.values()} | {"agent-error"}
    for path in SOURCES:
        codes |= set(RAISED.findall(path.read_text()))
    codes |= set(LIMITED.findall((ROOT / "server" / "accounting.py").read_text()))
    codes |= set(NO_AGENT.findall((ROOT / "server" / "hub.py").read_text()))
    return codes


def test_the_description_is_valid_openapi(openapi):
    validate(openapi.OPENAPI)
    assert openapi.OPENAPI["openapi"].startswith("3.1")


def test_the_scan_finds_the_codes_it_should(openapi):
    found = codes_in_use()
    assert {"bad-request", "no-agent", "quota-exceeded", "response-too-large"} <= found


def test_every_error_code_is_described(openapi):
    described = set(openapi.ERROR_CODES)
    missing = codes_in_use() - described
    assert not missing, f"codes the API answers with but does not describe: {missing}"
    enum = openapi.OPENAPI["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert set(enum) == described


def test_every_error_code_is_in_the_documentation(openapi):
    doc = (ROOT / "docs" / "api.md").read_text()
    undocumented = {code for code in openapi.ERROR_CODES if f"`{code}`" not in doc}
    assert not undocumented, f"docs/api.md does not explain: {undocumented}"


def test_every_status_in_the_code_table_matches_the_code(openapi):
    doc = (ROOT / "docs" / "api.md").read_text()
    for code, text in openapi.ERROR_CODES.items():
        status = text.split(":")[0]
        assert re.search(rf"\|\s*{status}\s*\|[^\n]*`{code}`", doc), (code, status)
