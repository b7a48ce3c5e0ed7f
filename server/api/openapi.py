"""The OpenAPI 3.1 description of ``/api/v1/``, served at ``/api/v1/openapi.json``.

Kept by hand beside the views it describes (docs/api.md says the same in
prose); a test validates it with ``openapi_spec_validator`` and checks that it
names every error code the API can answer with.
"""

from __future__ import annotations

from typing import Any

ERROR_CODES: dict[str, str] = {
    "bad-request": "400: the request is not a valid fetch (the message says what is wrong)",
    "auth-required": "401: no Authorization: Bearer token",
    "auth-failed": "401: unknown token, or its user is disabled",
    "forbidden": "403: the agent's owner does not allow this destination",
    "not-found": "404: no such API endpoint",
    "method-not-allowed": "405: wrong HTTP method for this endpoint",
    "body-too-large": "413: the request body is over api_max_request_body",
    "unsupported-media-type": "415: the request is not Content-Type: application/json",
    "too-many-streams": "429: the user has as many connections open as they may",
    "quota-exceeded": "429: the user's monthly quota is used up",
    "internal": "500: a bug on the server (see its log)",
    "target-refused": "502: the target refused the connection",
    "dns-failed": "502: the target's name did not resolve",
    "target-unreachable": "502: the agent could not reach the target",
    "agent-lost": "502: the stream broke (the agent or the target went away mid-request)",
    "agent-error": "502: the agent failed for another reason",
    "tls-failed": "502: the TLS handshake with the target failed (e.g. an untrusted certificate)",
    "bad-response": "502: the target's answer was not valid HTTP, or was cut short",
    "response-too-large": "502: the response body is over api_max_response_body",
    "no-agent": "503: no agent can take the request (none online, or the pinned one is not)",
    "agent-busy": "503: the agent has no room for another stream",
    "agent-paused": "503: the agent's owner or an admin paused it",
    "server-not-running": "503: this process is not the running server (no agents here)",
    "target-timeout": "504: no complete response within the timeout",
    "agent-timeout": "504: the agent did not answer in time",
}

