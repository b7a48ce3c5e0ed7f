"""The page that shows a new secret (password, API token, enrollment key) exactly once.

Only hashes of secrets are stored, so the page is rendered straight from the
request that created them — the secret is never kept in a session, a message
or a cache — and it tells browsers and proxies not to store it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin import ModelAdmin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers


@dataclass(frozen=True)
class Secret:
    label: str
    value: str
    help: str = ""


@dataclass(frozen=True)
class Section:
    """The secrets of one object, and commands that use them."""

    heading: str
    secrets: list[Secret]
    examples: list[tuple[str, str]] = field(default_factory=list)
    """(what it does, the command line)."""
    link: str = ""
    """The object's change page."""


def render(
    request: HttpRequest,
    model_admin: ModelAdmin,  # type: ignore[type-arg]
    title: str,
    sections: list[Section],
) -> TemplateResponse:
    """The shown-once page, with admin chrome and no-store caching headers."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "sections": sections,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    response = TemplateResponse(request, "admin/fleet/shown_once.html", context)
    add_never_cache_headers(response)
    return response


_KEPT = "_exitpool_shown_once"


def keep(request: HttpRequest, value: Any) -> None:
    """Hand new secrets from ``save_model`` to ``response_add`` of the same request."""
    setattr(request, _KEPT, value)


def take(request: HttpRequest) -> Any:
    """The secrets :func:`keep` stored on this request (removed from it)."""
    value = getattr(request, _KEPT)
    delattr(request, _KEPT)
    return value
