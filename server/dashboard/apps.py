from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "server.dashboard"
    label = "dashboard"

    def ready(self) -> None:
        """The admin's "View site" link leads to the dashboard (the server has no other site)."""
        from django.contrib import admin

        admin.site.site_url = "/dashboard/"
