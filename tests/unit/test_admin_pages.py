"""The admin pages and actions without a running server (nothing is online).

Django's test client against the run's test database, real rows, a real
superuser. What the actions do to live agents is in ``test_admin_live.py``
and, end to end, in ``tests/integration/test_admin.py``.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.pages import row, text

if TYPE_CHECKING:
    from django.test import Client

    from server.fleet.models import Agent, ProxyUser

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names):04d}"  # fixed width: no name is a part of another


@pytest.fixture(scope="module")
def client(django_db: None) -> Client:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser(unique("root"), "root@example.com", "pw"))
    return client


def make_agent(**fields: Any) -> Agent:
    from server.fleet.models import Agent

    name = unique("pc")
    return Agent.objects.create(name=name, credential_hash=f"hash-{name}", **fields)


def make_user(password: str = "old-pw", **fields: Any) -> ProxyUser:
    from server.fleet.models import ProxyUser

    user = ProxyUser(name=unique("user"), **fields)
    user.set_password(password)
    user.save()
    return user


def shown_secrets(response: Any) -> dict[str, str]:
    """Label → value of every secret on a shown-once page."""
    page = response.content.decode()
    pairs = re.findall(r'<h3>([^<]+)</h3>\s*<code class="secret">([^<]+)</code>', page)
    return {label: html.unescape(value) for label, value in pairs}


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# ---------------------------------------------------------------------------- index


def test_the_index_is_titled_exitpool_and_sums_up_the_fleet(client: Client):
    make_agent()
    page = text(client.get("/admin/"))
    assert "Exitpool" in page
    assert "agents online" in page
    assert "proxy users enabled" in page
    assert "Live dashboard" in page


# ---------------------------------------------------------------------------- agents


def test_the_agent_list_shows_traffic_today_and_in_total_in_human_units(client: Client):
    from server.fleet.models import AgentDayUsage

    agent = make_agent(last_exit_ip="198.51.100.7", os="Windows 11", agent_version="0.1.0")
    AgentDayUsage.objects.create(agent=agent, day=today(), bytes_up=1536, bytes_down=3 * 1024**2)
    AgentDayUsage.objects.create(
        agent=agent, day=today() - dt.timedelta(days=3), bytes_up=1024**3, bytes_down=1024**3
    )
    cells = row(client.get("/admin/fleet/agent/"), agent.name)
    assert "198.51.100.7" in cells
    assert "↓ 3 MB ↑ 1.5 KB" in cells  # today
    assert "↓ 1 GB ↑ 1 GB" in cells  # total, rounded
    assert "Windows 11 · 0.1.0" in cells
    assert "offline" in cells


def test_the_agent_list_costs_the_same_queries_for_one_agent_or_many(client: Client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from server.fleet.models import AgentDayUsage

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/fleet/agent/").status_code == 200
        return len(captured)

    before = queries()
    for _ in range(5):
        AgentDayUsage.objects.create(agent=make_agent(), day=today(), bytes_up=1, bytes_down=2)
    assert queries() == before


def test_pausing_without_a_running_server_is_stored_and_said_so(client: Client):
    agent = make_agent()
    response = client.post(
        "/admin/fleet/agent/", {"action": "pause", "_selected_action": [agent.pk]}, follow=True
    )
    assert "Paused 1 agent (0 online" in text(response)
    agent.refresh_from_db()
    assert agent.paused_by_admin
    assert "offline (paused by admin)" in row(client.get("/admin/fleet/agent/"), agent.name)
    assert agent.name in text(client.get("/admin/fleet/agent/?paused=admin"))
    assert agent.name not in text(client.get("/admin/fleet/agent/?paused=no"))

    client.post("/admin/fleet/agent/", {"action": "resume", "_selected_action": [agent.pk]})
    agent.refresh_from_db()
    assert not agent.paused_by_admin


def test_the_online_filter_shows_no_agent_without_a_running_server(client: Client):
    agent = make_agent()
    assert agent.name not in text(client.get("/admin/fleet/agent/?connection=online"))
    assert agent.name in text(client.get("/admin/fleet/agent/?connection=offline"))


def test_revoking_an_agent_refuses_its_credential(client: Client):
    from server.fleet.models import Agent, EnrollmentKey

    key, _ = EnrollmentKey.issue("revoke test")
    agent, credential = Agent.enroll(key, unique("pc"), {})
    assert Agent.authenticate(credential) == agent
    response = client.post(
        "/admin/fleet/agent/", {"action": "revoke", "_selected_action": [agent.pk]}, follow=True
    )
    assert "Revoked 1 agent" in text(response)
    assert Agent.authenticate(credential) is None
    assert "revoked" in row(client.get("/admin/fleet/agent/"), agent.name)
    assert agent.name in text(client.get("/admin/fleet/agent/?connection=revoked"))


def test_agents_are_not_added_by_hand(client: Client):
    assert client.get("/admin/fleet/agent/add/").status_code == 403


def test_an_agents_page_has_pause_and_disconnect_buttons_that_only_take_posts(client: Client):
    agent = make_agent()
    page = client.get(f"/admin/fleet/agent/{agent.pk}/change/").content.decode()
    assert f"/admin/fleet/agent/{agent.pk}/control/pause/" in page
    assert f"/admin/fleet/agent/{agent.pk}/control/disconnect/" in page
    assert client.get(f"/admin/fleet/agent/{agent.pk}/control/pause/").status_code == 405

    response = client.post(f"/admin/fleet/agent/{agent.pk}/control/pause/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/fleet/agent/{agent.pk}/change/"
    agent.refresh_from_db()
    assert agent.paused_by_admin
    page = client.get(f"/admin/fleet/agent/{agent.pk}/change/").content.decode()
    assert f"/admin/fleet/agent/{agent.pk}/control/resume/" in page


def test_an_agent_is_renamed_by_nobody_but_labelled_by_the_admin(client: Client):
    agent = make_agent()
    response = client.post(
        f"/admin/fleet/agent/{agent.pk}/change/",
        {"name": "hijacked", "label": "Anna, 2nd floor", "max_streams": "8"},
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.name != "hijacked"
    assert (agent.label, agent.max_streams) == ("Anna, 2nd floor", 8)


# ----------------------------------------------------------------------- proxy users


def test_adding_a_user_shows_a_generated_password_and_token_once_and_keeps_hashes(
    client: Client,
):
    from server.fleet.models import ProxyUser

    name = unique("new")
    response = client.post(
        "/admin/fleet/proxyuser/add/",
        {"name": name, "new_password": "", "is_active": "on", "monthly_quota_bytes": "1000"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secrets = shown_secrets(response)
    password, token = secrets["Password"], secrets["API token"]
    assert len(password) >= 12
    assert f"curl -x http://{name}:{password}@testserver:8899" in text(response)

    user = ProxyUser.objects.get(name=name)
    assert user.check_password(password)
    assert ProxyUser.by_api_token(token) == user
    assert password not in user.password
    assert token not in user.api_token_hash
    assert user.monthly_quota_bytes == 1000
    change_page = client.get(f"/admin/fleet/proxyuser/{user.pk}/change/").content.decode()
    assert token not in change_page
    assert token[:10] in change_page  # the prefix tells tokens apart
    assert password not in change_page


def test_a_password_the_admin_chose_is_not_shown_back(client: Client):
    from server.fleet.models import ProxyUser

    name = unique("chosen")
    response = client.post(
        "/admin/fleet/proxyuser/add/",
        {"name": name, "new_password": "typed-by-admin", "is_active": "on"},
    )
    assert set(shown_secrets(response)) == {"API token"}
    assert "typed-by-admin" not in response.content.decode()
    assert ProxyUser.objects.get(name=name).check_password("typed-by-admin")


@pytest.mark.parametrize(
    ("name", "password", "error"),
    [
        ("x-session-y", "", "may not contain"),
        ("has space", "", "use 1-64 letters"),
        ("fine", "with:colon", "may not contain ':'"),
    ],
)
def test_the_add_form_refuses_what_would_break_the_proxy_username_or_basic_auth(
    client: Client, name: str, password: str, error: str
):
    from server.fleet.models import ProxyUser

    response = client.post("/admin/fleet/proxyuser/add/", {"name": name, "new_password": password})
    assert response.status_code == 200
    assert error in text(response)
    assert not ProxyUser.objects.filter(name=name).exists()


def test_resetting_a_password_shows_the_new_one_and_the_old_one_stops_working(client: Client):
    user = make_user("old-pw")
    response = client.post(
        "/admin/fleet/proxyuser/", {"action": "reset_password", "_selected_action": [user.pk]}
    )
    new = shown_secrets(response)["Password"]
    user.refresh_from_db()
    assert user.check_password(new)
    assert not user.check_password("old-pw")


def test_a_new_api_token_replaces_the_old_one(client: Client):
    from server.fleet.models import ProxyUser

    user = make_user()
    old = user.new_api_token()
    user.save()
    response = client.post(f"/admin/fleet/proxyuser/{user.pk}/credentials/token/")
    new = shown_secrets(response)["API token"]
    assert ProxyUser.by_api_token(new) == user
    assert ProxyUser.by_api_token(old) is None


def test_disabling_and_enabling_a_user(client: Client):
    from server.fleet.models import ProxyUser

    user = make_user("pw")
    client.post("/admin/fleet/proxyuser/", {"action": "disable", "_selected_action": [user.pk]})
    assert ProxyUser.authenticate(user.name, "pw") is None
    client.post("/admin/fleet/proxyuser/", {"action": "enable", "_selected_action": [user.pk]})
    assert ProxyUser.authenticate(user.name, "pw") == user


def test_the_user_list_shows_this_months_usage_against_the_quota(client: Client):
    from server.fleet.models import UserMonthUsage

    user = make_user(monthly_quota_bytes=2 * 1024**3, max_streams=4)
    month = today().replace(day=1)
    UserMonthUsage.objects.create(
        user=user, month=month, bytes_up=1024**2, bytes_down=511 * 1024**2
    )
    UserMonthUsage.objects.create(
        user=user, month=(month - dt.timedelta(days=1)).replace(day=1), bytes_down=1024**4
    )
    cells = row(client.get("/admin/fleet/proxyuser/"), user.name)
    assert "512 MB of 2 GB (25%)" in cells
    assert "0 of 4" in cells  # open streams of the user's own limit
    unlimited = make_user()
    assert "0 of 256 (default)" in row(client.get("/admin/fleet/proxyuser/"), unlimited.name)


# ------------------------------------------------------------------- enrollment keys


def test_adding_a_key_shows_it_once_with_the_agent_command_line(client: Client):
    from server.fleet.models import EnrollmentKey

    response = client.post("/admin/fleet/enrollmentkey/add/", {"label": "Berlin office"})
    raw = shown_secrets(response)["Enrollment key"]
    key = EnrollmentKey.find_valid(raw)
    assert key is not None
    assert key.label == "Berlin office"
    assert raw not in key.key_hash
    assert f"exitpool-agent --headless --server ws://testserver/ws/agent --key {raw}" in text(
        response
    )
    assert raw not in client.get(f"/admin/fleet/enrollmentkey/{key.pk}/change/").content.decode()


def test_the_key_list_counts_agents_and_says_which_keys_are_expired_or_revoked(client: Client):
    from django.utils import timezone

    from server.fleet.models import Agent, EnrollmentKey

    used, _ = EnrollmentKey.issue(unique("used"))
    for _ in range(2):
        Agent.enroll(used, unique("pc"), {})
    expired, _ = EnrollmentKey.issue(unique("expired"))
    expired.expires_at = timezone.now() - dt.timedelta(days=1)
    expired.save()
    page = client.get("/admin/fleet/enrollmentkey/")
    assert f"{used.prefix} {used.label} 2 " in row(page, used.prefix)
    assert "valid" in row(page, used.prefix)
    assert "expired" in row(page, expired.prefix)

    client.post("/admin/fleet/enrollmentkey/", {"action": "revoke", "_selected_action": [used.pk]})
    assert "revoked" in row(client.get("/admin/fleet/enrollmentkey/"), used.prefix)
    assert EnrollmentKey.objects.filter(pk=used.pk, revoked_at__isnull=False).exists()


# ----------------------------------------------------------------------- request log


def test_the_request_log_is_read_only(client: Client):
    entry = log_row("readonly.example")
    assert client.get("/admin/fleet/requestlog/add/").status_code == 403
    view = client.get(f"/admin/fleet/requestlog/{entry.pk}/change/")
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert client.post(f"/admin/fleet/requestlog/{entry.pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/fleet/requestlog/{entry.pk}/delete/").status_code == 403
    assert "delete_selected" not in client.get("/admin/fleet/requestlog/").content.decode()


def test_the_request_log_is_searched_by_host_and_filtered_by_result(client: Client):
    log_row("wanted.example", result="ok", bytes_down=2048)
    log_row("other.example", result="target-refused")
    found = text(client.get("/admin/fleet/requestlog/?q=wanted"))
    assert "wanted.example:443" in found
    assert "2 KB" in found
    assert "other.example" not in found
    failed = text(client.get("/admin/fleet/requestlog/?result=target-refused"))
    assert "other.example" in failed
    assert "wanted.example" not in failed


def log_row(host: str, result: str = "ok", bytes_down: int = 0) -> Any:
    from server.fleet.models import RequestLog

    return RequestLog.objects.create(
        time=dt.datetime.now(dt.UTC),
        kind="connect",
        user_name="someone",
        agent_name="somewhere",
        host=host,
        port=443,
        bytes_down=bytes_down,
        duration_ms=5,
        status=200,
        result=result,
    )


# ------------------------------------------------------------------- revokeagent


def test_revokeagent_revokes_once_and_names_unknown_agents(django_db: None):
    from io import StringIO

    from django.core.management import CommandError, call_command

    agent = make_agent()
    out = StringIO()
    call_command("revokeagent", agent.name, stdout=out)
    assert f"revoked agent {agent.name}" in out.getvalue()
    agent.refresh_from_db()
    assert agent.revoked_at is not None
    again = StringIO()
    call_command("revokeagent", agent.name, stdout=again)
    assert "already revoked" in again.getvalue()
    with pytest.raises(CommandError, match="no agent named"):
        call_command("revokeagent", "nobody-by-this-name")
