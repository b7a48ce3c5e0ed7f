"""Forms of the admin that are more than a model's own fields."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms

from server.fleet.models import EnrollmentKey, ProxyUser


def new_password() -> str:
    """A password for a proxy user: URL-safe, so it fits in ``http://NAME:PW@HOST``."""
    return secrets.token_urlsafe(12)


def validate_proxy_password(value: str) -> None:
    if ":" in value:
        raise forms.ValidationError("a proxy password may not contain ':' (Basic auth)")


class ProxyUserAddForm(forms.ModelForm):  # type: ignore[type-arg]
    """A new proxy user; an empty password means "generate one and show it once"."""

    new_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        validators=[validate_proxy_password],
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to generate one. It is shown once, after saving, "
        "together with the user's API token; only hashes are kept.",
    )

    class Meta:
        model = ProxyUser
        fields = ["name", "new_password", "is_active", "max_streams", "monthly_quota_bytes"]

    def chosen_password(self) -> str | None:
        """The password the admin typed, or None if one is to be generated."""
        value: str = self.cleaned_data.get("new_password") or ""
        return value or None


class EnrollmentKeyAddForm(forms.ModelForm):  # type: ignore[type-arg]
    """A new enrollment key: the key itself is generated and shown once after saving."""

    class Meta:
        model = EnrollmentKey
        fields = ["label", "expires_at"]
        help_texts: dict[str, Any] = {
            "label": "A note for admins, e.g. 'Berlin office'.",
            "expires_at": "Optional: after this, new agents can no longer enroll with the key "
            "(agents already enrolled keep working).",
        }
