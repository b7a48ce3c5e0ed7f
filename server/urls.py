"""Every HTTP path daphne hands to Django (``/ws/agent`` is served beside it, see asgi.py)."""

from django.contrib import admin
from django.urls import include, path

from server.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("server.dashboard.urls")),
    path("api/v1/", include("server.api.urls")),
    path("metrics", metrics, name="metrics"),
]
