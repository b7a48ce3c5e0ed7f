"""Traffic totals for the admin's lists, as annotations (one query per page, not per row).

Usage rows are per UTC day (agents) and per UTC month (users), written by
:mod:`server.accounting` every ``flush_interval`` seconds; what moved since
the last flush is not in them yet.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from django.db.models import F, Model, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

M = TypeVar("M", bound=Model)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def this_month() -> dt.date:
    """The first day of the current month (UTC), as stored in ``UserMonthUsage.month``."""
    return utc_today().replace(day=1)


def _total(field: str, condition: Q | None = None) -> Coalesce:
    return Coalesce(Sum(field, filter=condition), Value(0))


def with_agent_usage(agents: QuerySet[M], today: dt.date | None = None) -> QuerySet[M]:
    """Agents annotated with ``today_up``, ``today_down``, ``total_up``, ``total_down``
    and ``today_bytes``/``total_bytes`` (both ways, for sorting)."""
    day = Q(usage__day=today or utc_today())
    annotated: QuerySet[M] = agents.annotate(
        today_up=_total("usage__bytes_up", day),
        today_down=_total("usage__bytes_down", day),
        total_up=_total("usage__bytes_up"),
        total_down=_total("usage__bytes_down"),
    ).annotate(
        today_bytes=F("today_up") + F("today_down"),
        total_bytes=F("total_up") + F("total_down"),
    )
    return annotated


def with_month_usage(users: QuerySet[M], month: dt.date | None = None) -> QuerySet[M]:
    """Proxy users annotated with ``month_up``, ``month_down``, ``month_bytes`` (both ways)
    and ``month_requests``."""
    current = Q(usage__month=month or this_month())
    annotated: QuerySet[M] = users.annotate(
        month_up=_total("usage__bytes_up", current),
        month_down=_total("usage__bytes_down", current),
        month_requests=_total("usage__requests", current),
    ).annotate(month_bytes=F("month_up") + F("month_down"))
    return annotated
