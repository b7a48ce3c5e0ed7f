"""The admin index's summary: what an admin wants to know before clicking anywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.db.models import Sum

from server.fleet import live_state
from server.fleet.models import Agent, AgentDayUsage, ProxyUser, TrafficMinute
from server.fleet.usage import utc_today
from tunnel.units import human_bytes

register = template.Library()


@register.inclusion_tag("admin/fleet/summary.html")
def fleet_summary() -> dict[str, Any]:
    today = utc_today()
    traffic = AgentDayUsage.objects.filter(day=today).aggregate(
        up=Sum("bytes_up"), down=Sum("bytes_down")
    )
    requests = TrafficMinute.objects.filter(
        minute__gte=dt.datetime.combine(today, dt.time(), dt.UTC)
    ).aggregate(requests=Sum("requests"), errors=Sum("errors"))
    online = live_state.online_ids()
    return {
        "online": len(online),
        "paused": len(live_state.paused_ids()),
        "agents": Agent.objects.filter(revoked_at__isnull=True).count(),
        "users": ProxyUser.objects.filter(is_active=True).count(),
        "traffic_today": human_bytes((traffic["up"] or 0) + (traffic["down"] or 0)),
        "requests_today": requests["requests"] or 0,
        "errors_today": requests["errors"] or 0,
    }
