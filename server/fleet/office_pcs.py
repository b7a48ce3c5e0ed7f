"""The admin's "Add office PCs" page: one enrollment key and one file for a whole fleet.

IT fills in a label and an optional name prefix; the page makes a new
enrollment key, shows it once, and offers ``exitpool-agent.json`` (server URL,
key, prefix) with the one-line steps for each OS. The installed agent reads
that file on first run, so nobody types a server address thirty times. The
installers themselves are offered too when the admin has put them in
``<data dir>/installers/`` (``make installer`` writes them to ``dist/``).

The key is never stored in clear: the download is a POST that carries it back
from the page it was shown on, and is refused unless it is a valid key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.core.validators import RegexValidator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from exitpool import __version__
from server.fleet import versions
from server.fleet.models import EnrollmentKey
from tunnel.units import human_bytes

PRECONFIG_FILE = "exitpool-agent.json"
"""The name the agent looks for (``desktop_agent/engine/preconfig.py``)."""
MAX_NAME_PREFIX = 40
"""As the agent checks it: the prefix leaves room for the host name in a 100-character name."""
NAME_PREFIX = re.compile(r"\A[A-Za-z0-9._-]*\Z")
"""What a name prefix may hold, anchored at both ends: it becomes part of an agent's name."""
INSTALLER_SUFFIXES = (".deb", ".exe", ".dmg", ".msi", ".AppImage")


class OfficePCsForm(forms.Form):
    label = forms.CharField(
        max_length=200,
        initial="Office PCs",
        help_text="A note for admins, e.g. 'Berlin office, 3rd floor'.",
    )
    name_prefix = forms.CharField(
        max_length=MAX_NAME_PREFIX,
        required=False,
        help_text="Put before each PC's host name, e.g. 'berlin-' gives 'berlin-PC0142'.",
        validators=[RegexValidator(NAME_PREFIX, "Use letters, digits, '.', '_' and '-' only.")],
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Optional: after this many days no new PC can join with this file "
        "(PCs that joined keep working).",
    )


@dataclass(frozen=True)
class Installer:
    name: str
    size: str
    platform: str


def agent_url(request: HttpRequest) -> str:
    """The agents' WebSocket URL: ``EXITPOOL_PUBLIC_URL``'s, else as this browser reached us."""
    if settings.PUBLIC_URL:
        return "ws" + settings.PUBLIC_URL.removeprefix("http") + "/ws/agent"
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/ws/agent"


def preconfig(request: HttpRequest, key: str, name_prefix: str) -> dict[str, str]:
    return {"server": agent_url(request), "enrollment_key": key, "name_prefix": name_prefix}


def installers_dir() -> Path:
    return Path(settings.DATA_DIR) / "installers"


def available_installers() -> list[Installer]:
    """The installers the admin put in ``<data dir>/installers/``, newest name first."""
    folder = installers_dir()
    if not folder.is_dir():
        return []
    kinds = {".deb": "Linux", ".exe": "Windows", ".msi": "Windows", ".dmg": "macOS"}
    found = [
        Installer(path.name, human_bytes(path.stat().st_size), kinds.get(path.suffix, "Linux"))
        for path in folder.iterdir()
        if path.is_file() and path.name.endswith(INSTALLER_SUFFIXES)
    ]
    return sorted(found, key=lambda installer: installer.name, reverse=True)


def steps(installers: list[Installer]) -> list[tuple[str, str, str]]:
    """(OS, what to do, the command) for each OS, naming the installers that are there."""

    def named(platform: str, pattern: str) -> str:
        return next((i.name for i in installers if i.platform == platform), pattern)

    setup = named("Windows", f"exitpool-agent-{__version__}-setup.exe")
    deb = named("Linux", f"exitpool-agent_{__version__}_amd64.deb")
    return [
        (
            "Windows",
            f"Put {PRECONFIG_FILE} in the same folder as the setup and double-click the setup "
            "(no administrator rights needed). For many PCs at once, from a share:",
            f"{setup} /VERYSILENT /SUPPRESSMSGBOXES /CONFIG=\\\\fileserver\\it\\{PRECONFIG_FILE}",
        ),
        (
            "Linux (Debian, Ubuntu)",
            "Put the file where every user's agent finds it, then install the package:",
            f"sudo install -Dm644 {PRECONFIG_FILE} /etc/exitpool-agent/{PRECONFIG_FILE} "
            f"&& sudo apt install ./{deb}",
        ),
        (
            "macOS",
            "Put the file where the app finds it, then open the .dmg and drag the app to "
            "Applications:",
            'sudo mkdir -p "/Library/Application Support/Exitpool" && sudo cp '
            f'{PRECONFIG_FILE} "/Library/Application Support/Exitpool/"',
        ),
        (
            "A PC without a screen",
            "The same agent, headless:",
            f"exitpool-agent --headless --config {PRECONFIG_FILE}",
        ),
    ]


def add_office_pcs(request: HttpRequest, model_admin: ModelAdmin) -> TemplateResponse:  # type: ignore[type-arg]
    """GET: the form. POST: a new key, shown once, with the file and each OS's steps."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    installers = available_installers()
    form = OfficePCsForm(request.POST or None)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": "Add office PCs",
        "opts": model_admin.model._meta,
        "changelist_url": reverse("admin:fleet_enrollmentkey_changelist"),
        "form": form,
        "installers": installers,
        "installers_dir": installers_dir(),
        "server_version": __version__,
        "min_agent_version": versions.minimum(),
        "agent_url": agent_url(request),
    }
    if request.method == "POST" and form.is_valid():
        key, raw = EnrollmentKey.issue(form.cleaned_data["label"])
        days = form.cleaned_data["expires_in_days"]
        if days:
            key.expires_at = timezone.now() + dt.timedelta(days=days)
            key.save(update_fields=["expires_at"])
        prefix = form.cleaned_data["name_prefix"]
        context.update(
            key=key,
            raw_key=raw,
            name_prefix=prefix,
            preview=json.dumps(preconfig(request, raw, prefix), indent=2),
            steps=steps(installers),
            preconfig_file=PRECONFIG_FILE,
        )
    response = TemplateResponse(request, "admin/fleet/office_pcs.html", context)
    add_never_cache_headers(response)
    return response


def download_preconfig(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:  # type: ignore[type-arg]
    """``exitpool-agent.json`` for a key the page just showed (POST, so it is never cached)."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseBadRequest("POST the key from the Add office PCs page")
    raw = request.POST.get("key", "")
    prefix = request.POST.get("name_prefix", "")
    if len(prefix) > MAX_NAME_PREFIX or not NAME_PREFIX.match(prefix):
        return HttpResponseBadRequest("bad name prefix")
    if EnrollmentKey.find_valid(raw) is None:
        return HttpResponseBadRequest("not a valid enrollment key (revoked or expired?)")
    body = json.dumps(preconfig(request, raw, prefix), indent=2) + "\n"
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{PRECONFIG_FILE}"'
    add_never_cache_headers(response)
    return response


def download_installer(request: HttpRequest, model_admin: ModelAdmin, name: str) -> FileResponse:  # type: ignore[type-arg]
    """One of the installers the page lists (only those: no path reaches further)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if name not in {installer.name for installer in available_installers()}:
        raise Http404("no such installer")
    return FileResponse((installers_dir() / name).open("rb"), as_attachment=True, filename=name)
