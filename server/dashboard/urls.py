"""``/dashboard/`` and the snapshot it polls."""

from django.urls import path

from server.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.page, name="page"),
    path("data.json", views.data, name="data"),
]
