"""How the API fails: an HTTP status and a stable ``error`` code, always as JSON.

Scripts branch on ``error`` (the codes are the proxy's ``X-Exitpool-Error``
codes where they mean the same thing, see docs/api.md); ``message`` is for
people and may change.
"""

from __future__ import annotations

from django.http import JsonResponse


class ApiError(Exception):
    """Answer the caller with ``status`` and ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.code, "message": str(self)}, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="exitpool api"'
        # An answer, not a server fault: django.request would log every refused
        # destination as an ERROR. Fetches are in the request log; bugs (500) are
        # logged by the view with their traceback.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
