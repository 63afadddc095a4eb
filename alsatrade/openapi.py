"""What the OpenAPI schema describes: the REST API, not the webhook, and every answer an operation
gives, errors included, so that the schema is exact (tests/api/test_fuzz.py runs schemathesis with
every check against it).

The webhook is TradingView's contract (docs/TRADINGVIEW.md): it takes a raw JSON or text/plain body
and authenticates by passphrase, which an OpenAPI client could neither build nor call usefully.
"""

import copy
from typing import Any

from drf_spectacular.utils import OpenApiResponse

EXCLUDED_PREFIXES = ("/webhook",)

# DRF's error bodies: {"detail": "…"} for 401, 403, 404; for 400 and 409 also {"field": ["…", …]}.
DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
ERRORS = {
    "type": "object",
    "description": "What was refused and why: each key names a parameter or body field (`non_field_errors`: the "
    "body as a whole), or is `detail`.",
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
}
UNAUTHENTICATED = {
    "description": "No credentials, or a token that is unknown or past its expiry.",
    "content": {"application/json": {"schema": DETAIL}},
}

PAGE_NOT_FOUND = OpenApiResponse(DETAIL, description="No such page: past the last one.")
FORBIDDEN = OpenApiResponse(DETAIL, description="The user lacks the permission the body names (with a session: "
                            "or the CSRF token is missing).")


def bad_request(description: str) -> OpenApiResponse:
    return OpenApiResponse(ERRORS, description=description)


def conflict(description: str) -> OpenApiResponse:
    return OpenApiResponse(ERRORS, description=description)


def api_endpoints_only(endpoints: list[tuple], **kwargs: object) -> list[tuple]:
    # Reference: https://drf-spectacular.readthedocs.io/en/latest/settings.html (PREPROCESSING_HOOKS)
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(EXCLUDED_PREFIXES)]


def unauthenticated_responses(result: dict[str, Any], **kwargs: object) -> dict[str, Any]:
    """Every operation behind a token or session also answers 401 (DRF sends 401 rather than 403
    because the token scheme names itself in WWW-Authenticate)."""
    for item in result["paths"].values():
        for operation in item.values():
            if operation.get("security"):
                operation["responses"].setdefault("401", copy.deepcopy(UNAUTHENTICATED))
    return result


def preference_operations(result: dict[str, Any], **kwargs: object) -> dict[str, Any]:
    """`POST /preferences/{type}` as one operation per type, each with its own `value`: a request body
    cannot vary with a path parameter, and one `value` schema for every type would allow what each
    type refuses. The URL and the view stay one."""
    from preferences.api import PREFERENCE_TYPES
    from preferences.api_values import value_schema

    template = result["paths"].pop("/preferences/{type}", None)
    if template is None:
        return result
    body = result["components"]["schemas"].pop("PreferenceChange")
    for kind in PREFERENCE_TYPES:
        operation = copy.deepcopy(template["post"])
        operation["operationId"] = f"preferences_set_{kind}"
        operation["summary"] = f"Set {kind}"
        operation.pop("parameters", None)  # only `type`, now the path itself
        schema = copy.deepcopy(body)
        schema["properties"]["value"] = value_schema(kind, PREFERENCE_TYPES[kind])
        operation["requestBody"] = {"content": {"application/json": {"schema": schema}}, "required": True}
        result["paths"][f"/preferences/{kind}"] = {"post": operation}
    return result
