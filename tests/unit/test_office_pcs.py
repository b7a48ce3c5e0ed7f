"""The admin's "Add office PCs" page and the agent-version warnings, without a running server.

The file the page hands out is read back with the agent's own loader, so the
two ends cannot drift apart. The installed agent using it end to end is in
``tests/installer/test_linux_package.py``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from desktop_agent.engine import preconfig
from exitpool import __version__
from tests.support.pages import row, text
from tests.unit.test_admin_pages import make_agent, unique

if TYPE_CHECKING:
    from django.test import Client

PAGE = "/admin/fleet/enrollmentkey/office-pcs/"
DOWNLOAD = f"{PAGE}download/"


@pytest.fixture(scope="module")
def client(django_db: None) -> Client:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser(unique("it"), "it@example.com", "pw"))
    return client


@pytest.fixture
def installers(settings: Any) -> Iterator[Path]:
    folder = Path(settings.DATA_DIR) / "installers"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


@pytest.fixture
def settings(django_db: None) -> Any:
    from django.conf import settings

    return settings


def add_batch(client: Client, **fields: Any) -> tuple[str, str]:
    """POST the form; returns the page's text and the key it showed."""
    page = client.post(PAGE, {"label": "Berlin office", **fields})
    assert page.status_code == 200
    body = page.content.decode()
    key = re.search(r'<input type="hidden" name="key" value="([^"]+)"', body)
    assert key, text(page)
    return text(page), html.unescape(key.group(1))


def test_the_page_explains_itself_and_offers_the_form(client: Client) -> None:
    page = text(client.get(PAGE))
    assert "exitpool-agent.json" in page
    assert "ws://testserver/ws/agent" in page
    assert "No installers on this server yet" in page
    assert f"Server {__version__}" in page
    assert "Add office PCs" in text(client.get("/admin/"))
    assert "Add office PCs" in text(client.get("/admin/fleet/enrollmentkey/"))


def test_a_batch_gets_a_new_key_and_a_file_the_agent_accepts(
    client: Client, tmp_path: Path
) -> None:
    from server.fleet.models import EnrollmentKey

    page, raw = add_batch(client, name_prefix="berlin-", expires_in_days=7)
    key = EnrollmentKey.find_valid(raw)
    assert key is not None and key.label == "Berlin office" and key.expires_at is not None
    assert "sudo apt install ./exitpool-agent_" in page
    assert "/VERYSILENT /SUPPRESSMSGBOXES /CONFIG=" in page
    assert "exitpool-agent --headless --config exitpool-agent.json" in page

    response = client.post(DOWNLOAD, {"key": raw, "name_prefix": "berlin-"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="exitpool-agent.json"'
    assert "no-store" in response["Cache-Control"]
    assert json.loads(response.content) == {
        "server": "ws://testserver/ws/agent",
        "enrollment_key": raw,
        "name_prefix": "berlin-",
    }
    saved = tmp_path / preconfig.PRECONFIG_FILE
    saved.write_bytes(response.content)
    found = preconfig.load(saved)
    assert (found.server, found.enrollment_key) == ("ws://testserver/ws/agent", raw)
    assert found.agent_name("PC0142") == "berlin-PC0142"


def test_the_public_url_wins_over_the_address_the_browser_used(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "PUBLIC_URL", "https://exitpool.example.com")
    _page, raw = add_batch(client)
    response = client.post(DOWNLOAD, {"key": raw})
    assert json.loads(response.content)["server"] == "wss://exitpool.example.com/ws/agent"


def test_the_page_and_the_agent_agree_on_the_file_name_and_prefix_length() -> None:
    from server.fleet import office_pcs

    assert office_pcs.PRECONFIG_FILE == preconfig.PRECONFIG_FILE
    assert office_pcs.MAX_NAME_PREFIX == preconfig.MAX_NAME_PREFIX


def test_the_key_is_shown_once_and_only_its_hash_is_kept(client: Client) -> None:
    from server.fleet.models import EnrollmentKey

    _page, raw = add_batch(client)
    key = EnrollmentKey.find_valid(raw)
    assert key is not None
    assert raw not in client.get(f"/admin/fleet/enrollmentkey/{key.pk}/change/").content.decode()
    assert raw not in client.get(PAGE).content.decode()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name_prefix": "berlin office/"}, "Use letters, digits"),
        ({"name_prefix": "x" * 41}, "at most 40 characters"),
        ({"expires_in_days": "0"}, "greater than or equal to 1"),
        ({"label": ""}, "This field is required"),
    ],
)
def test_the_form_refuses_what_the_agent_could_not_use(
    client: Client, fields: dict[str, str], problem: str
) -> None:
    page = client.post(PAGE, {"label": "Batch", **fields})
    assert problem in text(page)
    assert 'name="key"' not in page.content.decode()


