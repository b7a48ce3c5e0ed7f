"""List filters over agent state that lives in the running server's memory.

"Online" and "paused by owner" are known only to the hub; the filters ask
:mod:`server.fleet.live_state` for the matching ids and filter the database
rows with ``pk__in``. "Paused by admin" is stored, so it works offline too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from server.fleet import live_state


class ConnectionFilter(admin.SimpleListFilter):
    title = "connection"
    parameter_name = "connection"

    def lookups(
        self,
        request: HttpRequest,
        model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    ) -> list[tuple[str, str]]:
        return [("online", "online"), ("offline", "offline"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "online":
            return queryset.filter(pk__in=live_state.online_ids())
        if value == "offline":
            return queryset.exclude(pk__in=live_state.online_ids()).filter(revoked_at__isnull=True)
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class PausedFilter(admin.SimpleListFilter):
    title = "paused"
    parameter_name = "paused"

    def lookups(
        self,
        request: HttpRequest,
        model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    ) -> list[tuple[str, str]]:
        return [
            ("yes", "paused"),
            ("admin", "paused by admin"),
            ("owner", "paused by owner (online)"),
            ("no", "not paused"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        by_owner = Q(pk__in=live_state.paused_ids(by_admin=False))
        if value == "yes":
            return queryset.filter(Q(paused_by_admin=True) | by_owner)
        if value == "admin":
            return queryset.filter(paused_by_admin=True)
        if value == "owner":
            return queryset.filter(by_owner)
        if value == "no":
            return queryset.filter(paused_by_admin=False).exclude(by_owner)
        return queryset


class ExitIPFilter(admin.AllValuesFieldListFilter):
    """The exit IPs agents were last seen from (the live one for online agents)."""

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: dict[str, Any],
        model: type[Model],
        model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
        field_path: str,
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "exit IP"
