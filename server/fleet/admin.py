from django.contrib import admin

from server.fleet.models import Agent, EnrollmentKey, ProxyUser


@admin.register(ProxyUser)
class ProxyUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "is_active", "created"]
    search_fields = ["name"]
    exclude = ["password"]


@admin.register(EnrollmentKey)
class EnrollmentKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["prefix", "label", "created", "expires_at", "revoked_at"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "last_exit_ip", "last_seen", "os", "agent_version", "revoked_at"]
    search_fields = ["name", "last_exit_ip"]
    readonly_fields = ["created", "last_seen", "last_exit_ip", "os", "agent_version"]
