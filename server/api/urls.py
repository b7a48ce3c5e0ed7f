"""``/api/v1/``: token-authenticated JSON (docs/api.md)."""

from django.urls import URLPattern, path, re_path

from server.api import views

urlpatterns: list[URLPattern] = [
    path("fetch", views.fetch_view, name="api-fetch"),
    path("agents", views.agents_view, name="api-agents"),
    path("usage", views.usage_view, name="api-usage"),
    path("openapi.json", views.openapi_view, name="api-openapi"),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