_HEADERS = {
    "description": "Header fields as [name, value] pairs, in order; a repeated field "
    "(Set-Cookie) appears once per value.",
    "type": "array",
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_AUTH_ERRORS = {"401": _error("No token, or a wrong one (`auth-required`, `auth-failed`).")}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Exitpool API",
        "version": "1",
        "description": "Send HTTP requests out through Exitpool's agents (office PCs) and "
        "read your usage. Authenticate with the API token `exitpool-server proxyuser` "
        "printed: `Authorization: Bearer ept_...`. Every error is JSON with a stable "
        "`error` code. See docs/api.md.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/fetch": {
            "post": {
                "operationId": "fetch",
                "summary": "Perform one HTTP request through an agent",
                "description": "The server connects to the target through an agent (chosen "
                "as for the proxy: rotating over exit IPs, or by `session` or `agent`), sends "
                "the request with `Connection: close`, and returns the whole response. "
                "`https://` is TLS from the server to the target, verified; the agent "
                "carries only encrypted bytes.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Fetch"}}
                    },
                },
                "responses": {
                    "200": _json(
                        "FetchResult",
                        "The target answered (whatever its status: a target's 404 is "
                        "`status: 404` here).",
                    ),
                    "400": _error("Not a valid fetch (`bad-request`)."),
                    **_AUTH_ERRORS,
                    "403": _error("The agent's owner does not allow the destination."),
                    "413": _error("The request body is too large (`body-too-large`)."),
                    "415": _error("Not JSON (`unsupported-media-type`)."),
                    "429": _error("Over a limit (`quota-exceeded`, `too-many-streams`)."),
                    "502": _error(
                        "The target could not be reached or answered badly (`target-refused`, "
                        "`dns-failed`, `target-unreachable`, `agent-lost`, `tls-failed`, "
                        "`bad-response`, `response-too-large`, `agent-error`)."
                    ),
                    "503": _error(
                        "No agent can take it (`no-agent`, `agent-busy`, `agent-paused`, "
                        "`server-not-running`)."
                    ),
                    "504": _error("Timed out (`target-timeout`, `agent-timeout`)."),
                },
            }
        },
        "/agents": {
            "get": {
                "operationId": "listAgents",
                "summary": "The agents that may carry traffic",
                "responses": {
                    "200": _json("AgentList", "Every enrolled, non-revoked agent."),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/usage": {
            "get": {
                "operationId": "getUsage",
                "summary": "Your own traffic this month and your limits",
                "responses": {
                    "200": _json("Usage", "The calling user's usage (UTC calendar month)."),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI description of this API.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The user's API token (`ept_...`), from "
                "`exitpool-server proxyuser NAME` (new users) or `--new-token`.",
            }
        },
        "schemas": {
            "Fetch": {
                "type": "object",
                "required": ["url"],
                "additionalProperties": False,
                "properties": {
                    "url": {
                        "type": "string",
                        "description": "An http:// or https:// URL (ASCII path; "
                        "percent-encode the rest).",
                        "examples": ["https://example.com/"],
                    },
                    "method": {"type": "string", "default": "GET"},
                    "headers": {
                        "description": 'Request headers: an object {"Name": "value"} or a list '
                        "of [name, value] pairs (to repeat a name). Host defaults to the URL's; "
                        "Content-Length and Connection are set by the server; hop-by-hop "
                        "headers (Connection, Keep-Alive, TE, Trailer, Upgrade, "
                        "Transfer-Encoding, Expect, Proxy-*) are dropped.",
                        "oneOf": [
                            {"type": "object", "additionalProperties": {"type": "string"}},
                            _HEADERS,
                        ],
                    },
                    "body": {
                        "type": "string",
                        "description": "A text body, sent as UTF-8. Not with body_base64.",
                    },
                    "body_base64": {
                        "type": "string",
                        "contentEncoding": "base64",
                        "description": "A binary body, base64-encoded. Not with body.",
                    },
                    "session": {
                        "type": "string",
                        "description": "Sticky session: fetches with the same value leave from "
                        "the same agent while it stays online (like NAME-session-ID).",
                    },
                    "agent": {
                        "type": "string",
                        "description": "Only this agent (by name; like NAME-agent-NAME): 503 "
                        "no-agent if it is not online, agent-paused or agent-busy if it "
                        "cannot take the request.",
                    },
                    "timeout": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Seconds for the whole fetch; default "
                        "api_default_timeout (30), at most api_max_timeout (120).",
                    },
                },
            },
            "FetchResult": {
                "type": "object",
                "required": ["status", "headers", "body", "agent", "exit_ip", "elapsed_ms"],
                "properties": {
                    "status": {"type": "integer", "description": "The target's status code."},
                    "headers": _HEADERS,
                    "body": {
                        "type": "string",
                        "contentEncoding": "base64",
                        "description": "The response body as the target sent it (chunked "
                        "encoding removed, content encoding kept), base64-encoded.",
                    },
                    "agent": {"type": "string", "description": "The agent that carried it."},
                    "exit_ip": {"type": "string", "description": "That agent's public IP."},
                    "elapsed_ms": {"type": "integer", "description": "Time the fetch took."},
                },
            },
            "Agent": {
                "type": "object",
                "required": ["name", "exit_ip", "online", "paused"],
                "properties": {
                    "name": {"type": "string"},
                    "exit_ip": {
                        "type": ["string", "null"],
                        "description": "Its exit IP now, or the last one seen when offline.",
                    },
                    "online": {"type": "boolean"},
                    "paused": {
                        "type": "boolean",
                        "description": "Paused by its owner or an admin: it takes no requests.",
                    },
                },
            },
            "AgentList": {
                "type": "object",
                "required": ["agents"],
                "properties": {
                    "agents": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}}
                },
            },
            "Usage": {
                "type": "object",
                "required": [
                    "user",
                    "month",
                    "bytes_up",
                    "bytes_down",
                    "bytes_total",
                    "requests",
                    "monthly_quota_bytes",
                    "remaining_bytes",
                    "open_streams",
                    "max_streams",
                ],
                "properties": {
                    "user": {"type": "string"},
                    "month": {"type": "string", "examples": ["2025-06"]},
                    "bytes_up": {"type": "integer", "description": "Sent to targets."},
                    "bytes_down": {"type": "integer", "description": "Received from targets."},
                    "bytes_total": {"type": "integer"},
                    "requests": {"type": "integer"},
                    "monthly_quota_bytes": {
                        "type": ["integer", "null"],
                        "description": "Bytes both ways per month; null means unlimited.",
                    },
                    "remaining_bytes": {
                        "type": ["integer", "null"],
                        "description": "What is left before 429 quota-exceeded; null if unlimited.",
                    },
                    "open_streams": {"type": "integer"},
                    "max_streams": {
                        "type": "integer",
                        "description": "Connections you may have open at once (proxy and API).",
                    },
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {
                        "type": "string",
                        "enum": sorted(ERROR_CODES),
                        "description": "Stable code to branch on: "
                        + "; ".join(f"`{code}` {text}" for code, text in ERROR_CODES.items()),
                    },
                    "message": {"type": "string", "description": "For people; may change."},
                },
            },
        },
    },
}
