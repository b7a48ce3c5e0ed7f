"""The fleet's durable state. Online state lives in memory in :mod:`server.hub`."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from server.fleet import versions
from server.fleet.tokens import new_token, token_hash

log = logging.getLogger(__name__)

ROUTE_OPTIONS = re.compile(r"-(session|agent)-")


def validate_proxy_user_name(name: str) -> None:
    """Names must survive Basic auth and username routing options (``NAME-session-X``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.@+-]{1,64}", name):
        raise ValidationError("use 1-64 letters, digits or _ . @ + -")
    if ROUTE_OPTIONS.search(f"{name}-"):
        raise ValidationError("a name may not contain '-session-' or '-agent-'")


class ProxyUser(models.Model):
    """Someone allowed to send traffic through the proxy and the API."""

    name = models.CharField(max_length=64, unique=True, validators=[validate_proxy_user_name])
    password = models.CharField(max_length=128, editable=False)
    is_active = models.BooleanField("enabled", default=True)
    created = models.DateTimeField(auto_now_add=True)
    max_streams = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Connections open at once; empty means the server's default "
        "(EXITPOOL_USER_MAX_STREAMS). Over it the proxy answers 429.",
    )
    monthly_quota_bytes = models.PositiveBigIntegerField(
        "monthly quota (bytes)",
        null=True,
        blank=True,
        help_text="Bytes both ways per calendar month (UTC); empty means unlimited. "
        "Over it the proxy and the API answer 429.",
    )
    api_token_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    api_token_prefix = models.CharField(max_length=12, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "proxy user"

    def __str__(self) -> str:
        return self.name

    def set_password(self, raw: str) -> None:
        self.password = make_password(raw)

    def new_api_token(self) -> str:
        """Replace the API token; the raw token is returned once and never stored."""
        raw = new_token("ept", 32)
        self.api_token_hash = token_hash(raw)
        self.api_token_prefix = raw[:10]
        return raw

    @classmethod
    def by_api_token(cls, raw: str) -> ProxyUser | None:
        if not raw:
            return None
        return cls.objects.filter(api_token_hash=token_hash(raw), is_active=True).first()

    def check_password(self, raw: str) -> bool:
        return check_password(raw, self.password)

    @classmethod
    def authenticate(cls, name: str, raw_password: str) -> ProxyUser | None:
        user = cls.objects.filter(name=name, is_active=True).first()
        if user is None or not user.check_password(raw_password):
            return None
        return user


class EnrollmentKey(models.Model):
    """A shared secret that lets new agents join; exchanged for a per-agent credential."""

    label = models.CharField(max_length=200, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… {self.label}".strip()

    @classmethod
    def issue(cls, label: str = "") -> tuple[EnrollmentKey, str]:
        """Create a key; the raw key is returned once and never stored."""
        raw = new_token("epk")
        key = cls.objects.create(label=label, key_hash=token_hash(raw), prefix=raw[:10])
        return key, raw

    @classmethod
    def find_valid(cls, raw: str) -> EnrollmentKey | None:
        key = cls.objects.filter(key_hash=token_hash(raw), revoked_at__isnull=True).first()
        if key is None or (key.expires_at is not None and key.expires_at <= timezone.now()):
            return None
        return key


class Agent(models.Model):
    """An office PC that carries traffic. Its credential is stored hashed."""

    name = models.CharField(max_length=100, unique=True)
    label = models.CharField(
        "owner / label", max_length=200, blank=True, help_text="Whose PC this is, where it sits."
    )
    credential_hash = models.CharField(max_length=64, unique=True, editable=False)
    enrollment_key = models.ForeignKey(
        EnrollmentKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    created = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_exit_ip = models.GenericIPAddressField(null=True, blank=True)
    os = models.CharField(max_length=100, blank=True)
    agent_version = models.CharField(max_length=40, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    paused_by_admin = models.BooleanField(
        default=False, help_text="Kept across reconnects until an admin resumes the agent."
    )
    max_streams = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Streams open at once on this agent; empty means the server's limit.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def authenticate(cls, raw_credential: str) -> Agent | None:
        return cls.objects.filter(
            credential_hash=token_hash(raw_credential), revoked_at__isnull=True
        ).first()

    @classmethod
    def enroll(
        cls, key: EnrollmentKey, wanted_name: str, facts: dict[str, Any]
    ) -> tuple[Agent, str]:
        """Create an agent under a unique name; the raw credential is returned once."""
        raw = new_token("epa", 32)
        base = (wanted_name.strip() or "agent")[:90]
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                with transaction.atomic():
                    agent = cls.objects.create(
                        name=name,
                        credential_hash=token_hash(raw),
                        enrollment_key=key,
                        os=str(facts.get("os", ""))[:100],
                        agent_version=str(facts.get("agent_version", ""))[:40],
                    )
                return agent, raw
            except IntegrityError:
                continue
        raise RuntimeError("no free agent name")

    def record_connect(self, exit_ip: str, facts: dict[str, Any]) -> None:
        self.last_seen = timezone.now()
        self.last_exit_ip = exit_ip
        self.os = str(facts.get("os", self.os))[:100]
        self.agent_version = str(facts.get("agent_version", self.agent_version))[:40]
        self.save(update_fields=["last_seen", "last_exit_ip", "os", "agent_version"])
        least = versions.minimum()
        if versions.is_outdated(self.agent_version, least):
            log.warning(
                "agent %s runs version %s, older than the minimum %s: give it the new installer",
                self.name,
                self.agent_version,
                least,
            )

    def record_seen(self) -> None:
        type(self).objects.filter(pk=self.pk).update(last_seen=timezone.now())

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class UserMonthUsage(models.Model):
    """A proxy user's traffic in one calendar month (UTC): what the quota is checked against."""

    user = models.ForeignKey(ProxyUser, on_delete=models.CASCADE, related_name="usage")
    month = models.DateField(help_text="The first day of the month.")
    bytes_up = models.PositiveBigIntegerField(default=0)
    bytes_down = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "month"], name="one_usage_per_month")
        ]

    @property
    def total(self) -> int:
        return self.bytes_up + self.bytes_down


class AgentDayUsage(models.Model):
    """An agent's traffic in one day (UTC): the admin's "today" and "total"."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    bytes_up = models.PositiveBigIntegerField(default=0)
    bytes_down = models.PositiveBigIntegerField(default=0)
    streams = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "day"], name="one_usage_per_day")]


class TrafficMinute(models.Model):
    """The whole server's traffic in one minute: the dashboard's chart, kept across restarts."""

    minute = models.DateTimeField(unique=True)
    bytes_up = models.PositiveBigIntegerField(default=0)
    bytes_down = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["minute"]


class RequestLog(models.Model):
    """One proxied connection or API fetch. Written in batches; pruned after the retention."""

    KINDS = [("connect", "CONNECT tunnel"), ("http", "plain HTTP"), ("api", "API fetch")]

    time = models.DateTimeField(db_index=True, help_text="When the request arrived.")
    kind = models.CharField(max_length=8, choices=KINDS)
    user = models.ForeignKey(ProxyUser, null=True, blank=True, on_delete=models.SET_NULL)
    user_name = models.CharField(max_length=64, blank=True)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL)
    agent_name = models.CharField(max_length=100, blank=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    bytes_up = models.PositiveBigIntegerField(default=0, help_text="User to target.")
    bytes_down = models.PositiveBigIntegerField(default=0, help_text="Target to user.")
    duration_ms = models.PositiveIntegerField(default=0)
    status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="What the user was answered (the proxy's own answers)."
    )
    result = models.CharField(
        max_length=32, db_index=True, help_text="ok, or the X-Exitpool-Error code."
    )

    class Meta:
        ordering = ["-time"]
        verbose_name = "request log entry"
        verbose_name_plural = "request log"

    def __str__(self) -> str:
        return f"{self.user_name} → {self.host}:{self.port} {self.result}"
