"""URLs of this part (filled in as it is built)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
