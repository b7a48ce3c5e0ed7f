"""The admin at ``/admin/``: agents with their live state, proxy users, keys, the request log.

Agent actions go through :mod:`server.agent_control`, which writes the
database and reaches online agents at once through :mod:`server.live`.
Changes to proxy users make the gateway forget what it cached about them, so
a new password, a disabled account or a new limit applies to the next request.
Secrets (passwords, API tokens, enrollment keys) are shown once, on the page
answering the request that made them (:mod:`server.fleet.shown_once`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shlex
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from server import agent_control, live
from server.fleet import live_state, office_pcs, shown_once, versions
from server.fleet.admin_filters import ConnectionFilter, ExitIPFilter, PausedFilter
from server.fleet.admin_forms import EnrollmentKeyAddForm, ProxyUserAddForm, new_password
from server.fleet.live_state import AgentLive
from server.fleet.models import Agent, EnrollmentKey, ProxyUser, RequestLog
from server.fleet.tokens import new_token, token_hash
from server.fleet.usage import with_agent_usage, with_month_usage
from tunnel.units import human_bytes, human_duration, human_rate, share

admin.site.site_header = "Exitpool"
admin.site.site_title = "Exitpool admin"
admin.site.index_title = "Agents, proxy users and traffic"
admin.site.site_url = "/dashboard/"
admin.site.index_template = "admin/fleet/index.html"

CSS = {"all": ["fleet/admin.css"]}
BOTH_WAYS = "↑ to targets (what users sent) · ↓ from targets (what users received)"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _since(when: dt.datetime | None) -> SafeString:
    """``for 5 min``, with the exact time on hover."""
    if when is None:
        return mark_safe("")
    exact = timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S %Z")
    how_long = human_duration((timezone.now() - when).total_seconds())
    return format_html('<span class="ep-muted" title="since {}">for {}</span>', exact, how_long)


def _up_down(up: int, down: int) -> SafeString:
    return format_html(
        '<span class="ep-nowrap" title="{}">↓ {}<br>↑ {}</span>',
        BOTH_WAYS,
        human_bytes(down),
        human_bytes(up),
    )


def _host(request: HttpRequest) -> str:
    """The host name the admin reached us by, without the port (for the proxy URL)."""
    hostname = urlsplit(f"//{request.get_host()}").hostname or "localhost"
    return f"[{hostname}]" if ":" in hostname else hostname


# ---------------------------------------------------------------------------- agents


def agent_state(agent: Agent, online: AgentLive | None) -> SafeString:
    """online / paused by admin or owner / offline / revoked, and since when."""
    if agent.revoked_at is not None:
        return format_html(
            '<span class="ep-state ep-revoked">revoked</span> {}',
            _since(agent.revoked_at),
        )
    if online is None:
        note = " (paused by admin)" if agent.paused_by_admin else ""
        return format_html(
            '<span class="ep-state ep-offline">offline{}</span> {}', note, _since(agent.last_seen)
        )
    if online.paused:
        return format_html(
            '<span class="ep-state ep-paused">paused by {}</span> {}',
            online.paused_by,
            _since(online.paused_since),
        )
    return format_html(
        '<span class="ep-state ep-online">online</span> {}', _since(online.connected_at)
    )


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["agent", "exit_ip", "state", "streams", "today", "total", "software"]
    list_filter = [ConnectionFilter, PausedFilter, ("last_exit_ip", ExitIPFilter)]
    search_fields = ["name", "label", "last_exit_ip"]
    actions = ["pause", "resume", "disconnect", "revoke"]
    fieldsets = [
        (None, {"fields": ["name", "label", "state", "exit_ip"]}),
        ("Traffic", {"fields": ["streams", "today", "total", "requests"]}),
        (
            "Limits",
            {
                "fields": ["max_streams"],
                "description": "A new stream limit applies from the agent's next connection "
                "(disconnect it to apply it now).",
            },
        ),
        ("Software", {"fields": ["os", "agent_version"]}),
        ("History", {"fields": ["enrollment_key", "created", "last_seen", "revoked_at"]}),
    ]
    readonly_fields = [
        "name",
        "state",
        "exit_ip",
        "streams",
        "today",
        "total",
        "requests",
        "os",
        "agent_version",
        "enrollment_key",
        "created",
        "last_seen",
        "revoked_at",
    ]

    class Media:
        css = CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return with_agent_usage(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents enroll themselves with an enrollment key

    # ------------------------------------------------------------- columns

    @admin.display(description="agent · owner", ordering="name")
    def agent(self, agent: Agent) -> SafeString:
        return format_html(
            '<strong>{}</strong><br><span class="ep-muted">{}</span>', agent.name, agent.label
        )

    @admin.display(description="state")
    def state(self, agent: Agent) -> SafeString:
        return agent_state(agent, live_state.agent_live(agent.pk))

    @admin.display(description="exit IP", ordering="last_exit_ip")
    def exit_ip(self, agent: Agent) -> str:
        online = live_state.agent_live(agent.pk)
        return online.exit_ip if online is not None else agent.last_exit_ip or "—"

    @admin.display(description="open streams")
    def streams(self, agent: Agent) -> SafeString:
        online = live_state.agent_live(agent.pk)
        if online is None:
            return mark_safe('<span class="ep-muted">—</span>')
        rate = ""
        if online.rate_up or online.rate_down:
            rate = f"↓ {human_rate(online.rate_down)} ↑ {human_rate(online.rate_up)}"
        return format_html(
            '{} <span class="ep-muted">of {}</span><br><span class="ep-muted">{}</span>',
            online.open_streams,
            online.max_streams,
            rate,
        )

    @admin.display(description="today", ordering="today_bytes")
    def today(self, agent: Any) -> SafeString:
        return _up_down(agent.today_up, agent.today_down)

    @admin.display(description="total", ordering="total_bytes")
    def total(self, agent: Any) -> SafeString:
        return _up_down(agent.total_up, agent.total_down)

    @admin.display(description="OS · version", ordering="os")
    def software(self, agent: Agent) -> SafeString:
        text = " · ".join(part for part in (agent.os, agent.agent_version) if part) or "—"
        least = versions.minimum()
        if not versions.is_outdated(agent.agent_version, least):
            return format_html("{}", text)
        return format_html(
            '{}<br><span class="ep-outdated" title="older than {}, the minimum this server '
            'asks for">⚠ needs the new installer</span>',
            text,
            least,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Say up front how many PCs run an agent older than the server's minimum."""
        least = versions.minimum()
        running = (
            Agent.objects.filter(revoked_at__isnull=True)
            .values_list("agent_version")
            .annotate(agents=Count("id"))
        )
        outdated = versions.count_outdated(running, least)
        if outdated and request.method == "GET":
            self.message_user(
                request,
                format_html(
                    "{} {} older than {}, the minimum this server asks for: give {} the "
                    'new installer from <a href="{}">Add office PCs</a> (they keep working '
                    "meanwhile).",
                    _plural(outdated, "agent"),
                    "runs a version" if outdated == 1 else "run versions",
                    least,
                    "it" if outdated == 1 else "them",
                    reverse("admin:fleet_enrollmentkey_office_pcs"),
                ),
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description="request log")
    def requests(self, agent: Agent) -> SafeString:
        url = reverse("admin:fleet_requestlog_changelist") + f"?agent__id__exact={agent.pk}"
        return format_html('<a href="{}">requests this agent carried</a>', url)

    # ------------------------------------------------------------- actions

    @admin.action(
        description="Pause: no new streams (kept across reconnects)", permissions=["change"]
    )
    def pause(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agents = list(queryset)
        online = agent_control.set_paused(agents, True)
        self.message_user(
            request,
            f"Paused {_plural(len(agents), 'agent')} ({online} online: they take no new "
            "streams from now on; running ones finish). They stay paused until resumed.",
        )

    @admin.action(description="Resume: carry streams again", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agents = list(queryset)
        online = agent_control.set_paused(agents, False)
        self.message_user(
            request, f"Resumed {_plural(len(agents), 'agent')} ({online} online now carrying)."
        )

    @admin.action(description="Disconnect (they reconnect by themselves)", permissions=["change"])
    def disconnect(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agents = list(queryset)
        online = agent_control.disconnect(agents)
        offline = " (the others were offline)" if online < len(agents) else ""
        self.message_user(
            request,
            f"Disconnected {online} of {_plural(len(agents), 'agent')}{offline}. "
            "Agents reconnect by themselves after a moment.",
            messages.SUCCESS if online else messages.WARNING,
        )

    @admin.action(description="Revoke: cut off now and refuse from now on", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agents = list(queryset)
        online = agent_control.revoke(agents)
        self.message_user(
            request,
            f"Revoked {_plural(len(agents), 'agent')} ({online} online, cut off now). "
            "They are refused from now on; a PC can only come back by enrolling again.",
        )

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        agent_control.revoke([obj])  # cut it off now, not at the next flush
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agent_control.revoke(list(queryset))
        super().delete_queryset(request, queryset)

    # ------------------------------------------ buttons on an agent's page

    def get_urls(self) -> list[URLPattern]:
        control = self.admin_site.admin_view(require_POST(self.control_view))
        return [
            path("<path:object_id>/control/<str:what>/", control, name="fleet_agent_control"),
            *super().get_urls(),
        ]

    def control_view(self, request: HttpRequest, object_id: str, what: str) -> HttpResponse:
        """Pause, resume or disconnect one agent from its change page."""
        agent = get_object_or_404(Agent, pk=object_id)
        if not self.has_change_permission(request, agent):
            return HttpResponse(status=403)
        do: dict[str, Callable[[HttpRequest, QuerySet[Agent]], None]] = {
            "pause": self.pause,
            "resume": self.resume,
            "disconnect": self.disconnect,
        }
        if what not in do:
            return HttpResponse(status=404)
        do[what](request, Agent.objects.filter(pk=agent.pk))
        return HttpResponseRedirect(reverse("admin:fleet_agent_change", args=[agent.pk]))


# ------------------------------------------------------------------------ proxy users


def _forget(user_ids: Iterable[int]) -> None:
    """Make the gateway check these users again on their next request (after the commit)."""
    ids = list(user_ids)

    def forget() -> None:
        running = live.current()
        if running is not None:
            for user_id in ids:
                running.call(functools.partial(running.forget_user, user_id))

    transaction.on_commit(forget)


@admin.register(ProxyUser)
class ProxyUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "is_active", "streams", "used_this_month", "api_token", "created"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    actions = ["reset_password", "new_api_token", "enable", "disable"]
    add_form = ProxyUserAddForm
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        ("Limits", {"fields": ["max_streams", "monthly_quota_bytes", "used_this_month"]}),
        ("Credentials", {"fields": ["api_token", "created"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["name", "new_password", "is_active"]}),
        ("Limits", {"fields": ["max_streams", "monthly_quota_bytes"]}),
    ]
    readonly_fields = ["used_this_month", "api_token", "created"]

    class Media:
        css = CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProxyUser]:
        return with_month_usage(super().get_queryset(request))

    def get_fieldsets(self, request: HttpRequest, obj: ProxyUser | None = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(
        self,
        request: HttpRequest,
        obj: ProxyUser | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm[ProxyUser]]:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    # ------------------------------------------------------------- columns

    @admin.display(description="streams (open / max)")
    def streams(self, user: ProxyUser) -> SafeString:
        running = live.current()
        open_now = running.accounting.open_by_user.get(user.pk, 0) if running else 0
        limit = (
            str(user.max_streams)
            if user.max_streams is not None
            else f"{live.config().user_max_streams} (default)"
        )
        return format_html('{} <span class="ep-muted">of {}</span>', open_now, limit)

    @admin.display(description="used this month", ordering="month_bytes")
    def used_this_month(self, user: Any) -> SafeString:
        used = getattr(user, "month_bytes", 0)
        over = user.monthly_quota_bytes is not None and used >= user.monthly_quota_bytes
        return format_html(
            '<span class="{}" title="{}">{}</span>',
            "ep-error" if over else "ep-nowrap",
            f"{getattr(user, 'month_requests', 0)} requests this month (UTC)",
            share(used, user.monthly_quota_bytes),
        )

    @admin.display(description="API token")
    def api_token(self, user: ProxyUser) -> str:
        return f"{user.api_token_prefix}…" if user.api_token_prefix else "—"

    # ------------------------------------------------------- add and change

    def save_model(
        self, request: HttpRequest, obj: ProxyUser, form: ModelForm[ProxyUser], change: bool
    ) -> None:
        if not change:
            assert isinstance(form, ProxyUserAddForm)
            chosen = form.chosen_password()
            password = chosen or new_password()
            obj.set_password(password)
            token = obj.new_api_token()
            super().save_model(request, obj, form, change)
            shown_once.keep(request, (None if chosen else password, token))
            return
        super().save_model(request, obj, form, change)
        _forget([obj.pk])

    def response_add(
        self, request: HttpRequest, obj: ProxyUser, post_url_continue: str | None = None
    ) -> HttpResponse:
        password, token = shown_once.take(request)
        return self._show(request, f"New proxy user {obj.name}", [(obj, password, token)])

    def _show(
        self,
        request: HttpRequest,
        title: str,
        users: list[tuple[ProxyUser, str | None, str | None]],
    ) -> TemplateResponse:
        """The shown-once page for new passwords and/or API tokens of ``users``."""
        proxy = f"{_host(request)}:{live.config().proxy_address[1]}"
        api = request.build_absolute_uri("/api/v1/fetch")
        sections = []
        for user, password, token in users:
            secrets = []
            examples = []
            if password is not None:
                secrets.append(
                    shown_once.Secret("Password", password, "For the proxy (Basic auth).")
                )
                examples.append(
                    (
                        "Use the proxy",
                        f"curl -x {shlex.quote(f'http://{user.name}:{password}@{proxy}')} "
                        "https://example.com/",
                    )
                )
            if token is not None:
                secrets.append(
                    shown_once.Secret("API token", token, "For the JSON API (Bearer token).")
                )
                body = json.dumps({"url": "https://example.com/"})
                examples.append(
                    (
                        "Use the API",
                        f"curl -H 'Authorization: Bearer {token}' "
                        f"-H 'Content-Type: application/json' -d {shlex.quote(body)} {api}",
                    )
                )
            link = reverse("admin:fleet_proxyuser_change", args=[user.pk])
            sections.append(shown_once.Section(user.name, secrets, examples, link))
        return shown_once.render(request, self, title, sections)

    def delete_model(self, request: HttpRequest, obj: ProxyUser) -> None:
        _forget([obj.pk])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProxyUser]) -> None:
        _forget(list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)

    # ------------------------------------------------------------- actions

    @admin.action(description="Reset password (new one shown once)", permissions=["change"])
    def reset_password(
        self, request: HttpRequest, queryset: QuerySet[ProxyUser]
    ) -> TemplateResponse:
        users = list(queryset)
        shown: list[tuple[ProxyUser, str | None, str | None]] = []
        for user in users:
            password = new_password()
            user.set_password(password)
            user.save(update_fields=["password"])
            self.log_change(request, user, "reset the password")
            shown.append((user, password, None))
        _forget(u.pk for u in users)
        return self._show(request, "New passwords", shown)

    @admin.action(
        description="New API token (shown once; the old one stops working)", permissions=["change"]
    )
    def new_api_token(
        self, request: HttpRequest, queryset: QuerySet[ProxyUser]
    ) -> TemplateResponse:
        users = list(queryset)
        shown: list[tuple[ProxyUser, str | None, str | None]] = []
        for user in users:
            token = user.new_api_token()
            user.save(update_fields=["api_token_hash", "api_token_prefix"])
            self.log_change(request, user, "issued a new API token")
            shown.append((user, None, token))
        _forget(u.pk for u in users)
        return self._show(request, "New API tokens", shown)

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[ProxyUser]) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Disable (refused from the next request on)", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[ProxyUser]) -> None:
        self._set_active(request, queryset, False)

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[ProxyUser], active: bool
    ) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        ProxyUser.objects.filter(pk__in=ids).update(is_active=active)
        _forget(ids)
        self.message_user(
            request, f"{'Enabled' if active else 'Disabled'} {_plural(len(ids), 'proxy user')}."
        )

    # ------------------------------------------------- buttons on a user's page

    def get_urls(self) -> list[URLPattern]:
        credentials = self.admin_site.admin_view(require_POST(self.credentials_view))
        return [
            path(
                "<path:object_id>/credentials/<str:what>/",
                credentials,
                name="fleet_proxyuser_credentials",
            ),
            *super().get_urls(),
        ]

    def credentials_view(self, request: HttpRequest, object_id: str, what: str) -> HttpResponseBase:
        """Reset one user's password or API token from their change page."""
        user = get_object_or_404(ProxyUser, pk=object_id)
        if not self.has_change_permission(request, user):
            return HttpResponse(status=403)
        users = ProxyUser.objects.filter(pk=user.pk)
        if what == "password":
            return self.reset_password(request, users)
        if what == "token":
            return self.new_api_token(request, users)
        return HttpResponse(status=404)


