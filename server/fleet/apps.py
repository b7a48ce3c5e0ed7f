from django.apps import AppConfig


class FleetConfig(AppConfig):
    """Who may use the pool: proxy users, enrollment keys and the agents they enrolled."""

    name = "server.fleet"
    label = "fleet"
    verbose_name = "Fleet"
