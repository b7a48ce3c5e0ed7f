"""``/metrics``: Prometheus text format, optionally behind a bearer token."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import live
from server.fleet.models import Agent
from server.hub import Hub
from server.metrics import REGISTRY, LiveCollector


def _hub() -> Hub | None:
    running = live.current()
    return running.hub if running is not None else None


def _registered_agents() -> int:
    return Agent.objects.filter(revoked_at__isnull=True).count()


REGISTRY.register(LiveCollector(_hub, _registered_agents))


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = live.config().metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("metrics need Authorization: Bearer <token>\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="exitpool metrics"'
            return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