def test_the_file_is_only_made_for_a_valid_key(client: Client) -> None:
    from django.utils import timezone

    from server.fleet.models import EnrollmentKey

    _page, raw = add_batch(client)
    assert client.get(DOWNLOAD).status_code == 400
    assert client.post(DOWNLOAD, {"key": "epk_made_up"}).status_code == 400
    assert client.post(DOWNLOAD, {"key": raw, "name_prefix": "a b"}).status_code == 400
    EnrollmentKey.objects.filter(prefix=raw[:10]).update(revoked_at=timezone.now())
    refused = client.post(DOWNLOAD, {"key": raw})
    assert refused.status_code == 400
    assert b"revoked or expired" in refused.content


def test_staff_without_rights_and_strangers_get_no_key(django_db: None) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    stranger = Client()
    assert stranger.get(PAGE).status_code == 302  # to the login page
    viewer = Client()
    viewer.force_login(User.objects.create_user(unique("staff"), is_staff=True))
    assert viewer.get(PAGE).status_code == 403
    assert viewer.post(DOWNLOAD, {"key": "x"}).status_code == 403


def test_installers_put_in_the_data_dir_are_offered_for_download(
    client: Client, installers: Path
) -> None:
    (installers / "exitpool-agent_0.2.0_amd64.deb").write_bytes(b"deb" * 1000)
    (installers / "exitpool-agent-0.2.0-setup.exe").write_bytes(b"exe")
    (installers / "notes.txt").write_text("not an installer")
    page = client.get(PAGE)
    assert "exitpool-agent_0.2.0_amd64.deb Linux · 2.93 KB" in text(page)
    assert "exitpool-agent-0.2.0-setup.exe Windows" in text(page)
    assert "notes.txt" not in text(page)
    steps, _raw = add_batch(client)
    assert "sudo apt install ./exitpool-agent_0.2.0_amd64.deb" in steps

    download = client.get(f"{PAGE}installers/exitpool-agent_0.2.0_amd64.deb")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"deb" * 1000  # type: ignore[attr-defined]
    assert client.get(f"{PAGE}installers/notes.txt").status_code == 404
    assert client.get(f"{PAGE}installers/secret_key").status_code == 404
    assert client.get(f"{PAGE}installers/..%2Fsecret_key").status_code != 200


# -------------------------------------------------------------------- agent versions


def test_agents_older_than_the_minimum_are_flagged_and_counted(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXITPOOL_MIN_AGENT_VERSION", "0.2.0")
    old = make_agent(os="Windows 11", agent_version="0.1.9")
    current = make_agent(os="Linux", agent_version="0.2.0")
    unknown = make_agent(os="Linux", agent_version="")
    page = client.get("/admin/fleet/agent/")
    assert "needs the new installer" in row(page, old.name)
    assert "needs the new installer" not in row(page, current.name)
    assert "needs the new installer" not in row(page, unknown.name)
    assert re.search(r"\d+ agents? runs? (a version|versions) older than 0\.2\.0", text(page))


def test_the_minimum_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.fleet import versions

    monkeypatch.setenv("EXITPOOL_MIN_AGENT_VERSION", "1.0")
    assert versions.minimum() == "1.0"
    assert versions.is_outdated("0.9.9", "1.0")
    assert not versions.is_outdated("1.0.0", "1.0")
    assert not versions.is_outdated("garbled!", "1.0")
    assert versions.count_outdated([("0.1.0", 3), ("1.2", 5), ("", 2)], "1.0") == 3


def test_a_minimum_that_is_not_a_version_is_refused_at_start() -> None:
    from server.config import ServerConfig

    with pytest.raises(ValueError, match="min_agent_version must be a version"):
        ServerConfig.from_env({"EXITPOOL_MIN_AGENT_VERSION": "latest"})
    assert ServerConfig.from_env({}).min_agent_version == __version__


def test_an_outdated_agent_is_logged_when_it_connects(
    django_db: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EXITPOOL_MIN_AGENT_VERSION", "0.2.0")
    agent = make_agent()
    agent.record_connect("198.51.100.9", {"os": "Linux", "agent_version": "0.1.0"})
    assert f"agent {agent.name} runs version 0.1.0, older than the minimum 0.2.0" in caplog.text
    caplog.clear()
    agent.record_connect("198.51.100.9", {"os": "Linux", "agent_version": __version__})
    assert "older than the minimum" not in caplog.text
