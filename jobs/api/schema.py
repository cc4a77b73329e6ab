"""OpenAPI post-processing: every operation documents the error shape it can answer with, so
clients (and schema-conformance checks) know a 4xx body is `{"detail", "code", ...}`."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "A sentence naming the problem."},
        "code": {"type": "string", "description": "A stable machine-readable code."},
    },
    "required": ["detail"],
    "additionalProperties": True,
}

COMMON = {
    "400": "The request is invalid; `detail` names the problem.",
    "401": "Authentication credentials were not provided or are invalid.",
    "403": "The user may not do this.",
    "404": "Not found, or not visible to this user.",
    "405": "Method not allowed.",
    "406": "The requested format cannot be produced.",
    "415": "Unsupported media type.",
    "429": "Too many requests, or Zenith is overloaded; see `Retry-After`.",
}
WRITES = {
    "409": "The action does not fit the job's state.",
    "413": "Too many items or too large a request.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = {**COMMON, **(WRITES if method in ("post", "put", "patch", "delete") else {})}
            for code, description in codes.items():
                operation["responses"].setdefault(code, {"description": description, "content": reference})
    return result
