"""``/dashboard/``: the live page for staff, and the JSON snapshot it polls."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from server.dashboard.data import current_live, snapshot

POLL_INTERVAL_MS = 2000
"""How often the page asks for a new snapshot."""


@require_GET
@never_cache
@staff_member_required
def page(request: HttpRequest) -> HttpResponse:
    """The page, with a first snapshot inside so it is complete before the first poll."""
    context = {"initial": snapshot(current_live()), "poll_interval_ms": POLL_INTERVAL_MS}
    return render(request, "dashboard/index.html", context)


@require_GET
@never_cache
@staff_member_required
def data(request: HttpRequest) -> JsonResponse:
    """The current snapshot; never cached, so every poll sees the server's state now."""
    return JsonResponse(snapshot(current_live()))