# -------------------------------------------------------------------- enrollment keys


@admin.register(EnrollmentKey)
class EnrollmentKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["prefix", "label", "agent_count", "created", "expires_at", "status"]
    search_fields = ["label", "prefix"]
    actions = ["revoke"]
    add_form = EnrollmentKeyAddForm
    fields = ["label", "prefix", "status", "agent_count", "created", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "status", "agent_count", "created", "revoked_at"]

    class Media:
        css = CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet[EnrollmentKey]:
        keys: QuerySet[EnrollmentKey] = super().get_queryset(request)
        annotated: QuerySet[EnrollmentKey] = keys.annotate(agent_total=Count("agents"))
        return annotated

    def get_fields(self, request: HttpRequest, obj: EnrollmentKey | None = None) -> Any:
        return ["label", "expires_at"] if obj is None else self.fields

    def get_urls(self) -> list[URLPattern]:
        def view(function: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
            return self.admin_site.admin_view(functools.partial(function, model_admin=self))

        return [
            path(
                "office-pcs/",
                view(office_pcs.add_office_pcs),
                name="fleet_enrollmentkey_office_pcs",
            ),
            path(
                "office-pcs/download/",
                view(office_pcs.download_preconfig),
                name="fleet_enrollmentkey_office_pcs_download",
            ),
            path(
                "office-pcs/installers/<str:name>",
                view(office_pcs.download_installer),
                name="fleet_enrollmentkey_office_pcs_installer",
            ),
            *super().get_urls(),
        ]

    def get_form(
        self,
        request: HttpRequest,
        obj: EnrollmentKey | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[ModelForm[EnrollmentKey]]:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="agents enrolled", ordering="agent_total")
    def agent_count(self, key: Any) -> SafeString:
        count = getattr(key, "agent_total", 0)
        url = reverse("admin:fleet_agent_changelist") + f"?enrollment_key__id__exact={key.pk}"
        return format_html('<a href="{}">{}</a>', url, count) if count else mark_safe("0")

    @admin.display(description="status")
    def status(self, key: EnrollmentKey) -> SafeString:
        if key.revoked_at is not None:
            state = ("revoked", "revoked")
        elif key.expires_at is not None and key.expires_at <= timezone.now():
            state = ("offline", "expired")
        else:
            state = ("online", "valid")
        return format_html('<span class="ep-state ep-{}">{}</span>', *state)

    def save_model(
        self,
        request: HttpRequest,
        obj: EnrollmentKey,
        form: ModelForm[EnrollmentKey],
        change: bool,
    ) -> None:
        if not change:
            raw = new_token("epk")  # as EnrollmentKey.issue does
            obj.key_hash = token_hash(raw)
            obj.prefix = raw[:10]
            shown_once.keep(request, raw)
        super().save_model(request, obj, form, change)

    def response_add(
        self, request: HttpRequest, obj: EnrollmentKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw: str = shown_once.take(request)
        server = office_pcs.agent_url(request)
        command = f"exitpool-agent --headless --server {server} --key {raw}"
        section = shown_once.Section(
            obj.label or obj.prefix,
            [
                shown_once.Secret(
                    "Enrollment key",
                    raw,
                    "An agent exchanges it for its own credential on first connect.",
                )
            ],
            [
                ("Run an agent without a screen", command),
                ("Or in the tray app's settings", f"Server: {server}\nKey: {raw}"),
            ],
            reverse("admin:fleet_enrollmentkey_change", args=[obj.pk]),
        )
        return shown_once.render(request, self, "New enrollment key", [section])

    @admin.action(description="Revoke: no new agents may enroll with it", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[EnrollmentKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            f"Revoked {_plural(count, 'enrollment key')}. Agents already enrolled with them "
            "keep working (revoke those agents to cut them off).",
        )


# ------------------------------------------------------------------------ request log


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: rows are written by the server's accounting and pruned by it."""

    list_display = [
        "when",
        "via",
        "by_user",
        "by_agent",
        "destination",
        "sent",
        "received",
        "duration",
        "outcome",
    ]
    list_filter = ["result", "kind", "user", "agent"]
    search_fields = ["host"]
    search_help_text = "Search by destination host."
    date_hierarchy = "time"
    list_per_page = 100
    show_full_result_count = False

    class Media:
        css = CSS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="time", ordering="time")
    def when(self, row: RequestLog) -> SafeString:
        local = timezone.localtime(row.time)
        short = "%H:%M:%S" if local.date() == timezone.localdate() else "%Y-%m-%d %H:%M"
        return format_html(
            '<span class="ep-nowrap" title="{}">{}</span>',
            local.strftime("%Y-%m-%d %H:%M:%S.%f %Z"),
            local.strftime(short),
        )

    @admin.display(description="user", ordering="user_name")
    def by_user(self, row: RequestLog) -> str:
        return row.user_name or "—"

    @admin.display(description="agent", ordering="agent_name")
    def by_agent(self, row: RequestLog) -> str:
        return row.agent_name or "—"

    @admin.display(description="kind", ordering="kind")
    def via(self, row: RequestLog) -> str:
        return row.kind

    @admin.display(description="destination", ordering="host")
    def destination(self, row: RequestLog) -> str:
        return f"{row.host}:{row.port}"

    @admin.display(description="↑ sent", ordering="bytes_up")
    def sent(self, row: RequestLog) -> str:
        return human_bytes(row.bytes_up)

    @admin.display(description="↓ received", ordering="bytes_down")
    def received(self, row: RequestLog) -> str:
        return human_bytes(row.bytes_down)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, row: RequestLog) -> str:
        ms = row.duration_ms
        return f"{ms} ms" if ms < 10_000 else f"{ms / 1000:.0f} s"

    @admin.display(description="result", ordering="result")
    def outcome(self, row: RequestLog) -> SafeString:
        """The result code, and the status the proxy answered with."""
        return format_html(
            '<span class="{}">{}</span> <span class="ep-muted">{}</span>',
            "" if row.result == "ok" else "ep-error",
            row.result,
            row.status or "",
        )
